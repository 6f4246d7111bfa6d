#include "engine/engine_client.h"

#include <cstdlib>
#include <optional>

#include "util/logging.h"

namespace moon {

std::optional<SequenceUpdate> RequestStream::pop() {
  std::unique_lock lock(mu_);
  cv_.wait(lock,
           [this] { return !updates_.empty() || closed_ || num_finished_ == num_sequences_; });
  if (updates_.empty()) return std::nullopt;
  SequenceUpdate u = updates_.front();
  updates_.pop_front();
  return u;
}

std::optional<SequenceUpdate> RequestStream::try_pop() {
  std::lock_guard lock(mu_);
  if (updates_.empty()) return std::nullopt;
  SequenceUpdate u = updates_.front();
  updates_.pop_front();
  return u;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mu_);
  return closed_ || num_finished_ == num_sequences_;
}

bool RequestStream::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::optional<std::chrono::steady_clock::time_point> RequestStream::scheduled_at() const {
  std::lock_guard lock(mu_);
  return scheduled_at_;
}

void RequestStream::mark_scheduled(std::chrono::steady_clock::time_point t) {
  std::lock_guard lock(mu_);
  scheduled_at_ = t;
}

void RequestStream::stop_sequence(int index) {
  std::lock_guard lock(mu_);
  if (client_ && !closed_) client_->stop_sequence(id_, index);
}

void RequestStream::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

void RequestStream::push(const SequenceUpdate& update) {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    updates_.push_back(update);
    if (update.finished) ++num_finished_;
    notify = notify_;
  }
  cv_.notify_all();
  if (notify) notify();
}

void RequestStream::close() {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    client_ = nullptr;
    notify = notify_;
  }
  cv_.notify_all();
  // A reader that waits for notifications (the server) must hear of it too, or its client
  // waits for ever.
  if (notify) notify();
}

RequestStream::~RequestStream() {
  // Lock order is always stream, then client: the engine thread never holds the client's
  // lock while it touches a stream.
  std::lock_guard lock(mu_);
  if (client_ && !closed_ && num_finished_ < num_sequences_) client_->abort(id_);
}

EngineClient::EngineClient(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {
  // The pool's size and the like are known before the first step; the thread starts after.
  snapshot_.kv = engine_->kv_stats();
  if (const char* fail = std::getenv("MOON_DEBUG_FAIL_STEP")) fail_step_ = std::atoll(fail);
  thread_ = std::thread([this] { loop(); });
}

EngineClient::~EngineClient() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<std::shared_ptr<RequestStream>> EngineClient::submit(std::vector<TokenId> prompt,
                                                            const SamplingParams& params) {
  MOON_TRY(engine_->check_request(prompt, params));
  std::shared_ptr<RequestStream> stream;
  {
    std::lock_guard lock(mu_);
    if (stop_) return make_error("the engine is shutting down");
    if (failure_) return make_error("the engine has failed: {}", *failure_);
    const RequestId id = next_id_++;
    stream.reset(new RequestStream(this, id, params.n));
    submissions_.push_back({id, std::move(prompt), params, stream});
  }
  cv_.notify_all();
  return stream;
}

void EngineClient::abort(RequestId id) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

void EngineClient::stop_sequence(RequestId id, int index) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stops_.emplace_back(id, index);
  }
  cv_.notify_all();
}

void EngineClient::set_on_failure(std::function<void(const std::string&)> on_failure) {
  std::lock_guard lock(mu_);
  on_failure_ = std::move(on_failure);
}

void EngineClient::fail_for_good(const std::string& why) {
  spdlog::error("the engine failed for good: {}; closing every request", why);
  abort_all();
  // Under the lock, so that an owner clearing the callback as it goes waits for this.
  std::lock_guard lock(mu_);
  if (failure_) return;
  failure_ = why;
  if (on_failure_) on_failure_(why);
}

EngineClient::Snapshot EngineClient::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void EngineClient::deliver(const std::vector<SequenceUpdate>& updates) {
  for (const SequenceUpdate& u : updates) {
    auto it = streams_.find(u.request_id);
    if (it == streams_.end()) continue;
    std::shared_ptr<RequestStream> stream = it->second.lock();
    if (!stream) continue;  // dropped: aborted below
    stream->push(u);
    if (stream->finished()) streams_.erase(it);
  }
}

void EngineClient::abort_all() {
  for (auto& [id, weak] : streams_) {
    engine_->abort(id);
    if (auto stream = weak.lock()) stream->close();
  }
  streams_.clear();
}

