// Lexer and parser behaviour: whitespace control, HF's trim/lstrip settings, literals, and
// syntax errors with positions.
#include <gtest/gtest.h>

#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"
#include "jinja_test_util.h"

namespace moon {
namespace {

using test::render;

TEST(JinjaSyntax, PlainTextAndExpressions) {
  EXPECT_EQ(render("hello"), "hello");
  EXPECT_EQ(render("{{ 1 + 2 }}"), "3");
  EXPECT_EQ(render("a{# comment #}b"), "ab");
  EXPECT_EQ(render("{{ name }}!", {{"name", "moon"}}), "moon!");
}

TEST(JinjaSyntax, SingleTrailingNewlineIsDropped) {
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
}

TEST(JinjaSyntax, WhitespaceControlMarkers) {
  EXPECT_EQ(render("a  \n {%- if true -%}  \n b \n {%- endif %}"), "ab");
  EXPECT_EQ(render("a {{- 'x' -}} b"), "axb");
  EXPECT_EQ(render("a \n{#- c -#}\n b"), "ab");
}

TEST(JinjaSyntax, TrimBlocksAndLstripBlocks) {
  // HF renders with trim_blocks (newline after a block tag dropped) and lstrip_blocks
  // (indentation before a block tag dropped); expressions are untouched.
  EXPECT_EQ(render("  {% if true %}\n  hi\n  {% endif %}\nend"), "  hi\nend");
  EXPECT_EQ(render("  {{ 'x' }}\n"), "  x");
  EXPECT_EQ(render("a {% if true %}b{% endif %}"), "a b");  // not first on its line
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
}

TEST(JinjaSyntax, StringLiteralsAndEscapes) {
  EXPECT_EQ(render(R"({{ 'a\nb' }})"), "a\nb");
  EXPECT_EQ(render(R"({{ "it's" ~ 'say "hi"' }})"), "it'ssay \"hi\"");
  EXPECT_EQ(render(R"({{ "\u00e9\t|" }})"), "\xC3\xA9\t|");
  EXPECT_EQ(render(R"({{ 'a' 'b' }})"), "ab");
}

TEST(JinjaSyntax, NumberLiterals) {
  EXPECT_EQ(render("{{ 42 }} {{ 1.5 }} {{ 2.0 }} {{ 1_000 }} {{ 1e3 }}"), "42 1.5 2.0 1000 1000.0");
}

TEST(JinjaSyntax, ListAndDictLiterals) {
  EXPECT_EQ(render("{{ [1, 'a', none, true] }}"), "[1, 'a', None, True]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': [2]} | tojson }}"), R"({"b": 1, "a": [2]})");
  EXPECT_EQ(render("{{ {'a': {'b': 1}}['a']['b'] }}"), "1");  // `}}` inside a dict literal
}

TEST(JinjaSyntax, RawAndFilterBlocks) {
  EXPECT_EQ(render("a{% raw %}{{ x }}{% if %}{% endraw %}b"), "a{{ x }}{% if %}b");
  EXPECT_EQ(render("{%- raw -%}\n  {{ y }}  \n{%- endraw -%}\n!"), "{{ y }}!");
  EXPECT_FALSE(ChatTemplate::parse("{% raw %}never ends").ok());
  EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
  EXPECT_EQ(render("{% filter replace('a', 'b') | upper %}aa{% endfilter %}"), "BB");
}

TEST(JinjaSyntax, TokenPositions) {
  auto tokens = jinja::tokenize("ab\n  {{ x }}");
  ASSERT_GE(tokens.size(), 4u);
  EXPECT_EQ(tokens[2].kind, jinja::TokenKind::kName);
  EXPECT_EQ(tokens[2].line, 2);
  EXPECT_EQ(tokens[2].column, 6);
}

TEST(JinjaSyntax, ErrorsCarryLineAndColumn) {
  auto bad = ChatTemplate::parse("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("line 3, column 8"), std::string::npos) << bad.error().message;

  auto unclosed = ChatTemplate::parse("{% for x in y %}never closed");
  ASSERT_FALSE(unclosed.ok());
  EXPECT_NE(unclosed.error().message.find("endfor"), std::string::npos) << unclosed.error().message;

  auto unknown = ChatTemplate::parse("\n\n  {% frobnicate %}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("line 3, column 6"), std::string::npos)
      << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("frobnicate"), std::string::npos);
}

TEST(JinjaSyntax, MalformedInputsAreErrors) {
  for (const char* source :
       {"{{", "{{ 'abc }}", "{% if %}", "{{ a[ }}", "{#", "{{ ) }}", "{% endif %}", "{% set %}",
        "{{ a | }}", "{{ 1 $ 2 }}", "{% macro m( %}{% endmacro %}",
        "{% if x %}{% else %}{% else %}{% endif %}"}) {
    EXPECT_FALSE(ChatTemplate::parse(source).ok()) << source;
  }
}

TEST(JinjaSyntax, DeepNestingIsAnErrorNotACrash) {
  std::string deep(5000, '(');
  auto parsed = ChatTemplate::parse("{{ " + deep + "1" + std::string(5000, ')') + " }}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("nested too deeply"), std::string::npos);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::parse(ifs).ok());
  // Chains are parsed iteratively, but their trees would still be too deep to walk.
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_FALSE(ChatTemplate::parse(chain + " }}").ok());
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_FALSE(ChatTemplate::parse(filters + " }}").ok());
  std::string attrs = "{{ a";
  for (int i = 0; i < 100000; ++i) attrs += ".b";
  EXPECT_FALSE(ChatTemplate::parse(attrs + " }}").ok());
  // Moderate chains are fine.
  EXPECT_EQ(test::render("{{ 1" + std::string(" + 1") + " + 1 + 1 }}"), "4");
}

TEST(JinjaSyntax, DeepRecursionThroughNestedBlocksIsBounded) {
  // Each macro level nests many statements; the evaluation depth limit stops it first.
  std::string body;
  for (int i = 0; i < 60; ++i) body += "{% if true %}";
  body += "{{ f(n + 1) }}";
  for (int i = 0; i < 60; ++i) body += "{% endif %}";
  std::string out = test::render("{% macro f(n) %}" + body + "{% endmacro %}{{ f(0) }}");
  EXPECT_NE(out.find("ERROR: "), std::string::npos);
  EXPECT_NE(out.find("nested deeper"), std::string::npos) << out.substr(0, 300);
}

}  // namespace
}  // namespace moon
