#include "server/generation_job.h"

#include <fmt/format.h>

#include <atomic>
#include <ctime>
#include <random>

#include "server/router.h"
#include "server/sse.h"
#include "server/tgi_protocol.h"
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
    : ctx_(ctx), conn_(std::move(conn)), opts_(std::move(options)), arrival_(arrival) {
  id_ = fmt::format("{}-{:x}{:08x}", opts_.kind == ApiKind::kChat ? "chatcmpl" : "cmpl",
                    ctx_.next_id++, static_cast<uint32_t>(std::random_device{}()));
  created_ = static_cast<int64_t>(std::time(nullptr));
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
    conn_->respond(error_response(invalid_request(s.error().message, "prompt"), opts_.kind));
    self_.reset();
    return;
  }
  for (const auto& p : opts_.prompts)
    ctx_.metrics.add_prompt_tokens(static_cast<int64_t>(p.size()));
  if (opts_.stream) {
    conn_->begin_stream(200, "text/event-stream");
    if (opts_.kind == ApiKind::kCompletion) {
      // echo: the prompt text comes first, as its own chunk.
      // With logprobs, it waits for the prompt's logprobs (stream_progress).
      for (size_t i = 0; i < choices_.size() && !wants_prompt_logprobs(); ++i) {
        const std::string& prefix = opts_.echo_prefixes[i / opts_.sampling.params.n];
        if (!prefix.empty()) conn_->send_chunk(sse_event(chunk(i, prefix, nullptr, "", false)));
        choices_[i].echo_sent = true;
      }
    }
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
  if (!any) return;
  ctx_.metrics.observe_snapshot(ctx_.engine.snapshot());
  if (opts_.stream) stream_progress();
  if (unfinished_ == 0) complete();
}

