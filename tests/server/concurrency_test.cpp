// Many simultaneous streaming clients on one I/O thread: all are served, and the server does
// not grow a thread per connection.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

constexpr int kClients = 1000;

TEST(ServerConcurrency, AThousandStreamingClientsWithFlatThreadCount) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  // Each client is a descriptor here too; raise the soft limit as far as the hard one allows.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t needed = kClients + 256;
  if (lim.rlim_cur < needed) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4 * needed);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < needed) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << lim.rlim_max << " is below " << needed
                 << ": cannot open " << kClients << " client sockets";
  }
  // All the clients share the loopback address.
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--max-num-seqs", "256", "--max-connections-per-ip", "0"});
  ASSERT_TRUE(server.ready()) << server.log();
  ASSERT_EQ(
      http_request(server.port(), "POST", "/v1/completions", R"({"prompt":"Once","max_tokens":4})")
          .status,
      200);
  const int threads_before = server.thread_count();
  ASSERT_GT(threads_before, 0);

  const std::string body =
      nlohmann::json{{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"stream", true}}.dump();
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<pollfd> fds;
  std::vector<std::string> raw(kClients);
  for (int i = 0; i < kClients; ++i) {
    const int fd = connect_loopback(server.port());
    ASSERT_GE(fd, 0) << "client " << i;
    ASSERT_TRUE(send_all(fd, request));
    fds.push_back({fd, POLLIN, 0});
  }
  int max_threads = threads_before;
  int open = kClients;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[16384];
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds.data(), fds.size(), 200) < 0) break;
    for (int i = 0; i < kClients; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
      if (n > 0) {
        raw[i].append(buf, n);
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
    max_threads = std::max(max_threads, server.thread_count());
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  EXPECT_EQ(open, 0) << "clients still waiting at the deadline";
  int complete = 0;
  for (int i = 0; i < kClients; ++i) {
    const HttpResult r = parse_response(raw[i]);
    const auto events = sse_payloads(r.body);
    if (r.status == 200 && !events.empty() && events.back() == "[DONE]") ++complete;
  }
  EXPECT_EQ(complete, kClients);
  EXPECT_EQ(max_threads, threads_before) << "the server grew threads under load";
  EXPECT_EQ(server.thread_count(), threads_before);
}

}  // namespace
}  // namespace moon::test
