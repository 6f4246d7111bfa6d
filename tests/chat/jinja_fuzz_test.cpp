// Random byte-level mutations of the real templates: parse and render must only ever return
// errors, never crash, hang or blow up memory. Deterministic (fixed seed) so failures replay.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "chat/chat_template.h"
#include "common/test_data.h"

namespace moon {
namespace {

std::string mutate(std::string s, std::mt19937& rng) {
  static const char* const kPieces[] = {
      "{{",  "}}", "{%", "%}", "{#",   "#}",   "-",    "(",      ")",     "[",  "]",  "'",
      "\"",  "|",  ".",  ",",  "not ", " if ", " in ", "endfor", "endif", "::", "-1", "loop.",
      "ns.", "\\", "\n", "~",  "*",    "**",   "//",   "%",      "{",     "}"};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t pos = rng() % s.size();
    switch (rng() % 5) {
      case 0:  // flip a byte
        s[pos] = static_cast<char>(rng() % 256);
        break;
      case 1:  // delete a run
        s.erase(pos, 1 + rng() % 8);
        break;
      case 2:  // insert a token-like piece
        s.insert(pos, kPieces[rng() % std::size(kPieces)]);
        break;
      case 3: {  // duplicate a chunk
        size_t len = std::min<size_t>(1 + rng() % 64, s.size() - pos);
        s.insert(pos, s.substr(pos, len));
        break;
      }
      default:  // swap two bytes
        std::swap(s[pos], s[rng() % s.size()]);
    }
  }
  return s;
}

TEST(JinjaFuzz, MutatedRealTemplatesNeverCrash) {
  MOON_REQUIRE_TEST_FILE(golden_path, "chat-templates/golden.jsonl");
  const auto dir = std::filesystem::path(golden_path).parent_path();
  std::vector<std::string> sources;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  ASSERT_FALSE(sources.empty());
  const auto messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "<think>x</think>Hello", "tool_calls": [{"id": "abcdefghi",
           "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
          {"role": "tool", "content": "42", "tool_call_id": "abcdefghi"}, {"role": "user", "content": "ok"}])");
  const nlohmann::ordered_json vars = {
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"date_string", "25 Nov 2026"},
      {"tools", nlohmann::ordered_json::parse(R"([{"type": "function",
                                        "function": {"name": "f", "parameters": {"type": "object"}}}])")}};
  jinja::Limits limits;
  limits.max_loop_iterations = 20000;
  limits.max_output_bytes = 1 << 20;
  std::mt19937 rng(12345);
  int parsed_ok = 0, rendered_ok = 0;
  constexpr int kMutations = 2000;
  for (int i = 0; i < kMutations; ++i) {
    std::string source = mutate(sources[static_cast<size_t>(i) % sources.size()], rng);
    auto parsed = ChatTemplate::parse(source);
    if (!parsed.ok()) {
      EXPECT_FALSE(parsed.error().message.empty());
      continue;
    }
    ++parsed_ok;
    parsed->set_limits(limits);
    auto rendered = parsed->render_ordered(messages, i % 2 == 0, vars);
    if (rendered.ok()) ++rendered_ok;
  }
  // Both outcomes must occur, or the mutations are too weak or too strong to test anything.
  EXPECT_GT(parsed_ok, 0);
  EXPECT_LT(parsed_ok, kMutations);
  RecordProperty("parsed_ok", parsed_ok);
  RecordProperty("rendered_ok", rendered_ok);
}

}  // namespace
}  // namespace moon
