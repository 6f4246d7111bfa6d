#include "chat/chat_template.h"

#include <new>

#include "chat/jinja_builtins.h"
#include "chat/jinja_parser.h"

namespace moon {

nlohmann::ordered_json ChatMessage::to_json() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["role"] = role;
  out["content"] = content;
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) out[key] = value;
  }
  return out;
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  try {
    return ChatTemplate(jinja::parse_template(source), std::string(source));
  } catch (const jinja::TemplateError& e) {
    return Error{e.what()};
  } catch (const std::bad_alloc&) {
    return make_error("chat template: out of memory while parsing");
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                         const nlohmann::json& extra_variables) const {
  return render_ordered(nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt,
                        nlohmann::ordered_json::parse(extra_variables.dump()));
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt,
                                         const nlohmann::ordered_json& extra_variables) const {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) array.push_back(m.to_json());
  return render_ordered(array, add_generation_prompt, extra_variables);
}

Result<std::string> ChatTemplate::render_ordered(
    const nlohmann::ordered_json& messages, bool add_generation_prompt,
    const nlohmann::ordered_json& extra_variables) const {
  if (!messages.is_array()) return make_error("chat template: messages must be a JSON array");
  if (!extra_variables.is_null() && !extra_variables.is_object()) {
    return make_error("chat template: extra variables must be a JSON object");
  }
  try {
    jinja::Dict globals;
    jinja::GlobalsOptions options;
    if (extra_variables.is_object()) {
      auto date = extra_variables.find("date_string");
      if (date != extra_variables.end() && date->is_string())
        options.date_string = date->get<std::string>();
    }
    jinja::add_global_functions(globals, options);
    if (extra_variables.is_object()) {
      for (const auto& [key, value] : extra_variables.items())
        globals.set(key, jinja::Value::from_json(value));
    }
    globals.set("messages", jinja::Value::from_json(messages));
    globals.set("add_generation_prompt", jinja::Value(add_generation_prompt));
    jinja::Interpreter interpreter(program_, limits_);
    return interpreter.render(globals);
  } catch (const jinja::TemplateError& e) {
    return make_error("chat template error: {}", e.what());
  } catch (const std::bad_alloc&) {
    return make_error("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return make_error("chat template error: {}", e.what());
  }
}

}  // namespace moon
