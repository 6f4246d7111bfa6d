// One generation request (/v1/completions, /v1/chat/completions or TGI's routes) from
// submission to the last byte: it submits each prompt to the engine, drains the engine's
// updates on the I/O thread when notified, turns them into text through one SequenceOutput
// per choice (the output processor `moon generate` uses too; a stop string ends that
// sequence in the engine), and decides when the answer goes out: streamed as updates
// arrive, or whole once every choice finished. What goes out is its AnswerFormat's
// (answer_format.h), one per protocol.
//
// A client that disconnects drops the job's streams, which aborts its engine requests and
// frees their KV blocks within one engine step.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine_client.h"
#include "server/answer_format.h"
#include "server/http_connection.h"
#include "server/job_options.h"
#include "server/server_context.h"

namespace moon::server {

class GenerationJob : public std::enable_shared_from_this<GenerationJob> {
 public:
  using Clock = std::chrono::steady_clock;
  GenerationJob(ServerContext& ctx, std::shared_ptr<HttpConnection> conn, JobOptions options,
                Clock::time_point arrival);
  ~GenerationJob();

  // Submits every prompt to the engine; answers a refusal itself. Call once.
  void start();

 private:
  struct Prompt {
    std::shared_ptr<RequestStream> stream;
    int unfinished = 0;
    bool queue_time_observed = false;
  };

  using Submitted = std::vector<Result<std::shared_ptr<RequestStream>>>;
  void on_submitted(Submitted streams);
  void drain();
  void apply(size_t prompt_index, SequenceUpdate& u);
  void finish_choice(size_t index, std::string reason);
  void stream_progress();
  void complete();
  void cancel();
  void fail_engine();  // the engine ended the request unfinished
  // The info line of a finished (or aborted) request: its tokens, timings, finish reasons.
  void log_finished(Clock::time_point now) const;
  void release_prompt(size_t prompt_index);
  nlohmann::json usage_json() const;

  ServerContext& ctx_;
  std::shared_ptr<HttpConnection> conn_;
  JobOptions opts_;
  std::unique_ptr<AnswerFormat> format_;  // reads opts_
  Clock::time_point arrival_;
  Clock::time_point first_token_{};
  Clock::time_point last_token_{};
  Clock::time_point first_scheduled_{};  // the engine's first schedule of any prompt
  std::string last_finish_reason_;       // of the sequence that finished last
  std::vector<Prompt> prompts_;
  std::vector<PromptLogprobs> prompt_logprobs_;  // per prompt, as they arrive
  std::vector<Choice> choices_;                  // prompt-major: prompt p, sequence i -> p * n + i
  int unfinished_ = 0;
  bool done_ = false;
  std::shared_ptr<GenerationJob> self_;
};

}  // namespace moon::server
