// Runtime errors: template-raised exceptions, type errors, unknown names, and the limits
// that stop runaway templates. All must come back as Errors, never crashes.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace moon {
namespace {

using test::render;

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessage) {
  std::string out =
      render("ok\n{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}");
  EXPECT_TRUE(has(out, "ERROR: ")) << out;
  EXPECT_TRUE(has(out, "Roles must alternate")) << out;
  EXPECT_TRUE(has(out, "line 2")) << out;
}

TEST(JinjaErrors, UnknownFilterAndTest) {
  std::string filter = render("{{ 'x' | frobnicate }}");
  EXPECT_TRUE(has(filter, "ERROR: ") && has(filter, "unknown filter 'frobnicate'")) << filter;
  std::string test = render("{{ 'x' is frobnicated }}");
  EXPECT_TRUE(has(test, "ERROR: ") && has(test, "unknown test 'frobnicated'")) << test;
}

TEST(JinjaErrors, TypeErrorsAreClear) {
  EXPECT_TRUE(has(render("{{ 'a' + 1 }}"), "unsupported operand types for +: string and integer"));
  EXPECT_TRUE(has(render("{{ 1 / 0 }}"), "division by zero"));
  EXPECT_TRUE(has(render("{{ 1 // 0 }}"), "division or modulo by zero"));
  EXPECT_TRUE(has(render("{{ [1] < 'a' }}"), "not supported"));
  EXPECT_TRUE(has(render("{{ missing + 1 }}"), "'missing' is undefined"));
  EXPECT_TRUE(has(render("{{ nothing() }}"), "'nothing' is undefined and cannot be called"));
  EXPECT_TRUE(has(render("{{ 'abc'.nosuch() }}"), "cannot be called"));
  EXPECT_TRUE(has(render("{{ 5() }}"), "not callable"));
  EXPECT_TRUE(has(render("{% for a, b in [[1]] %}{% endfor %}"), "unpack"));
  EXPECT_TRUE(has(render("{% set x = 1 %}{% set x.y = 2 %}"), "not a namespace"));
  EXPECT_TRUE(has(render("{{ 9223372036854775807 + 1 }}"), "overflow"));
  EXPECT_TRUE(has(render("{{ [1,2][::0] }}"), "step cannot be zero"));
}

TEST(JinjaErrors, RecursionLimit) {
  std::string out = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_TRUE(has(out, "ERROR: ") && has(out, "recursion")) << out.substr(0, 200);
}

TEST(JinjaErrors, LoopAndSizeLimits) {
  auto nested = ChatTemplate::parse(
      "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}");
  ASSERT_TRUE(nested.ok());
  jinja::Limits limits;
  limits.max_loop_iterations = 5000;
  nested->set_limits(limits);
  auto loops = nested->render_ordered(nlohmann::ordered_json::array(), false);
  ASSERT_FALSE(loops.ok());
  EXPECT_TRUE(has(loops.error().message, "loop iterations")) << loops.error().message;
  std::string range = render("{{ range(100000000) | length }}");
  EXPECT_TRUE(has(range, "range larger than")) << range.substr(0, 200);
  std::string big = render("{{ 'x' * 1000000000000 }}");
  EXPECT_TRUE(has(big, "too large")) << big.substr(0, 200);
  std::string doubling = render(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}");
  EXPECT_TRUE(has(doubling, "too large")) << doubling.substr(0, 200);
}

TEST(JinjaErrors, OutputLimit) {
  auto parsed = ChatTemplate::parse("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}");
  ASSERT_TRUE(parsed.ok());
  jinja::Limits limits;
  limits.max_output_bytes = 100000;
  parsed->set_limits(limits);
  auto rendered = parsed->render_ordered(nlohmann::ordered_json::array(), false);
  ASSERT_FALSE(rendered.ok());
  EXPECT_TRUE(has(rendered.error().message, "output exceeds")) << rendered.error().message;
}

TEST(JinjaErrors, BuiltBytesLimit) {
  // Each value is small, but together they would exhaust memory.
  auto parsed = ChatTemplate::parse(
      "{% set l = [] %}{% for i in range(100) %}{% set _ = l.append('x' * 100000) %}{% endfor %}"
      "{{ l | length }}");
  ASSERT_TRUE(parsed.ok());
  jinja::Limits limits;
  limits.max_built_bytes = 1000000;
  parsed->set_limits(limits);
  auto rendered = parsed->render_ordered(nlohmann::ordered_json::array(), false);
  ASSERT_FALSE(rendered.ok());
  EXPECT_TRUE(has(rendered.error().message, "built more than")) << rendered.error().message;
  parsed->set_limits(jinja::Limits{});
  auto fine = parsed->render_ordered(nlohmann::ordered_json::array(), false);
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  EXPECT_EQ(fine.value(), "100");
}

TEST(JinjaErrors, BadArgumentsToRender) {
  auto parsed = ChatTemplate::parse("{{ messages }}");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->render(nlohmann::json::object(), false, nlohmann::json::object()).ok());
  EXPECT_FALSE(parsed->render(nlohmann::json::array(), false, nlohmann::json::array()).ok());
}

TEST(ChatTemplateApi, RendersChatMessagesWithExtraFields) {
  auto parsed = ChatTemplate::parse(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | "
      "tojson }}{% endif %}"
      "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}");
  ASSERT_TRUE(parsed.ok());
  ChatMessage user{"user", "hi"};
  ChatMessage call{"assistant", ""};
  call.extra["tool_calls"] =
      nlohmann::ordered_json::parse(R"([{"name": "f", "arguments": {"z": 1, "a": 2}}])");
  auto out = parsed->render({user, call}, true, {{"eos_token", "</s>"}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out.value(),
            R"(<user>hi<assistant>[{"name": "f", "arguments": {"z": 1, "a": 2}}]<assistant></s>)");

  nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", "x"}}});
  auto plain = parsed->render(messages, false, nlohmann::json{{"eos_token", "E"}});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain.value(), "<user>xE");
}

}  // namespace
}  // namespace moon
