#include "server/stats_logger.h"

#include "util/logging.h"

namespace moon::server {

StatsLogger::StatsLogger(boost::asio::io_context& ioc, ServerContext& ctx, double interval_s)
    : ctx_(ctx),
      timer_(ioc),
      interval_(std::chrono::milliseconds(static_cast<int64_t>(interval_s * 1000))) {}

void StatsLogger::start() {
  if (interval_.count() <= 0) return;
  last_ = std::chrono::steady_clock::now();
  const auto snap = ctx_.engine.snapshot();
  last_prompt_tokens_ = ctx_.metrics.prompt_tokens();
  last_generated_ = snap.tokens_generated;
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void StatsLogger::stop() {
  timer_.cancel();
}

void StatsLogger::tick() {
  const auto now = std::chrono::steady_clock::now();
  const double dt = std::chrono::duration<double>(now - last_).count();
  const auto snap = ctx_.engine.snapshot();
  const int64_t prompt = ctx_.metrics.prompt_tokens() - last_prompt_tokens_;
  const int64_t generated = snap.tokens_generated - last_generated_;
  // Quiet when idle, as vLLM is: a line only when something happened or is going on.
  if (prompt > 0 || generated > 0 || snap.num_running > 0 || snap.num_waiting > 0) {
    spdlog::info(
        "Avg prompt throughput: {:.1f} tokens/s, Avg generation throughput: {:.1f} tokens/s, "
        "Running: {} reqs, Waiting: {} reqs, KV cache usage: {:.1f}%, Prefix cache hit rate: "
        "{:.1f}%",
        dt > 0 ? prompt / dt : 0.0, dt > 0 ? generated / dt : 0.0, snap.num_running,
        snap.num_waiting, 100.0 * snap.kv.usage, 100.0 * snap.kv.prefix_hit_rate);
  }
  last_ = now;
  last_prompt_tokens_ += prompt;
  last_generated_ += generated;
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

}  // namespace moon::server
