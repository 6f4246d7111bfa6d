// Hugging Face text-generation-inference's API, POST /generate, /generate_stream and / (either,
// by "stream"), GET /info (router.cpp):
//   {"inputs": "...", "parameters": {"max_new_tokens", "temperature", "top_p", "top_k",
//    "seed", "stop", "do_sample", "repetition_penalty", "top_n_tokens", "details",
//    "return_full_text", "best_of" (1 only)}, "stream" (POST / only)}
// The parameters are translated to the OpenAI completion fields and checked by the same
// code, so both APIs accept and refuse the same values; a refusal is TGI's 422. The pieces
// of the answers (tokens, details, prefill) are built here too, from a choice's
// SequenceOutput; tgi_format.cpp puts them together.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "engine/output_processor.h"
#include "server/api_error.h"
#include "server/openai_protocol.h"

namespace moon::server {

struct TgiRequest {
  CompletionRequest completion;  // one text prompt
  bool stream = false;           // POST /: answer as /generate_stream
  bool details = false;
  bool return_full_text = false;
  bool decoder_input_details = false;  // details.prefill: the prompt tokens' logprobs
};

std::optional<ApiError> parse_tgi_request(const nlohmann::json& body, TgiRequest& out);

// TGI's error shape, {"error": "...", "error_type": "validation"}. A request TGI refuses in
// validation is a 422 there, where the OpenAI routes answer 400; the other statuses stay.
int tgi_error_status(const ApiError& error);
nlohmann::json tgi_error_body(const ApiError& error);

// TGI's finish reasons: "length", "eos_token", "stop_sequence".
const char* tgi_finish_reason(const std::string& openai_reason, bool stopped_by_string);

// One token in TGI's shape: {"id", "text", "logprob", "special"}.
nlohmann::json tgi_token(const Tokenizer& tok, TokenId id, float logprob, const std::string& text);
// top_n_tokens: the most likely tokens at generated position i.
nlohmann::json tgi_top_tokens(const Tokenizer& tok, const SequenceOutput& out, size_t i);
// decoder_input_details: the prompt's tokens, the first with no logprob (as TGI reports).
nlohmann::json tgi_prefill(const Tokenizer& tok, std::span<const TokenId> prompt,
                           std::span<const PromptLogprob> logprobs);
// The "details" object of an answer; `top_tokens` adds the alternatives of every token.
nlohmann::json tgi_details(const Tokenizer& tok, const SequenceOutput& out,
                           const std::string& finish_reason, std::optional<uint64_t> seed,
                           nlohmann::json prefill, bool top_tokens);

}  // namespace moon::server
