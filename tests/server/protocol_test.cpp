// In-process tests of the server's pure pieces: request parsing and validation, API keys,
// metrics text and SSE framing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_key.h"
#include "server/cors.h"
#include "server/metrics.h"
#include "server/openai_protocol.h"
#include "server/request_gate.h"
#include "server/sse.h"
#include "server/tgi_protocol.h"

namespace moon::server {
namespace {

using json = nlohmann::json;

TEST(ApiKey, ConstantTimeCompareAndBearerParsing) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_TRUE(authorized("", ""));
  EXPECT_TRUE(authorized("Bearer k1", "k1"));
  EXPECT_TRUE(authorized("bearer k1", "k1"));
  EXPECT_FALSE(authorized("Bearer k2", "k1"));
  EXPECT_FALSE(authorized("k1", "k1"));
  EXPECT_FALSE(authorized("", "k1"));
}

TEST(RequestGate, OnlyTheOpenRoutesGoWithoutTheKey) {
  auto check = [](const std::string& target, const std::string& authorization) {
    boost::beast::http::request_header<> header;
    header.target(target);
    if (!authorization.empty()) header.set(boost::beast::http::field::authorization, authorization);
    return check_request_header(header, "k1");
  };
  for (const char* open : {"/health", "/ping", "/metrics", "/version", "/health?probe=1"}) {
    EXPECT_FALSE(check(open, "")) << open;
  }
  for (const char* closed : {"/v1/models", "/v1/completions", "/tokenize", "/nope", "/healthz"}) {
    const auto refusal = check(closed, "");
    ASSERT_TRUE(refusal) << closed;
    EXPECT_EQ(refusal->status, 401);
    EXPECT_EQ(refusal->type, "authentication_error");
    EXPECT_TRUE(check(closed, "Bearer k2")) << closed;
    EXPECT_FALSE(check(closed, "Bearer k1")) << closed;
  }
  EXPECT_FALSE(check_request_header(boost::beast::http::request_header<>(), ""));
}

TEST(RequestGate, CorsPreflightsGoWithoutTheKey) {
  boost::beast::http::request_header<> header;
  header.method(boost::beast::http::verb::options);
  header.target("/v1/chat/completions");
  EXPECT_FALSE(check_request_header(header, "k1"));
  header.method(boost::beast::http::verb::post);
  EXPECT_TRUE(check_request_header(header, "k1"));
}

// The value of header `name` in `headers`, "" when absent.
std::string header_value(const HeaderList& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(Cors, AnyOriginByDefault) {
  const CorsPolicy any;
  EXPECT_EQ(header_value(any.headers("https://x.example"), "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(header_value(any.headers(""), "Access-Control-Allow-Origin"), "*");
  const auto star = CorsPolicy::parse("*");
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(header_value(star->headers("http://y"), "Access-Control-Allow-Origin"), "*");
}

TEST(Cors, AListEchoesOnlyItsOrigins) {
  const auto policy = CorsPolicy::parse(" http://a.example , https://B.example:8443/,,");
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_TRUE(policy->allows("http://a.example"));
  EXPECT_TRUE(policy->allows("https://b.example:8443"));
  EXPECT_FALSE(policy->allows("https://b.example"));
  EXPECT_FALSE(policy->allows("http://a.example.evil"));
  EXPECT_FALSE(policy->allows(""));
  const HeaderList allowed = policy->headers("https://b.example:8443");
  EXPECT_EQ(header_value(allowed, "Access-Control-Allow-Origin"), "https://b.example:8443");
  EXPECT_EQ(header_value(allowed, "Vary"), "Origin");
  const HeaderList refused = policy->headers("http://evil.example");
  EXPECT_EQ(header_value(refused, "Access-Control-Allow-Origin"), "");
  EXPECT_EQ(header_value(refused, "Vary"), "Origin");

  const HeaderList pre = policy->preflight_headers("http://a.example", "authorization, x-custom");
  EXPECT_NE(header_value(pre, "Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_EQ(header_value(pre, "Access-Control-Allow-Headers"), "authorization, x-custom");
  EXPECT_FALSE(header_value(pre, "Access-Control-Max-Age").empty());
  const std::string usual = header_value(policy->preflight_headers("http://a.example", ""),
                                         "Access-Control-Allow-Headers");
  EXPECT_NE(usual.find("Authorization"), std::string::npos);
  EXPECT_NE(usual.find("Content-Type"), std::string::npos);
  EXPECT_TRUE(policy->preflight_headers("http://evil.example", "authorization").empty());

  const auto none = CorsPolicy::parse("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->allows("http://a.example"));
  EXPECT_EQ(header_value(none->headers("http://a.example"), "Access-Control-Allow-Origin"), "");
}

TEST(Cors, EntriesThatAreNoOriginAreRefused) {
  for (const char* bad : {"a.example", "http://a.example/path", "http://", "://x", "*.example"}) {
    const auto policy = CorsPolicy::parse(bad);
    ASSERT_FALSE(policy.ok()) << bad;
    EXPECT_NE(policy.error().message.find("--allowed-origins"), std::string::npos);
  }
  EXPECT_TRUE(CorsPolicy::parse("null").ok());
}

TEST(OpenAiProtocol, ParsesEveryPromptForm) {
  for (const json& prompt : {json("hi"), json({"a", "b"}), json({1, 2, 3}), json({{1, 2}, {3}})}) {
    CompletionRequest req;
    EXPECT_FALSE(parse_completion_request({{"prompt", prompt}}, req)) << prompt;
    EXPECT_FALSE(req.prompts.empty());
  }
  CompletionRequest req;
  ASSERT_FALSE(parse_completion_request({{"prompt", {{1, 2}, {3}}}}, req));
  EXPECT_EQ(req.prompts.size(), 2u);
  EXPECT_FALSE(req.prompts[0].is_text);
  EXPECT_EQ(req.prompts[1].ids, std::vector<int64_t>{3});
  EXPECT_EQ(*req.sampling.max_tokens, 16);  // OpenAI's default
  EXPECT_FLOAT_EQ(req.sampling.params.temperature, 1.0f);
}

TEST(OpenAiProtocol, RangeErrorsNameTheParameter) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"temperature", -0.5}}, "temperature"},
      {{{"prompt", "x"}, {"top_p", 0}}, "top_p"},
      {{{"prompt", "x"}, {"top_k", -2}}, "top_k"},
      {{{"prompt", "x"}, {"min_p", 2}}, "min_p"},
      {{{"prompt", "x"}, {"frequency_penalty", -3}}, "frequency_penalty"},
      {{{"prompt", "x"}, {"repetition_penalty", 0}}, "repetition_penalty"},
      {{{"prompt", "x"}, {"max_tokens", 0}}, "max_tokens"},
      {{{"prompt", "x"}, {"logprobs", 21}}, "logprobs"},
      {{{"prompt", "x"}, {"stop", {""}}}, "stop"},
      {{{"prompt", "x"}, {"seed", "1"}}, "seed"},
      {{{"prompt", "x"}, {"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"min_tokens", 20}, {"max_tokens", 10}}, "min_tokens"},
      {{{"prompt", "x"}, {"best_of", 3}}, "best_of"},
      // Limits on what a request may make the server hold (issue 15).
      {{{"prompt", "x"}, {"stop", {std::string(kMaxStopStringBytes + 1, 'a')}}}, "stop"},
      {{{"prompt", "x"}, {"stop_token_ids", std::vector<int>(kMaxStopTokenIds + 1, 1)}},
       "stop_token_ids"},
      {{{"prompt", "x"},
        {"logit_bias",
         [] {
           json b = json::object();
           for (size_t i = 0; i <= kMaxLogitBias; ++i) b[std::to_string(i)] = 1;
           return b;
         }()}},
       "logit_bias"},
  };
  for (const auto& [body, param] : cases) {
    CompletionRequest req;
    const auto err = parse_completion_request(body, req);
    ASSERT_TRUE(err) << body;
    EXPECT_EQ(err->status, 400);
    EXPECT_EQ(err->param, param) << body;
  }
}

TEST(OpenAiProtocol, LimitsAdmitRequestsAtThem) {
  json bias = json::object();
  for (size_t i = 0; i < kMaxLogitBias; ++i) bias[std::to_string(i)] = 1;
  const json body = {{"prompt", "x"},
                     {"stop", {std::string(kMaxStopStringBytes, 'a')}},
                     {"stop_token_ids", std::vector<int>(kMaxStopTokenIds, 1)},
                     {"logit_bias", bias}};
  CompletionRequest req;
  EXPECT_FALSE(parse_completion_request(body, req));
  EXPECT_EQ(req.sampling.params.logit_bias.size(), kMaxLogitBias);
  EXPECT_EQ(req.sampling.params.stop[0].size(), kMaxStopStringBytes);
}

TEST(OpenAiProtocol, ContextChecksAndDefaults) {
  RequestSampling s;
  EXPECT_FALSE(check_against_model(s, 10, 512, 512));
  EXPECT_EQ(s.params.max_tokens, 502);  // left out: the rest of the context
  s.max_tokens = 503;
  EXPECT_EQ(check_against_model(s, 10, 512, 512)->param, "max_tokens");
  RequestSampling full;
  EXPECT_EQ(check_against_model(full, 512, 512, 512)->param, "prompt");
  RequestSampling stop;
  stop.params.stop_token_ids = {600};
  EXPECT_EQ(check_against_model(stop, 1, 512, 512)->param, "stop_token_ids");
}

TEST(OpenAiProtocol, EverySamplingFieldReachesTheEngineParams) {
  CompletionRequest req;
  const nlohmann::json body = {{"prompt", "x"},
                               {"temperature", 0.7},
                               {"top_p", 0.9},
                               {"top_k", 40},
                               {"min_p", 0.05},
                               {"repetition_penalty", 1.2},
                               {"presence_penalty", 0.5},
                               {"frequency_penalty", -0.5},
                               {"logit_bias", {{"7", -100}}},
                               {"n", 3},
                               {"seed", 42},
                               {"stop", {"\n\n"}},
                               {"stop_token_ids", {5}},
                               {"include_stop_str_in_output", true},
                               {"ignore_eos", true},
                               {"min_tokens", 2},
                               {"max_tokens", 20}};
  ASSERT_FALSE(parse_completion_request(body, req));
  ASSERT_FALSE(check_against_model(req.sampling, 4, 512, 512));
  const SamplingParams& p = req.sampling.params;
  EXPECT_FLOAT_EQ(p.temperature, 0.7f);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.2f);
  EXPECT_FLOAT_EQ(p.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(p.frequency_penalty, -0.5f);
  ASSERT_EQ(p.logit_bias.size(), 1u);
  EXPECT_EQ(p.logit_bias[0].first, 7);
  EXPECT_FLOAT_EQ(p.logit_bias[0].second, -100.0f);
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.seed, std::optional<uint64_t>(42));
  EXPECT_EQ(p.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(p.stop_token_ids, std::vector<int32_t>{5});
  EXPECT_TRUE(p.include_stop_str_in_output);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_EQ(p.max_tokens, 20);
}

TEST(OpenAiProtocol, ChatRequests) {
  ChatRequest req;
  EXPECT_FALSE(parse_chat_request(
      {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_completion_tokens", 5}}, req));
  EXPECT_EQ(*req.sampling.max_tokens, 5);
  ChatRequest bad;
  EXPECT_TRUE(parse_chat_request({{"messages", {{{"role", "user"}}}}, {"top_logprobs", 2}}, bad));
}

TEST(OpenAiProtocol, MaxCompletionTokensWinsOverMaxTokens) {
  const json messages = {{{"role", "user"}, {"content", "hi"}}};
  ChatRequest both;
  ASSERT_FALSE(parse_chat_request(
      {{"messages", messages}, {"max_tokens", 50}, {"max_completion_tokens", 5}}, both));
  EXPECT_EQ(*both.sampling.max_tokens, 5);
  ChatRequest old_name;
  ASSERT_FALSE(parse_chat_request({{"messages", messages}, {"max_tokens", 50}}, old_name));
  EXPECT_EQ(*old_name.sampling.max_tokens, 50);
  // A bad value under either name is still refused, named.
  ChatRequest bad;
  const auto err = parse_chat_request(
      {{"messages", messages}, {"max_tokens", 0}, {"max_completion_tokens", 5}}, bad);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "max_tokens");
  // The completions API has no max_completion_tokens.
  CompletionRequest completion;
  ASSERT_FALSE(parse_completion_request(
      {{"prompt", "x"}, {"max_tokens", 7}, {"max_completion_tokens", 3}}, completion));
  EXPECT_EQ(*completion.sampling.max_tokens, 7);
}

TEST(OpenAiProtocol, ContentPartsBecomeOneString) {
  ChatRequest req;
  const json parts = {{{"type", "text"}, {"text", "Once upon"}},
                      {{"type", "text"}, {"text", "a time"}}};
  ASSERT_FALSE(parse_chat_request({{"messages",
                                    {{{"role", "system"}, {"content", "plain"}},
                                     {{"role", "user"}, {"content", parts}},
                                     {{"role", "assistant"}, {"content", nullptr}}}}},
                                  req));
  EXPECT_EQ(req.messages[0]["content"], "plain");
  EXPECT_EQ(req.messages[1]["content"], "Once upon\na time");  // vLLM's separator
  EXPECT_TRUE(req.messages[2]["content"].is_null());
  EXPECT_EQ(req.messages[1]["role"], "user");

  // A part that is not text is refused, and the message says which type it was.
  for (const char* type : {"image_url", "input_audio", "file"}) {
    ChatRequest r;
    const auto err = parse_chat_request(
        {{"messages",
          {{{"role", "user"},
            {"content", {{{"type", "text"}, {"text", "look"}}, {{"type", type}, {type, {}}}}}}}}},
        r);
    ASSERT_TRUE(err) << type;
    EXPECT_EQ(err->status, 400);
    EXPECT_EQ(err->param, "messages");
    EXPECT_NE(err->message.find(std::string("'") + type + "'"), std::string::npos) << err->message;
  }
  for (const json& bad :
       {json::array({"text"}), json::array({{{"text", "no type"}}}),
        json::array({{{"type", "text"}}}), json::array({{{"type", "text"}, {"text", 5}}})}) {
    ChatRequest r;
    EXPECT_TRUE(parse_chat_request({{"messages", {{{"role", "user"}, {"content", bad}}}}}, r))
        << bad;
  }
}

TEST(TgiProtocol, MapsParameters) {
  TgiRequest req;
  ASSERT_FALSE(parse_tgi_request(
      {{"inputs", "hi"}, {"parameters", {{"max_new_tokens", 7}, {"details", true}}}}, req));
  EXPECT_EQ(*req.completion.sampling.max_tokens, 7);
  EXPECT_EQ(req.completion.sampling.params.temperature,
            0.0f);  // greedy unless sampling is asked for
  EXPECT_TRUE(req.details);
  TgiRequest bad;
  EXPECT_TRUE(parse_tgi_request({{"inputs", 3}}, bad));
  EXPECT_STREQ(tgi_finish_reason("stop", true), "stop_sequence");
  EXPECT_STREQ(tgi_finish_reason("stop", false), "eos_token");
}

TEST(TgiProtocol, ErrorsTakeTgisShapeAndFieldNames) {
  const ApiError bad =
      invalid_request("'max_tokens' must be in [1, 9], got 0; lower max_tokens", "max_tokens");
  EXPECT_EQ(tgi_error_status(bad), 422);
  EXPECT_EQ(tgi_error_body(bad),
            (json{{"error", "'max_new_tokens' must be in [1, 9], got 0; lower max_new_tokens"},
                  {"error_type", "validation"}}));
  // Only the offending field is renamed, and only as a whole word.
  EXPECT_EQ(tgi_error_body(invalid_request("'top_logprobs' needs 'logprobs'", "logprobs"))["error"],
            "'top_logprobs' needs 'top_n_tokens'");
  EXPECT_EQ(tgi_error_body(invalid_request("max_tokens", "n"))["error"], "max_tokens");
  const ApiError busy{503, "overloaded", "server_error", {}, "overloaded"};
  EXPECT_EQ(tgi_error_status(busy), 503);
  EXPECT_EQ(tgi_error_body(busy)["error_type"], "overloaded");
  TgiRequest streamed;
  ASSERT_FALSE(parse_tgi_request({{"inputs", "hi"}, {"stream", true}}, streamed));
  EXPECT_TRUE(streamed.stream);
  TgiRequest bad_stream;
  EXPECT_EQ(parse_tgi_request({{"inputs", "hi"}, {"stream", 1}}, bad_stream)->param, "stream");
}

TEST(Metrics, HistogramIsCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5.0);
  std::string out;
  h.render(out, "m", "a=\"b\"");
  EXPECT_NE(out.find("m_bucket{a=\"b\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("m_bucket{a=\"b\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("m_bucket{a=\"b\",le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("m_count{a=\"b\"} 3\n"), std::string::npos) << out;
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

}  // namespace
}  // namespace moon::server
