// Statements, expressions, filters, tests and methods, as real chat templates use them.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace moon {
namespace {

using nlohmann::ordered_json;
using test::render;

TEST(JinjaStatements, IfElifElse) {
  const char* t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(t, {{"x", 1}}), "one");
  EXPECT_EQ(render(t, {{"x", 2}}), "two");
  EXPECT_EQ(render(t, {{"x", 3}}), "many");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ x }}"
                   "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{{ loop.length }} "
                   "{% endfor %}"),
            "10aF3 21b3 32cL3 ");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"),
            "-2,1-3,2-,");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }},{% endfor %}"),
            "15,35,55,75,95,");
  EXPECT_EQ(render("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 "
                   "%}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "013");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   {{"d", {{"z", 1}, {"a", 2}}}}),
            "z=1;a=2;");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "ba");
  EXPECT_EQ(render("{% for c in 'h\xC3\xA9' %}[{{ c }}]{% endfor %}"), "[h][\xC3\xA9]");
}

TEST(JinjaStatements, LoopScopeDoesNotLeakButNamespaceDoes) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1, y='a') %}{% for i in [5,6] %}{% set ns.x = ns.x + i "
                   "%}{% endfor %}{{ ns.x }}{{ ns.y }}"),
            "12a");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.v = 3 %}{{ ns.v }}"), "3");
}

TEST(JinjaStatements, SetForms) {
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set block %}x{{ 1 + 1 }}{% endset %}[{{ block }}]"), "[x2]");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages | length }}",
                   {{"messages", ordered_json::array({1, 2, 3})}}),
            "2");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}"),
            "Hi a! Hi b? Hi c.");
  EXPECT_EQ(
      render(
          "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"),
      "321");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 2 }} "
                   "{{ 3 * 1.5 }} {{ 10 - 4 }}"),
            "3 -4 1 2 1024 0.5 4.5 6");
  EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ 'n' ~ 1 ~ none }}"),
            "ababab [1, 2] ab n1None");
  EXPECT_EQ(render("{{ '%s=%s' % ('a', 1) }} {{ '%s!' % 'hi' }}"), "a=1 hi!");
  EXPECT_EQ(render("{{ -x }} {{ (1 + 2) * 3 }} {{ 1 + 2 * 3 }}", {{"x", 5}}), "-5 9 7");
}

TEST(JinjaExpressions, ComparisonsAndLogic) {
  EXPECT_EQ(render("{{ 1 < 2 }} {{ 'a' >= 'b' }} {{ 1 == 1.0 }} {{ [1,2] == [1,2] }} {{ 1 != 2 }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ none or [] }}"), "x y True []");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}"),
            "True True True True");
  EXPECT_EQ(render("{{ 'yes' if x else 'no' }}{{ 'only' if x }}", {{"x", false}}), "no");
  EXPECT_EQ(render("{{ x is not none }} {{ not x is defined }}", {{"x", nullptr}}), "False False");
}

TEST(JinjaExpressions, SubscriptsAndSlices) {
  ordered_json vars = {{"l", {1, 2, 3, 4}}, {"s", "h\xC3\xA9llo"}};
  EXPECT_EQ(
      render(
          "{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[10] }}",
          vars),
      "1 4 [2, 3, 4] [1, 2] [4, 3, 2, 1] [1, 3] ");
  EXPECT_EQ(render("{{ s[1] }} {{ s[:-1] }} {{ s[::-1] }} {{ s | length }}", vars),
            "\xC3\xA9 h\xC3\xA9ll oll\xC3\xA9h 5");
  EXPECT_EQ(render("{{ m.role }}{{ m['content'] }}", {{"m", {{"role", "u"}, {"content", "c"}}}}),
            "uc");
}

