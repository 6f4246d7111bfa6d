// What OpenAI's completions and chat answers share: the envelope of every chunk and body
// (id, object, created, model), a streamed choice's news as one chunk, the usage chunk and
// [DONE] at the end, a body of choices and usage, and OpenAI's error shape. The two APIs
// differ in their names and logprobs shape (Api) and in a choice's own fields.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "server/answer_format.h"

namespace moon::server {

class OpenAiFormat : public AnswerFormat {
 public:
  HttpResponse refusal(const ApiError& error) const override;
  std::string stream_end(const nlohmann::json& usage) const override;
  nlohmann::json answer(std::span<const Choice> choices,
                        std::span<const PromptLogprobs> prompt_logprobs,
                        const nlohmann::json& usage) const override;

 protected:
  // Where the two APIs differ in what they share.
  struct Api {
    const char* id_prefix;
    const char* answer_object;
    const char* chunk_object;
    // The logprobs of generated tokens [from, to) (openai_protocol.h).
    nlohmann::json (*logprobs)(const Tokenizer&, const SequenceOutput&, size_t, size_t);
  };
  OpenAiFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial, Api api);

  // One choice of the whole answer: its text or message and its logprobs.
  virtual nlohmann::json answer_choice(size_t i, const Choice& c,
                                       const PromptLogprobs& prompt_logprobs) const = 0;

  // What a choice gained that has not gone out: text up to `end`, the new tokens' logprobs
  // and its finish reason ("" unless it just finished).
  struct News {
    std::string text;
    nlohmann::json logprobs;
    std::string finish_reason;
  };
  // The news, marked sent; nullopt when there is none and nothing else (`force`) needs a
  // chunk.
  std::optional<News> take_news(Choice& c, size_t end, bool force) const;
  // One SSE chunk of choice i: `fields` (its text or delta) with `logprobs` and the finish.
  std::string chunk(size_t i, nlohmann::json fields, nlohmann::json logprobs,
                    const std::string& finish_reason) const;
  // Null unless the request asked for logprobs.
  nlohmann::json logprobs(const Choice& c, size_t from, size_t to) const;

 private:
  nlohmann::json envelope(const char* object, nlohmann::json choices) const;

  Api api_;
};

}  // namespace moon::server
