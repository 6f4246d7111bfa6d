#include "server/generation_job.h"

#include <fmt/format.h>

#include <atomic>

#include "util/logging.h"

namespace moon::server {
namespace {

using json = nlohmann::json;

double seconds(GenerationJob::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

GenerationJob::GenerationJob(ServerContext& ctx, std::shared_ptr<HttpConnection> conn,
                             JobOptions options, Clock::time_point arrival)
    : ctx_(ctx),
      conn_(std::move(conn)),
      opts_(std::move(options)),
      format_(make_answer_format(opts_, ctx_.tokenizer, ctx_.next_id++)),
      arrival_(arrival),
      prompt_logprobs_(opts_.prompts.size()) {
  opts_.sampling.params.logprobs = opts_.logprobs;
  opts_.sampling.params.top_logprobs = opts_.top_logprobs;
  const int n = opts_.sampling.params.n;
  const size_t num_choices = opts_.prompts.size() * n;
  choices_.reserve(num_choices);
  for (size_t i = 0; i < num_choices; ++i) {
    choices_.push_back(Choice{SequenceOutput(ctx_.tokenizer, opts_.sampling.params)});
  }
  unfinished_ = static_cast<int>(choices_.size());
  ++ctx_.active_requests;
}

GenerationJob::~GenerationJob() {
  for (size_t p = 0; p < prompts_.size(); ++p) release_prompt(p);
  --ctx_.active_requests;
}

void GenerationJob::start() {
  // Owns itself until it answered or its client left: callbacks hold weak references.
  self_ = shared_from_this();
  prompts_.resize(opts_.prompts.size());
  ctx_.inflight_prompts += static_cast<int64_t>(prompts_.size());
  std::weak_ptr<GenerationJob> weak = weak_from_this();
  conn_->on_disconnect([weak] {
    if (auto job = weak.lock()) job->cancel();
  });
  // One pending wake-up at a time: the engine may push many updates per step.
  auto scheduled = std::make_shared<std::atomic<bool>>(false);
  auto events = ctx_.events;
  auto notify = [weak, scheduled, events] {
    if (scheduled->exchange(true)) return;
    events->post([weak, scheduled] {
      scheduled->store(false);
      if (auto job = weak.lock()) job->drain();
    });
  };
  // submit() never waits for the engine thread, so the I/O thread may call it.
  Submitted streams;
  for (const auto& prompt : opts_.prompts) {
    auto stream = ctx_.engine.submit(prompt, opts_.sampling.params);
    if (stream.ok()) (*stream)->set_notify(notify);
    const bool refused = !stream.ok();
    streams.push_back(std::move(stream));
    if (refused) break;  // the rest would be dropped anyway
  }
  on_submitted(std::move(streams));
}

void GenerationJob::on_submitted(Submitted streams) {
  // Take every stream first, so that a refusal below releases (aborts) the others.
  for (size_t p = 0; p < prompts_.size(); ++p) {
    if (p < streams.size() && streams[p].ok()) {
      prompts_[p].stream = std::move(*streams[p]);
      prompts_[p].unfinished = opts_.sampling.params.n;
    } else {
      --ctx_.inflight_prompts;  // never became an engine request
    }
  }
  for (auto& s : streams) {
    if (s.ok()) continue;
    for (size_t q = 0; q < prompts_.size(); ++q) release_prompt(q);
    done_ = true;
    conn_->respond(format_->refusal(invalid_request(s.error().message, "prompt")));
    self_.reset();
    return;
  }
  for (const auto& p : opts_.prompts)
    ctx_.metrics.add_prompt_tokens(static_cast<int64_t>(p.size()));
  if (opts_.stream) {
    conn_->begin_stream(200, "text/event-stream");
    // Sent before any token arrives, each as a chunk of its own (completions: the echo).
    for (size_t i = 0; i < choices_.size(); ++i) conn_->send_chunk(format_->stream_opening(i));
  }
  // Updates that arrived before set_notify produced no wake-up.
  drain();
}

void GenerationJob::release_prompt(size_t p) {
  if (!prompts_[p].stream) return;
  prompts_[p].stream.reset();
  --ctx_.inflight_prompts;
}

void GenerationJob::drain() {
  if (done_) return;
  const auto keep = shared_from_this();  // complete() lets go of self_
  bool any = false;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    while (prompts_[p].stream) {
      auto u = prompts_[p].stream->try_pop();
      if (!u) break;
      any = true;
      if (!prompts_[p].queue_time_observed) {
        // Queue time ends when the engine first schedules the request (vLLM's definition).
        prompts_[p].queue_time_observed = true;
        const auto scheduled = prompts_[p].stream->scheduled_at().value_or(Clock::now());
        ctx_.metrics.queue_time().observe(seconds(scheduled - arrival_));
        if (first_scheduled_ == Clock::time_point{} || scheduled < first_scheduled_) {
          first_scheduled_ = scheduled;
        }
      }
      apply(p, *u);
    }
  }
  if (any) {
    ctx_.metrics.observe_snapshot(ctx_.engine.snapshot());
    if (opts_.stream) stream_progress();
    if (unfinished_ == 0) return complete();
  }
  for (const Prompt& p : prompts_) {
    if (p.stream && p.stream->closed()) return fail_engine();
  }
}

void GenerationJob::fail_engine() {
  // The engine ended the request unfinished: a step failed (the engine log says why) or it
  // shut down. The client gets an error, not a wait for ever: a 500, or once a stream has
  // begun, an error event in it, as vLLM sends one.
  done_ = true;
  for (size_t p = 0; p < prompts_.size(); ++p) release_prompt(p);
  ctx_.metrics.request_finished("abort");
  ctx_.metrics.add_generation_tokens(usage_json()["completion_tokens"].get<int64_t>());
  log_finished(Clock::now());
  const HttpResponse error = format_->refusal(
      ApiError{500,
               "the engine failed while generating this request; see the server log",
               "server_error",
               {},
               "engine_failed"});
  if (opts_.stream) {
    conn_->send_chunk("data: " + error.body + "\n\n");
    conn_->end_stream();
  } else {
    conn_->respond(error);
  }
  self_.reset();
}

void GenerationJob::apply(size_t p, SequenceUpdate& u) {
  const size_t index = p * opts_.sampling.params.n + u.index;
  if (index >= choices_.size()) return;
  Choice& c = choices_[index];
  prompt_logprobs_[p].insert(prompt_logprobs_[p].end(),
                             std::make_move_iterator(u.prompt_logprobs.begin()),
                             std::make_move_iterator(u.prompt_logprobs.end()));
  if (c.finished) return;  // ended by a stop string; the engine's own end follows
  if (u.token >= 0) {
    const auto now = Clock::now();
    if (first_token_ == Clock::time_point{}) {
      first_token_ = now;
      ctx_.metrics.time_to_first_token().observe(seconds(first_token_ - arrival_));
    }
    // Each interval between a sequence's tokens, as vLLM observes them.
    if (c.last_token != Clock::time_point{}) {
      ctx_.metrics.time_per_output_token().observe(seconds(now - c.last_token));
    }
    c.last_token = now;
    last_token_ = now;
  }
  const SequenceOutput::Delta delta = c.out.apply(u);
  if (!delta.finished) return;
  if (delta.stop_engine) prompts_[p].stream->stop_sequence(u.index);
  finish_choice(index, std::string(finish_reason_name(c.out.finish_reason())));
  if (--prompts_[p].unfinished == 0) release_prompt(p);
}

void GenerationJob::finish_choice(size_t index, std::string reason) {
  Choice& c = choices_[index];
  reason = format_->on_finish(index, c, std::move(reason));
  c.finished = true;
  last_finish_reason_ = reason;
  c.finish_reason = std::move(reason);
  --unfinished_;
}

json GenerationJob::usage_json() const {
  int64_t prompt = 0, completion = 0;
  for (const auto& p : opts_.prompts) prompt += static_cast<int64_t>(p.size());
  for (const Choice& c : choices_) completion += static_cast<int64_t>(c.out.ids().size());
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

void GenerationJob::stream_progress() {
  std::string out;
  for (size_t i = 0; i < choices_.size(); ++i) {
    out += format_->stream(i, choices_[i], prompt_logprobs_[i / opts_.sampling.params.n]);
  }
  conn_->send_chunk(out);
}

void GenerationJob::log_finished(Clock::time_point now) const {
  // One line per request, as vLLM logs them: enough to follow a slow or cut-short request
  // without the metrics endpoint.
  std::string reasons;
  for (const Choice& c : choices_) {
    if (!reasons.empty()) reasons += ',';
    reasons += c.finished ? c.finish_reason : "abort";
  }
  int64_t prompt_tokens = 0, output_tokens = 0;
  for (const auto& p : opts_.prompts) prompt_tokens += static_cast<int64_t>(p.size());
  for (const Choice& c : choices_) output_tokens += static_cast<int64_t>(c.out.ids().size());
  const std::string ttft = first_token_ == Clock::time_point{}
                               ? std::string("-")
                               : fmt::format("{:.3f}s", seconds(first_token_ - arrival_));
  spdlog::info(
      "request {} finished: prompt_tokens={} output_tokens={} ttft={} total={:.3f}s "
      "finish_reason={}",
      format_->id(), prompt_tokens, output_tokens, ttft, seconds(now - arrival_), reasons);
}

void GenerationJob::complete() {
  if (done_) return;
  done_ = true;
  const auto now = Clock::now();
  log_finished(now);
  const json usage = usage_json();
  ctx_.metrics.add_generation_tokens(usage["completion_tokens"].get<int64_t>());
  ctx_.metrics.e2e_latency().observe(seconds(now - arrival_));
  ctx_.metrics.request_finished(last_finish_reason_);
  ctx_.metrics.request_prompt_tokens().observe(usage["prompt_tokens"].get<double>());
  ctx_.metrics.request_generation_tokens().observe(usage["completion_tokens"].get<double>());
  if (first_token_ != Clock::time_point{}) {
    if (first_scheduled_ != Clock::time_point{}) {
      ctx_.metrics.request_prefill_time().observe(seconds(first_token_ - first_scheduled_));
    }
    ctx_.metrics.request_decode_time().observe(seconds(last_token_ - first_token_));
  }
  if (opts_.stream) {
    conn_->send_chunk(format_->stream_end(usage));
    conn_->end_stream();
    self_.reset();
    return;
  }
  // A whole answer can be megabytes of JSON (n = 64 with 20 logprobs: 13 MB, most of a second
  // to render), so the worker renders it. Nothing changes the job once it is done_; the job
  // travels with the work and comes back here, so it is let go on this thread.
  ctx_.offload([job = std::move(self_), usage]() mutable {
    std::string body = dump(job->format_->answer(job->choices_, job->prompt_logprobs_, usage));
    const auto events = job->ctx_.events;
    events->post([job = std::move(job), body = std::move(body)]() mutable {
      job->conn_->respond({200, "application/json", std::move(body), {}});
    });
  });
}

void GenerationJob::cancel() {
  if (done_) return;
  done_ = true;
  for (size_t p = 0; p < prompts_.size(); ++p) release_prompt(p);
  ctx_.metrics.request_finished("abort");
  // What was generated before the client left was still generated.
  ctx_.metrics.add_generation_tokens(usage_json()["completion_tokens"].get<int64_t>());
  log_finished(Clock::now());  // finish_reason=abort: the client went away
  self_.reset();
}

}  // namespace moon::server
