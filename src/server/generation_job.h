// One generation request (/v1/completions or /v1/chat/completions) from submission to the
// last byte: it submits each prompt to the engine, drains the engine's updates on the I/O
// thread when notified, turns them into text through one SequenceOutput per choice (the
// output processor `moon generate` uses too; a stop string ends that sequence in the engine),
// and writes either server-sent-event chunks or one JSON response in OpenAI's shapes.
//
// A client that disconnects drops the job's streams, which aborts its engine requests and
// frees their KV blocks within one engine step.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "engine/engine_client.h"
#include "engine/output_processor.h"
#include "server/http_connection.h"
#include "server/openai_protocol.h"
#include "server/server_context.h"

namespace moon::server {

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
};

class GenerationJob : public std::enable_shared_from_this<GenerationJob> {
 public:
  using Clock = std::chrono::steady_clock;
  GenerationJob(ServerContext& ctx, std::shared_ptr<HttpConnection> conn, JobOptions options,
                Clock::time_point arrival);
  ~GenerationJob();

  // Submits every prompt to the engine; answers a refusal itself. Call once.
  void start();

 private:
  struct Choice {
    SequenceOutput out;  // text (never part of a stop string), tokens, logprobs
    size_t sent = 0;     // bytes of out.text() already streamed
    size_t logprobs_sent = 0;
    std::string finish_reason;
    bool finished = false;
    bool finish_sent = false;
    bool role_sent = false;
    bool echo_sent = false;  // streaming: the echoed prompt went out
    // With tools, once finished: the calls read from the text and the text around them.
    std::vector<ToolCall> calls;
    std::string content;
    Clock::time_point last_token{};
  };
  struct Prompt {
    std::shared_ptr<RequestStream> stream;
    int unfinished = 0;
    bool queue_time_observed = false;
    std::vector<PromptLogprob> prompt_logprobs;  // with echo + logprobs, as they arrive
  };

  using Submitted = std::vector<Result<std::shared_ptr<RequestStream>>>;
  void on_submitted(Submitted streams);
  void drain();
  void apply(size_t prompt_index, SequenceUpdate& u);
  void finish_choice(Choice& c, std::string reason);
  void stream_progress();
  // TGI's shapes (tgi_protocol.h): one event per token, then the whole text.
  void stream_tgi(Choice& c);
  nlohmann::json tgi_answer_details(const Choice& c) const;
  void complete();
  void cancel();
  // The info line of a finished (or aborted) request: its tokens, timings, finish reasons.
  void log_finished(Clock::time_point now) const;
  void release_prompt(size_t prompt_index);
  nlohmann::json logprobs_json(const Choice& c, size_t from, size_t to) const;
  // Completions with echo: the prompt's tokens in the same shape, the first with no logprob;
  // `offset` accumulates each token's text length.
  nlohmann::json prompt_logprobs_json(size_t prompt_index, size_t& offset) const;
  bool wants_prompt_logprobs() const { return opts_.sampling.params.prompt_logprobs >= 0; }
  bool prompt_logprobs_ready(size_t prompt_index) const;
  nlohmann::json usage_json() const;
  nlohmann::json chunk(size_t index, const std::string& text, nlohmann::json logprobs,
                       const std::string& finish_reason, bool with_role,
                       nlohmann::json tool_calls = nullptr) const;
  // The calls in OpenAI's shape (streamed chunks also carry each call's index).
  nlohmann::json tool_calls_json(const Choice& c, bool with_index);

  ServerContext& ctx_;
  std::shared_ptr<HttpConnection> conn_;
  JobOptions opts_;
  std::string id_;
  int64_t created_ = 0;
  Clock::time_point arrival_;
  Clock::time_point first_token_{};
  Clock::time_point last_token_{};
  Clock::time_point first_scheduled_{};  // the engine's first schedule of any prompt
  std::string last_finish_reason_;       // of the sequence that finished last
  std::vector<Prompt> prompts_;
  std::vector<Choice> choices_;  // prompt-major: prompt p, sequence i -> p * n + i
  int unfinished_ = 0;
  bool done_ = false;
  std::shared_ptr<GenerationJob> self_;
};

}  // namespace moon::server
