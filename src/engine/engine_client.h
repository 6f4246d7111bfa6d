// The thread-safe face of the engine. The engine runs on its own thread; callers on any
// thread submit requests and abort them through a queue, and read each request's updates
// from its own channel, so the engine loop never waits on a caller (or, later, a socket).
//
//   EngineClient client(std::move(engine));
//   auto stream = client.submit(prompt_ids, params);   // Result<shared_ptr<RequestStream>>
//   while (auto u = (*stream)->pop()) { ... if (u->finished) ... }
//
// Dropping the last reference to a stream that has not finished aborts its request (a
// client that went away frees its KV blocks within one engine step).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace moon {

class EngineClient;

// Updates of one request, in the order the engine produced them. Thread-safe.
class RequestStream {
 public:
  RequestId id() const { return id_; }
  int num_sequences() const { return num_sequences_; }

  // Blocks until an update arrives; nullopt once every sequence has finished and all
  // updates were read, or when the engine shut down.
  std::optional<SequenceUpdate> pop();
  // Non-blocking: nullopt when nothing is waiting.
  std::optional<SequenceUpdate> try_pop();
  bool finished() const;
  // The engine ended the request without finishing it: it shut down, or a step failed.
  bool closed() const;
  // When the engine first scheduled the request (it left the waiting queue); unset before.
  std::optional<std::chrono::steady_clock::time_point> scheduled_at() const;
  // Ends sequence `index` as stopped (a front end found a stop string in its text); its KV
  // blocks are freed within one engine step. Any thread.
  void stop_sequence(int index);
  // Called on the engine thread after updates are pushed; must be quick and never block
  // (e.g. post to an event loop). Set it before the first update can arrive.
  void set_notify(std::function<void()> notify);

  ~RequestStream();

 private:
  friend class EngineClient;
  RequestStream(EngineClient* client, RequestId id, int num_sequences)
      : client_(client), id_(id), num_sequences_(num_sequences) {}
  void push(const SequenceUpdate& update);
  void mark_scheduled(std::chrono::steady_clock::time_point t);
  void close();  // engine shut down or a step failed; wakes the reader

  EngineClient* client_;
  RequestId id_;
  int num_sequences_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SequenceUpdate> updates_;
  int num_finished_ = 0;
  bool closed_ = false;
  std::optional<std::chrono::steady_clock::time_point> scheduled_at_;
  std::function<void()> notify_;
};

class EngineClient {
 public:
  // MOON_DEBUG_FAIL_STEP=N in the environment makes the engine's N-th step (counting from 1)
  // fail instead of running, to test what a failed step does to its requests.
  explicit EngineClient(std::unique_ptr<Engine> engine);
  // Stops the loop: unfinished requests are aborted and their streams closed.
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  // Queues a request and returns at once (never waits for the engine thread): any thread,
  // the server's I/O thread included. Bad requests (prompt too long for the cache or the
  // model, bad ids, out-of-range parameters) are refused here with the engine's message.
  Result<std::shared_ptr<RequestStream>> submit(std::vector<TokenId> prompt,
                                                const SamplingParams& params);
  // Aborts a request from any thread; its stream gets an abort update for each unfinished
  // sequence. Unknown or finished ids are ignored.
  void abort(RequestId id);
  // Finishes one sequence of a request with reason stop (see Engine::stop_sequence).
  void stop_sequence(RequestId id, int index);

  // Called once, on the engine thread, when the engine fails for good (a tensor-parallel
  // rank died or hangs): every request has been closed and new ones are refused, so the
  // owner should stop serving. It runs under the client's lock: it must only post
  // elsewhere, never call back into the client. Clear it (nullptr) before its target goes.
  void set_on_failure(std::function<void(const std::string& why)> on_failure);

  // A snapshot of engine state taken at the end of the last step (for metrics).
  struct Snapshot {
    KvStats kv;
    int64_t num_running = 0;
    int64_t num_waiting = 0;
    int64_t num_preemptions = 0;
    int64_t num_steps = 0;
    double last_step_sample_ms = 0.0;
    // Tokens computed per step, over every step so far (vLLM's iteration_tokens_total):
    // counts per bucket of kStepTokenBounds (the last one above them all) and the sum.
    std::array<int64_t, 15> step_token_buckets{};
    int64_t step_tokens_sum = 0;
    int64_t tokens_generated = 0;  // sampled tokens, every sequence, since the start
  };
  static constexpr std::array<int64_t, 14> kStepTokenBounds = {
      1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
  Snapshot snapshot() const;

 private:
  struct Submission {
    RequestId id;
    std::vector<TokenId> prompt;
    SamplingParams params;
    std::weak_ptr<RequestStream> stream;
  };
  void loop();
  void deliver(const std::vector<SequenceUpdate>& updates);
  void abort_all();
  // The engine cannot step any more: close every request, refuse new ones, tell the owner.
  void fail_for_good(const std::string& why);

  std::unique_ptr<Engine> engine_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Submission> submissions_;
  std::vector<RequestId> aborts_;
  std::vector<std::pair<RequestId, int>> stops_;
  bool stop_ = false;
  std::optional<std::string> failure_;  // why the engine failed for good
  std::function<void(const std::string&)> on_failure_;
  RequestId next_id_ = 1;
  // Owned by the engine thread; weak so that dropping a stream is noticed.
  std::unordered_map<RequestId, std::weak_ptr<RequestStream>> streams_;
  Snapshot snapshot_;
  int64_t fail_step_ = 0;  // MOON_DEBUG_FAIL_STEP; 0: none
  std::thread thread_;
};

}  // namespace moon
