// Requests that once took `moon serve` down or away from everyone else, sent to the real
// binary as an attacker would: numbers no double holds (SIGABRT), deep nesting (SIGSEGV),
// beam searches on a short KV cache (a livelocked engine), and one request asking for more
// sequences than a batch holds. Each must get a 4xx or its answer, and the server must stay
// up and answer a normal request at once afterwards.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr char kModel[] = "models/stories260K-f32.gguf";

std::string chat_template_file() {
  const std::string path = temp_dir() + "/hostile_chat_template.jinja";
  std::ofstream(path) << "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
  return path;
}

std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

class HostileRequests : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    MOON_REQUIRE_TEST_FILE(model, kModel);
    std::vector<std::string> args = {
        "--model", model, "--threads", "1", "--chat-template", chat_template_file()};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(args);
    ASSERT_TRUE(server_->ready()) << server_->log();
  }
  HttpResult post(const std::string& path, const std::string& body) {
    return http_request(server_->port(), "POST", path, body);
  }
  // The server is up and a normal request is answered in well under a second.
  void expect_still_serving(const std::string& after) {
    EXPECT_EQ(http_request(server_->port(), "GET", "/health").status, 200) << after;
    const auto t0 = Clock::now();
    const HttpResult r = post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":8})");
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(r.status, 200) << after << "\n" << r.body << server_->log();
    EXPECT_LT(seconds, 1.0) << after;
  }
  void expect_400(const HttpResult& r, const std::string& param, const std::string& what) {
    ASSERT_EQ(r.status, 400) << what << "\n" << r.body << "\n" << server_->log();
    const json e = json::parse(r.body).at("error");
    EXPECT_EQ(e.at("type"), "invalid_request_error") << what;
    if (!param.empty()) EXPECT_EQ(e.at("param"), param) << what << ": " << r.body;
  }
  // The refusal of a request to `path`: the OpenAI routes' 400 naming the field, or on TGI's
  // routes TGI's 422 whose message names it.
  void expect_refused(const std::string& path, const HttpResult& r, const std::string& param,
                      const std::string& what) {
    if (path.rfind("/generate", 0) != 0) return expect_400(r, param, what);
    ASSERT_EQ(r.status, 422) << what << "\n" << r.body << "\n" << server_->log();
    const json e = json::parse(r.body);
    EXPECT_EQ(e.at("error_type"), "validation") << what;
    EXPECT_NE(e.at("error").get<std::string>().find(param), std::string::npos) << r.body;
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(HostileRequests, NumbersNoDoubleHoldsAreA400NamingTheFieldOnEveryEndpoint) {
  start();
  const std::string digits400(400, '9');
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"/v1/completions", R"({"prompt":"x","max_tokens":1e400})", "max_tokens"},
      {"/v1/completions", R"({"prompt":"x","max_tokens":1e309})", "max_tokens"},
      {"/v1/completions", R"({"prompt":"x","n":)" + digits400 + "}", "n"},
      {"/v1/completions", R"({"prompt":"x","ignored_field":-1e400})", "ignored_field"},
      {"/v1/completions", R"({"prompt":"x","logit_bias":{"5":1e400}})", "logit_bias.5"},
      {"/v1/completions", R"({"prompt":[1,2,1e400]})", "prompt[2]"},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"hi"}],"temperature":1e999})", "temperature"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi","x":[1,2e999]}]})",
       "messages[0].x[1]"},
      {"/tokenize", R"({"prompt":"x","n":1e999 oops)", "n"},
      {"/detokenize", R"({"tokens":[1e400]})", "tokens[0]"},
      {"/generate", R"({"inputs":"x","parameters":{"max_new_tokens":1e400}})",
       "parameters.max_new_tokens"},
      {"/generate_stream", R"({"inputs":"x","parameters":{"seed":)" + digits400 + "}}",
       "parameters.seed"},
  };
  for (const auto& [path, body, param] : cases) {
    expect_refused(path, post(path, body), param, path + " " + body.substr(0, 80));
    EXPECT_EQ(http_request(server_->port(), "GET", "/health").status, 200) << body;
  }
  expect_still_serving("after the overflowing numbers");
}

