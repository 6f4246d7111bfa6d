// End-to-end tests of `moon serve`: the real binary on a loopback port, driven with raw HTTP.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::json;
constexpr char kModel[] = "models/stories260K-f32.gguf";

// A minimal chat template, enough to exercise /v1/chat/completions on a base model.
std::string chat_template_file() {
  const std::string path = temp_dir() + "/chat_template.jinja";
  std::ofstream(path) << "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
  return path;
}

// Looks up one sample of the Prometheus text, e.g. "vllm:num_requests_running".
double metric(const std::string& text, const std::string& name) {
  const std::regex re("(^|\n)" +
                      std::regex_replace(name, std::regex(R"([\[\]{}()*+?.\\^$|])"), R"(\$&)") +
                      R"((\{[^}]*\})? ([-0-9.e+]+))");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return -1.0;
  return std::stod(m[3]);
}

// Starts a sampled stream of `n` sequences of `max_tokens` that ignore EOS, and returns the
// socket once its first event arrived (the request is running), or -1.
int start_long_stream(int port, const std::string& prompt, int n, int max_tokens,
                      std::string& raw) {
  return start_stream(port, "/v1/completions",
                      json{{"prompt", prompt},
                           {"max_tokens", max_tokens},
                           {"n", n},
                           {"temperature", 1.0},
                           {"ignore_eos", true},
                           {"stream", true}}
                          .dump(),
                      std::chrono::seconds(20), raw);
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = test_data_file(kModel);
    if (model.empty()) return;
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                                 "--chat-template", chat_template_file()});
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model, kModel);
    ASSERT_TRUE(server_ && server_->ready()) << (server_ ? server_->log() : "");
  }
  HttpResult post(const std::string& path, const json& body,
                  const std::vector<std::string>& headers = {}) {
    return http_request(server_->port(), "POST", path, body.dump(), headers);
  }
  std::string metrics() { return http_request(server_->port(), "GET", "/metrics").body; }

  static std::unique_ptr<ServerProcess> server_;
};
std::unique_ptr<ServerProcess> ServerTest::server_;

void expect_error_shape(const HttpResult& r, int status, const std::string& context) {
  EXPECT_EQ(r.status, status) << context << "\n" << r.body;
  json body;
  ASSERT_NO_THROW(body = json::parse(r.body)) << context << ": " << r.body;
  ASSERT_TRUE(body.contains("error")) << context;
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << context;
  EXPECT_TRUE(e["type"].is_string()) << context;
  EXPECT_TRUE(e.contains("param")) << context;
  EXPECT_TRUE(e.contains("code")) << context;
}

