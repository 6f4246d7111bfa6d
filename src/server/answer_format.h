// How a generation job's answer looks on the wire, one implementation per protocol: OpenAI
// completions (completion_format.h), OpenAI chat (chat_format.h) and TGI (tgi_format.h).
// GenerationJob decides when something is sent (as updates drain, when a choice finishes,
// when all have); the format decides what: ids, object names, chunk and body shapes, which
// text may go out yet. Every format reads the same record, each choice's SequenceOutput.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/output_processor.h"
#include "server/api_error.h"
#include "server/http_connection.h"
#include "server/job_options.h"

namespace moon::server {

// One sequence of an answer (prompt p, sequence i: choice p * n + i): what the output
// processor made of it and how far it has been streamed. The format moves the marks.
struct Choice {
  SequenceOutput out;      // text (never part of a stop string), tokens, logprobs
  size_t sent = 0;         // bytes of out.text() already streamed
  size_t tokens_sent = 0;  // tokens already streamed (their logprobs; TGI: their events)
  std::string finish_reason;
  bool finished = false;
  bool finish_sent = false;
  std::chrono::steady_clock::time_point last_token{};  // the job's: time per output token
};

// Per prompt, the logprobs of its tokens as they arrive (with prompt_logprobs only).
using PromptLogprobs = std::vector<PromptLogprob>;

class AnswerFormat {
 public:
  virtual ~AnswerFormat() = default;

  const std::string& id() const { return id_; }
  // The engine refused a prompt: nothing has been sent yet.
  virtual HttpResponse refusal(const ApiError& error) const = 0;
  // Choice i just finished for `reason`; returns the reason to report (with tools, chat
  // reads the calls here and reports "tool_calls").
  virtual std::string on_finish(size_t i, const Choice& c, std::string reason);
  // Streaming: what choice i sends as soon as the stream opens ("": nothing).
  virtual std::string stream_opening(size_t i);
  // Streaming: the events for what choice i gained since the last call, marked sent.
  virtual std::string stream(size_t i, Choice& c, const PromptLogprobs& prompt_logprobs) = 0;
  // Streaming: what follows every choice's last event.
  virtual std::string stream_end(const nlohmann::json& usage) const = 0;
  // Not streaming: the whole answer, once every choice finished.
  virtual nlohmann::json answer(std::span<const Choice> choices,
                                std::span<const PromptLogprobs> prompt_logprobs,
                                const nlohmann::json& usage) const = 0;

 protected:
  // `serial` numbers the server's requests; the id adds randomness after `id_prefix`.
  AnswerFormat(const JobOptions& opts, const Tokenizer& tok, const char* id_prefix,
               uint64_t serial);

  const JobOptions& opts_;  // the job's: outlives the format
  const Tokenizer& tok_;
  std::string id_;
  int64_t created_ = 0;  // unix time
};

// The format of the API `opts` came in by; `opts` must outlive it.
std::unique_ptr<AnswerFormat> make_answer_format(const JobOptions& opts, const Tokenizer& tok,
                                                 uint64_t serial);

}  // namespace moon::server
