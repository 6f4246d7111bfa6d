// Hugging Face text-generation-inference's API, POST /generate and /generate_stream:
//   {"inputs": "...", "parameters": {"max_new_tokens", "temperature", "top_p", "top_k",
//    "seed", "stop", "do_sample", "repetition_penalty", "top_n_tokens", "details",
//    "return_full_text"}}
// The parameters are translated to the OpenAI completion fields and checked by the same
// code, so both APIs accept and refuse the same values.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "server/api_error.h"
#include "server/openai_protocol.h"

namespace moon::server {

struct TgiRequest {
  CompletionRequest completion;  // one text prompt
  bool details = false;
  bool return_full_text = false;
  bool decoder_input_details = false;  // details.prefill: the prompt tokens' logprobs
};

std::optional<ApiError> parse_tgi_request(const nlohmann::json& body, TgiRequest& out);

// TGI's finish reasons: "length", "eos_token", "stop_sequence".
const char* tgi_finish_reason(const std::string& openai_reason, bool stopped_by_string);

}  // namespace moon::server
