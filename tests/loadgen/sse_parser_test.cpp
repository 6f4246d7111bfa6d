// Server-sent events split anywhere, and the completion chunks they carry.
#include <gtest/gtest.h>

#include "loadgen/http_stream_client.h"

namespace moon::loadgen {
namespace {

std::vector<std::string> parse_pieces(const std::vector<std::string>& pieces) {
  SseParser parser;
  std::vector<std::string> events;
  for (const std::string& p : pieces) {
    parser.feed(p, [&](const std::string& data) { events.push_back(data); });
  }
  return events;
}

const std::string kStream =
    "data: {\"choices\":[{\"text\":\"Once\"}]}\n\n"
    ": a comment line\n"
    "data: {\"choices\":[{\"text\":\" upon\"}]}\r\n\r\n"
    "event: message\n"
    "data:{\"a\":\n"
    "data: 1}\n\n"
    "id: 7\n\n"  // no data: no event
    "data: [DONE]\n\n"
    "data: never ended";
const std::vector<std::string> kEvents = {"{\"choices\":[{\"text\":\"Once\"}]}",
                                          "{\"choices\":[{\"text\":\" upon\"}]}", "{\"a\":\n1}",
                                          "[DONE]"};

TEST(SseParser, WholeStream) {
  EXPECT_EQ(parse_pieces({kStream}), kEvents);
}

TEST(SseParser, SplitAtEveryByteBoundary) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    EXPECT_EQ(parse_pieces({kStream.substr(0, cut), kStream.substr(cut)}), kEvents)
        << "split at byte " << cut;
  }
  for (size_t a = 0; a <= kStream.size(); a += 3) {
    for (size_t b = a; b <= kStream.size(); b += 5) {
      EXPECT_EQ(parse_pieces({kStream.substr(0, a), kStream.substr(a, b - a), kStream.substr(b)}),
                kEvents)
          << "split at bytes " << a << " and " << b;
    }
  }
}

TEST(SseParser, OneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kStream) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_pieces(bytes), kEvents);
}

TEST(CompletionChunk, TextTimesAndUsage) {
  StreamResult r;
  EXPECT_TRUE(apply_completion_chunk(R"({"choices":[{"index":0,"text":"Once"}]})", 0.5, r));
  EXPECT_TRUE(apply_completion_chunk(
      R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})", 0.7, r));
  EXPECT_TRUE(apply_completion_chunk(
      R"({"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}})", 0.8,
      r));
  EXPECT_TRUE(apply_completion_chunk("[DONE]", 0.9, r));
  EXPECT_EQ(r.chunk_times, (std::vector<double>{0.5, 0.7}));  // the usage chunk is no token
  EXPECT_EQ(r.text, "Once");
  EXPECT_EQ(r.completion_tokens, 2);
  EXPECT_EQ(r.prompt_tokens, 4);
  EXPECT_TRUE(r.error.empty());
}

TEST(CompletionChunk, ChatDeltas) {
  StreamResult r;
  EXPECT_TRUE(apply_completion_chunk(R"({"choices":[{"delta":{"content":"Hi"}}]})", 0.1, r));
  EXPECT_EQ(r.text, "Hi");
  EXPECT_EQ(r.chunk_times.size(), 1u);
  EXPECT_FALSE(r.completion_tokens.has_value());
}

TEST(CompletionChunk, Errors) {
  StreamResult bad_json;
  EXPECT_FALSE(apply_completion_chunk("{not json", 0.1, bad_json));
  EXPECT_NE(bad_json.error.find("not JSON"), std::string::npos);
  StreamResult reported;
  EXPECT_FALSE(apply_completion_chunk(R"({"error":{"message":"boom"}})", 0.1, reported));
  EXPECT_NE(reported.error.find("boom"), std::string::npos);
}

TEST(BaseUrl, Parses) {
  auto a = parse_base_url("http://127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "8080");
  EXPECT_EQ(a->path_prefix, "");
  auto b = parse_base_url("http://example.com/api/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "example.com");
  EXPECT_EQ(b->port, "80");
  EXPECT_EQ(b->path_prefix, "/api");
  auto c = parse_base_url("http://[::1]:9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, "9000");
  EXPECT_FALSE(parse_base_url("https://x").ok());
  EXPECT_FALSE(parse_base_url("http://host:port").ok());
  EXPECT_FALSE(parse_base_url("http://:80").ok());
}

}  // namespace
}  // namespace moon::loadgen