namespace {
// Well inside any sensible --tensor-parallel-timeout.
constexpr std::chrono::seconds kHeartbeatInterval{1};
}  // namespace

void EngineClient::loop() {
  int64_t num_steps = 0;
  std::array<int64_t, 15> step_token_buckets{};
  int64_t step_tokens_sum = 0;
  int64_t tokens_generated = 0;
  while (true) {
    std::deque<Submission> submissions;
    std::vector<RequestId> aborts;
    std::vector<std::pair<RequestId, int>> stops;
    {
      std::unique_lock lock(mu_);
      const auto ready = [this] {
        return stop_ || !submissions_.empty() || !aborts_.empty() || !stops_.empty() ||
               engine_->has_work();
      };
      if (!engine_->distributed()) {
        cv_.wait(lock, ready);
      } else if (!cv_.wait_for(lock, kHeartbeatInterval, ready)) {
        // Idle: the other ranks wait for a plan, and give up on a rank 0 that sends none.
        lock.unlock();
        if (Status beat = engine_->heartbeat(); !beat.ok()) fail_for_good(beat.error().message);
        continue;
      }
      if (stop_) {
        for (Submission& s : submissions_) {
          if (auto stream = s.stream.lock()) stream->close();
        }
        submissions_.clear();
        break;
      }
      submissions.swap(submissions_);
      aborts.swap(aborts_);
      stops.swap(stops_);
    }
    for (Submission& s : submissions) {
      const std::shared_ptr<RequestStream> stream = s.stream.lock();
      if (!stream) continue;  // its caller left before the engine saw it
      const int n = s.params.n;
      if (Status status = engine_->add_request(s.id, std::move(s.prompt), s.params); !status.ok()) {
        // submit() ran every check that could refuse it; this is a bug, not a bad request.
        spdlog::error("request {} was accepted but the engine refused it: {}", s.id,
                      status.error().message);
        for (int k = 0; k < n; ++k)
          stream->push({s.id, k, -1, 0.0f, {}, true, FinishReason::kAbort});
        continue;
      }
      streams_.emplace(s.id, s.stream);
    }
    for (RequestId id : aborts) deliver(engine_->abort(id));
    for (const auto& [id, index] : stops) deliver(engine_->stop_sequence(id, index));
    // A stream nobody holds any more belongs to a client that went away.
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (it->second.expired()) {
        engine_->abort(it->first);
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
    std::optional<Result<std::vector<SequenceUpdate>>> stepped;
    if (engine_->has_work()) {
      const auto step_start = std::chrono::steady_clock::now();
      if (num_steps + 1 == fail_step_) {
        stepped = Result<std::vector<SequenceUpdate>>(
            make_error("step {} failed on purpose (MOON_DEBUG_FAIL_STEP)", fail_step_));
      } else {
        stepped = engine_->step();
      }
      for (RequestId id : engine_->started_requests()) {
        auto it = streams_.find(id);
        if (it == streams_.end()) continue;
        if (auto stream = it->second.lock()) stream->mark_scheduled(step_start);
      }
      if (stepped->ok()) {
        for (const SequenceUpdate& u : **stepped) tokens_generated += u.token >= 0;
      }
      ++num_steps;
      const int64_t tokens = engine_->last_step_tokens();
      size_t b = 0;
      while (b < kStepTokenBounds.size() && tokens > kStepTokenBounds[b]) ++b;
      ++step_token_buckets[b];
      step_tokens_sum += tokens;
    }
    Snapshot snap{engine_->kv_stats(),
                  engine_->num_running(),
                  engine_->num_waiting(),
                  engine_->num_preemptions(),
                  num_steps,
                  engine_->last_step_sample_ms(),
                  step_token_buckets,
                  step_tokens_sum,
                  tokens_generated};
    {
      std::lock_guard lock(mu_);
      snapshot_ = snap;
    }
    // Delivered after the snapshot, so that a client holding its last token already finds
    // the step that made it in the metrics.
    if (stepped) {
      if (stepped->ok()) {
        deliver(**stepped);
      } else {
        if (engine_->broken()) {
          fail_for_good(stepped->error().message);
        } else {
          // A failed forward is a bug, not a user error: stop everything rather than spin.
          spdlog::error("engine step failed: {}; aborting every request", stepped->error().message);
          abort_all();
        }
      }
    }
  }
  abort_all();
}

}  // namespace moon
