// libFuzzer target for the chat-template interpreter: the bytes up to the first NUL are the
// template, the rest (when it is JSON) the messages. Parsing and rendering may fail, with a
// message; they may not crash, hang or grow without bound (the interpreter's limits).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chat/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  auto tmpl = moon::ChatTemplate::parse(all.substr(0, nul));
  if (!tmpl) {
    if (tmpl.error().message.empty()) std::abort();
    return 0;
  }
  moon::jinja::Limits limits;
  limits.max_loop_iterations = 100000;
  limits.max_output_bytes = 1 << 20;
  limits.max_built_bytes = 16 << 20;
  tmpl->set_limits(limits);
  nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "s"}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Yo", "tool_calls": [{"type": "function",
           "function": {"name": "f", "arguments": {"a": 1}}}]}, {"role": "user", "content": "x"}])");
  if (nul != std::string_view::npos) {
    try {
      messages = nlohmann::ordered_json::parse(all.substr(nul + 1));
    } catch (const std::exception&) {
    }
  }
  const nlohmann::ordered_json vars = {
      {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"tools", nlohmann::ordered_json::array()}};
  for (bool gen : {false, true}) {
    auto out = tmpl->render_ordered(messages, gen, vars);
    if (!out && out.error().message.empty()) std::abort();
  }
  return 0;
}
