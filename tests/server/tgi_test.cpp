// The TGI endpoints (/generate, /generate_stream) of the real server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "test_client.h"

namespace moon::test {
namespace {

using json = nlohmann::json;

TEST(ServerTgi, GenerateAndGenerateStream) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  const HttpResult r =
      http_request(server.port(), "POST", "/generate",
                   json{{"inputs", "Once upon a time"},
                        {"parameters", {{"max_new_tokens", 10}, {"details", true}}}}
                       .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  EXPECT_EQ(out["generated_text"], ", there was a little girl named Lily");
  EXPECT_EQ(out["details"]["finish_reason"], "length");
  EXPECT_EQ(out["details"]["generated_tokens"], 10);
  EXPECT_EQ(out["details"]["tokens"][0]["id"], 432);

  const HttpResult s =
      http_request(server.port(), "POST", "/generate_stream",
                   json{{"inputs", "Once upon a time"},
                        {"parameters", {{"max_new_tokens", 20}, {"stop", {" girl"}}}}}
                       .dump());
  ASSERT_EQ(s.status, 200) << s.body;
  const auto events = sse_payloads(s.body);
  ASSERT_FALSE(events.empty());
  std::string text;
  for (const auto& e : events) text += json::parse(e)["token"]["text"].get<std::string>();
  const json last = json::parse(events.back());
  EXPECT_EQ(last["generated_text"], ", there was a little");
  EXPECT_EQ(text, ", there was a little");
  EXPECT_EQ(last["details"]["finish_reason"], "stop_sequence");

  const HttpResult bad = http_request(server.port(), "POST", "/generate",
                                      R"({"inputs": "x", "parameters": {"temperature": 0}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(json::parse(bad.body).contains("error"));
}

}  // namespace
}  // namespace moon::test