TEST(JinjaExpressions, UndefinedIsLenient) {
  EXPECT_EQ(render("[{{ missing }}][{{ missing.attr.deeper }}][{{ missing['k'] }}]"), "[][][]");
  EXPECT_EQ(
      render("{{ missing is defined }} {{ missing is undefined }} {{ missing | default('d') }}"),
      "False True d");
  EXPECT_EQ(render("{% if missing %}x{% else %}y{% endif %}{% for a in missing %}z{% endfor %}"),
            "y");
  EXPECT_EQ(render("{{ 'a' in missing }} {{ missing | length }}"), "False 0");
}

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render("{{ '  a b  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello "
                   "world' | title }}|{{ 'hELLO' | capitalize }}"),
            "a b|ABC|abc|Hello World|Hello");
  EXPECT_EQ(render("{{ 'aXbXc' | replace('X', '-') }} {{ 'aaa' | replace('a', 'b', 2) }}"),
            "a-b-c bba");
  EXPECT_EQ(render("{{ 3 | string ~ 'x' }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float "
                   "}} {{ 3.9 | int }}"),
            "3x 43 0 2.5 3");
  EXPECT_EQ(render("{{ ['a', 'b'] | join(', ') }} {{ [1, 2] | join }}"), "a, b 12");
  EXPECT_EQ(render("{{ none | default('d') }} {{ '' | default('d', true) }} {{ '' | d('e', "
                   "boolean=true) }}"),
            "None d e");
  EXPECT_EQ(render("{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ 'xyz' | first }}{{ [3, 1, 2] | "
                   "sort | list }}"),
            "32x[1, 2, 3]");
  EXPECT_EQ(render("{{ 'a\nb' | indent(2) }}|{{ 'a<b' | e }}|{{ 'x' | safe }}"), "a\n  b|a&lt;b|x");
}

TEST(JinjaFilters, ToJson) {
  ordered_json vars = ordered_json::parse(
      R"({"t": {"name": "f", "params": {"b": 1, "a": [true, null, 1.5, "\u00e9\"\n"]}}})");
  EXPECT_EQ(render("{{ t | tojson }}", vars),
            R"({"name": "f", "params": {"b": 1, "a": [true, null, 1.5, "é\"\n"]}})");
  EXPECT_EQ(render("{{ t | tojson(indent=2) }}", vars),
            "{\n  \"name\": \"f\",\n  \"params\": {\n    \"b\": 1,\n    \"a\": [\n      true,\n    "
            "  null,\n      1.5,\n"
            "      \"é\\\"\\n\"\n    ]\n  }\n}");
  EXPECT_EQ(render("{{ [] | tojson(indent=4) }}{{ {} | tojson }}{{ 'x' | tojson }}"), "[]{}\"x\"");
}

TEST(JinjaFilters, SelectMapItems) {
  ordered_json vars = {
      {"ms",
       {{{"role", "user"}, {"c", 1}}, {{"role", "bot"}, {"c", 2}}, {{"role", "user"}, {"c", 3}}}}};
  EXPECT_EQ(
      render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | list }}", vars),
      "[1, 3]");
  EXPECT_EQ(
      render("{{ ms | rejectattr('role', 'eq', 'user') | map(attribute='c') | join(',') }}", vars),
      "2");
  EXPECT_EQ(
      render("{{ [1, 0, 2] | select | list }} {{ ['a', 'b'] | reject('equalto', 'a') | list }}"),
      "[1, 2] ['b']");
  EXPECT_EQ(render("{{ ['a', 'b'] | map('upper') | join }}"), "AB");
  EXPECT_EQ(render("{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}"), "x1");
  EXPECT_EQ(render("{{ ms | selectattr('c') | list | length }}", vars), "3");
}

TEST(JinjaTests, TypeTests) {
  EXPECT_EQ(render("{{ 'a' is string }}{{ 1 is number }}{{ {} is mapping }}{{ [] is iterable }}{{ "
                   "'a' is sequence }}"
                   "{{ true is boolean }}{{ true is true }}{{ 0 is false }}{{ none is none }}{{ 3 "
                   "is odd }}{{ 4 is divisibleby 2 }}"),
            "TrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrue");
  EXPECT_EQ(
      render("{{ 2 is in [1, 2] }}{{ 'a' is equalto('a') }}{{ x is not string }}", {{"x", 1}}),
      "TrueTrueTrue");
}

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a-b-c'.split('-', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b-c']");
  EXPECT_EQ(
      render("{{ 'xxhixx'.strip('x') }}|{{ '\n\nhi\n'.lstrip('\n') }}|{{ 'hi  '.rstrip() }}|"),
      "hi|hi\n|hi|");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ "
                   "'ab'.upper() }}{{ 'AB'.lower() }}"),
            "TrueTrueABab");
  EXPECT_EQ(render("{{ '{} and {name}'.format(1, name='n') }} {{ 'a b'.title() }} {{ "
                   "'aXa'.replace('a', 'b') }}"),
            "1 and n A B bXb");
  EXPECT_EQ(render("{{ '</think>x'.split('</think>')[-1] }}"), "x");
}

