// What every request handler shares: the configuration, the tokenizer, the engine client,
// the metrics, a way for the engine thread to wake the I/O thread, and a worker for heavy
// work. Everything except `events` is used on the I/O thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "chat/chat_template.h"
#include "engine/engine_client.h"
#include "server/asio.h"
#include "server/cors.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace moon::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;            // "" = no authentication
  std::string served_model_name;  // what /v1/models lists and requests may name
  int64_t max_model_len = 0;
  int64_t max_waiting = 0;  // 0 = unbounded queue
  // The engine's batch size; one request may ask for at most this many sequences
  // (prompts x n), so that it can never need more than a whole batch.
  int64_t max_num_seqs = 256;
  // Open connections, in all and from one client address; 0 = no limit. They bound what
  // clients can hold (descriptors, buffers) before any request of theirs is answered.
  int64_t max_connections = 1024;
  int64_t max_connections_per_ip = 256;
  size_t max_body_bytes = 16u << 20;
  // Answer bytes that may wait for a client that does not read (--max-queued-output).
  size_t max_queued_output_bytes = 16u << 20;
  double shutdown_timeout_s = 30.0;  // how long SIGTERM waits for running requests
  // How long a client may take to send a request, sit idle, or take a finished answer.
  double idle_timeout_s = 60.0;
  double log_stats_interval_s = 10.0;  // the periodic stats line; 0: none
  CorsPolicy cors;                     // --allowed-origins
  // For /v1/chat/completions; without one the endpoint answers 400, as vLLM does.
  std::optional<ChatTemplate> chat_template;
};

// Hands callbacks from the engine thread to the I/O thread. Closed before the io_context
// goes away, so a late notification is dropped instead of touching a dead event loop.
class EventPoster {
 public:
  explicit EventPoster(boost::asio::io_context& ioc) : ioc_(&ioc) {}
  void post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    if (ioc_) boost::asio::post(*ioc_, std::move(fn));
  }
  void close() {
    std::lock_guard lock(mu_);
    ioc_ = nullptr;
  }

 private:
  std::mutex mu_;
  boost::asio::io_context* ioc_;
};

struct ServerContext {
  ServerConfig config;
  const Tokenizer& tokenizer;
  EngineClient& engine;
  Metrics metrics;
  std::shared_ptr<EventPoster> events;
  // Runs heavy work (parsing, tokenizing, rendering a whole answer) on the worker thread, so
  // that one large request does not stall /health and every stream; what it produces comes
  // back to the I/O thread through `events`. Set by the Router, which owns the worker.
  std::function<void(std::function<void()>)> offload;
  int64_t created = 0;           // unix time the server started (/v1/models)
  int64_t active_requests = 0;   // generation requests not answered yet
  int64_t inflight_prompts = 0;  // engine requests being submitted or not finished
  uint64_t next_id = 1;
  bool draining = false;  // SIGTERM seen: new generation requests get 503
};

}  // namespace moon::server
