// libFuzzer target for request bodies: any bytes through the bounded JSON parser and every
// endpoint's validation (completions, chat, TGI), structured output and tool grammars. A
// refusal must name its problem; nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chat/tool_calls.h"
#include "server/json_body.h"
#include "server/openai_protocol.h"
#include "server/structured_output.h"
#include "server/tgi_protocol.h"

namespace {

void check(const std::optional<moon::server::ApiError>& err) {
  if (err && err->message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moon::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_json_body(body);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    if (err->message.empty()) std::abort();
    return 0;
  }
  const nlohmann::json& json = std::get<nlohmann::json>(parsed);
  CompletionRequest completion;
  check(parse_completion_request(json, completion));
  ChatRequest chat;
  const auto chat_error = parse_chat_request(json, chat);
  check(chat_error);
  TgiRequest tgi;
  check(parse_tgi_request(json, tgi));
  auto ordered = parse_ordered_json_body(body);
  if (auto* o = std::get_if<nlohmann::ordered_json>(&ordered)) {
    std::optional<GrammarSpec> spec;
    check(structured_output_gbnf(*o, spec));
    if (o->is_object() && o->contains("parameters") && (*o)["parameters"].is_object()) {
      check(tgi_grammar_gbnf((*o)["parameters"], spec));
    }
    if (!chat_error && !chat.tools.empty() && o->contains("tools")) {
      for (auto format : {moon::ToolCallFormat::kJson, moon::ToolCallFormat::kHermes,
                          moon::ToolCallFormat::kLlama3}) {
        (void)moon::tool_call_gbnf((*o)["tools"], chat.tool_choice_named ? chat.tool_choice : "",
                                   chat.parallel_tool_calls, format);
      }
    }
  }
  return 0;
}
