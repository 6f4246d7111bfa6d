// Limits that keep clients from exhausting the server before it knows who they are: the API key
// and the announced body size are judged from the request header, before any of the body is
// read, and open connections are capped in total and per client address.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr char kModel[] = "models/stories260K-f32.gguf";

std::vector<std::string> serve_args(const std::string& model,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--model",           model,  "--threads", "1",
                                   "--kv-cache-memory", "16MiB"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct Reply {
  std::string raw;
  bool closed = false;  // the server closed (or reset) the connection
};

// Reads every socket until the server closes it or `timeout` has passed, all at once, so that
// one slow answer does not hide how the others behaved.
std::vector<Reply> read_replies(const std::vector<int>& fds, std::chrono::milliseconds timeout) {
  std::vector<Reply> replies(fds.size());
  std::vector<pollfd> polled;
  for (int fd : fds) polled.push_back({fd, POLLIN, 0});
  const auto deadline = Clock::now() + timeout;
  size_t open = fds.size();
  char buf[16384];
  while (open > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(polled.data(), polled.size(), static_cast<int>(left)) <= 0) break;
    for (size_t i = 0; i < polled.size(); ++i) {
      if (polled[i].fd < 0 || !(polled[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::recv(polled[i].fd, buf, sizeof buf, 0);
      if (n > 0) {
        replies[i].raw.append(buf, static_cast<size_t>(n));
        continue;
      }
      replies[i].closed = true;
      polled[i].fd = -1;  // poll skips negative descriptors
      --open;
    }
  }
  return replies;
}

// Sends up to `bytes` filler bytes, giving up once the server stops taking them for a while.
void push_filler(int fd, size_t bytes) {
  timeval tv{0, 200 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string chunk(1 << 20, ' ');
  while (bytes > 0) {
    const ssize_t n = ::send(fd, chunk.data(), std::min(bytes, chunk.size()), MSG_NOSIGNAL);
    if (n <= 0) return;  // refused (reset) or stalled
    bytes -= static_cast<size_t>(n);
  }
}

void expect_error_body(const HttpResult& r, const std::string& type, const std::string& context) {
  json body;
  ASSERT_NO_THROW(body = json::parse(r.body)) << context << ": " << r.body;
  ASSERT_TRUE(body.contains("error")) << context << ": " << r.body;
  EXPECT_EQ(body["error"]["type"], type) << context;
  EXPECT_TRUE(body["error"]["message"].is_string()) << context;
}

// Before the key was checked at the header stage, each of these connections made the server
// buffer its whole 15 MiB body first (40 of them: +600 MiB) and none got an answer until it
// had sent everything.
TEST(HeaderGate, UnauthorizedBodiesAreRefusedBeforeTheyAreRead) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server(serve_args(model, {"--api-key", "s3cret"}));
  ASSERT_TRUE(server.ready()) << server.log();
  const int64_t rss_before = server.resident_bytes();
  ASSERT_GT(rss_before, 0);

  constexpr int kClients = 40;
  constexpr size_t kAnnounced = 15u << 20;  // under the default 16 MiB body limit
  constexpr size_t kSentFirst = 4096;
  const std::string start =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(kAnnounced) + "\r\n\r\n" + std::string(kSentFirst, ' ');
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = connect_loopback(server.port());
    ASSERT_GE(fd, 0) << "client " << i;
    ASSERT_TRUE(send_all(fd, start)) << "client " << i;
    fds.push_back(fd);
  }
  const auto t0 = Clock::now();
  const std::vector<Reply> replies = read_replies(fds, std::chrono::seconds(5));
  const auto answer_time = Clock::now() - t0;
  int answered = 0;
  for (int i = 0; i < kClients; ++i) {
    const HttpResult r = parse_response(replies[i].raw);
    const std::string context = "client " + std::to_string(i);
    if (r.status != 401) {
      if (answered == i) ADD_FAILURE() << context << " got no 401: '" << replies[i].raw << "'";
      continue;
    }
    ++answered;
    EXPECT_EQ(r.headers.count("www-authenticate") ? r.headers.at("www-authenticate") : "", "Bearer")
        << context;
    EXPECT_EQ(r.headers.count("connection") ? r.headers.at("connection") : "", "close") << context;
    EXPECT_TRUE(replies[i].closed) << context << ": the connection stayed open";
    expect_error_body(r, "authentication_error", context);
  }
  EXPECT_EQ(answered, kClients) << "clients answered 401 within 5 s";
  EXPECT_LT(answer_time, std::chrono::seconds(2));

  // The rest of the bodies (all but one byte, so no request ever completes): a server that
  // reads them before judging the key holds them all in memory.
  for (int fd : fds) push_filler(fd, kAnnounced - kSentFirst - 1);
  const int64_t rss_after = server.resident_bytes();
  EXPECT_LT(rss_after - rss_before, int64_t{64} << 20)
      << "resident memory grew from " << rss_before << " to " << rss_after << " bytes";

  const auto t1 = Clock::now();
  const HttpResult ok =
      http_request(server.port(), "POST", "/v1/completions", R"({"prompt":"Once","max_tokens":4})",
                   {"Authorization: Bearer s3cret"});
  const auto ok_time = Clock::now() - t1;
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_LT(ok_time, std::chrono::milliseconds(500));
  for (int fd : fds) ::close(fd);
}

// The body limit is judged from Content-Length before the body is sent, whoever asks.
TEST(HeaderGate, OversizedContentLengthGets413BeforeTheBody) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  const std::string over_limit = std::to_string((16u << 20) + 1);  // the default is 16 MiB
  auto expect_413 = [&](int port, const std::string& extra_header, const std::string& context) {
    const int fd = connect_loopback(port);
    ASSERT_GE(fd, 0) << context;
    ASSERT_TRUE(send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + extra_header +
                                 "Content-Type: application/json\r\nContent-Length: " + over_limit +
                                 "\r\n\r\n"));
    const Reply reply = read_replies({fd}, std::chrono::seconds(5))[0];
    ::close(fd);
    const HttpResult r = parse_response(reply.raw);
    EXPECT_EQ(r.status, 413) << context << ": " << reply.raw;
    EXPECT_TRUE(reply.closed) << context << ": the connection stayed open";
    if (r.status == 413) expect_error_body(r, "invalid_request_error", context);
  };
  {
    ServerProcess server(serve_args(model, {}));
    ASSERT_TRUE(server.ready()) << server.log();
    expect_413(server.port(), "", "server without a key");
  }
  ServerProcess server(serve_args(model, {"--api-key", "s3cret"}));
  ASSERT_TRUE(server.ready()) << server.log();
  expect_413(server.port(), "Authorization: Bearer s3cret\r\n", "with the key");
  expect_413(server.port(), "", "without the key");
}

