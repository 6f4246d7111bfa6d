// Tool-calling conversations through the real templates. The golden file has no tool calls, so
// these check the pieces Hugging Face's renderer is known to produce (key order, separators,
// indentation) rather than whole renders.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "common/test_data.h"

namespace moon {
namespace {

using nlohmann::ordered_json;

const char* const kConversation = R"([
  {"role": "user", "content": "Weather in Paris?"},
  {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
  {"role": "tool", "content": "20C", "tool_call_id": "call12345"},
  {"role": "assistant", "content": "It is 20C."},
  {"role": "user", "content": "Thanks"}])";

const char* const kTools = R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Get weather", "parameters": {"type": "object",
  "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])";

std::string render_template(const std::string& name) {
  const std::string path = test::test_data_file("chat-templates/" + name);
  if (path.empty()) return "";
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = ChatTemplate::parse(ss.str());
  if (!parsed.ok()) return "PARSE ERROR: " + parsed.error().message;
  ordered_json vars = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"date_string", "25 Nov 2026"}};
  vars["tools"] = ordered_json::parse(kTools);
  auto rendered = parsed->render_ordered(ordered_json::parse(kConversation), true, vars);
  return rendered.ok() ? rendered.value() : "RENDER ERROR: " + rendered.error().message;
}

TEST(ChatToolCalls, Qwen25) {
  MOON_REQUIRE_TEST_FILE(path, "chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");
  std::string out = render_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  EXPECT_NE(out.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
                     "\"description\": \"Get weather\", \"parameters\": {\"type\": \"object\", "
                     "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
                     "[\"city\"]}}}\n</tools>"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call><|im_end|>\n"
               "<|im_start|>user\n<tool_response>\n20C\n</tool_response><|im_end|>\n"),
      std::string::npos)
      << out;
}

TEST(ChatToolCalls, Qwen3) {
  MOON_REQUIRE_TEST_FILE(path, "chat-templates/Qwen-Qwen3-0.6B.jinja");
  std::string out = render_template("Qwen-Qwen3-0.6B.jinja");
  EXPECT_NE(
      out.find("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call><|im_end|>\n"),
      std::string::npos)
      << out;
  EXPECT_TRUE(out.size() > 26 && out.substr(out.size() - 22) == "<|im_start|>assistant\n") << out;
}

TEST(ChatToolCalls, Llama31IndentedToolsInFirstUserMessage) {
  MOON_REQUIRE_TEST_FILE(path, "chat-templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  std::string out = render_template("meta-llama-Llama-3.1-8B-Instruct.jinja");
  EXPECT_NE(out.find("Environment: ipython\n"), std::string::npos) << out;
  EXPECT_NE(out.find("{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": "
                     "\"get_weather\","),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"required\": [\n                \"city\"\n            ]"), std::string::npos)
      << out;
  EXPECT_NE(out.find("Weather in Paris?<|eot_id|>"), std::string::npos) << out;
  EXPECT_NE(out.find("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": "
                     "\"c\"}}<|eot_id|>"),
            std::string::npos)
      << out;
}

TEST(ChatToolCalls, MistralNemo) {
  MOON_REQUIRE_TEST_FILE(path, "chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja");
  std::string out = render_template("mistralai-Mistral-Nemo-Instruct-2407.jinja");
  EXPECT_NE(out.find("[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                     "\"Paris\", \"unit\": \"c\"}, "
                     "\"id\": \"call12345\"}]</s>"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[TOOL_RESULTS]{\"content\": 20C, \"call_id\": \"call12345\"}[/TOOL_RESULTS]"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find(
          "[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
          "\"description\": \"Get weather\", \"parameters\": {"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("[/AVAILABLE_TOOLS][INST]Thanks[/INST]"), std::string::npos) << out;
}

TEST(ChatToolCalls, MistralRejectsBadToolCallIds) {
  MOON_REQUIRE_TEST_FILE(path, "chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = ChatTemplate::parse(ss.str());
  ASSERT_TRUE(parsed.ok());
  auto messages = ordered_json::parse(kConversation);
  messages[1]["tool_calls"][0]["id"] = "short";
  auto rendered =
      parsed->render_ordered(messages, true, {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  ASSERT_FALSE(rendered.ok());
  EXPECT_NE(
      rendered.error().message.find("Tool call IDs should be alphanumeric strings with length 9!"),
      std::string::npos);
}

}  // namespace
}  // namespace moon
