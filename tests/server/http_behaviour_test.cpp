// HTTP/1.1 details of the server: keep-alive and pipelining, Expect: 100-continue, malformed
// requests.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

// Reads until `count` occurrences of `marker` arrived or the peer closed (10 s at most).
std::string read_until(int fd, const std::string& marker, int count) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  char buf[8192];
  auto occurrences = [&] {
    int n = 0;
    for (size_t pos = 0; (pos = raw.find(marker, pos)) != std::string::npos; pos += marker.size())
      ++n;
    return n;
  };
  while (occurrences() < count) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, n);
  }
  return raw;
}

class HttpBehaviour : public ::testing::Test {
 protected:
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
    ASSERT_TRUE(server_->ready()) << server_->log();
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(HttpBehaviour, PipelinedKeepAliveRequestsAnswerInOrder) {
  const int fd = connect_loopback(server_->port());
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt":"Once upon a time","max_tokens":3,"temperature":0})";
  const std::string completion =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  ASSERT_TRUE(send_all(fd, completion + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + completion));
  const std::string raw = read_until(fd, "HTTP/1.1 200", 3);
  ::close(fd);
  const size_t first = raw.find("text_completion");
  const size_t health = raw.find("Content-Type: text/plain");
  const size_t last = raw.rfind("text_completion");
  ASSERT_NE(first, std::string::npos) << raw;
  ASSERT_NE(health, std::string::npos) << raw;
  EXPECT_LT(first, health);
  EXPECT_LT(health, last);
}

TEST_F(HttpBehaviour, ExpectContinueIsHonoured) {
  const int fd = connect_loopback(server_->port());
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt":"Once","max_tokens":2})";
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Connection: close\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n"));
  const std::string interim = read_until(fd, "\r\n\r\n", 1);
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << interim;
  ASSERT_TRUE(send_all(fd, body));
  const std::string raw = read_until(fd, "\r\n\r\n", 1 << 30);  // to EOF
  ::close(fd);
  EXPECT_EQ(parse_response(raw).status, 200) << raw;
}

TEST_F(HttpBehaviour, MalformedRequestGets400AndClose) {
  const int fd = connect_loopback(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "THIS IS NOT HTTP\r\n\r\n"));
  const std::string raw = read_until(fd, "\r\n\r\n", 1 << 30);  // to EOF
  ::close(fd);
  const HttpResult r = parse_response(raw);
  EXPECT_EQ(r.status, 400) << raw;
  EXPECT_TRUE(nlohmann::json::parse(r.body).contains("error"));
}

// Header limits (32 KiB, 100 fields) are 431s with a JSON error, before any body is read;
// a header just inside both is served.
TEST_F(HttpBehaviour, OversizedHeadersGet431AndClose) {
  auto send = [&](const std::string& headers) {
    const int fd = connect_loopback(server_->port());
    EXPECT_GE(fd, 0);
    const std::string body = R"({"prompt":"Once","max_tokens":2})";
    EXPECT_TRUE(send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + headers +
                                 "Connection: close\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body));
    const std::string raw = read_until(fd, "\r\n\r\n", 1 << 30);  // to EOF
    ::close(fd);
    return parse_response(raw);
  };
  std::string many, fewer;
  for (int i = 0; i < 101; ++i) many += "X-F" + std::to_string(i) + ": v\r\n";
  for (int i = 0; i < 90; ++i) fewer += "X-F" + std::to_string(i) + ": v\r\n";
  const HttpResult too_many = send(many);
  EXPECT_EQ(too_many.status, 431);
  EXPECT_NE(too_many.body.find("more than 100 header fields"), std::string::npos) << too_many.body;
  const HttpResult too_long = send("X-Big: " + std::string(33 << 10, 'a') + "\r\n");
  EXPECT_EQ(too_long.status, 431);
  EXPECT_NE(too_long.body.find("over 32768 bytes"), std::string::npos) << too_long.body;
  EXPECT_EQ(send(fewer).status, 200);
  EXPECT_EQ(send("X-Big: " + std::string(30 << 10, 'a') + "\r\n").status, 200);
}

}  // namespace
}  // namespace moon::test
