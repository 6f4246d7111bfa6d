#include "loadgen/bench_runner.h"

#include <sys/resource.h>

#include <chrono>
#include <deque>

#include "loadgen/arrival_schedule.h"

namespace moon::loadgen {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

nlohmann::json completion_request(const std::string& model, const BenchPrompt& prompt,
                                  bool ignore_eos) {
  nlohmann::json body = {{"model", model},
                         {"max_tokens", prompt.output_len},
                         {"temperature", 0.0},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}},
                         {"ignore_eos", ignore_eos}};
  if (prompt.token_ids.empty()) {
    body["prompt"] = prompt.text;
  } else {
    body["prompt"] = prompt.token_ids;
  }
  return body;
}

RequestRecord make_record(const BenchPrompt& prompt, StreamResult result, double start) {
  RequestRecord r;
  r.success = result.success;
  r.error = std::move(result.error);
  r.start = start;
  r.latency = result.latency;
  r.prompt_len = result.prompt_tokens.value_or(prompt.prompt_len);
  r.output_tokens =
      result.completion_tokens.value_or(static_cast<int64_t>(result.chunk_times.size()));
  if (!result.chunk_times.empty()) {
    r.ttft = result.chunk_times.front();
    for (size_t i = 1; i < result.chunk_times.size(); ++i) {
      r.itl.push_back(result.chunk_times[i] - result.chunk_times[i - 1]);
    }
  }
  r.generated_text = std::move(result.text);
  return r;
}

namespace {

// Each request holds a socket: lift the soft descriptor limit to the hard one.
void allow_many_sockets() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

class Runner {
 public:
  Runner(const BenchConfig& config, const std::string& model,
         const std::vector<BenchPrompt>& prompts, const ServerUrl& url, Endpoints endpoints,
         const ProgressFn& progress)
      : config_(config),
        model_(model),
        prompts_(prompts),
        url_(url),
        endpoints_(std::move(endpoints)),
        progress_(progress),
        offsets_(ArrivalSchedule(config.request_rate, config.burstiness, config.seed)
                     .offsets(static_cast<int64_t>(prompts.size()))),
        records_(prompts.size()),
        timer_(io_) {}

  BenchRun run() {
    start_ = Clock::now();
    schedule_arrivals();
    io_.run();
    return {std::move(records_), elapsed()};
  }

 private:
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // Queues every request whose time has come, sends what the concurrency limit allows, and
  // waits for the next arrival.
  void schedule_arrivals() {
    const double now = elapsed();
    while (next_ < offsets_.size() && offsets_[next_] <= now) ready_.push_back(next_++);
    send_ready();
    if (next_ == offsets_.size()) return;
    timer_.expires_at(start_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(offsets_[next_])));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) schedule_arrivals();
    });
  }

  void send_ready() {
    while (!ready_.empty() &&
           (config_.max_concurrency <= 0 || in_flight_ < config_.max_concurrency)) {
      const size_t i = ready_.front();
      ready_.pop_front();
      ++in_flight_;
      const double sent_at = elapsed();
      start_stream_request(io_, endpoints_, url_, config_.endpoint,
                           completion_request(model_, prompts_[i], config_.ignore_eos).dump(),
                           config_.api_key, [this, i, sent_at](StreamResult result) {
                             records_[i] = make_record(prompts_[i], std::move(result), sent_at);
                             --in_flight_;
                             ++completed_;
                             if (progress_) {
                               progress_(completed_, static_cast<int64_t>(prompts_.size()));
                             }
                             send_ready();
                           });
    }
  }

  const BenchConfig& config_;
  const std::string& model_;
  const std::vector<BenchPrompt>& prompts_;
  ServerUrl url_;
  asio::io_context io_;
  Endpoints endpoints_;
  const ProgressFn& progress_;
  std::vector<double> offsets_;
  std::vector<RequestRecord> records_;
  asio::steady_timer timer_;
  Clock::time_point start_;
  size_t next_ = 0;
  std::deque<size_t> ready_;
  int64_t in_flight_ = 0;
  int64_t completed_ = 0;
};

}  // namespace

Result<BenchRun> run_benchmark(const BenchConfig& config, const std::string& model,
                               const std::vector<BenchPrompt>& prompts,
                               const ProgressFn& progress) {
  if (config.burstiness <= 0.0) return make_error("--burstiness must be positive");
  MOON_ASSIGN_OR_RETURN(ServerUrl url, parse_base_url(config.base_url));
  allow_many_sockets();
  asio::io_context resolver_io;
  MOON_ASSIGN_OR_RETURN(Endpoints endpoints, resolve(resolver_io, url));
  Runner runner(config, model, prompts, url, std::move(endpoints), progress);
  return runner.run();
}

}  // namespace moon::loadgen
