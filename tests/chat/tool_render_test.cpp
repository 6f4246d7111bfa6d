// Conversations with tools and tool-call turns through the real templates that take tools,
// against Hugging Face's reference renderer (@huggingface/jinja, the renderer of the shared
// golden file), byte for byte: `tools` reach the template as apply_chat_template passes them,
// with their keys in the order the client wrote. The renders are in testdata/, written by
// make_tool_renders.mjs beside this file.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "chat/chat_template.h"
#include "common/test_data.h"

namespace moon {
namespace {

TEST(ChatToolRenders, EqualHuggingFacesReference) {
  MOON_REQUIRE_TEST_FILE(golden_path, "chat-templates/golden.jsonl");
  const std::string dir = golden_path.substr(0, golden_path.rfind('/') + 1);
  const std::string renders =
      std::string(MOON_SOURCE_DIR) + "/tests/chat/testdata/tool_renders.jsonl";
  std::map<std::string, ChatTemplate> templates;
  int lines = 0;
  for (const std::string& line : test::read_lines(renders)) {
    ++lines;
    auto row = nlohmann::ordered_json::parse(line);
    const std::string name = row["template"].get<std::string>();
    const std::string where = name + " / " + row["conversation"].get<std::string>();
    if (!templates.contains(name)) {
      auto parsed = ChatTemplate::parse(test::read_file(dir + name));
      ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().message;
      templates.emplace(name, std::move(parsed).value());
    }
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    for (const char* key : {"bos_token", "eos_token", "date_string", "tools"}) vars[key] = row[key];
    auto rendered = templates.at(name).render_ordered(
        row["messages"], row["add_generation_prompt"].get<bool>(), vars);
    ASSERT_FALSE(row.contains("expected_error")) << where << ": the reference failed";
    ASSERT_TRUE(rendered.ok()) << where << ": " << rendered.error().message;
    EXPECT_EQ(rendered.value(), row["expected"].get<std::string>()) << where;
  }
  EXPECT_EQ(lines, 18);
}

}  // namespace
}  // namespace moon
