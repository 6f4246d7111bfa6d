// Tool calls out of model text in each family's format, what may stream before a call is
// known, and the grammars that force a call: random walks of each grammar must parse back
// into calls to the named tools whose arguments meet the tool's parameter schema.
#include <gtest/gtest.h>

#include <random>

#include "chat/tool_calls.h"
#include "grammar/gbnf.h"
#include "grammar/grammar_automaton.h"

namespace moon {
namespace {

using ojson = nlohmann::ordered_json;
const std::vector<std::string> kNames = {"get_weather", "add"};

TEST(ToolCallParser, Hermes) {
  auto p = parse_tool_calls(
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", "
      "\"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": "
      "1}}\n"
      "</tool_call>",
      ToolCallFormat::kHermes, kNames);
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.content, "Let me check.");
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, R"({"city":"Paris","unit":"c"})") << "keys in the order written";
  EXPECT_EQ(p.calls[1].arguments, R"({"a":1})");
  // An unclosed last call (the end token came first) still counts.
  auto open = parse_tool_calls("<tool_call>\n{\"name\": \"add\", \"arguments\": {}}",
                               ToolCallFormat::kHermes, kNames);
  ASSERT_EQ(open.calls.size(), 1u);
  EXPECT_EQ(open.content, "");
  // Not calls: all of it stays text.
  for (const char* text :
       {"<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
        "<tool_call>\n{\"name\": \"add\", \"arguments\": [1]}\n</tool_call>",
        "<tool_call>\n{\"name\": \"add\", \"arguments\": {\n</tool_call>", "just text"}) {
    auto q = parse_tool_calls(text, ToolCallFormat::kHermes, kNames);
    EXPECT_TRUE(q.calls.empty()) << text;
    EXPECT_EQ(q.content, text);
  }
}

TEST(ToolCallParser, Llama3Json) {
  auto p = parse_tool_calls(
      "<|python_tag|>{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": \"x;y\"}}; "
      "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
      ToolCallFormat::kLlama3, kNames);
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].arguments, R"({"a":1,"b":"x;y"})");
  EXPECT_EQ(p.calls[1].name, "get_weather");
  // Arguments written as JSON text are read as the object they hold.
  auto s = parse_tool_calls(R"({"name": "add", "parameters": "{\"a\": 2}"})",
                            ToolCallFormat::kLlama3, kNames);
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].arguments, R"({"a":2})");
  for (const char* text :
       {"The answer is {\"name\": \"add\"}", "{\"name\": \"add\", \"parameters\": {}} and more",
        "{\"city\": \"Paris\"}"}) {
    auto q = parse_tool_calls(text, ToolCallFormat::kLlama3, kNames);
    EXPECT_TRUE(q.calls.empty()) << text;
    EXPECT_EQ(q.content, text);
  }
}

TEST(ToolCallParser, JsonAndMistral) {
  auto p = parse_tool_calls(
      R"([TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}, {"name": "add", "arguments": {"a": 2}}])",
      ToolCallFormat::kJson, kNames);
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[1].arguments, R"({"a":2})");
  auto one = parse_tool_calls(" {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n",
                              ToolCallFormat::kJson, kNames);
  ASSERT_EQ(one.calls.size(), 1u);
  EXPECT_EQ(one.content, "");
  EXPECT_TRUE(parse_tool_calls("[]", ToolCallFormat::kJson, kNames).calls.empty());
  EXPECT_TRUE(
      parse_tool_calls("[{\"name\": \"add\", \"arguments\": {}}, 3]", ToolCallFormat::kJson, kNames)
          .calls.empty());
}

TEST(ToolCallParser, WhatMayStreamBeforeACallIsKnown) {
  EXPECT_EQ(streamable_prefix("Hello <tool_call>\n{", ToolCallFormat::kHermes), 6u);
  EXPECT_EQ(streamable_prefix("Hello <tool_c", ToolCallFormat::kHermes), 6u);
  EXPECT_EQ(streamable_prefix("Hello <b>", ToolCallFormat::kHermes), 9u);
  EXPECT_EQ(streamable_prefix("a < b", ToolCallFormat::kHermes), 5u);
  for (ToolCallFormat f : {ToolCallFormat::kLlama3, ToolCallFormat::kJson}) {
    EXPECT_EQ(streamable_prefix("  ", f), 0u);
    EXPECT_EQ(streamable_prefix(" {\"name\"", f), 0u);
    EXPECT_EQ(streamable_prefix("[", f), 0u);
    EXPECT_EQ(streamable_prefix("<|python", f), 0u);
    EXPECT_EQ(streamable_prefix("[TOOL_CA", f), 0u);
    EXPECT_EQ(streamable_prefix("Sure, the weather", f), 17u);
  }
}

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
      "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
  {"type": "function", "function": {"name": "add",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99},
      "b": {"$ref": "#/$defs/num"}}, "required": ["a", "b"], "$defs": {"num": {"type": "integer", "maximum": -1}}}}},
  {"type": "function", "function": {"name": "noop"}}])";

