// Tool calling through the real `moon serve` on the tiny random-weight Qwen2 and Llama 3
// models (real tokenizers) with their families' real templates (Qwen2.5's Hermes tags, Llama
// 3.1's JSON): tools reach the template in the client's key order, tool_choice "required" or
// a named function makes even a random model return calls, in
// OpenAI's shape, streamed and not, whose arguments meet the function's parameters; "auto"
// leaves plain text as text; bad tool fields are 400s.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/test_client.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

using json = nlohmann::ordered_json;
struct Family {
  const char* model;
  const char* chat_template;
};
const Family kFamilies[] = {
    {"models/arch/tiny-qwen2-f32.gguf", "Qwen-Qwen2.5-7B-Instruct.jinja"},
    {"models/arch/tiny-llama3-f32.gguf", "meta-llama-Llama-3.1-8B-Instruct.jinja"}};

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "maxLength": 12},
      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
      "required": ["city", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "add", "description": "Adds",
    "parameters": {"type": "object", "properties": {
      "b": {"type": "integer", "minimum": -50, "maximum": 50},
      "a": {"type": "integer", "minimum": 0, "maximum": 9}},
      "required": ["b", "a"], "additionalProperties": false}}}])";

// How ctest and gtest name a parameter.
void PrintTo(const Family& f, std::ostream* os) {
  *os << f.model;
}

bool valid_call(const json& call) {
  if (call["type"] != "function" || !call["id"].is_string()) return false;
  if (!std::regex_match(call["id"].get<std::string>(), std::regex("[A-Za-z0-9]{9}"))) return false;
  const std::string name = call["function"]["name"];
  json args;
  try {
    args = json::parse(call["function"]["arguments"].get<std::string>());
  } catch (const std::exception&) {
    return false;
  }
  if (name == "get_weather") {
    return args.size() == 2 && args["city"].is_string() &&
           args["city"].get<std::string>().size() <= 48 &&
           (args["unit"] == "celsius" || args["unit"] == "fahrenheit");
  }
  if (name == "add") {
    return args.size() == 2 && args["b"].is_number_integer() && args["b"] >= -50 &&
           args["b"] <= 50 && args["a"].is_number_integer() && args["a"] >= 0 && args["a"] <= 9;
  }
  return false;
}

