// The details of the OpenAI and TGI APIs that real clients rely on, checked against the real
// `moon serve`: field precedence, message content parts, model lookup, CORS, TGI's routes and
// error shape, and the log line of each finished request.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <tuple>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::json;
constexpr char kModel[] = "models/stories260K-f32.gguf";

// Shows each message's content between brackets, so a test sees exactly the string the
// template was given.
std::string chat_template_file() {
  const std::string path = temp_dir() + "/client_details_template.jinja";
  std::ofstream(path) << "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}";
  return path;
}

// A response header by its lower-case name; "" when absent.
std::string header(const HttpResult& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

class ClientDetails : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = test_data_file(kModel);
    if (model.empty()) return;
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB",
                                 "--chat-template", chat_template_file()});
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model, kModel);
    ASSERT_TRUE(server_ && server_->ready()) << (server_ ? server_->log() : "");
  }
  static HttpResult post(const std::string& path, const json& body,
                         const std::vector<std::string>& headers = {}) {
    return http_request(server_->port(), "POST", path, body.dump(), headers);
  }
  static HttpResult get(const std::string& path, const std::vector<std::string>& headers = {}) {
    return http_request(server_->port(), "GET", path, "", headers);
  }

  // The prompt token ids the server built for one chat message with this content.
  static json chat_prompt_ids(const json& content) {
    const HttpResult r =
        post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", content}}}},
                                      {"max_tokens", 1},
                                      {"return_token_ids", true}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body)["choices"][0]["prompt_token_ids"] : json();
  }

  static std::unique_ptr<ServerProcess> server_;
};
std::unique_ptr<ServerProcess> ClientDetails::server_;

TEST_F(ClientDetails, MaxCompletionTokensTakesPrecedenceOverMaxTokens) {
  const json messages = json::array({{{"role", "user"}, {"content", "Once upon a time"}}});
  const HttpResult r = post("/v1/chat/completions", {{"messages", messages},
                                                     {"max_tokens", 40},
                                                     {"max_completion_tokens", 3},
                                                     {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  EXPECT_EQ(out["usage"]["completion_tokens"], 3);
  EXPECT_EQ(out["choices"][0]["finish_reason"], "length");
  // max_tokens alone still limits the answer.
  const HttpResult old_name =
      post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 4}, {"temperature", 0}});
  ASSERT_EQ(old_name.status, 200) << old_name.body;
  EXPECT_EQ(json::parse(old_name.body)["usage"]["completion_tokens"], 4);
}

TEST_F(ClientDetails, ContentPartsReachTheTemplateJoinedByNewlines) {
  const json parts = {{{"type", "text"}, {"text", "Once upon"}},
                      {{"type", "text"}, {"text", "a time"}}};
  const json from_parts = chat_prompt_ids(parts);
  ASSERT_FALSE(from_parts.empty());
  EXPECT_EQ(from_parts, chat_prompt_ids("Once upon\na time"));
  EXPECT_NE(from_parts, chat_prompt_ids("Once upona time"));

  const HttpResult image = post(
      "/v1/chat/completions",
      {{"messages",
        {{{"role", "user"},
          {"content",
           {{{"type", "text"}, {"text", "What is this?"}},
            {{"type", "image_url"}, {"image_url", {{"url", "http://example.com/a.png"}}}}}}}}}});
  EXPECT_EQ(image.status, 400) << image.body;
  const json error = json::parse(image.body)["error"];
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_NE(error["message"].get<std::string>().find("image_url"), std::string::npos) << error;

  // An assistant turn without content (it called tools) is still accepted.
  const HttpResult null_content =
      post("/v1/chat/completions", {{"messages",
                                     {{{"role", "user"}, {"content", "Hi"}},
                                      {{"role", "assistant"}, {"content", nullptr}},
                                      {{"role", "user"}, {"content", "Once upon a time"}}}},
                                    {"max_tokens", 2}});
  EXPECT_EQ(null_content.status, 200) << null_content.body;
}

