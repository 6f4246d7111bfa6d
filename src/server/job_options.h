// A generation request as the router prepares it for a GenerationJob: tokenized, checked
// against the model, and reduced to what the engine and the answer's format need.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "server/openai_protocol.h"

namespace moon::server {

// Which API a request came in by: it picks the answer's format (answer_format.h) and the
// shape of its errors.
enum class ApiKind { kCompletion, kChat, kTgi };

struct JobOptions {
  ApiKind kind = ApiKind::kCompletion;
  std::string model;
  RequestSampling sampling;
  std::vector<std::vector<TokenId>> prompts;
  std::vector<std::string> echo_prefixes;  // per prompt, "" unless echo
  bool stream = false;
  bool include_usage = false;
  bool return_token_ids = false;
  bool logprobs = false;
  int top_logprobs = 0;
  bool tgi_details = false;  // TGI: the per-token details in the answer
  // Chat with tools (tool_choice other than "none"): answers are read for calls in this
  // format to these tools; while streaming, text that may be a call is held back.
  std::optional<ToolCallFormat> tool_format;
  std::vector<std::string> tool_names;

  // echo + logprobs (completions) and TGI's decoder_input_details: the prompt's own tokens
  // are reported too.
  bool wants_prompt_logprobs() const { return sampling.params.prompt_logprobs >= 0; }
};

}  // namespace moon::server
