// Clients that are slow on purpose: one that never takes its answer, and one that trickles its
// request a byte at a time. Each must lose its connection at --idle-timeout, so that it cannot
// hold a connection slot (and, for the first, its whole answer) for ever. Found by
// scripts/fault_tests.py.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kModel[] = "models/stories260K-f32.gguf";

class NeverReadingClient : public ::testing::TestWithParam<std::string> {};

// With --max-connections 1 the client's connection is the only one: /health gets 503 while
// the server holds it, and 200 once the server has let it go.
TEST_P(NeverReadingClient, IsClosedAtTheIdleTimeoutOnceItsAnswerIsWritten) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--max-connections", "1", "--idle-timeout", "1"});
  ASSERT_TRUE(server.ready()) << server.log();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int window = 4096;  // far less than the answer, which then waits in the server
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof window);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // About 8 MB of answer in one piece, more than the kernel buffers hold (not a stream,
  // which --max-queued-output already bounds).
  const std::string body =
      nlohmann::json{{"prompt", "Once"},   {"max_tokens", 400},  {"n", 64},
                     {"temperature", 1.0}, {"ignore_eos", true}, {"logprobs", 5}}
          .dump();
  ASSERT_TRUE(send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: " + GetParam() +
                               "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                               body));

  int refused = 0;
  int health = 0;
  // Generating the answer takes seconds, many more in a sanitized build.
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    health = http_request(server.port(), "GET", "/health", "", {}, std::chrono::seconds(2)).status;
    if (health == 200) break;
    if (health == 503) ++refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  EXPECT_GT(refused, 0) << "the client's connection was never seen holding the only slot";
  EXPECT_EQ(health, 200) << "the never-reading client still holds its connection after 120 s\n"
                         << server.log();
}

INSTANTIATE_TEST_SUITE_P(Connection, NeverReadingClient, ::testing::Values("close", "keep-alive"),
                         [](const auto& info) {
                           return info.param == "close" ? std::string("Close")
                                                        : std::string("KeepAlive");
                         });

TEST(SlowClients, ARequestTrickledAByteAtATimeIsClosedAtTheIdleTimeout) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server(
      {"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB", "--idle-timeout", "1"});
  ASSERT_TRUE(server.ready()) << server.log();
  const int fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(400, 'a');
  const auto t0 = Clock::now();
  double closed_after = -1;
  for (char c : request) {
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed_after = std::chrono::duration<double>(Clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fd);
  // A closed socket fails the send after next; the byte before it may still be taken.
  ASSERT_GT(closed_after, 0) << "the server took 8 s of trickle without closing";
  EXPECT_GT(closed_after, 0.9);
  EXPECT_LT(closed_after, 3.0);
  EXPECT_EQ(http_request(server.port(), "GET", "/health").status, 200);
}

}  // namespace
}  // namespace moon::test
