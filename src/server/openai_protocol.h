// The OpenAI (and vLLM extension) request fields of /v1/completions and /v1/chat/completions,
// checked for type and range before anything reaches the engine: a bad request gets a 400
// naming the field, and has no side effects.
//
// Every sampling field is parsed into RequestSampling whether or not the engine implements it
// yet; to_generation_params() is the single place where they meet the engine, so new sampler
// features are plugged in there.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "server/api_error.h"

namespace moon::server {

// Most top_logprobs / completions `logprobs` a request may ask for (vLLM's default cap).
inline constexpr int kMaxLogprobs = 20;
inline constexpr int kMaxN = 256;
inline constexpr size_t kMaxPrompts = 1024;

struct RequestSampling {
  int n = 1;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // applied by the server on the decoded text
  std::vector<int32_t> stop_token_ids;
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  int min_tokens = 0;
  std::optional<int64_t> max_tokens;  // nullopt: up to the context length
  bool use_beam_search = false;
  float length_penalty = 1.0f;
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
  nlohmann::json messages;  // validated: a non-empty array of {role, content} objects
  RequestSampling sampling;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
  bool add_generation_prompt = true;
  bool return_token_ids = false;
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
};

// Parse and range-check; nullopt on success (`out` filled), else the error to send.
std::optional<ApiError> parse_completion_request(const nlohmann::json& body,
                                                 CompletionRequest& out);
std::optional<ApiError> parse_chat_request(const nlohmann::json& body, ChatRequest& out);

// Range checks that need the vocabulary and the context length: token ids, prompt length,
// max_tokens. Fills in max_tokens when it was left out.
std::optional<ApiError> check_against_model(RequestSampling& s, int64_t prompt_len,
                                            int64_t vocab_size, int64_t max_model_len);

// The sampling request as the engine takes it. Fields the engine does not implement yet
// (top_p, top_k, min_p, penalties, logit_bias, min_tokens) are validated but not applied.
GenerationParams to_generation_params(const RequestSampling& s, int64_t max_tokens);

}  // namespace moon::server