TEST_F(ClientDetails, TokenizeMessagesGivesTheChatPrompt) {
  // vLLM's chat form of /tokenize: the prompt a chat request with these messages gets.
  const json messages = json::array(
      {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Once upon"}}});
  const HttpResult t = post("/tokenize", {{"messages", messages}});
  ASSERT_EQ(t.status, 200) << t.body;
  const json tokens = json::parse(t.body)["tokens"];
  EXPECT_EQ(json::parse(t.body)["count"], tokens.size());
  const HttpResult c =
      post("/v1/chat/completions",
           {{"messages", messages}, {"max_tokens", 1}, {"return_token_ids", true}});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["choices"][0]["prompt_token_ids"], tokens);
  const std::string text = json::parse(post("/detokenize", {{"tokens", tokens}}).body)["prompt"];
  EXPECT_TRUE(text.ends_with("[Hi][Once upon]")) << text;

  // continue_final_message: the render stops where the last message's text does, so the
  // model continues it, in /tokenize and in a chat request alike.
  const HttpResult cont =
      post("/tokenize", {{"messages", messages}, {"continue_final_message", true}});
  ASSERT_EQ(cont.status, 200) << cont.body;
  const json cont_tokens = json::parse(cont.body)["tokens"];
  const std::string cont_text =
      json::parse(post("/detokenize", {{"tokens", cont_tokens}}).body)["prompt"];
  EXPECT_TRUE(cont_text.ends_with("[Hi][Once upon")) << cont_text;
  const HttpResult cc = post("/v1/chat/completions", {{"messages", messages},
                                                      {"continue_final_message", true},
                                                      {"add_generation_prompt", false},
                                                      {"max_tokens", 1},
                                                      {"return_token_ids", true}});
  ASSERT_EQ(cc.status, 200) << cc.body;
  EXPECT_EQ(json::parse(cc.body)["choices"][0]["prompt_token_ids"], cont_tokens);

  for (const json& bad : {json{{"messages", messages},
                               {"continue_final_message", true},
                               {"add_generation_prompt", true}},
                          json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                               {"continue_final_message", true}}}) {
    const HttpResult r = post("/tokenize", bad);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "continue_final_message") << r.body;
  }
}