TEST(JinjaMethods, DictAndListMethods) {
  ordered_json vars = {{"d", {{"a", 1}, {"b", 2}}}};
  EXPECT_EQ(render("{{ d.keys() | list }} {{ d.values() | list }} {{ d.get('a') }} {{ d.get('z', "
                   "9) }} {{ d.get('z') }}",
                   vars),
            "['a', 'b'] [1, 2] 1 9 None");
  EXPECT_EQ(render("{% set l = [] %}{% set _ = l.append(1) %}{% set _ = l.append(2) %}{{ l }} {{ "
                   "l.pop() }} {{ l }}"),
            "[1, 2] 2 [1]");
}

TEST(JinjaGlobals, RangeNamespaceStrftime) {
  EXPECT_EQ(
      render("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }}"),
      "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
  ordered_json vars = {{"date_string", "25 Nov 2026"}};
  EXPECT_EQ(render("{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%d %b %Y') }}|{{ "
                   "strftime_now('%A %Y-%m-%d') }}",
                   vars),
            "November 25, 2026|25 Nov 2026|Wednesday 2026-11-25");
  EXPECT_EQ(render("{{ strftime_now is defined }}"), "True");
  EXPECT_EQ(render("{{ dict(a=1) | tojson }}"), "{\"a\": 1}");
}

}  // namespace
}  // namespace moon

namespace moon::jinja {
namespace {

// Found by fuzz_jinja (corpus: leak-self-reference): `{% set ns.n = ns %}` made a namespace
// hold itself, and reference counting never freed it. An arena's containers are emptied when
// it ends, so cycles made inside a render go with it; those made outside it are left alone.
TEST(JinjaMemory, ContainersThatHoldThemselvesAreFreedWithTheirArena) {
  std::weak_ptr<Dict> dict_alive;
  std::weak_ptr<List> list_alive;
  Value outside = Value::dict();
  {
    ContainerArena arena;
    auto dict = std::make_shared<Dict>();  // as Value::dict() makes them, watched
    auto list = std::make_shared<List>();
    ContainerArena::note(dict);
    ContainerArena::note(list);
    dict_alive = dict;
    list_alive = list;
    Value ns(dict), l(list);
    ns.as_dict().set("self", ns);
    l.as_list().push_back(l);
    l.as_list().push_back(Value::dict());  // made through the factory: freed too
    outside.as_dict().set("kept", Value(int64_t{7}));
  }
  EXPECT_TRUE(dict_alive.expired());
  EXPECT_TRUE(list_alive.expired());
  ASSERT_NE(outside.as_dict().find("kept"), nullptr);  // made before the arena: untouched
}

TEST(JinjaMemory, ARenderThatMakesASelfReferenceRendersAndEnds) {
  EXPECT_EQ(test::render("{% set ns = namespace(n=1) %}{% set ns.me = ns %}{{ ns.me.me.n }}"), "1");
  // Printing, serializing or comparing it is an error, not a stack overflow (fuzz_jinja's
  // corpus: leak-self-reference).
  for (const char* use : {"{{ ns }}", "{{ ns | tojson }}", "{{ ns == ns.me }}", "{{ [l] }}"}) {
    const std::string out =
        test::render(std::string("{% set ns = namespace(n=1) %}{% set ns.me = ns %}{% set l = [] %}"
                                 "{% set _ = l.append(l) %}") +
                     use);
    EXPECT_NE(out.find("ERROR: "), std::string::npos) << use << ": " << out.substr(0, 200);
    EXPECT_NE(out.find("nested"), std::string::npos) << use << ": " << out.substr(0, 200);
  }
}

}  // namespace
}  // namespace moon::jinja
