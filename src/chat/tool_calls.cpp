#include "chat/tool_calls.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "grammar/json_schema.h"

namespace moon {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";

std::string_view trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// The end of the JSON object or array that starts at s[0] (brackets counted outside
// strings), or npos when it does not close.
size_t json_value_end(std::string_view s) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

std::optional<ojson> parse_json(std::string_view s) {
  try {
    return ojson::parse(s);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// {"name": <a known tool>, "arguments" or "parameters": {...}} as a call.
std::optional<ToolCall> as_call(const ojson& v, const std::vector<std::string>& names) {
  if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) return std::nullopt;
  const std::string name = v["name"].get<std::string>();
  if (std::find(names.begin(), names.end(), name) == names.end()) return std::nullopt;
  const ojson* args = nullptr;
  for (const char* key : {"arguments", "parameters"}) {
    if (v.contains(key)) args = &v[key];
  }
  if (args == nullptr) return ToolCall{name, "{}"};
  if (args->is_string()) {  // some models write the arguments as JSON text
    auto inner = parse_json(args->get<std::string>());
    if (!inner || !inner->is_object()) return std::nullopt;
    return ToolCall{name, inner->dump()};
  }
  if (!args->is_object()) return std::nullopt;
  return ToolCall{name, args->dump()};
}

// One object or an array of them, all calls.
std::optional<std::vector<ToolCall>> as_calls(const ojson& v,
                                              const std::vector<std::string>& names) {
  std::vector<ToolCall> calls;
  if (v.is_array()) {
    if (v.empty()) return std::nullopt;
    for (const ojson& e : v) {
      auto c = as_call(e, names);
      if (!c) return std::nullopt;
      calls.push_back(std::move(*c));
    }
    return calls;
  }
  auto c = as_call(v, names);
  if (!c) return std::nullopt;
  calls.push_back(std::move(*c));
  return calls;
}

ParsedOutput parse_hermes(std::string_view text, const std::vector<std::string>& names) {
  ParsedOutput out;
  std::string content;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find(kHermesOpen, pos);
    if (open == std::string_view::npos) break;
    content += text.substr(pos, open - pos);
    const size_t body = open + kHermesOpen.size();
    size_t close = text.find(kHermesClose, body);
    const std::string_view inner = trim(
        text.substr(body, close == std::string_view::npos ? std::string_view::npos : close - body));
    auto v = parse_json(inner);
    auto calls = v ? as_calls(*v, names) : std::nullopt;
    if (!calls) return {std::string(text), {}};  // not a call after all: all of it is text
    for (ToolCall& c : *calls) out.calls.push_back(std::move(c));
    if (close == std::string_view::npos) {
      pos = text.size();
      break;
    }
    pos = close + kHermesClose.size();
  }
  content += text.substr(pos);
  out.content = out.calls.empty() ? std::string(text) : std::string(trim(content));
  return out;
}

ParsedOutput parse_llama3(std::string_view text, const std::vector<std::string>& names) {
  std::string_view rest = trim(text);
  if (rest.starts_with(kPythonTag)) rest = trim(rest.substr(kPythonTag.size()));
  ParsedOutput out;
  while (!rest.empty()) {
    if (rest[0] != '{' && rest[0] != '[') return {std::string(text), {}};
    const size_t end = json_value_end(rest);
    auto v = end == std::string_view::npos ? std::nullopt : parse_json(rest.substr(0, end));
    auto calls = v ? as_calls(*v, names) : std::nullopt;
    if (!calls) return {std::string(text), {}};
    for (ToolCall& c : *calls) out.calls.push_back(std::move(c));
    rest = trim(rest.substr(end));
    if (!rest.empty() && rest[0] == ';') rest = trim(rest.substr(1));
  }
  if (out.calls.empty()) out.content = std::string(text);
  return out;
}

ParsedOutput parse_json_calls(std::string_view text, const std::vector<std::string>& names) {
  std::string_view body = trim(text);
  if (body.starts_with(kMistralTag)) body = trim(body.substr(kMistralTag.size()));
  auto v = parse_json(body);
  auto calls = v ? as_calls(*v, names) : std::nullopt;
  if (!calls) return {std::string(text), {}};
  return {"", std::move(*calls)};
}

// $refs inside one tool's parameters, moved under the wrapper's $defs as `prefix` + name.
void rebase_refs(ojson& v, const std::string& prefix) {
  if (v.is_object()) {
    for (auto& [key, value] : v.items()) {
      if (key == "$ref" && value.is_string()) {
        const std::string r = value.get<std::string>();
        if (r == "#") {
          value = "#/$defs/" + prefix + "root";
        } else if (r.rfind("#/$defs/", 0) == 0) {
          value = "#/$defs/" + prefix + r.substr(8);
        } else if (r.rfind("#/definitions/", 0) == 0) {
          value = "#/$defs/" + prefix + r.substr(14);
        }
      } else {
        rebase_refs(value, prefix);
      }
    }
  } else if (v.is_array()) {
    for (ojson& e : v) rebase_refs(e, prefix);
  }
}

}  // namespace

