// Text-generation-inference's answer (the request side is tgi_protocol.h): one body with the
// whole "generated_text" and, when asked, its "details"; streaming, one event per token
// with that token's own text, the last also carrying the whole text and the details. No
// [DONE] follows.
#pragma once

#include "server/answer_format.h"

namespace moon::server {

class TgiFormat : public AnswerFormat {
 public:
  TgiFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial);

  HttpResponse refusal(const ApiError& error) const override;
  std::string stream(size_t i, Choice& c, const PromptLogprobs& prompt_logprobs) override;
  std::string stream_end(const nlohmann::json& usage) const override;
  nlohmann::json answer(std::span<const Choice> choices,
                        std::span<const PromptLogprobs> prompt_logprobs,
                        const nlohmann::json& usage) const override;

 private:
  nlohmann::json details(const Choice& c, const PromptLogprobs& prompt_logprobs) const;
};

}  // namespace moon::server