TEST_F(ClientDetails, RetrieveModelByIdAndHeadHealth) {
  const HttpResult ours = get("/v1/models/stories260K-f32.gguf");
  ASSERT_EQ(ours.status, 200) << ours.body;
  const json card = json::parse(ours.body);
  EXPECT_EQ(card["id"], "stories260K-f32.gguf");
  EXPECT_EQ(card["object"], "model");
  EXPECT_TRUE(card["created"].is_number_integer());
  EXPECT_EQ(card, json::parse(get("/v1/models").body)["data"][0]);
  // Percent-encoded, as some clients send it.
  EXPECT_EQ(get("/v1/models/stories260K-f32%2Egguf").status, 200);

  for (const char* other : {"/v1/models/gpt-4", "/v1/models/", "/v1/models/stories260K-f32"}) {
    const HttpResult r = get(other);
    EXPECT_EQ(r.status, 404) << other;
    const json error = json::parse(r.body)["error"];
    EXPECT_EQ(error["type"], "invalid_request_error") << other;
    EXPECT_EQ(error["code"], "model_not_found") << other;
    EXPECT_EQ(error["param"], "model") << other;
  }
  EXPECT_NE(json::parse(get("/v1/models/gpt-4").body)["error"]["message"].get<std::string>().find(
                "gpt-4"),
            std::string::npos);

  const HttpResult head = http_request(server_->port(), "HEAD", "/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  // HEAD of a route with a body announces its length and sends none of it.
  const HttpResult head_models = http_request(server_->port(), "HEAD", "/v1/models");
  EXPECT_EQ(head_models.status, 200);
  EXPECT_GT(std::stoi(head_models.headers.at("content-length")), 0);
  EXPECT_EQ(head_models.body, "");
}

TEST_F(ClientDetails, AnyOriginMayCallByDefault) {
  const HttpResult health = get("/health", {"Origin: http://page.example"});
  EXPECT_EQ(header(health, "access-control-allow-origin"), "*");
  // Streamed answers carry it too.
  const HttpResult stream =
      post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 2}, {"stream", true}},
           {"Origin: http://page.example"});
  ASSERT_EQ(stream.status, 200);
  EXPECT_EQ(stream.headers.at("transfer-encoding"), "chunked");
  EXPECT_EQ(header(stream, "access-control-allow-origin"), "*");

  const HttpResult pre =
      http_request(server_->port(), "OPTIONS", "/v1/chat/completions", "",
                   {"Origin: http://page.example", "Access-Control-Request-Method: POST",
                    "Access-Control-Request-Headers: authorization,content-type"});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.body, "");
  EXPECT_EQ(pre.headers.count("content-length"), 0u);
  EXPECT_EQ(header(pre, "access-control-allow-origin"), "*");
  EXPECT_NE(header(pre, "access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_EQ(header(pre, "access-control-allow-headers"), "authorization,content-type");
  EXPECT_GT(std::stoi(header(pre, "access-control-max-age")), 0);
  // Any path, even one with no route.
  EXPECT_EQ(http_request(server_->port(), "OPTIONS", "/nowhere", "",
                         {"Origin: http://page.example", "Access-Control-Request-Method: GET"})
                .status,
            204);
}

TEST_F(ClientDetails, TgiRootIsGenerateOrGenerateStream) {
  const json request = {{"inputs", "Once upon a time"}, {"parameters", {{"max_new_tokens", 8}}}};
  const HttpResult generate = post("/generate", request);
  ASSERT_EQ(generate.status, 200) << generate.body;
  const std::string text = json::parse(generate.body)["generated_text"];
  ASSERT_FALSE(text.empty());

  const HttpResult root = post("/", request);
  ASSERT_EQ(root.status, 200) << root.body;
  EXPECT_EQ(root.headers.at("content-type"), "application/json");
  EXPECT_EQ(json::parse(root.body)["generated_text"], text);

  json streamed = request;
  streamed["stream"] = true;
  const HttpResult stream = post("/", streamed);
  ASSERT_EQ(stream.status, 200) << stream.body;
  EXPECT_EQ(stream.headers.at("content-type"), "text/event-stream");
  const auto events = sse_payloads(stream.body);
  ASSERT_EQ(events.size(), 8u) << stream.body;  // one per token, as /generate_stream
  EXPECT_EQ(json::parse(events.back())["generated_text"], text);
  EXPECT_EQ(json::parse(events.back())["details"]["finish_reason"], "length");

  streamed["stream"] = false;
  EXPECT_EQ(json::parse(post("/", streamed).body)["generated_text"], text);
  EXPECT_EQ(get("/").status, 405);
}

TEST_F(ClientDetails, TgiInfoDescribesTheServedModel) {
  const HttpResult r = get("/info");
  ASSERT_EQ(r.status, 200) << r.body;
  const json info = json::parse(r.body);
  EXPECT_EQ(info["model_id"], "stories260K-f32.gguf");
  EXPECT_EQ(info["max_total_tokens"], 512);  // stories260K's context
  EXPECT_EQ(info["max_input_tokens"], 511);  // at least one token is left to generate
  EXPECT_EQ(info["version"], project_version());
  EXPECT_EQ(json::parse(get("/version").body)["version"], "moon-" + project_version());
  for (const char* key : {"model_sha", "model_pipeline_tag", "max_concurrent_requests",
                          "max_best_of", "max_stop_sequences", "validation_workers",
                          "max_client_batch_size", "router", "sha", "docker_label"}) {
    EXPECT_TRUE(info.contains(key)) << key;
  }
  EXPECT_GT(info["max_concurrent_requests"].get<int>(), 0);
  EXPECT_GT(info["max_stop_sequences"].get<int>(), 0);
  // What /info announces holds: that many stop sequences are accepted, one more is not.
  const int max_stop = info["max_stop_sequences"];
  json stops = json::array();
  for (int i = 0; i < max_stop; ++i) stops.push_back("zz" + std::to_string(i));
  EXPECT_EQ(post("/generate",
                 {{"inputs", "Once"}, {"parameters", {{"max_new_tokens", 1}, {"stop", stops}}}})
                .status,
            200);
  stops.push_back("one too many");
  EXPECT_EQ(post("/generate",
                 {{"inputs", "Once"}, {"parameters", {{"max_new_tokens", 1}, {"stop", stops}}}})
                .status,
            422);
}

TEST_F(ClientDetails, TgiValidationErrorsAre422InTgiShape) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"/generate", R"({"inputs": "x", "parameters": {"temperature": 0}})", "temperature"},
      {"/generate", R"({"inputs": "x", "parameters": {"max_new_tokens": 0}})", "max_new_tokens"},
      {"/generate_stream", R"({"inputs": "x", "parameters": {"max_new_tokens": 100000}})",
       "max_new_tokens"},
      {"/generate", R"({"inputs": "x", "parameters": {"top_n_tokens": 99}})", "top_n_tokens"},
      {"/generate", R"({"inputs": 5})", "inputs"},
      {"/generate", "{not json", "JSON"},
      {"/", R"({"inputs": "x", "stream": "yes"})", "stream"},
      {"/", R"({"inputs": "x", "parameters": {"top_p": 2}})", "top_p"},
      {"/generate", R"({"inputs": "x", "parameters": {"best_of": 2}})", "best_of"},
  };
  for (const auto& [path, body, names] : cases) {
    const HttpResult r = http_request(server_->port(), "POST", path, body);
    EXPECT_EQ(r.status, 422) << path << " " << body << "\n" << r.body;
    json e;
    ASSERT_NO_THROW(e = json::parse(r.body)) << r.body;
    EXPECT_EQ(e["error_type"], "validation") << body;
    ASSERT_TRUE(e["error"].is_string()) << r.body;  // TGI's shape, not OpenAI's object
    EXPECT_NE(e["error"].get<std::string>().find(names), std::string::npos) << r.body;
  }
  // The OpenAI routes keep OpenAI's 400.
  const HttpResult openai =
      http_request(server_->port(), "POST", "/v1/completions", R"({"prompt": "x", "top_p": 2})");
  EXPECT_EQ(openai.status, 400);
  EXPECT_TRUE(json::parse(openai.body)["error"].is_object());
}