bool valid_arguments(const ToolCall& c) {
  const ojson a = ojson::parse(c.arguments);
  if (!a.is_object()) return false;
  if (c.name == "get_weather") {
    return a.size() == 2 && a["city"].is_string() && (a["unit"] == "c" || a["unit"] == "f");
  }
  if (c.name == "add") {
    return a.size() == 2 && a["a"].is_number_integer() && a["a"] >= 0 && a["a"] <= 99 &&
           a["b"].is_number_integer() && a["b"] <= -1;
  }
  return c.name == "noop" && a.empty();
}

// A random walk over bytes of the grammar, leaning towards closing quotes and brackets.
std::string walk(grammar::GrammarAutomaton& a, std::mt19937& rng) {
  std::string text;
  int32_t s = a.start();
  for (int step = 0; step < 3000 && !(a.accepts(s) && rng() % 4 == 0); ++step) {
    std::vector<uint8_t> ok, closers;
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      if (a.advance(s, std::string_view(&c, 1)) == grammar::GrammarAutomaton::kDead) continue;
      ok.push_back(static_cast<uint8_t>(b));
      if (c == '"' || c == '}' || c == ']') closers.push_back(static_cast<uint8_t>(b));
    }
    if (ok.empty()) break;
    const auto& pool = !closers.empty() && rng() % 10 < 4 ? closers : ok;
    const char c = static_cast<char>(pool[rng() % pool.size()]);
    text += c;
    s = a.advance(s, std::string_view(&c, 1));
  }
  EXPECT_TRUE(a.accepts(s)) << "the walk did not end: " << text;
  return text;
}

TEST(ToolCallGrammar, ForcedCallsParseBackAndMeetTheSchemas) {
  const ojson tools = ojson::parse(kTools);
  const std::vector<std::string> names = {"get_weather", "add", "noop"};
  // The byte vocabulary: token i is byte i, 256 ends.
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  pieces.emplace_back("");
  auto vocab = std::make_shared<const grammar::TokenTrie>(pieces, std::vector<bool>{},
                                                          std::vector<int32_t>{256});
  std::mt19937 rng(2);
  for (ToolCallFormat f :
       {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kJson}) {
    for (const std::string only : {"", "add"}) {
      for (bool parallel : {false, true}) {
        SCOPED_TRACE(std::string(tool_call_format_name(f)) + " only=" + only +
                     " parallel=" + std::to_string(parallel));
        auto gbnf = tool_call_gbnf(tools, only, parallel, f);
        ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
        auto g = grammar::parse_gbnf(*gbnf);
        ASSERT_TRUE(g.ok()) << g.error().message << "\n" << *gbnf;
        grammar::GrammarAutomaton a(std::move(*g), vocab);
        int multi = 0;
        for (int i = 0; i < 60; ++i) {
          const std::string text = walk(a, rng);
          const ParsedOutput p = parse_tool_calls(text, f, names);
          ASSERT_FALSE(p.calls.empty()) << "not parsed back: " << text;
          EXPECT_EQ(p.content, "") << text;
          if (!parallel) EXPECT_EQ(p.calls.size(), 1u) << text;
          multi += p.calls.size() > 1;
          EXPECT_LE(p.calls.size(), 8u) << "at most eight calls in one answer";
          for (const ToolCall& c : p.calls) {
            if (!only.empty()) EXPECT_EQ(c.name, only) << text;
            EXPECT_TRUE(valid_arguments(c)) << c.name << " " << c.arguments;
          }
        }
        if (parallel) EXPECT_GT(multi, 0) << "parallel grammars should allow several calls";
      }
    }
  }
  EXPECT_FALSE(tool_call_gbnf(tools, "missing", false, ToolCallFormat::kJson).ok());
}

TEST(ToolCallFormat, ReadOffTheTemplate) {
  EXPECT_EQ(tool_call_format_of("... <tool_call>\\n{\"name\": ..."), ToolCallFormat::kHermes);
  EXPECT_EQ(tool_call_format_of("{{- \"<|python_tag|>\" + tool_call.name }}"),
            ToolCallFormat::kLlama3);
  EXPECT_EQ(tool_call_format_of("{{- \"[TOOL_CALLS][\" }}"), ToolCallFormat::kJson);
}

}  // namespace
}  // namespace moon
