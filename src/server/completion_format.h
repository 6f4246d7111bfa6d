// OpenAI's /v1/completions answer: each choice's "text", and with echo the prompt's text
// first (streaming: as a chunk of its own; with logprobs, carrying the prompt's logprobs).
#pragma once

#include <vector>

#include "server/openai_format.h"

namespace moon::server {

class CompletionFormat : public OpenAiFormat {
 public:
  CompletionFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial);

  std::string stream_opening(size_t i) override;
  std::string stream(size_t i, Choice& c, const PromptLogprobs& prompt_logprobs) override;

 protected:
  nlohmann::json answer_choice(size_t i, const Choice& c,
                               const PromptLogprobs& prompt_logprobs) const override;

 private:
  std::vector<bool> echo_sent_;  // per choice, streaming
};

}  // namespace moon::server