TEST_F(HostileRequests, DeepNestingIsA400BeforeAnyCopyAndModestNestingStillWorks) {
  start();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":)" + nested_arrays(20000) + "}]}"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],)"
                               R"("chat_template_kwargs":{"a":)" +
                                   nested_arrays(20000) + "}}"},
      {"/generate", R"({"inputs":"x","parameters":{"a":)" + nested_arrays(1000000) + "}}"},
      {"/v1/completions", nested_arrays(100000)},
      {"/tokenize", R"({"prompt":"x","a":)" + nested_arrays(65) + "}"},
  };
  for (const auto& [path, body] : cases) {
    const HttpResult r = post(path, body);
    expect_refused(path, r, "", path);
    EXPECT_NE(r.body.find("deeper than 64"), std::string::npos) << r.body;
  }
  expect_still_serving("after the deep nesting");

  // 64 levels in all (the body, the kwargs object, 62 arrays) are within the limit.
  const HttpResult ok =
      post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4,)"
                                   R"("chat_template_kwargs":{"a":)" +
                                       nested_arrays(62) + "}}");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(HostileRequests, BeamSearchesOnAShortCacheFinishAndANormalRequestIsServedBeside) {
  // Once: none of these finished, the engine spun on empty steps, and every other request
  // timed out until the beam clients went away.
  start({"--kv-cache-memory", "256KiB"});
  const json beam = {{"prompt", "Once upon a time"},
                     {"max_tokens", 48},
                     {"n", 3},
                     {"use_beam_search", true},
                     {"ignore_eos", true}};
  std::vector<std::future<HttpResult>> searches;
  for (int i = 0; i < 4; ++i) {
    searches.push_back(std::async(std::launch::async, [&] {
      return http_request(server_->port(), "POST", "/v1/completions", beam.dump(), {},
                          std::chrono::seconds(120));
    }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = Clock::now();
  const HttpResult normal = post("/v1/completions", R"({"prompt":"The dog","max_tokens":16})");
  const double normal_s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(normal.status, 200) << normal.body;
  // Alone it takes milliseconds; beside the searches it waits behind their single-token
  // rounds, never for the searches themselves.
  EXPECT_LT(normal_s, 5.0);
  for (auto& f : searches) {
    const HttpResult r = f.get();
    ASSERT_EQ(r.status, 200) << r.body << server_->log();
    const json body = json::parse(r.body);
    ASSERT_EQ(body["choices"].size(), 3u);
    for (const json& c : body["choices"]) EXPECT_EQ(c["finish_reason"], "length");
  }
  expect_still_serving("after the beam searches");
}

TEST_F(HostileRequests, ARequestForMoreSequencesThanABatchIsA400) {
  start({"--max-num-seqs", "64"});
  json prompts = json::array();
  for (int i = 0; i < 256; ++i) prompts.push_back("Once upon a time");
  // Once: 256 prompts x n = 256 ran 61,440 sequences at once and starved everyone.
  json body = {{"prompt", prompts}, {"n", 256}, {"max_tokens", 8}};
  expect_400(post("/v1/completions", body.dump()), "n", "256 x 256");
  body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"n", 65}, {"max_tokens", 8}};
  expect_400(post("/v1/chat/completions", body.dump()), "n", "chat n = 65");
  body = {{"prompt", "x"}, {"n", 11}, {"use_beam_search", true}, {"max_tokens", 8}};
  expect_400(post("/v1/completions", body.dump()), "n", "11 beams");
  expect_still_serving("after the oversized requests");

  // A whole batch's worth from one request still works, and a small request beside it is
  // answered: its forks queue for slots like everyone else's sequences.
  prompts = json::array();
  for (int i = 0; i < 8; ++i) prompts.push_back("Once upon a time");
  body = {{"prompt", prompts}, {"n", 8}, {"max_tokens", 32}, {"temperature", 1.0}};
  auto wide = std::async(std::launch::async, [&] {
    return http_request(server_->port(), "POST", "/v1/completions", body.dump());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const HttpResult small = post("/v1/completions", R"({"prompt":"The dog","max_tokens":16})");
  EXPECT_EQ(small.status, 200) << small.body;
  const HttpResult w = wide.get();
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(json::parse(w.body)["choices"].size(), 64u);
}

}  // namespace
}  // namespace moon::test

namespace moon::test {
namespace {

// A 4 MB prompt takes the tokenizer seconds. It is tokenized off the I/O thread, so /health
// (and every stream) is answered meanwhile: the health answer must come back first.
TEST(ServerResponsiveness, HealthAnswersWhileAHugePromptIsTokenized) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  std::string prompt;
  while (prompt.size() < (4u << 20)) prompt += "Once upon a time, there was a little girl. ";
  const std::string body = nlohmann::json{{"prompt", prompt}}.dump();
  const int fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "POST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                       "application/json\r\n"
                       "Content-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
  // The body is read in milliseconds; tokenizing it takes over a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const HttpResult health = http_request(server.port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the tokenize answer was already there: the test says little";
  std::string raw;
  read_to_end(fd, raw);
  ::close(fd);
  const HttpResult r = parse_response(raw);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_GT(nlohmann::json::parse(r.body)["count"].get<int64_t>(), 300000);
}

// A whole answer of 13 MB (n = 64, 400 tokens, 20 logprobs) takes most of a second to render
// as JSON. It is rendered on the worker thread, so a /health sent once the request has
// finished generating (its log line) is answered before the first byte of the answer. Before,
// the I/O thread rendered it and /health waited behind it.
TEST(ServerResponsiveness, HealthAnswersWhileAHugeAnswerIsRendered) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string body =
      nlohmann::json{{"prompt", "Once"},   {"max_tokens", 400},  {"n", 64},
                     {"temperature", 1.0}, {"ignore_eos", true}, {"logprobs", 20}}
          .dump();
  const int fd = connect_loopback(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (server.log().find(" finished: ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_NE(server.log().find(" finished: "), std::string::npos) << server.log();
  const HttpResult health = http_request(server.port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the answer came before /health did";
  std::string raw;
  read_to_end(fd, raw);
  ::close(fd);
  const HttpResult r = parse_response(raw);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_GT(r.body.size(), 10u << 20) << "a smaller answer renders too fast to say much";
  EXPECT_EQ(nlohmann::json::parse(r.body)["choices"].size(), 64u);
}

// A failed engine step (injected with MOON_DEBUG_FAIL_STEP) ends the requests it held with an
// error, and the server serves on: a whole answer is a 500, a stream that has begun gets an
// error event and ends. Before, the requests' streams were closed without a word to the
// server, and their clients waited for ever.
TEST(ServerEngineFailure, AFailedStepAnswersItsRequestsWithAnErrorAndServesOn) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  const std::string body = R"({"prompt":"Once upon a time","max_tokens":40,"ignore_eos":true})";
  {
    ::setenv("MOON_DEBUG_FAIL_STEP", "1", 1);
    ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
    ::unsetenv("MOON_DEBUG_FAIL_STEP");
    ASSERT_TRUE(server.ready()) << server.log();
    const HttpResult failed =
        http_request(server.port(), "POST", "/v1/completions", body, {}, std::chrono::seconds(30));
    EXPECT_EQ(failed.status, 500) << failed.body;
    const auto error = nlohmann::json::parse(failed.body, nullptr, false);
    ASSERT_TRUE(error.contains("error")) << failed.body;
    EXPECT_EQ(error["error"]["code"], "engine_failed");
    const HttpResult next = http_request(server.port(), "POST", "/v1/completions", body);
    EXPECT_EQ(next.status, 200) << next.body;
    EXPECT_EQ(nlohmann::json::parse(next.body)["usage"]["completion_tokens"], 40);
    EXPECT_NE(server.log().find("step 1 failed on purpose"), std::string::npos) << server.log();
  }
  {
    ::setenv("MOON_DEBUG_FAIL_STEP", "5", 1);
    ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
    ::unsetenv("MOON_DEBUG_FAIL_STEP");
    ASSERT_TRUE(server.ready()) << server.log();
    std::string stream_body = body;
    stream_body.insert(stream_body.size() - 1, R"(,"stream":true)");
    const HttpResult stream = http_request(server.port(), "POST", "/v1/completions", stream_body,
                                           {}, std::chrono::seconds(30));
    ASSERT_EQ(stream.status, 200) << stream.body;
    const auto events = sse_payloads(stream.body);
    ASSERT_GE(events.size(), 2u) << stream.body;
    const auto last = nlohmann::json::parse(events.back(), nullptr, false);
    ASSERT_TRUE(last.is_object() && last.contains("error")) << stream.body;
    EXPECT_EQ(last["error"]["code"], "engine_failed");
    EXPECT_NE(
        nlohmann::json::parse(events.front()).value("choices", nlohmann::json::array()).size(), 0u)
        << "the tokens before the failed step came first";
    EXPECT_EQ(http_request(server.port(), "POST", "/v1/completions", body).status, 200);
  }
}

}  // namespace
}  // namespace moon::test
