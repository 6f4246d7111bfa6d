// The periodic stats line vLLM logs, every --log-stats-interval seconds while there is work:
// prompt and generation throughput since the last line, running and waiting sequences, and
// KV cache use. Runs on the I/O thread, on a timer of its own.
#pragma once

#include <chrono>
#include <cstdint>

#include "server/asio.h"
#include "server/server_context.h"

namespace moon::server {

class StatsLogger {
 public:
  StatsLogger(boost::asio::io_context& ioc, ServerContext& ctx, double interval_s);
  void start();
  void stop();

 private:
  void tick();

  ServerContext& ctx_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_;
  int64_t last_prompt_tokens_ = 0;
  int64_t last_generated_ = 0;
};

}  // namespace moon::server