// The log line of the finished request `id`; "" when there is none (yet).
std::string finished_line(const ServerProcess& server, const std::string& id) {
  const std::string log = server.log();
  const size_t at = log.find("request " + id + " finished:");
  return at == std::string::npos ? "" : log.substr(at, log.find('\n', at) - at);
}

// Waits (bounded) for the line: the server writes it as it answers, not before.
std::string wait_for_finished_line(const ServerProcess& server, const std::string& id) {
  for (int i = 0; i < 200; ++i) {
    if (std::string line = finished_line(server, id); !line.empty()) return line;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return "";
}

TEST_F(ClientDetails, EachFinishedRequestIsLoggedWithItsTokensTimesAndReason) {
  const HttpResult r =
      post("/v1/completions",
           {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"n", 2}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = json::parse(r.body);
  const std::string line = wait_for_finished_line(*server_, out["id"]);
  ASSERT_FALSE(line.empty()) << server_->log();
  EXPECT_NE(line.find("prompt_tokens=" + std::to_string(out["usage"]["prompt_tokens"].get<int>())),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(" output_tokens=10 "), std::string::npos) << line;  // 2 choices x 5
  EXPECT_NE(line.find(" finish_reason=length,length"), std::string::npos) << line;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(line, m, std::regex(R"(ttft=([0-9.]+)s total=([0-9.]+)s)")))
      << line;
  EXPECT_LE(std::stod(m[1]), std::stod(m[2])) << line;
  // The log says info, the level it is written at.
  EXPECT_NE(server_->log().find("info] request " + out["id"].get<std::string>() + " finished:"),
            std::string::npos);

  // A chat request ended by the model, and one cut short by its client.
  const HttpResult chat = post("/v1/chat/completions",
                               {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                {"max_tokens", 400},
                                {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json chat_out = json::parse(chat.body);
  const std::string chat_line = wait_for_finished_line(*server_, chat_out["id"]);
  EXPECT_NE(chat_line.find(" finish_reason=" +
                           chat_out["choices"][0]["finish_reason"].get<std::string>()),
            std::string::npos)
      << chat_line;
  EXPECT_NE(chat_line.find(" output_tokens=" +
                           std::to_string(chat_out["usage"]["completion_tokens"].get<int>()) + " "),
            std::string::npos)
      << chat_line;

  std::string raw;
  const int fd = start_stream(server_->port(), "/v1/completions",
                              // Long enough (n = 16) to be running still when the client
                              // hangs up.
                              json{{"prompt", "Once upon a time"},
                                   {"max_tokens", 480},
                                   {"n", 16},
                                   {"ignore_eos", true},
                                   {"stream", true}}
                                  .dump(),
                              std::chrono::seconds(10), raw);
  ASSERT_GE(fd, 0);
  std::smatch id;
  ASSERT_TRUE(std::regex_search(raw, id, std::regex(R"re("id":"(cmpl-[0-9a-f]+)")re"))) << raw;
  ::close(fd);
  const std::string aborted = wait_for_finished_line(*server_, id[1]);
  EXPECT_NE(aborted.find(" finish_reason=abort"), std::string::npos) << server_->log();
}

TEST(ServerCors, AllowedOriginsAreEchoedOthersGetNothingPreflightsNeedNoKey) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB",
                        "--api-key", "k1", "--allowed-origins",
                        "http://a.example, https://b.example:8443"});
  ASSERT_TRUE(server.ready()) << server.log();
  const int port = server.port();
  const std::string key = "Authorization: Bearer k1";

  const HttpResult pre =
      http_request(port, "OPTIONS", "/v1/completions", "",
                   {"Origin: https://b.example:8443", "Access-Control-Request-Method: POST",
                    "Access-Control-Request-Headers: authorization, content-type"});
  EXPECT_EQ(pre.status, 204) << pre.body;
  EXPECT_EQ(header(pre, "access-control-allow-origin"), "https://b.example:8443");
  EXPECT_EQ(header(pre, "access-control-allow-headers"), "authorization, content-type");
  EXPECT_EQ(header(pre, "vary"), "Origin");

  const HttpResult allowed =
      http_request(port, "GET", "/v1/models", "", {key, "Origin: http://a.example"});
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(header(allowed, "access-control-allow-origin"), "http://a.example");
  // A refusal must be readable by the page too, or it cannot tell the user why.
  const HttpResult no_key =
      http_request(port, "GET", "/v1/models", "", {"Origin: http://a.example"});
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(header(no_key, "access-control-allow-origin"), "http://a.example");

  const HttpResult other =
      http_request(port, "GET", "/v1/models", "", {key, "Origin: http://evil.example"});
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u);
  const HttpResult other_pre =
      http_request(port, "OPTIONS", "/v1/completions", "",
                   {"Origin: http://evil.example", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(other_pre.status, 204);
  EXPECT_EQ(other_pre.headers.count("access-control-allow-origin"), 0u);
  EXPECT_EQ(other_pre.headers.count("access-control-allow-methods"), 0u);
  EXPECT_EQ(http_request(port, "GET", "/health").headers.count("access-control-allow-origin"), 0u);
}

TEST(ServerCors, ABadOriginListStopsTheServerWithTheFlagNamed) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--allowed-origins", "localhost:3000"});
  EXPECT_FALSE(server.ready());
  EXPECT_NE(server.log().find("--allowed-origins"), std::string::npos) << server.log();
}

// The periodic stats line, as vLLM logs it, while there is work; none when idle or disabled.
TEST(ServerStatsLine, LoggedWhileThereIsWorkAndNotWhenDisabled) {
  MOON_REQUIRE_TEST_FILE(model, kModel);
  ServerProcess server({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB",
                        "--log-stats-interval", "0.1"});
  ASSERT_TRUE(server.ready()) << server.log();
  const HttpResult r = http_request(server.port(), "POST", "/v1/completions",
                                    json{{"prompt", "Once upon a time"},
                                         {"max_tokens", 400},
                                         {"n", 8},
                                         {"temperature", 1.0},
                                         {"ignore_eos", true}}
                                        .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string log = server.log();
  const std::regex line(
      R"(Avg prompt throughput: ([0-9.]+) tokens/s, Avg generation throughput: ([0-9.]+) )"
      R"(tokens/s, Running: ([0-9]+) reqs, Waiting: ([0-9]+) reqs, KV cache usage: ([0-9.]+)%)");
  double most_generated = 0;
  int lines = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    ++lines;
    most_generated = std::max(most_generated, std::stod((*it)[2]));
  }
  EXPECT_GE(lines, 1) << log;
  EXPECT_GT(most_generated, 0) << log;
  // Idle: no new lines.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string later = server.log();
  auto count = [&](const std::string& text) {
    return std::distance(std::sregex_iterator(text.begin(), text.end(), line),
                         std::sregex_iterator());
  };
  EXPECT_EQ(count(later), count(log)) << "an idle server logs no stats";

  ServerProcess quiet({"--model", model, "--threads", "1", "--kv-cache-memory", "16MiB",
                       "--log-stats-interval", "0.1", "--disable-log-stats"});
  ASSERT_TRUE(quiet.ready()) << quiet.log();
  ASSERT_EQ(
      http_request(
          quiet.port(), "POST", "/v1/completions",
          json{{"prompt", "Once"}, {"max_tokens", 300}, {"n", 8}, {"ignore_eos", true}}.dump())
          .status,
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(quiet.log().find("Avg prompt throughput"), std::string::npos) << quiet.log();
}

}  // namespace
}  // namespace moon::test
