// The TGI endpoints (/generate, /generate_stream) of the real server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_client.h"
#include "common/test_data.h"

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

  // Each streamed event carries its own token's text, however many tokens one flush holds:
  // the same texts /generate reports per token in its details.
  const json params = {{"max_new_tokens", 40}, {"details", true}};
  const HttpResult whole =
      http_request(server.port(), "POST", "/generate",
                   json{{"inputs", "Once upon a time"}, {"parameters", params}}.dump());
  const HttpResult streamed =
      http_request(server.port(), "POST", "/generate_stream",
                   json{{"inputs", "Once upon a time"}, {"parameters", params}}.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const json tokens = json::parse(whole.body)["details"]["tokens"];
  const auto token_events = sse_payloads(streamed.body);
  ASSERT_EQ(token_events.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const json event = json::parse(token_events[i]);
    EXPECT_EQ(event["token"]["id"], tokens[i]["id"]) << i;
    EXPECT_EQ(event["token"]["text"], tokens[i]["text"]) << i;
  }

  // top_n_tokens: the best alternatives at each step, the greedy choice first.
  const HttpResult top = http_request(
      server.port(), "POST", "/generate",
      json{{"inputs", "Once upon a time"},
           {"parameters", {{"max_new_tokens", 6}, {"details", true}, {"top_n_tokens", 3}}}}
          .dump());
  ASSERT_EQ(top.status, 200) << top.body;
  const json details = json::parse(top.body)["details"];
  ASSERT_EQ(details["top_tokens"].size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const json& alts = details["top_tokens"][i];
    ASSERT_EQ(alts.size(), 3u) << i;
    EXPECT_EQ(alts[0]["id"], details["tokens"][i]["id"]) << i;
    EXPECT_EQ(alts[0]["logprob"], details["tokens"][i]["logprob"]) << i;
    EXPECT_GE(alts[1]["logprob"].get<double>(), alts[2]["logprob"].get<double>()) << i;
  }
  const HttpResult top_stream =
      http_request(server.port(), "POST", "/generate_stream",
                   json{{"inputs", "Once upon a time"},
                        {"parameters", {{"max_new_tokens", 4}, {"top_n_tokens", 2}}}}
                       .dump());
  ASSERT_EQ(top_stream.status, 200) << top_stream.body;
  for (const auto& e : sse_payloads(top_stream.body)) {
    const json event = json::parse(e);
    ASSERT_EQ(event["top_tokens"].size(), 2u) << e;
    EXPECT_EQ(event["top_tokens"][0]["id"], event["token"]["id"]) << e;
  }

  // decoder_input_details: the prompt's tokens with their logprobs (none for the first).
  const HttpResult prefill = http_request(
      server.port(), "POST", "/generate",
      json{{"inputs", "Once upon a time"},
           {"parameters",
            {{"max_new_tokens", 2}, {"details", true}, {"decoder_input_details", true}}}}
          .dump());
  ASSERT_EQ(prefill.status, 200) << prefill.body;
  const json pre = json::parse(prefill.body)["details"]["prefill"];
  ASSERT_EQ(pre.size(), 5u);  // BOS and four tokens
  EXPECT_EQ(pre[0]["id"], 1);
  EXPECT_TRUE(pre[0]["logprob"].is_null());
  EXPECT_EQ(pre[1]["id"], 403);
  for (size_t i = 1; i < 5; ++i) EXPECT_LE(pre[i]["logprob"].get<double>(), 0.0) << i;

  const HttpResult bad = http_request(server.port(), "POST", "/generate",
                                      R"({"inputs": "x", "parameters": {"temperature": 0}})");
  EXPECT_EQ(bad.status, 422);  // TGI's validation error
  EXPECT_EQ(json::parse(bad.body)["error_type"], "validation");
}

}  // namespace
}  // namespace moon::test