class ToolCalls : public ::testing::TestWithParam<Family> {
 protected:
  static void SetUpTestSuite() {
    for (const Family& f : kFamilies) {
      const std::string model = test_data_file(f.model);
      const std::string path = test_data_file(std::string("chat-templates/") + f.chat_template);
      if (model.empty() || path.empty()) continue;
      servers()[f.model] = std::make_unique<ServerProcess>(
          std::vector<std::string>{"--model", model, "--threads", "1", "--kv-cache-memory", "32MiB",
                                   "--chat-template", path});
    }
  }
  static void TearDownTestSuite() { servers().clear(); }
  void SetUp() override {
    MOON_REQUIRE_TEST_FILE(model, GetParam().model);
    MOON_REQUIRE_TEST_FILE(tmpl, std::string("chat-templates/") + GetParam().chat_template);
    server_ = servers()[GetParam().model].get();
    ASSERT_TRUE(server_ && server_->ready()) << (server_ ? server_->log() : "");
  }
  static std::map<std::string, std::unique_ptr<ServerProcess>>& servers() {
    static std::map<std::string, std::unique_ptr<ServerProcess>> s;
    return s;
  }
  HttpResult post(const std::string& path, const json& body) const {
    return http_request(server_->port(), "POST", path, body.dump());
  }
  static json chat(const json& extra) {
    json body = {{"messages", {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
                 {"tools", json::parse(kTools)},
                 {"max_tokens", 300}};
    body.update(extra);
    return body;
  }

  ServerProcess* server_ = nullptr;
};

TEST_P(ToolCalls, ToolsReachTheTemplateInTheClientsKeyOrder) {
  const HttpResult with =
      post("/v1/chat/completions", chat({{"max_tokens", 1}, {"return_token_ids", true}}));
  ASSERT_EQ(with.status, 200) << with.body;
  const json ids = json::parse(with.body)["choices"][0]["prompt_token_ids"];
  const HttpResult text = post("/detokenize", {{"tokens", ids}});
  ASSERT_EQ(text.status, 200) << text.body;
  const std::string prompt = json::parse(text.body)["prompt"];
  // Both templates write each tool with tojson (Llama 3.1 indented): "b" before "a", as the
  // client wrote them, though nlohmann::json would sort them.
  const size_t b_at = prompt.find("\"b\": {"), a_at = prompt.find("\"a\": {");
  ASSERT_NE(b_at, std::string::npos) << prompt;
  ASSERT_NE(a_at, std::string::npos) << prompt;
  EXPECT_LT(b_at, a_at) << prompt;
  EXPECT_NE(prompt.find("\"name\": \"get_weather\""), std::string::npos) << prompt;
}

TEST_P(ToolCalls, RequiredAndNamedToolChoiceReturnValidCalls) {
  for (const json& extra :
       {json{{"tool_choice", "required"}, {"temperature", 0}},
        json{{"tool_choice", "required"}, {"temperature", 1.0}, {"n", 4}, {"seed", 7}},
        json{{"tool_choice", {{"type", "function"}, {"function", {{"name", "add"}}}}},
             {"temperature", 0.8},
             {"n", 3},
             {"seed", 1}},
        json{{"tool_choice", "required"},
             {"parallel_tool_calls", false},
             {"temperature", 1.2},
             {"n", 3},
             {"seed", 2}}}) {
    SCOPED_TRACE(extra.dump());
    const HttpResult r = post("/v1/chat/completions", chat(extra));
    ASSERT_EQ(r.status, 200) << r.body;
    const json answer = json::parse(r.body);
    for (const json& c : answer["choices"]) {
      EXPECT_EQ(c["finish_reason"], "tool_calls") << c.dump();
      ASSERT_TRUE(c["message"].contains("tool_calls")) << c.dump();
      EXPECT_TRUE(c["message"]["content"].is_null()) << c.dump();
      ASSERT_GE(c["message"]["tool_calls"].size(), 1u);
      if (extra.contains("parallel_tool_calls")) EXPECT_EQ(c["message"]["tool_calls"].size(), 1u);
      for (const json& call : c["message"]["tool_calls"]) {
        EXPECT_TRUE(valid_call(call)) << call.dump();
        if (extra["tool_choice"].is_object()) EXPECT_EQ(call["function"]["name"], "add");
      }
    }
  }
}

TEST_P(ToolCalls, StreamedCallsComeAsDeltaToolCalls) {
  const HttpResult r = post(
      "/v1/chat/completions",
      chat({{"tool_choice", "required"}, {"stream", true}, {"temperature", 0.7}, {"seed", 3}}));
  ASSERT_EQ(r.status, 200) << r.body;
  json calls = json::array();
  std::string content, finish;
  for (const std::string& payload : sse_payloads(r.body)) {
    if (payload == "[DONE]") break;
    const json chunk = json::parse(payload);
    for (const json& c : chunk["choices"]) {
      if (c["delta"].contains("content")) content += c["delta"]["content"].get<std::string>();
      if (c["delta"].contains("tool_calls")) {
        for (const json& call : c["delta"]["tool_calls"]) {
          EXPECT_EQ(call["index"], calls.size());
          calls.push_back(call);
        }
      }
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(content, "") << "the call's own text must not stream as content";
  ASSERT_GE(calls.size(), 1u);
  for (const json& call : calls) EXPECT_TRUE(valid_call(call)) << call.dump();
}

TEST_P(ToolCalls, AutoLeavesPlainTextAsText) {
  for (bool stream : {false, true}) {
    const HttpResult r = post(
        "/v1/chat/completions",
        chat(
            {{"tool_choice", "auto"}, {"temperature", 0}, {"max_tokens", 30}, {"stream", stream}}));
    ASSERT_EQ(r.status, 200) << r.body;
    std::string content;
    if (stream) {
      for (const std::string& payload : sse_payloads(r.body)) {
        if (payload == "[DONE]") break;
        const json chunk = json::parse(payload);
        for (const json& c : chunk["choices"]) {
          EXPECT_FALSE(c["delta"].contains("tool_calls"));
          if (c["delta"].contains("content")) content += c["delta"]["content"].get<std::string>();
        }
      }
    } else {
      const json answer = json::parse(r.body);
      const json& m = answer["choices"][0]["message"];
      EXPECT_FALSE(m.contains("tool_calls")) << r.body;
      content = m["content"];
      EXPECT_EQ(answer["choices"][0]["finish_reason"], "length");
    }
    EXPECT_FALSE(content.empty()) << "this random model writes text, not a call";
  }
}

TEST_P(ToolCalls, BadToolFieldsAre400s) {
  struct Case {
    json extra;
    std::string param, needle;
  };
  const Case cases[] = {
      {{{"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}},
       "tool_choice",
       "'nope', which is not in 'tools'"},
      {{{"tool_choice", "always"}}, "tool_choice", "must be"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", "bad name!"}}}}}}},
       "tools",
       "letters, digits"},
      {{{"tools", {{{"type", "retrieval"}}}}}, "tools", "each of 'tools'"},
      // Found by fuzzing: a "type" that is not a string threw from the validation itself.
      {{{"tools", {{{"type", json::object()}, {"function", {{"name", "f"}}}}}}},
       "tools",
       "each of 'tools'"},
      {{{"tool_choice", {{"type", 5}}}}, "tool_choice", "must be"},
      {{{"tools", json::array()}, {"tool_choice", "required"}}, "tool_choice", "'tools' is empty"},
      {{{"tool_choice", "required"}, {"response_format", {{"type", "json_object"}}}},
       "tool_choice",
       "cannot be combined"},
      {{{"tools",
         {{{"type", "function"},
           {"function",
            {{"name", "f"}, {"parameters", {{"type", "object"}, {"not", json::object()}}}}}}}},
        {"tool_choice", "required"}},
       "tools",
       "unsupported JSON Schema keyword 'not'"},
  };
  for (const Case& c : cases) {
    const HttpResult r = post("/v1/chat/completions", chat(c.extra));
    ASSERT_EQ(r.status, 400) << c.extra.dump() << " -> " << r.body;
    const json e = json::parse(r.body)["error"];
    EXPECT_NE(e["message"].get<std::string>().find(c.needle), std::string::npos) << r.body;
    EXPECT_EQ(e["param"], c.param) << r.body;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ToolCalls, ::testing::ValuesIn(kFamilies), [](const auto& info) {
  return std::string(info.param.model).find("qwen2") != std::string::npos ? "Qwen25" : "Llama31";
});

}  // namespace
}  // namespace moon::test
