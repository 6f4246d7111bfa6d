// Server-sent events as OpenAI's streaming APIs use them: one `data: <json>` event per chunk
// and a literal `data: [DONE]` at the end.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace moon::server {

inline std::string sse_event(const nlohmann::json& payload) {
  // Token pieces may be partial UTF-8 (logprob tokens); replace rather than throw.
  return "data: " + payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

inline std::string sse_done() {
  return "data: [DONE]\n\n";
}

}  // namespace moon::server