// Opens a keep-alive connection and has one request answered on it; -1 unless that was a 200.
int open_served_connection(int port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return -1;
  if (!send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  char buf[4096];
  while (raw.find("\r\n\r\n") == std::string::npos) {  // /health has an empty body
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  if (parse_response(raw).status != 200) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class ConnectionLimit : public ::testing::TestWithParam<std::string> {};

TEST_P(ConnectionLimit, ConnectionOverTheLimitGets503AndClosedOnesAreCountedOut) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  const std::string flag = GetParam();
  constexpr int kLimit = 4;
  ServerProcess server(serve_args(model, {flag, std::to_string(kLimit)}));
  ASSERT_TRUE(server.ready()) << server.log();
  const int port = server.port();

  // Waits (bounded) until `count` connections are being served: closed ones leave the count
  // when the server notices the hangup, which takes a moment.
  auto fill = [&](int count) {
    std::vector<int> fds;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (static_cast<int>(fds.size()) < count && Clock::now() < deadline) {
      const int fd = open_served_connection(port);
      if (fd >= 0) {
        fds.push_back(fd);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return fds;
  };
  auto expect_refused = [&](const std::string& context) {
    const int fd = connect_loopback(port);
    ASSERT_GE(fd, 0) << context;
    send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");  // it may be refused before this
    const Reply reply = read_replies({fd}, std::chrono::seconds(5))[0];
    ::close(fd);
    const HttpResult r = parse_response(reply.raw);
    ASSERT_EQ(r.status, 503) << context << ": " << reply.raw;
    EXPECT_EQ(r.headers.count("retry-after") ? r.headers.at("retry-after") : "", "1") << context;
    EXPECT_EQ(r.headers.count("connection") ? r.headers.at("connection") : "", "close") << context;
    EXPECT_TRUE(reply.closed) << context << ": the connection stayed open";
    expect_error_body(r, "server_error", context);
    EXPECT_NE(r.body.find("(" + flag + ")"), std::string::npos)
        << context << ": names no limit: " << r.body;
  };

  std::vector<int> first = fill(kLimit);
  ASSERT_EQ(static_cast<int>(first.size()), kLimit);
  expect_refused("connection " + std::to_string(kLimit + 1));
  for (int fd : first) ::close(fd);

  // Every slot comes back (none leaked), and the limit still holds afterwards.
  std::vector<int> second = fill(kLimit);
  EXPECT_EQ(static_cast<int>(second.size()), kLimit) << "closed connections were not counted out";
  if (static_cast<int>(second.size()) == kLimit) expect_refused("after reopening");
  for (int fd : second) ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Flags, ConnectionLimit,
                         ::testing::Values("--max-connections", "--max-connections-per-ip"),
                         [](const auto& info) {
                           return info.param == "--max-connections" ? std::string("Total")
                                                                    : std::string("PerIp");
                         });

}  // namespace
}  // namespace moon::test
