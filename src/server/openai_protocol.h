// The OpenAI (and vLLM extension) request fields of /v1/completions and /v1/chat/completions,
// checked for type and range before anything reaches the engine: a bad request gets a 400
// naming the field, and has no side effects.
//
// The sampling fields land in the engine's SamplingParams directly, so the server accepts
// exactly what the sampler implements.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/output_processor.h"
#include "sampling/sampling_params.h"
#include "server/api_error.h"

namespace moon::server {

// Most top_logprobs / completions `logprobs` a request may ask for (vLLM's default cap).
inline constexpr int kMaxLogprobs = 20;
inline constexpr int kMaxN = 256;
inline constexpr size_t kMaxPrompts = 1024;
inline constexpr size_t kMaxStopStrings = 16;  // 'stop' strings per request
// Bytes of one stop string: the output processor holds back up to this much text.
inline constexpr size_t kMaxStopStringBytes = 4096;
inline constexpr size_t kMaxStopTokenIds = 1024;
inline constexpr size_t kMaxLogitBias = 2048;  // 'logit_bias' entries

struct RequestSampling {
  // What the engine takes; max_tokens is filled in by check_against_model, and logprobs /
  // top_logprobs by the router from each API's own fields.
  SamplingParams params;
  std::optional<int64_t> max_tokens;  // as requested; nullopt: up to the context length
};

struct PromptInput {
  bool is_text = true;
  std::string text;
  std::vector<int64_t> ids;  // as sent; checked against the vocabulary later
};

struct CompletionRequest {
  std::string model;
  std::vector<PromptInput> prompts;
  RequestSampling sampling;
  int logprobs = -1;  // -1: none; k: chosen token plus the k most likely
  bool echo = false;
  bool stream = false;
  bool include_usage = false;
  bool return_token_ids = false;  // extension: prompt and output token ids in each choice
};

struct ChatRequest {
  std::string model;
  // Validated: a non-empty array of {role, content} objects, each content a string or null
  // (a list of text parts arrives joined into one string).
  nlohmann::json messages;
  RequestSampling sampling;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
  bool add_generation_prompt = true;
  bool continue_final_message = false;  // the model continues the last (assistant) message
  bool return_token_ids = false;
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  // Validated: OpenAI's list of {"type": "function", "function": {"name", ...}} (empty: none).
  nlohmann::json tools = nlohmann::json::array();
  // "auto" (the default with tools), "none", "required", or a function's name.
  std::string tool_choice = "auto";
  bool tool_choice_named = false;  // tool_choice names one function
  bool parallel_tool_calls = true;
};

// Parse and range-check; nullopt on success (`out` filled), else the error to send.
std::optional<ApiError> parse_completion_request(const nlohmann::json& body,
                                                 CompletionRequest& out);
std::optional<ApiError> parse_chat_request(const nlohmann::json& body, ChatRequest& out);

// Range checks that need the vocabulary and the context length: token ids, prompt length,
// max_tokens. Sets params.max_tokens (the rest of the context when it was left out).
std::optional<ApiError> check_against_model(RequestSampling& s, int64_t prompt_len,
                                            int64_t vocab_size, int64_t max_model_len);

// The logprobs of generated tokens [from, to) in a chat answer's shape ({"content": [...]},
// each token with its bytes and top alternatives).
nlohmann::json chat_logprobs(const Tokenizer& tok, const SequenceOutput& out, size_t from,
                             size_t to);
// The same in the completions API's shape: parallel lists of tokens, logprobs, top-logprob
// maps (always holding the chosen token) and text offsets.
nlohmann::json completion_logprobs(const Tokenizer& tok, const SequenceOutput& out, size_t from,
                                   size_t to);
// echo + logprobs: the prompt's tokens in the completions shape, the first with no logprob;
// `offset` accumulates each token's text length.
nlohmann::json completion_prompt_logprobs(const Tokenizer& tok, std::span<const TokenId> prompt,
                                          std::span<const PromptLogprob> logprobs, size_t& offset);

}  // namespace moon::server
