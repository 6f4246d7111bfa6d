// The runner against a small scripted streaming server on loopback: records, token counts,
// chunk timing, the concurrency limit and failures.
#include "loadgen/bench_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "loadgen/arrival_schedule.h"
#include "loadgen/loadgen_test_util.h"

namespace moon::loadgen {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Streams `max_tokens` completion chunks 2 ms apart, then a usage chunk (unless the prompt is
// "no usage") and [DONE]; answers 500 to the prompt "fail". One thread per connection.
class ScriptedServer {
 public:
  ScriptedServer() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);  // unblocks accept()
    accept_thread_.join();
    std::lock_guard lock(mu_);
    for (std::thread& t : connections_) t.join();
  }
  int port() const { return port_; }
  int max_in_flight() const { return max_in_flight_; }

 private:
  void accept_loop() {
    while (true) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) return;
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, s = std::move(socket)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket socket) {
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    boost::system::error_code ec;
    std::string request;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t length = 0;
    while (header_end == std::string::npos || request.size() < header_end + 4 + length) {
      const size_t n = socket.read_some(asio::buffer(buf), ec);
      if (ec) break;
      request.append(buf, n);
      if (header_end == std::string::npos) {
        header_end = request.find("\r\n\r\n");
        const size_t at = request.find("Content-Length: ");
        if (header_end != std::string::npos && at != std::string::npos) {
          length = std::stoul(request.substr(at + 16));
        }
      }
    }
    const auto body = nlohmann::json::parse(request.substr(header_end + 4));
    const int64_t tokens = body["max_tokens"].get<int64_t>();
    const bool usage = body["prompt"] != "no usage";
    // The count drops before the last bytes go out: once the client has them it may open its
    // next stream at once, before this thread gets to run again.
    if (body["prompt"] == "fail") {
      --in_flight_;
      asio::write(socket,
                  asio::buffer(std::string("HTTP/1.1 500 Internal Server Error\r\nContent-Length: "
                                           "4\r\nConnection: close\r\n\r\noops")),
                  ec);
    } else {
      auto chunk = [&](const std::string& event) {
        std::string framed = fmt::format("{:x}\r\n{}\r\n", event.size(), event);
        asio::write(socket, asio::buffer(framed), ec);
      };
      asio::write(socket,
                  asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                           "Transfer-Encoding: chunked\r\n\r\n")),
                  ec);
      for (int64_t i = 0; i < tokens; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (i == tokens - 1) --in_flight_;
        chunk("data: {\"choices\":[{\"text\":\"t\"}]}\n\n");
      }
      if (tokens == 0) --in_flight_;
      if (usage) {
        chunk(
            fmt::format("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{},"
                        "\"completion_tokens\":{}}}}}\n\n",
                        body["prompt"].is_array() ? body["prompt"].size() : 1, tokens));
      }
      chunk("data: [DONE]\n\n");
      asio::write(socket, asio::buffer(std::string("0\r\n\r\n")), ec);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
};

std::string url_of(const ScriptedServer& server) {
  return fmt::format("http://127.0.0.1:{}", server.port());
}

TEST(BenchRunner, RecordsEveryStreamWithinTheConcurrencyLimit) {
  ScriptedServer server;
  BenchConfig c = random_config(16, 8, 6, 512);
  c.base_url = url_of(server);
  c.random_range_ratio = 0.5;
  c.max_concurrency = 3;
  auto prompts = make_random_dataset(c);
  ASSERT_TRUE(prompts.ok());
  int64_t progress_calls = 0;
  auto run = run_benchmark(c, "m", *prompts, [&](int64_t done, int64_t total) {
    EXPECT_EQ(done, ++progress_calls);
    EXPECT_EQ(total, 16);
  });
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(progress_calls, 16);
  ASSERT_EQ(run->records.size(), 16u);
  EXPECT_EQ(server.max_in_flight(), 3);
  for (size_t i = 0; i < run->records.size(); ++i) {
    const RequestRecord& r = run->records[i];
    ASSERT_TRUE(r.success) << r.error;
    EXPECT_EQ(r.output_tokens, (*prompts)[i].output_len);
    EXPECT_EQ(r.prompt_len, (*prompts)[i].prompt_len);
    EXPECT_EQ(static_cast<int64_t>(r.itl.size()), r.output_tokens - 1);
    EXPECT_EQ(r.generated_text, std::string(static_cast<size_t>(r.output_tokens), 't'));
    EXPECT_GT(r.ttft, 0.0);
    EXPECT_LE(r.ttft, r.latency);
    double sum = r.ttft;
    for (double gap : r.itl) sum += gap;
    EXPECT_LE(sum, r.latency + 1e-9);
    EXPECT_GE(r.latency, 0.002 * r.output_tokens);  // the server paces its chunks
    EXPECT_LE(r.start + r.latency, run->duration + 1e-9);
  }
  const BenchSummary s = summarize(run->records, run->duration, {99});
  EXPECT_EQ(s.completed, 16);
  EXPECT_EQ(s.failed, 0);
}

TEST(BenchRunner, CountsChunksWithoutUsageAndKeepsFailures) {
  ScriptedServer server;
  BenchConfig c;
  c.base_url = url_of(server);
  std::vector<BenchPrompt> prompts(3);
  prompts[0].text = "no usage";
  prompts[0].output_len = 4;
  prompts[1].text = "fail";
  prompts[1].output_len = 4;
  prompts[2].token_ids = {5, 6};
  prompts[2].prompt_len = 2;
  prompts[2].output_len = 1;
  auto run = run_benchmark(c, "m", prompts);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->records[0].success) << run->records[0].error;
  EXPECT_EQ(run->records[0].output_tokens, 4);  // counted from the chunks
  EXPECT_FALSE(run->records[1].success);
  EXPECT_EQ(run->records[1].error, "HTTP 500: oops");
  ASSERT_TRUE(run->records[2].success);
  EXPECT_EQ(run->records[2].output_tokens, 1);
  EXPECT_TRUE(run->records[2].itl.empty());
  const BenchSummary s = summarize(run->records, run->duration, {99});
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.first_error, "HTTP 500: oops");
}

TEST(BenchRunner, RequestRateSpreadsTheSends) {
  ScriptedServer server;
  BenchConfig c = random_config(10, 4, 1, 512);
  c.base_url = url_of(server);
  c.request_rate = 50.0;  // about 0.2 s for the ten
  c.seed = 1;
  auto prompts = make_random_dataset(c);
  auto run = run_benchmark(c, "m", *prompts);
  ASSERT_TRUE(run.ok());
  const std::vector<double> offsets = ArrivalSchedule(50.0, 1.0, 1).offsets(10);
  for (size_t i = 0; i < offsets.size(); ++i) {
    EXPECT_GE(run->records[i].start, offsets[i] - 1e-6) << "request " << i;
    EXPECT_LE(run->records[i].start, offsets[i] + 0.5) << "request " << i;
  }
}

TEST(BenchRunner, ConnectionRefusedIsARecordedFailure) {
  BenchConfig c;
  {
    ScriptedServer server;  // a port that was just free
    c.base_url = url_of(server);
  }
  std::vector<BenchPrompt> prompts(1);
  prompts[0].text = "x";
  prompts[0].output_len = 1;
  auto run = run_benchmark(c, "m", prompts);
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(run->records[0].success);
  EXPECT_NE(run->records[0].error.find("connect"), std::string::npos) << run->records[0].error;
}

}  // namespace
}  // namespace moon::loadgen
