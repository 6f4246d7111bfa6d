// Tool calls in a model's output, in the formats of the chat-template families moon serves:
//   kHermes:  <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call> (Qwen2.5, Qwen3,
//             Hermes, SmolLM3), possibly after some text and possibly several;
//   kLlama3:  {"name": ..., "parameters": {...}} (Llama 3.1/3.2 JSON tool calling), after an
//             optional <|python_tag|>, several separated by ';';
//   kJson:    a JSON object {"name", "arguments"} or an array of them: Mistral's
//             [TOOL_CALLS][...] once the control token is left out of the text, and the
//             fallback for templates of no known family.
// The format is read off the chat template's source. The parser only reports calls to the
// tools the request named, whose arguments are a JSON object; anything else stays text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace moon {

enum class ToolCallFormat { kJson, kHermes, kLlama3 };

ToolCallFormat tool_call_format_of(std::string_view template_source);
const char* tool_call_format_name(ToolCallFormat format);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, as text (OpenAI's shape)
};

struct ParsedOutput {
  std::string content;  // the text around the calls ("" when there is none)
  std::vector<ToolCall> calls;
};

// A finished output, split into text and calls to `tool_names`.
ParsedOutput parse_tool_calls(std::string_view text, ToolCallFormat format,
                              const std::vector<std::string>& tool_names);

// While streaming: how many bytes of `text` can go out as content now, because no tool call
// can start inside them (the rest may still turn out to be one, or the start of one).
size_t streamable_prefix(std::string_view text, ToolCallFormat format);

// A grammar whose sentences are calls in `format` to the tools of `tools` (OpenAI's list of
// {"type": "function", "function": {"name", "parameters"}}), each call's arguments valid for
// its function's parameter schema: to one tool when `only` names it, else to any; one call,
// or one to eight when `parallel` (a bound, so that a model that cannot stop calling still
// ends). For tool_choice "required" and a named tool_choice.
Result<std::string> tool_call_gbnf(const nlohmann::ordered_json& tools, const std::string& only,
                                   bool parallel, ToolCallFormat format);

}  // namespace moon
