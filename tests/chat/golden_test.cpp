// Every line of the shared golden file must render exactly as Hugging Face's reference
// renderer did, or fail with the error the template raises on purpose.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "chat/chat_template.h"
#include "common/test_data.h"

namespace moon {
namespace {

TEST(ChatGolden, EveryLineRendersExactly) {
  MOON_REQUIRE_TEST_FILE(golden_path, "chat-templates/golden.jsonl");
  const std::string dir = golden_path.substr(0, golden_path.rfind('/') + 1);
  std::map<std::string, ChatTemplate> templates;
  int lines = 0, passed = 0;
  for (const std::string& line : test::read_lines(golden_path)) {
    ++lines;
    auto row = nlohmann::ordered_json::parse(line);
    const std::string name = row["template"].get<std::string>();
    if (templates.find(name) == templates.end()) {
      auto parsed = ChatTemplate::parse(test::read_file(dir + name));
      ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().message;
      templates.emplace(name, std::move(parsed).value());
    }
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    for (const char* key : {"bos_token", "eos_token", "date_string"}) vars[key] = row[key];
    auto rendered = templates.at(name).render_ordered(
        row["messages"], row["add_generation_prompt"].get<bool>(), vars);
    const std::string where = name + " / " + row["conversation"].get<std::string>() +
                              (row["add_generation_prompt"].get<bool>() ? " +gen" : "");
    if (row.contains("expected_error")) {
      const std::string expected = row["expected_error"].get<std::string>();
      if (rendered.ok()) {
        ADD_FAILURE() << where << ": expected error '" << expected << "', got render:\n"
                      << rendered.value();
      } else if (rendered.error().message.find(expected) == std::string::npos) {
        ADD_FAILURE() << where << ": error '" << rendered.error().message << "' lacks '" << expected
                      << "'";
      } else {
        ++passed;
      }
      continue;
    }
    if (!rendered.ok()) {
      ADD_FAILURE() << where << ": " << rendered.error().message;
      continue;
    }
    const std::string expected = row["expected"].get<std::string>();
    if (rendered.value() != expected) {
      ADD_FAILURE() << where << ": render differs\n--- expected ---\n"
                    << expected << "\n--- got ---\n"
                    << rendered.value();
    } else {
      ++passed;
    }
  }
  EXPECT_GT(lines, 0);
  EXPECT_EQ(passed, lines);
}

}  // namespace
}  // namespace moon