ToolCallFormat tool_call_format_of(std::string_view source) {
  if (source.find(kHermesOpen) != std::string_view::npos) return ToolCallFormat::kHermes;
  if (source.find(kPythonTag) != std::string_view::npos ||
      source.find("\"parameters\": dictionary of argument name") != std::string_view::npos) {
    return ToolCallFormat::kLlama3;
  }
  return ToolCallFormat::kJson;
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3:
      return "llama3_json";
    case ToolCallFormat::kJson:
      return "json";
  }
  return "json";
}

ParsedOutput parse_tool_calls(std::string_view text, ToolCallFormat format,
                              const std::vector<std::string>& tool_names) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return parse_hermes(text, tool_names);
    case ToolCallFormat::kLlama3:
      return parse_llama3(text, tool_names);
    case ToolCallFormat::kJson:
      break;
  }
  return parse_json_calls(text, tool_names);
}

size_t streamable_prefix(std::string_view text, ToolCallFormat format) {
  if (format == ToolCallFormat::kHermes) {
    if (const size_t at = text.find(kHermesOpen); at != std::string_view::npos) return at;
    // Hold back a tail that may be the start of the tag.
    for (size_t keep = std::min(text.size(), kHermesOpen.size() - 1); keep > 0; --keep) {
      if (kHermesOpen.starts_with(text.substr(text.size() - keep))) return text.size() - keep;
    }
    return text.size();
  }
  // The JSON formats: a call is the whole answer, so text is content once it starts with
  // something no call starts with.
  const std::string_view t = trim(text);
  if (t.empty()) return 0;
  const char c = t[0];
  if (c == '{' || c == '[') return 0;
  if (kPythonTag.starts_with(t.substr(0, kPythonTag.size())) || t.starts_with(kPythonTag)) return 0;
  if (kMistralTag.starts_with(t.substr(0, kMistralTag.size())) || t.starts_with(kMistralTag))
    return 0;
  return text.size();
}

Result<std::string> tool_call_gbnf(const nlohmann::ordered_json& tools, const std::string& only,
                                   bool parallel, ToolCallFormat format) {
  const char* args_key = format == ToolCallFormat::kLlama3 ? "parameters" : "arguments";
  ojson wrapper = {{"anyOf", ojson::array()}, {"$defs", ojson::object()}};
  int index = 0;
  for (const ojson& tool : tools) {
    const ojson& fn = tool.at("function");
    const std::string name = fn.at("name").get<std::string>();
    if (!only.empty() && name != only) continue;
    ojson params = fn.contains("parameters") && !fn["parameters"].is_null()
                       ? fn["parameters"]
                       : ojson{{"type", "object"}, {"properties", ojson::object()}};
    const std::string prefix = fmt::format("t{}-", index++);
    for (const char* defs : {"$defs", "definitions"}) {
      if (params.is_object() && params.contains(defs)) {
        for (auto& [k, v] : params[defs].items()) {
          ojson def = v;
          rebase_refs(def, prefix);
          wrapper["$defs"][prefix + k] = std::move(def);
        }
        params.erase(defs);
      }
    }
    rebase_refs(params, prefix);
    wrapper["$defs"][prefix + "root"] = params;
    wrapper["anyOf"].push_back({{"type", "object"},
                                {"properties", {{"name", {{"const", name}}}, {args_key, params}}},
                                {"required", {"name", args_key}},
                                {"additionalProperties", false}});
  }
  if (wrapper["anyOf"].empty()) {
    return make_error("tool_choice names '{}', which is not in 'tools'", only);
  }
  auto call = grammar::json_schema_to_gbnf(wrapper, {.compact_whitespace = true});
  if (!call) return call.error();
  std::string gbnf = *call;
  gbnf.replace(0, std::string_view("root ::= ").size(), "tool-call ::= ");
  std::string root;
  switch (format) {
    case ToolCallFormat::kHermes:
      root = parallel ? "root ::= hermes-call (\"\\n\" hermes-call){0,7}\n" : "root ::= hermes-call\n";
      root += "hermes-call ::= \"<tool_call>\\n\" tool-call \"\\n</tool_call>\"\n";
      break;
    case ToolCallFormat::kLlama3:
      root = parallel ? "root ::= tool-call (\"; \" tool-call){0,7}\n" : "root ::= tool-call\n";
      break;
    case ToolCallFormat::kJson:
      root = parallel ? "root ::= \"[\" tool-call (\", \" tool-call){0,7} \"]\"\n"
                      : "root ::= tool-call\n";
      break;
  }
  return root + gbnf;
}

}  // namespace moon