void GenerationJob::apply(size_t p, SequenceUpdate& u) {
  const size_t index = p * opts_.sampling.params.n + u.index;
  if (index >= choices_.size()) return;
  Choice& c = choices_[index];
  prompts_[p].prompt_logprobs.insert(prompts_[p].prompt_logprobs.end(),
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
  finish_choice(c, std::string(finish_reason_name(c.out.finish_reason())));
  if (--prompts_[p].unfinished == 0) release_prompt(p);
}

void GenerationJob::finish_choice(Choice& c, std::string reason) {
  if (opts_.tool_format && opts_.kind == ApiKind::kChat) {
    ParsedOutput parsed = parse_tool_calls(c.out.text(), *opts_.tool_format, opts_.tool_names);
    c.calls = std::move(parsed.calls);
    c.content = std::move(parsed.content);
    if (!c.calls.empty() && reason == "stop") reason = "tool_calls";
  }
  c.finished = true;
  last_finish_reason_ = reason;
  c.finish_reason = std::move(reason);
  --unfinished_;
}

json GenerationJob::logprobs_json(const Choice& c, size_t from, size_t to) const {
  if (!opts_.logprobs) return nullptr;
  return opts_.kind == ApiKind::kChat ? chat_logprobs(ctx_.tokenizer, c.out, from, to)
                                      : completion_logprobs(ctx_.tokenizer, c.out, from, to);
}

bool GenerationJob::prompt_logprobs_ready(size_t p) const {
  if (!wants_prompt_logprobs()) return true;
  return prompts_[p].prompt_logprobs.size() + 1 >= opts_.prompts[p].size();
}

json GenerationJob::prompt_logprobs_json(size_t p, size_t& offset) const {
  return completion_prompt_logprobs(ctx_.tokenizer, opts_.prompts[p], prompts_[p].prompt_logprobs,
                                    offset);
}

json GenerationJob::usage_json() const {
  int64_t prompt = 0, completion = 0;
  for (const auto& p : opts_.prompts) prompt += static_cast<int64_t>(p.size());
  for (const Choice& c : choices_) completion += static_cast<int64_t>(c.out.ids().size());
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

json GenerationJob::tool_calls_json(const Choice& c, bool with_index) {
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  json out = json::array();
  for (size_t i = 0; i < c.calls.size(); ++i) {
    // Nine letters and digits: the ids Mistral's templates insist on when the calls come back.
    std::string id(9, 'a');
    for (char& ch : id) ch = kAlnum[rng() % (sizeof(kAlnum) - 1)];
    json call = {{"id", id},
                 {"type", "function"},
                 {"function", {{"name", c.calls[i].name}, {"arguments", c.calls[i].arguments}}}};
    if (with_index) call["index"] = i;
    out.push_back(std::move(call));
  }
  return out;
}

json GenerationJob::chunk(size_t index, const std::string& text, json logprobs,
                          const std::string& finish_reason, bool with_role, json tool_calls) const {
  json choice = {{"index", index}};
  if (opts_.kind == ApiKind::kChat) {
    json delta = json::object();
    if (with_role) delta["role"] = "assistant";
    if (!text.empty() || with_role) delta["content"] = text;
    if (!tool_calls.is_null()) delta["tool_calls"] = std::move(tool_calls);
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  return {{"id", id_},
          {"object", opts_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", opts_.model},
          {"choices", json::array({choice})}};
}

void GenerationJob::stream_progress() {
  if (opts_.kind == ApiKind::kTgi) return stream_tgi(choices_[0]);
  std::string out;
  for (size_t i = 0; i < choices_.size(); ++i) {
    Choice& c = choices_[i];
    const size_t p = i / opts_.sampling.params.n;
    if (opts_.kind == ApiKind::kCompletion && !c.echo_sent) {
      // The echoed prompt goes first, with its logprobs once they are all in.
      if (!prompt_logprobs_ready(p)) continue;
      size_t offset = 0;
      out +=
          sse_event(chunk(i, opts_.echo_prefixes[p], prompt_logprobs_json(p, offset), "", false));
      c.echo_sent = true;
    }
    size_t end = c.out.text().size();
    json calls = nullptr;
    if (opts_.tool_format && opts_.kind == ApiKind::kChat) {
      // Text that may still be a call waits; once the answer is read, calls go out whole
      // and what is text flushes.
      if (!c.finished) {
        end = streamable_prefix(c.out.text(), *opts_.tool_format);
      } else if (!c.calls.empty()) {
        end = c.sent;
        if (!c.finish_sent) calls = tool_calls_json(c, true);
      }
    }
    const size_t token_end = c.out.ids().size();
    const bool with_role = opts_.kind == ApiKind::kChat && !c.role_sent;
    const bool has_text = end > c.sent;
    end = std::max(end, c.sent);
    const bool has_logprobs = opts_.logprobs && token_end > c.logprobs_sent;
    const bool finishing = c.finished && !c.finish_sent;
    if (!has_text && !has_logprobs && !finishing && !with_role) continue;
    const std::string text = has_text ? c.out.text().substr(c.sent, end - c.sent) : std::string();
    out += sse_event(chunk(i, text, logprobs_json(c, c.logprobs_sent, token_end),
                           finishing ? c.finish_reason : "", with_role, std::move(calls)));
    c.sent = std::max(c.sent, end);
    c.logprobs_sent = token_end;
    c.role_sent = true;
    c.finish_sent = c.finish_sent || finishing;
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
      id_, prompt_tokens, output_tokens, ttft, seconds(now - arrival_), reasons);
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
  if (opts_.kind == ApiKind::kTgi) {
    if (opts_.stream) {
      conn_->end_stream();  // the last token's event carried the text and details
    } else {
      json body = {{"generated_text", opts_.echo_prefixes[0] + choices_[0].out.text()}};
      if (opts_.tgi_details) body["details"] = tgi_answer_details(choices_[0]);
      conn_->respond({200, "application/json", dump(body), {}});
    }
    self_.reset();
    return;
  }
  if (opts_.stream) {
    std::string out;
    if (opts_.include_usage) {
      out += sse_event(
          {{"id", id_},
           {"object", opts_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
           {"created", created_},
           {"model", opts_.model},
           {"choices", json::array()},
           {"usage", usage}});
    }
    out += sse_done();
    conn_->send_chunk(out);
    conn_->end_stream();
    self_.reset();
    return;
  }
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    const size_t p = i / opts_.sampling.params.n;
    json choice = {{"index", i}};
    if (opts_.kind == ApiKind::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.out.text()}};
      if (!c.calls.empty()) {
        choice["message"]["content"] = c.content.empty() ? json(nullptr) : json(c.content);
        choice["message"]["tool_calls"] = tool_calls_json(c, false);
      }
    } else {
      choice["text"] = opts_.echo_prefixes[p] + c.out.text();
    }
    choice["logprobs"] = logprobs_json(c, 0, c.out.ids().size());
    if (wants_prompt_logprobs() && opts_.kind == ApiKind::kCompletion) {
      // echo + logprobs: the prompt's tokens first, then the completion's, offsets running
      // on through both (as vLLM reports them).
      size_t offset = 0;
      json all = prompt_logprobs_json(p, offset);
      const json& gen = choice["logprobs"];
      for (const char* key : {"tokens", "token_logprobs", "top_logprobs"}) {
        for (const json& v : gen[key]) all[key].push_back(v);
      }
      for (const json& token : gen["tokens"]) {
        all["text_offset"].push_back(offset);
        offset += token.get<std::string>().size();
      }
      choice["logprobs"] = std::move(all);
    }
    choice["finish_reason"] = c.finish_reason;
    if (opts_.return_token_ids) {
      choice["prompt_token_ids"] = opts_.prompts[p];
      choice["token_ids"] = c.out.ids();
    }
    choices.push_back(std::move(choice));
  }
  const json body = {
      {"id", id_},
      {"object", opts_.kind == ApiKind::kChat ? "chat.completion" : "text_completion"},
      {"created", created_},
      {"model", opts_.model},
      {"choices", choices},
      {"usage", usage}};
  conn_->respond({200, "application/json", dump(body), {}});
  self_.reset();
}

json GenerationJob::tgi_answer_details(const Choice& c) const {
  const json prefill = wants_prompt_logprobs() ? tgi_prefill(ctx_.tokenizer, opts_.prompts[0],
                                                             prompts_[0].prompt_logprobs)
                                               : json::array();
  return tgi_details(ctx_.tokenizer, c.out, c.finish_reason, opts_.sampling.params.seed, prefill,
                     opts_.top_logprobs > 0);
}

void GenerationJob::stream_tgi(Choice& c) {
  const std::string& text = c.out.text();
  const std::vector<size_t>& offsets = c.out.offsets();
  const bool finishing = c.finished && !c.finish_sent;
  size_t last = c.out.ids().size();
  // A finish without a new token still needs a final event; it repeats the last token.
  if (finishing && c.logprobs_sent == last && last > 0) c.logprobs_sent = last - 1;
  std::string out;
  for (size_t i = c.logprobs_sent; i < last; ++i) {
    const bool final_event = finishing && i + 1 == last;
    // Each token carries its own text: up to where the next token's starts, or all that is
    // out for the newest one (text a stop string or a split character holds back goes
    // with the token that releases it).
    const size_t end = std::min(text.size(), i + 1 < last ? offsets[i + 1] : text.size());
    const std::string own = end > c.sent ? text.substr(c.sent, end - c.sent) : std::string();
    c.sent = std::max(c.sent, end);
    json event = {{"index", i + 1},
                  {"token", tgi_token(ctx_.tokenizer, c.out.ids()[i], c.out.logprobs()[i], own)},
                  {"generated_text", nullptr},
                  {"details", nullptr}};
    if (opts_.top_logprobs > 0) event["top_tokens"] = tgi_top_tokens(ctx_.tokenizer, c.out, i);
    if (final_event) {
      event["generated_text"] = opts_.echo_prefixes[0] + c.out.text();
      json details = tgi_answer_details(c);
      details.erase("tokens");
      details.erase("prefill");
      details.erase("top_tokens");
      event["details"] = details;
    }
    out += sse_event(event);
  }
  c.logprobs_sent = last;
  c.finish_sent = c.finish_sent || finishing;
  conn_->send_chunk(out);
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