TEST_F(ServerTest, GoldenPromptsThroughCompletions) {
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  int cases = 0;
  for (const json& golden : read_jsonl(golden_path)) {
    const HttpResult r = post("/v1/completions", {{"prompt", golden["prompt"]},
                                                  {"max_tokens", golden["n_predict"]},
                                                  {"temperature", 0},
                                                  {"return_token_ids", true}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json out = json::parse(r.body);
    EXPECT_EQ(out["object"], "text_completion");
    EXPECT_TRUE(out["id"].is_string());
    EXPECT_TRUE(out["created"].is_number_integer());
    EXPECT_EQ(out["model"], "stories260K-f32.gguf");
    ASSERT_EQ(out["choices"].size(), 1u);
    const json& choice = out["choices"][0];
    EXPECT_EQ(choice["index"], 0);
    EXPECT_EQ(choice["text"], golden["output_text"]) << golden["prompt"];
    EXPECT_EQ(choice["token_ids"], golden["output_token_ids"]) << golden["prompt"];
    EXPECT_EQ(choice["prompt_token_ids"], golden["prompt_token_ids"]) << golden["prompt"];
    EXPECT_TRUE(choice["logprobs"].is_null());
    EXPECT_EQ(choice["finish_reason"], golden["stop_type"] == "limit" ? "length" : "stop");
    const size_t n_prompt = golden["prompt_token_ids"].size();
    const size_t n_out = golden["output_token_ids"].size();
    EXPECT_EQ(out["usage"]["prompt_tokens"], n_prompt);
    EXPECT_EQ(out["usage"]["completion_tokens"], n_out);
    EXPECT_EQ(out["usage"]["total_tokens"], n_prompt + n_out);
    ++cases;
  }
  EXPECT_EQ(cases, 9);
}

TEST_F(ServerTest, StreamingMatchesGoldenAndEndsWithUsageAndDone) {
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  std::ifstream in(golden_path);
  std::string line;
  std::getline(in, line);
  const json golden = json::parse(line);
  const HttpResult r = post("/v1/completions", {{"prompt", golden["prompt"]},
                                                {"max_tokens", 48},
                                                {"temperature", 0},
                                                {"stream", true},
                                                {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "text/event-stream");
  const auto events = sse_payloads(r.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    text += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null())
      finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, golden["output_text"]);
  EXPECT_EQ(finish, "length");
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 48);
}

TEST_F(ServerTest, TokenIdPromptsListsStopAndLogprobs) {
  const HttpResult r =
      post("/v1/completions",
           {{"prompt", json::array({json::array({1, 403, 407, 261, 378}), "Lily and Tom"})},
            {"max_tokens", 48},
            {"temperature", 0},
            {"stop", " girl"},
            {"logprobs", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  ASSERT_EQ(out["choices"].size(), 2u);
  EXPECT_EQ(out["choices"][0]["text"], ", there was a little");
  EXPECT_EQ(out["choices"][0]["finish_reason"], "stop");
  const json& lp = out["choices"][0]["logprobs"];
  ASSERT_TRUE(lp.is_object());
  EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  EXPECT_GE(lp["tokens"].size(), 5u);
  for (const json& v : lp["token_logprobs"]) EXPECT_LE(v.get<double>(), 0.0);
  EXPECT_EQ(out["choices"][1]["index"], 1);
}

TEST_F(ServerTest, ParallelSamplingAndEcho) {
  const HttpResult r = post("/v1/completions", {{"prompt", "Once upon a time"},
                                                {"max_tokens", 12},
                                                {"temperature", 1.0},
                                                {"seed", 7},
                                                {"n", 3},
                                                {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  ASSERT_EQ(out["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out["choices"][i]["index"], i);
    EXPECT_EQ(out["choices"][i]["text"].get<std::string>().rfind("Once upon a time", 0), 0u);
  }
  EXPECT_EQ(out["usage"]["completion_tokens"], 36);
}

TEST_F(ServerTest, ChatCompletions) {
  const json messages = json::array({{{"role", "user"}, {"content", "Once upon a time"}}});
  const HttpResult r = post("/v1/chat/completions",
                            {{"messages", messages}, {"max_tokens", 48}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  EXPECT_EQ(out["object"], "chat.completion");
  EXPECT_EQ(out["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(out["choices"][0]["message"]["content"].get<std::string>().rfind(", there was", 0), 0u);
  const HttpResult s = post("/v1/chat/completions", {{"messages", messages},
                                                     {"max_completion_tokens", 10},
                                                     {"temperature", 0},
                                                     {"stream", true}});
  ASSERT_EQ(s.status, 200);
  const auto events = sse_payloads(s.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
}

TEST_F(ServerTest, SamplingFieldsAreApplied) {
  MOON_REQUIRE_TEST_FILE(golden_path, "models/golden-stories260K.jsonl");
  std::ifstream in(golden_path);
  std::string line;
  std::getline(in, line);
  const json golden = json::parse(line);
  const std::vector<int> want = golden["output_token_ids"];
  auto tokens = [&](json extra) {
    json body = {{"prompt", golden["prompt"]}, {"max_tokens", 10}, {"return_token_ids", true}};
    body.update(extra);
    const HttpResult r = post("/v1/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body)["choices"][0]["token_ids"] : json();
  };
  // top_k 1 is greedy whatever the temperature: llama.cpp's greedy tokens.
  EXPECT_EQ(tokens({{"temperature", 1.7}, {"top_k", 1}}),
            std::vector<int>(want.begin(), want.begin() + 10));
  // A +100 bias makes one token win every step.
  EXPECT_EQ(tokens({{"temperature", 0}, {"logit_bias", {{"300", 100}}}, {"ignore_eos", true}}),
            std::vector<int>(10, 300));
  // Penalties change the greedy text.
  const json greedy = std::vector<int>(want.begin(), want.begin() + 10);
  EXPECT_NE(tokens({{"temperature", 0}, {"repetition_penalty", 2.0}}), greedy);
  // (The first ten tokens repeat nothing; over 40, the frequency penalty must bite.)
  EXPECT_NE(tokens({{"temperature", 0}, {"frequency_penalty", 2.0}, {"max_tokens", 40}}),
            std::vector<int>(want.begin(), want.begin() + 40));
  // Seeded sampling with filters is reproducible; a different seed differs.
  const json filtered = {{"temperature", 1.0}, {"top_p", 0.9}, {"min_p", 0.05}, {"seed", 11}};
  EXPECT_EQ(tokens(filtered), tokens(filtered));
  json other = filtered;
  other["seed"] = 12;
  EXPECT_NE(tokens(filtered), tokens(other));
}

TEST_F(ServerTest, TopLogprobsInChatAndCompletions) {
  const json messages = json::array({{{"role", "user"}, {"content", "Once upon a time"}}});
  const HttpResult chat = post("/v1/chat/completions", {{"messages", messages},
                                                        {"max_tokens", 6},
                                                        {"temperature", 0},
                                                        {"logprobs", true},
                                                        {"top_logprobs", 3}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json content = json::parse(chat.body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u);
  for (const json& entry : content) {
    const json& top = entry["top_logprobs"];
    ASSERT_EQ(top.size(), 3u) << entry;
    EXPECT_EQ(top[0]["token"], entry["token"]) << entry;  // greedy: the chosen one is the best
    EXPECT_EQ(top[0]["logprob"], entry["logprob"]) << entry;
    EXPECT_GE(top[0]["logprob"].get<double>(), top[1]["logprob"].get<double>());
    EXPECT_GE(top[1]["logprob"].get<double>(), top[2]["logprob"].get<double>());
    EXPECT_TRUE(top[2]["bytes"].is_array());
  }
  const HttpResult done = post("/v1/completions", {{"prompt", "Once upon a time"},
                                                   {"max_tokens", 6},
                                                   {"temperature", 1.0},
                                                   {"seed", 5},
                                                   {"logprobs", 2}});
  ASSERT_EQ(done.status, 200) << done.body;
  const json lp = json::parse(done.body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["top_logprobs"].size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const json& top = lp["top_logprobs"][i];
    // The two most likely and, always, the chosen one (OpenAI's up to logprobs + 1).
    EXPECT_GE(top.size(), 2u);
    EXPECT_LE(top.size(), 3u);
    const std::string chosen = lp["tokens"][i];
    ASSERT_TRUE(top.contains(chosen)) << top;
    EXPECT_EQ(top[chosen], lp["token_logprobs"][i]);
  }
}

TEST_F(ServerTest, EchoWithLogprobsReportsThePromptTokens) {
  // Generate greedily with logprobs, then send the prompt plus what was generated back with
  // echo: the echoed tokens' logprobs (prefill rows) must equal the generated ones' (decode).
  const json ids = {1, 403, 407, 261, 378};  // "Once upon a time"
  const HttpResult gen = post("/v1/completions", {{"prompt", ids},
                                                  {"max_tokens", 6},
                                                  {"temperature", 0},
                                                  {"logprobs", 1},
                                                  {"return_token_ids", true}});
  ASSERT_EQ(gen.status, 200) << gen.body;
  const json first = json::parse(gen.body)["choices"][0];
  json all_ids = ids;
  for (const json& t : first["token_ids"]) all_ids.push_back(t);
  const HttpResult echo = post("/v1/completions", {{"prompt", all_ids},
                                                   {"max_tokens", 2},
                                                   {"temperature", 0},
                                                   {"echo", true},
                                                   {"logprobs", 2}});
  ASSERT_EQ(echo.status, 200) << echo.body;
  const json choice = json::parse(echo.body)["choices"][0];
  const json& lp = choice["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), all_ids.size() + 2);
  ASSERT_EQ(lp["token_logprobs"].size(), all_ids.size() + 2);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());  // nothing predicts the first token
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(lp["token_logprobs"][5 + i].get<double>(),
                first["logprobs"]["token_logprobs"][i].get<double>(), 1e-3)
        << "token " << i;
    const json& top = lp["top_logprobs"][5 + i];
    EXPECT_TRUE(top.contains(lp["tokens"][5 + i].get<std::string>())) << top;
    EXPECT_LE(top.size(), 3u);
  }
  // Offsets run on through prompt and completion: each token starts where the last ended.
  std::string joined;
  for (size_t i = 0; i < lp["tokens"].size(); ++i) {
    EXPECT_EQ(lp["text_offset"][i], joined.size()) << i;
    joined += lp["tokens"][i].get<std::string>();
  }

  // Streamed: the echoed prompt comes first, carrying the prompt's logprobs.
  const HttpResult s = post("/v1/completions", {{"prompt", "Once upon a time"},
                                                {"max_tokens", 3},
                                                {"temperature", 0},
                                                {"echo", true},
                                                {"logprobs", 0},
                                                {"stream", true}});
  ASSERT_EQ(s.status, 200) << s.body;
  const auto events = sse_payloads(s.body);
  ASSERT_GE(events.size(), 3u);
  const json head = json::parse(events[0])["choices"][0];
  EXPECT_EQ(head["text"], "Once upon a time");
  ASSERT_EQ(head["logprobs"]["token_logprobs"].size(), 5u);
  EXPECT_TRUE(head["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_LE(head["logprobs"]["token_logprobs"][4].get<double>(), 0.0);
}

TEST_F(ServerTest, ModelsHealthTokenizeDetokenize) {
  EXPECT_EQ(http_request(server_->port(), "GET", "/health").status, 200);
  const HttpResult models = http_request(server_->port(), "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json m = json::parse(models.body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "stories260K-f32.gguf");
  const HttpResult tok = post("/tokenize", {{"prompt", "Once upon a time"}});
  ASSERT_EQ(tok.status, 200);
  const json t = json::parse(tok.body);
  EXPECT_EQ(t["tokens"], json::array({1, 403, 407, 261, 378}));
  EXPECT_EQ(t["count"], 5);
  EXPECT_EQ(t["max_model_len"], 512);
  const HttpResult detok = post("/detokenize", {{"tokens", {403, 407, 261, 378}}});
  ASSERT_EQ(detok.status, 200);
  EXPECT_EQ(json::parse(detok.body)["prompt"], "Once upon a time");
}

TEST_F(ServerTest, BadRequestsGet4xxWithOpenAiErrorsAndNoSideEffects) {
  const std::string before = metrics();
  const double tokens_before = metric(before, "vllm:prompt_tokens_total");
  const json long_prompt(std::vector<int>(600, 300));
  struct Case {
    std::string path;
    std::string body;
    int status;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400},
      {"/v1/completions", "[1, 2]", 400},
      {"/v1/completions", R"({"max_tokens": 4})", 400},
      {"/v1/completions", R"({"prompt": 123})", 400},
      {"/v1/completions", R"({"prompt": []})", 400},
      {"/v1/completions", R"({"prompt": [1, "a"]})", 400},
      {"/v1/completions", R"({"prompt": "x", "model": "gpt-4"})", 404},
      {"/v1/completions", json{{"prompt", long_prompt}}.dump(), 400},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 0})", 400},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": -3})", 400},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": "10"})", 400},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 100000})", 400},
      {"/v1/completions", R"({"prompt": "x", "n": 0})", 400},
      {"/v1/completions", R"({"prompt": "x", "n": 100000})", 400},
      {"/v1/completions", R"({"prompt": "x", "n": 1.5})", 400},
      {"/v1/completions", R"({"prompt": "x", "temperature": -1})", 400},
      {"/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400},
      {"/v1/completions", R"({"prompt": "x", "temperature": NaN})", 400},
      {"/v1/completions", R"({"prompt": "x", "top_p": 1.5})", 400},
      {"/v1/completions", R"({"prompt": "x", "top_p": 0})", 400},
      {"/v1/completions", R"({"prompt": "x", "presence_penalty": 3})", 400},
      {"/v1/completions", R"({"prompt": "x", "logprobs": 99})", 400},
      {"/v1/completions", R"({"prompt": "x", "stop": 5})", 400},
      {"/v1/completions", R"({"prompt": "x", "stream": "yes"})", 400},
      {"/v1/completions", R"({"prompt": "x", "stream_options": {"include_usage": true}})", 400},
      {"/v1/completions", R"({"prompt": [1, 99999]})", 400},
      {"/v1/completions", R"({"prompt": [[1, -1]]})", 400},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"5": 1000}})", 400},
      {"/v1/completions", R"({"prompt": "x", "stop_token_ids": [100000]})", 400},
      {"/v1/chat/completions", R"({"messages": []})", 400},
      {"/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", 400},
      {"/tokenize", R"({"text": "x"})", 400},
      {"/detokenize", R"({"tokens": [99999]})", 400},
      {"/detokenize", R"({"tokens": "abc"})", 400},
  };
  for (const Case& c : cases) {
    expect_error_shape(http_request(server_->port(), "POST", c.path, c.body), c.status,
                       c.path + " " + c.body.substr(0, 80));
  }
  expect_error_shape(http_request(server_->port(), "GET", "/nowhere"), 404, "GET /nowhere");
  expect_error_shape(http_request(server_->port(), "GET", "/v1/completions"), 405,
                     "GET /v1/completions");
  // An oversized body is refused from its Content-Length, before it is read.
  {
    const int fd = connect_loopback(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd,
                         "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         "application/json\r\nContent-Length: 17825792\r\n\r\n{"));
    std::string raw;
    char buf[4096];
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, n);
    ::close(fd);
    expect_error_shape(parse_response(raw), 413, "17 MiB body");
  }
  const std::string after = metrics();
  EXPECT_EQ(metric(after, "vllm:prompt_tokens_total"), tokens_before);
  EXPECT_EQ(metric(after, "vllm:num_requests_running"), 0);
  EXPECT_EQ(metric(after, "vllm:num_requests_waiting"), 0);
}

TEST_F(ServerTest, MetricsUseVllmNames) {
  ASSERT_EQ(post("/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 4}}).status, 200);
  const std::string text = metrics();
  for (const char* name :
       {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc",
        "vllm:kv_cache_usage_perc", "vllm:prefix_cache_hits_total",
        "vllm:prefix_cache_queries_total", "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds_count",
        "vllm:time_per_output_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
        "vllm:request_queue_time_seconds_count", "moon:sampling_time_seconds_count"}) {
    EXPECT_GE(metric(text, name), 0.0) << name;
  }
  EXPECT_GT(metric(text, "vllm:generation_tokens_total"), 0.0);
}

TEST_F(ServerTest, MetricsCountRequestsTokenIntervalsAndPerRequestHistograms) {
  const std::string l = "{model_name=\"stories260K-f32.gguf\"}";
  const std::string length =
      "vllm:request_success_total{model_name=\"stories260K-f32.gguf\","
      "finished_reason=\"length\"}";
  auto value = [&](const std::string& text, const std::string& name) {
    const double v = metric(text, name);
    return v < 0 ? 0.0 : v;
  };
  const std::string before = metrics();
  const HttpResult r = post("/v1/completions", {{"prompt", "Once upon a time"},
                                                {"max_tokens", 5},
                                                {"n", 3},
                                                {"temperature", 1.0},
                                                {"ignore_eos", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json usage = json::parse(r.body)["usage"];
  const std::string after = metrics();
  auto delta = [&](const std::string& name) { return value(after, name) - value(before, name); };
  EXPECT_EQ(delta(length), 1) << "one request, whatever its n";
  EXPECT_EQ(delta("vllm:time_per_output_token_seconds_count" + l), 3 * 4)
      << "each interval between a sequence's tokens";
  EXPECT_EQ(delta("vllm:request_prompt_tokens_count" + l), 1);
  EXPECT_EQ(delta("vllm:request_prompt_tokens_sum" + l), usage["prompt_tokens"].get<double>());
  EXPECT_EQ(delta("vllm:request_generation_tokens_sum" + l), 15);
  EXPECT_EQ(delta("vllm:request_prefill_time_seconds_count" + l), 1);
  EXPECT_EQ(delta("vllm:request_decode_time_seconds_count" + l), 1);
  EXPECT_GT(delta("vllm:request_decode_time_seconds_sum" + l), 0);
  // Every step counted: the prompt's tokens and each decode step's three.
  EXPECT_GE(delta("vllm:iteration_tokens_total_count" + l), 5);
  EXPECT_EQ(delta("vllm:iteration_tokens_total_sum" + l),
            usage["prompt_tokens"].get<double>() + 3 * 4);
}

TEST_F(ServerTest, ClientDisconnectAbortsTheRequestAndFreesBlocks) {
  const double tokens_before = metric(metrics(), "vllm:generation_tokens_total");
  const double aborts_before = [&] {
    const double v = metric(metrics(),
                            "vllm:request_success_total{model_name=\"stories260K-f32.gguf\","
                            "finished_reason=\"abort\"}");
    return v < 0 ? 0.0 : v;
  }();
  // Wait for the first event: the request is running.
  std::string raw;
  const int fd = start_stream(server_->port(), "/v1/completions",
                              json{{"prompt", "Once upon a time"},
                                   {"max_tokens", 480},
                                   {"n", 16},
                                   {"temperature", 1.0},
                                   {"ignore_eos", true},
                                   {"stream", true}}
                                  .dump(),
                              std::chrono::seconds(10), raw);
  ASSERT_GE(fd, 0);
  // The engine's snapshot (behind /metrics) is taken just after it delivers a step.
  bool using_blocks = false;
  for (int i = 0; i < 100 && !using_blocks; ++i) {
    using_blocks = metric(metrics(), "moon:kv_cache_blocks_used") > 0;
    if (!using_blocks) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(using_blocks);
  ::close(fd);
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    const std::string m = metrics();
    freed =
        metric(m, "moon:kv_cache_blocks_used") == 0 && metric(m, "vllm:num_requests_running") == 0;
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(freed) << metrics();
  const std::string m = metrics();
  EXPECT_EQ(metric(m,
                   "vllm:request_success_total{model_name=\"stories260K-f32.gguf\",finished_reason="
                   "\"abort\"}"),
            aborts_before + 1);
  EXPECT_EQ(metric(m, "vllm:kv_cache_usage_perc"), 0.0);
  EXPECT_GT(metric(m, "vllm:generation_tokens_total"), tokens_before)
      << "the tokens made before the client left count";
}

TEST(ServerAuth, ApiKeyIsRequiredOnApiRoutes) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server(
      {"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB", "--api-key", "s3cret"});
  ASSERT_TRUE(server.ready()) << server.log();
  const int port = server.port();
  expect_error_shape(http_request(port, "GET", "/v1/models"), 401, "no key");
  expect_error_shape(http_request(port, "GET", "/v1/models", "", {"Authorization: Bearer nope"}),
                     401, "wrong key");
  expect_error_shape(http_request(port, "GET", "/v1/models", "", {"Authorization: Bearer s3cret2"}),
                     401, "longer key");
  expect_error_shape(http_request(port, "POST", "/v1/completions", R"({"prompt":"x"})"), 401,
                     "completions without key");
  EXPECT_EQ(http_request(port, "GET", "/v1/models", "", {"Authorization: Bearer s3cret"}).status,
            200);
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", R"({"prompt":"x","max_tokens":2})",
                         {"Authorization: Bearer s3cret"})
                .status,
            200);
  EXPECT_EQ(http_request(port, "GET", "/health").status, 200);
}

TEST(ServerOverload, FullWaitingQueueGets503WithRetryAfter) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB",
                        "--max-num-seqs", "1", "--max-waiting", "2"});
  ASSERT_TRUE(server.ready()) << server.log();
  constexpr int kClients = 24;
  std::vector<HttpResult> results(kClients);
  std::vector<std::thread> threads;
  const std::string body =
      json{{"prompt", "Once"}, {"max_tokens", 480}, {"ignore_eos", true}}.dump();
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = http_request(server.port(), "POST", "/v1/completions", body); });
  }
  for (auto& t : threads) t.join();
  int ok = 0, rejected = 0;
  for (const HttpResult& r : results) {
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++rejected;
      EXPECT_EQ(r.headers.count("retry-after"), 1u);
      expect_error_shape(r, 503, "overload");
    }
  }
  EXPECT_EQ(ok + rejected, kClients);
  EXPECT_GE(ok, 1);
  EXPECT_GE(rejected, 1);
}

TEST(ServerOverload, ABurstThatFitsTheBatchIsAllAdmitted) {
  // 64 simultaneous requests, a batch of 256 and room for 16 waiting: none has to wait, so
  // none may be refused.
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server(
      {"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB", "--max-waiting", "16"});
  ASSERT_TRUE(server.ready()) << server.log();
  constexpr int kClients = 64;
  std::vector<HttpResult> results(kClients);
  std::vector<std::thread> threads;
  const std::string body =
      json{{"prompt", "Once"}, {"max_tokens", 64}, {"ignore_eos", true}}.dump();
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = http_request(server.port(), "POST", "/v1/completions", body); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const HttpResult& r : results) ok += r.status == 200;
  EXPECT_EQ(ok, kClients);
}

TEST(ServerBackPressure, AClientThatNeverReadsIsCutOffAndItsBlocksFreed) {
  // A stream of about 50 MB (64 sequences, 400 tokens, 20 logprobs each) to a client that
  // reads nothing: past --max-queued-output the server must close it and abort the request,
  // not buffer the whole answer.
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--max-queued-output", "1MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string abort_metric =
      "vllm:request_success_total{model_name=\"stories260K-f32.gguf\",finished_reason=\"abort\"}";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int small = 4096;  // before connect, so the window stays small
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string body = json{{"prompt", "Once upon a time"},
                                {"max_tokens", 400},
                                {"n", 64},
                                {"temperature", 1.0},
                                {"ignore_eos", true},
                                {"logprobs", 20},
                                {"stream", true}}
                               .dump();
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
  bool cut_off = false;
  for (int i = 0; i < 400 && !cut_off; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string m = http_request(server.port(), "GET", "/metrics").body;
    cut_off = metric(m, abort_metric) == 1 && metric(m, "moon:kv_cache_blocks_used") == 0;
  }
  EXPECT_TRUE(cut_off) << http_request(server.port(), "GET", "/metrics").body;
  EXPECT_NE(server.log().find("does not read"), std::string::npos) << server.log();
  ::close(fd);
  EXPECT_EQ(http_request(server.port(), "GET", "/health").status, 200);
  // A whole answer over the limit, to a client that reads it, is not cut off.
  const HttpResult big = http_request(server.port(), "POST", "/v1/completions",
                                      json{{"prompt", "Once"},
                                           {"max_tokens", 300},
                                           {"n", 16},
                                           {"ignore_eos", true},
                                           {"logprobs", 10}}
                                          .dump());
  EXPECT_EQ(big.status, 200);
  EXPECT_GT(big.body.size(), size_t{1} << 20);
}

TEST(ServerShutdown, SigtermFinishesRunningRequestsThenExitsZero) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  std::string raw;
  const int fd = start_long_stream(server.port(), "Once", 8, 400, raw);
  ASSERT_GE(fd, 0);
  ::kill(server.pid(), SIGTERM);
  read_to_end(fd, raw);
  ::close(fd);
  const HttpResult r = parse_response(raw);
  EXPECT_EQ(r.status, 200);
  const auto events = sse_payloads(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  // The first SIGTERM is already draining the server; a second one could land after its
  // handler is gone and kill it, so only wait.
  EXPECT_EQ(server.stop(0, std::chrono::seconds(20)), std::optional<int>(0)) << server.log();
}

TEST(ServerShutdown, AbandonedRequestsMakeTheExitCodeNonZero) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "64MiB",
                        "--shutdown-timeout", "0"});
  ASSERT_TRUE(server.ready()) << server.log();
  // The pool's size is known before the first step.
  EXPECT_GT(
      metric(http_request(server.port(), "GET", "/metrics").body, "moon:kv_cache_blocks_total"), 0);
  std::string raw;
  const int fd = start_long_stream(server.port(), "Once", 16, 480, raw);
  ASSERT_GE(fd, 0);
  ::kill(server.pid(), SIGTERM);
  const std::optional<int> code = server.stop(0, std::chrono::seconds(20));
  ::close(fd);
  ASSERT_TRUE(code.has_value()) << server.log();
  EXPECT_EQ(*code, 1) << "a request was cut off\n" << server.log();
  EXPECT_NE(server.log().find("abandoning 1 request"), std::string::npos) << server.log();
}

TEST(ServerShutdown, IdleServerExitsZeroOnSigint) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB"});
  ASSERT_TRUE(server.ready()) << server.log();
  EXPECT_EQ(server.stop(SIGINT, std::chrono::seconds(10)), std::optional<int>(0)) << server.log();
}

}  // namespace
}  // namespace moon::test
