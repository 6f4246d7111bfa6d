// Renders a model's chat template (the Jinja `tokenizer.chat_template`) the way Hugging Face
// does: trim_blocks and lstrip_blocks on, OpenAI-style messages, and the helper functions
// (raise_exception, strftime_now) that transformers provides.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_interpreter.h"
#include "util/result.h"

namespace moon {

struct ChatMessage {
  std::string role;
  std::string content;
  // Any further fields (tool_calls, tool_call_id, reasoning_content, ...), as an object. Its
  // entries win over role/content, so {"content": null} gives a tool-call turn null content.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();

  nlohmann::ordered_json to_json() const;
};

class ChatTemplate {
 public:
  // Syntax errors name the line and column.
  static Result<ChatTemplate> parse(std::string_view source);

  // `messages` is an array of {"role", "content", ...} objects; `extra_variables` an object
  // whose keys become template variables (bos_token, eos_token, date_string, tools, ...).
  // nlohmann::json sorts object keys, which `tojson` would show; callers that care about key
  // order (tool schemas) should use render_ordered.
  Result<std::string> render(
      const nlohmann::json& messages, bool add_generation_prompt,
      const nlohmann::json& extra_variables = nlohmann::json::object()) const;
  Result<std::string> render_ordered(
      const nlohmann::ordered_json& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra_variables = nlohmann::ordered_json::object()) const;
  Result<std::string> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                             const nlohmann::ordered_json& extra_variables) const;

  void set_limits(const jinja::Limits& limits) { limits_ = limits; }
  // The template's text (what its family's conventions, such as the tool-call format, are
  // read from).
  const std::string& source() const { return *source_; }

 private:
  ChatTemplate(std::shared_ptr<const jinja::Program> program, std::string source)
      : program_(std::move(program)),
        source_(std::make_shared<const std::string>(std::move(source))) {}

  std::shared_ptr<const jinja::Program> program_;
  std::shared_ptr<const std::string> source_;
  jinja::Limits limits_;
};

}  // namespace moon
