// JSON Schema grammars, checked two ways: documents written by hand are accepted or refused
// as the schema says, and random walks of the automaton (taking any allowed token, over a
// vocabulary whose tokens straddle JSON's boundaries and split UTF-8 characters) always
// end in text that nlohmann parses and that an independent predicate per schema accepts.
#include "grammar/json_schema.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <regex>

#include "grammar/grammar_test_util.h"

namespace moon::grammar::test {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::shared_ptr<GrammarAutomaton> schema_automaton(
    const std::string& schema, std::shared_ptr<const TokenTrie> vocab = byte_vocab()) {
  auto gbnf = json_schema_to_gbnf(ojson::parse(schema));
  EXPECT_TRUE(gbnf.ok()) << (gbnf.ok() ? "" : gbnf.error().message);
  if (!gbnf.ok()) return nullptr;
  return automaton(*gbnf, std::move(vocab));
}

// Every byte, an end token, and tokens that cross JSON's structure and UTF-8 characters.
std::shared_ptr<const TokenTrie> mixed_vocab() {
  static const auto vocab = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
    pieces.emplace_back("");  // 256: end of generation
    for (const char* p :
         {"{\"",    "\":",      "\": ",  "\", \"", "\"}", "},{",      "[{\"", "}]",
          "\"]",    "true",     "null,", "fals",   "e}",  "\xC3\xA9", "\xC3", "\"\xC3",
          "\xA9\"", "\xE2\x82", "\xAC",  "1.",     "e+",  "e-0",      " \"",  "\n  ",
          "\\u00",  "\\n",      "\\\"",  "12",     "-1",  "00",       "0,",   "a\":\"b\"}",
          "name",   "age\":",   "-4",    ":\"",    "T1",  "Z\""}) {
      pieces.emplace_back(p);
    }
    return std::make_shared<const TokenTrie>(pieces, std::vector<bool>{},
                                             std::vector<int32_t>{256});
  }();
  return vocab;
}

// Walks the automaton taking allowed tokens at random, leaning towards closing quotes and
// brackets so documents end; nullopt when one runs past `max_bytes`.
std::optional<std::string> random_document(GrammarAutomaton& a, std::mt19937& rng,
                                           size_t max_bytes = 4000) {
  const TokenTrie& vocab = a.vocab();
  std::string text;
  int32_t s = a.start();
  while (text.size() < max_bytes) {
    const std::vector<uint64_t> bits = a.allowed_tokens(s);
    std::vector<int32_t> allowed, closers;
    bool end = false;
    for (int32_t id = 0; id < vocab.vocab_size(); ++id) {
      if (!((bits[id >> 6] >> (id & 63)) & 1)) continue;
      if (vocab.is_end_of_generation(id)) {
        end = true;
        continue;
      }
      allowed.push_back(id);
      const char c = vocab.piece(id)[0];
      if (c == '"' || c == ']' || c == '}') closers.push_back(id);
    }
    if (end && (allowed.empty() || a.accepts(s))) {
      EXPECT_TRUE(a.accepts(s)) << "the end was allowed before the text was complete: " << text;
      return text;
    }
    if (allowed.empty()) {
      ADD_FAILURE() << "nothing allowed after: " << text;
      return std::nullopt;
    }
    const auto& pool = !closers.empty() && rng() % 10 < 4 ? closers : allowed;
    const int32_t t = pool[rng() % pool.size()];
    text += vocab.piece(t);
    s = a.advance(s, vocab.piece(t));
    if (s == GrammarAutomaton::kDead) {
      ADD_FAILURE() << "an allowed token was rejected after: " << text;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

size_t codepoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool full_match(const std::string& s, const char* re) {
  return std::regex_match(s, std::regex(re));
}

// YYYY-MM-DD naming a day that exists (leap years included).
bool is_calendar_date(const std::string& s) {
  int y = 0, m = 0, d = 0;
  if (s.size() != 10 || std::sscanf(s.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3) return false;
  const bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
  const int days[] = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];
}

bool is_int_in(const json& j, int64_t lo, int64_t hi) {
  return j.is_number_integer() && j.get<int64_t>() >= lo && j.get<int64_t>() <= hi;
}

bool is_node(const json& j) {
  if (!j.is_object() || !j.contains("v") || !j["v"].is_number_integer()) return false;
  for (const auto& [k, _] : j.items()) {
    if (k != "v" && k != "kids") return false;
  }
  if (!j.contains("kids")) return true;
  if (!j["kids"].is_array() || j["kids"].size() > 2) return false;
  return std::all_of(j["kids"].begin(), j["kids"].end(), is_node);
}

struct SchemaCase {
  const char* name;
  const char* schema;
  std::function<bool(const ojson&)> valid;
};

const std::vector<SchemaCase>& schema_cases() {
  static const std::vector<SchemaCase> cases = {
      {"person",
       R"({"type": "object", "properties": {"name": {"type": "string"},
           "age": {"type": "integer", "minimum": 0, "maximum": 150},
           "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
           "required": ["name", "age"], "additionalProperties": false})",
       [](const ojson& j) {
         if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
         if (!j.contains("age") || !is_int_in(j["age"], 0, 150)) return false;
         std::vector<std::string> keys;
         for (const auto& [k, _] : j.items()) keys.push_back(k);
         const std::vector<std::string> order = {"name", "age", "tags"};
         if (!std::equal(keys.begin(), keys.end(), order.begin())) return false;  // declared order
         if (!j.contains("tags")) return true;
         return j["tags"].is_array() && j["tags"].size() <= 3 &&
                std::all_of(j["tags"].begin(), j["tags"].end(),
                            [](const ojson& t) { return t.is_string(); });
       }},
      {"enum", R"({"enum": ["red", "gr\"een", 3, null, {"a": [1, 2.5]}, "é€"]})",
       [](const ojson& j) {
         for (const char* v :
              {R"("red")", R"("gr\"een")", "3", "null", R"({"a": [1, 2.5]})", R"("é€")"}) {
           if (j == ojson::parse(v)) return true;
         }
         return false;
       }},
      {"anyOf",
       R"({"anyOf": [{"type": "integer", "exclusiveMinimum": -5, "maximum": -1},
                     {"type": "string", "minLength": 2, "maxLength": 4}]})",
       [](const ojson& j) {
         if (j.is_string()) {
           const size_t n = codepoints(j.get<std::string>());
           return n >= 2 && n <= 4;
         }
         return is_int_in(j, -4, -1);
       }},
      {"recursive $ref",
       R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
           "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
           "required": ["v"]}}, "$ref": "#/$defs/node"})",
       [](const ojson& j) { return is_node(json::parse(j.dump())); }},
      {"pattern", R"({"type": "string", "pattern": "^[A-Z]{2}-\\d{3}(x|yz)?$"})",
       [](const ojson& j) {
         return j.is_string() && full_match(j.get<std::string>(), "[A-Z]{2}-[0-9]{3}(x|yz)?");
       }},
      {"formats",
       R"({"type": "object", "properties": {"d": {"type": "string", "format": "date"},
           "u": {"type": "string", "format": "uuid"}, "t": {"type": "string", "format": "date-time"},
           "ip": {"type": "string", "format": "ipv4"}, "e": {"type": "string", "format": "email"}},
           "required": ["d", "u", "t", "ip", "e"]})",
       [](const ojson& j) {
         const auto str = [&](const char* k) { return j.at(k).get<std::string>(); };
         const char* octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
         const std::string ipv4 =
             std::string(octet) + "\\." + octet + "\\." + octet + "\\." + octet;
         return full_match(str("d"), "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])") &&
                full_match(str("u"), "[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}") &&
                full_match(str("t"),
                           "[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\."
                           "[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})") &&
                full_match(str("ip"), ipv4.c_str()) &&
                full_match(str("e"), "[^@\\s]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+");
       }},
      {"prefixItems",
       R"({"type": "array", "prefixItems": [{"type": "boolean"}, {"const": "x"}],
           "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 5})",
       [](const ojson& j) {
         if (!j.is_array() || j.size() < 3 || j.size() > 5) return false;
         if (!j[0].is_boolean() || j[1] != "x") return false;
         for (size_t i = 2; i < j.size(); ++i) {
           if (!j[i].is_number() || j[i].get<double>() < 0 || !std::isfinite(j[i].get<double>()))
             return false;
         }
         return true;
       }},
      {"type list", R"({"type": ["string", "null", "boolean"]})",
       [](const ojson& j) { return j.is_string() || j.is_null() || j.is_boolean(); }},
      {"nullable", R"({"type": "number", "nullable": true})",
       [](const ojson& j) {
         return j.is_null() || (j.is_number() && std::isfinite(j.get<double>()));
       }},
      {"three characters", R"({"type": "string", "minLength": 3, "maxLength": 3})",
       [](const ojson& j) { return j.is_string() && codepoints(j.get<std::string>()) == 3; }},
      {"map of integers", R"({"type": "object", "additionalProperties": {"type": "integer"}})",
       [](const ojson& j) {
         return j.is_object() && std::all_of(j.begin(), j.end(),
                                             [](const ojson& v) { return v.is_number_integer(); });
       }},
      {"optional properties",
       R"({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"},
           "c": {"type": "integer", "minimum": 10, "maximum": 12}}, "required": ["b"]})",
       [](const ojson& j) {
         if (!j.is_object() || !j.contains("b") || !j["b"].is_null()) return false;
         if (j.contains("a") && !j["a"].is_boolean()) return false;
         if (j.contains("c") && !is_int_in(j["c"], 10, 12)) return false;
         return j.size() == size_t{1} + j.contains("a") + j.contains("c");
       }},
      {"array of objects",
       R"({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"},
           "ok": {"type": "boolean"}}, "required": ["id", "ok"], "additionalProperties": false},
           "minItems": 1, "maxItems": 3})",
       [](const ojson& j) {
         if (!j.is_array() || j.empty() || j.size() > 3) return false;
         return std::all_of(j.begin(), j.end(), [](const ojson& o) {
           return o.is_object() && o.size() == 2 && o.contains("id") &&
                  o["id"].is_number_integer() && o.contains("ok") && o["ok"].is_boolean();
         });
       }},
      {"any value", R"({})", [](const ojson&) { return true; }},
      {"calendar dates",
       R"({"type": "array", "items": {"type": "string", "format": "date"}, "minItems": 4, "maxItems": 8})",
       [](const ojson& j) {
         return j.is_array() && std::all_of(j.begin(), j.end(), [](const ojson& d) {
                  return is_calendar_date(d.get<std::string>());
                });
       }},
      {"what zod sends",
       R"({"type": "object", "properties": {
           "n": {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991},
           "p": {"type": "number", "exclusiveMinimum": 0},
           "day": {"type": "string", "format": "date", "pattern": "^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|(?:02)-(?:0[1-9]|1\\d|2[0-8])))$"},
           "mail": {"type": "string", "format": "email", "pattern": "^(?!\\.)(?!.*\\.\\.)([A-Za-z0-9_'+\\-\\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$"},
           "tags": {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {"type": "boolean"}}},
         "required": ["n", "p", "day", "mail", "tags", "extra"]})",
       [](const ojson& j) {
         // zod's own email pattern, by std::regex (ECMAScript, which has lookahead).
         const std::regex mail(
             R"((?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,})");
         return j.is_object() && j["n"].is_number_integer() &&
                std::fabs(j["n"].get<double>()) <= 9007199254740991.0 && j["p"].is_number() &&
                j["p"].get<double>() > 0 && is_calendar_date(j["day"].get<std::string>()) &&
                std::regex_match(j["mail"].get<std::string>(), mail) && j["tags"].is_object() &&
                std::all_of(j["tags"].begin(), j["tags"].end(),
                            [](const ojson& v) { return v.is_boolean(); }) &&
                j.contains("extra");
       }},
  };
  return cases;
}

TEST(JsonSchema, RandomWalksAlwaysEndInValidDocuments) {
  std::mt19937 rng(5);
  for (const SchemaCase& c : schema_cases()) {
    SCOPED_TRACE(c.name);
    auto a = schema_automaton(c.schema, mixed_vocab());
    ASSERT_TRUE(a);
    int finished = 0;
    for (int walk = 0; walk < 150; ++walk) {
      const std::optional<std::string> doc = random_document(*a, rng);
      if (!doc) continue;
      ++finished;
      ojson j;
      try {
        j = ojson::parse(*doc);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not JSON (" << e.what() << "): " << *doc;
        continue;
      }
      EXPECT_TRUE(c.valid(j)) << "the schema rejects: " << *doc;
    }
    EXPECT_GE(finished, 120) << "too many walks ran away: the test says little";
  }
}

TEST(JsonSchema, AnyJsonObject) {
  auto a = automaton(json_object_gbnf(), mixed_vocab());
  ASSERT_TRUE(a);
  std::mt19937 rng(9);
  for (int walk = 0; walk < 150; ++walk) {
    const std::optional<std::string> doc = random_document(*a, rng);
    if (!doc) continue;
    ojson j;
    ASSERT_NO_THROW(j = ojson::parse(*doc)) << *doc;
    EXPECT_TRUE(j.is_object()) << *doc;
  }
  for (const char* ok :
       {"{}", R"({"a": [1, {"b": null}], "c": "\u00e9\n"})", "{\n  \"x\": -0.5e+3}"}) {
    EXPECT_EQ(match(*a, ok), Match::kComplete) << ok;
  }
  for (const char* bad : {"[]", "\"a\"", "{\"a\" 1}", "{\"a\": 01}", "{\"a\": \"\\ud800\"}",
                          "{\"a\": tru}", "{,}", "{\"a\": 1,}"}) {
    EXPECT_NE(match(*a, bad), Match::kComplete) << bad;
  }
}

TEST(JsonSchema, HandWrittenDocuments) {
  struct Case {
    const char* schema;
    std::vector<const char*> accepted, refused;
  };
  const Case cases[] = {
      {R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name", "age"], "additionalProperties": false})",
       {R"({"name":"Bo","age":7})", R"({ "name": "Bö \"x\"", "age": -12 })",
        "{\n  \"name\": \"\",\n  \"age\": 0\n}"},
       {R"({"name":"Bo"})", R"({"name":"Bo","age":7,"x":1})", R"({"name":"Bo","age":7.5})",
        R"({"name":1,"age":7})", R"({"name":"Bo","age":07})"}},
      {R"({"type": "object", "properties": {"a\"b\\c": {"const": "é\n"}}, "required": ["a\"b\\c"]})",
       {R"({"a\"b\\c": "é\n"})"},
       {R"({"a\"b\\c": "é"})", R"({"ab\\c": "é\n"})"}},
      {R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})",
       {"[1,2]", "[ 1, 2, 3 ]"},
       {"[]", "[1]", "[1,2,3,4]", "[1,\"2\"]"}},
      {R"({"type": "string", "maxLength": 0})", {"\"\""}, {"\"a\""}},
      {R"({"type": "string", "pattern": "^a+\"b$"})", {R"("aa\"b")"}, {R"("aa"b")", R"("b")"}},
      {R"({"type": "number", "minimum": 0})", {"0", "1.5", "3e-2"}, {"-1", "-0.5"}},
      {R"({"type": "boolean"})", {"true", "false"}, {"1", "\"true\""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.schema);
    auto a = schema_automaton(c.schema);
    ASSERT_TRUE(a);
    for (const char* doc : c.accepted) EXPECT_EQ(match(*a, doc), Match::kComplete) << doc;
    for (const char* doc : c.refused) EXPECT_NE(match(*a, doc), Match::kComplete) << doc;
  }
}

// Integer bounds become a digit grammar: compare it with the arithmetic on every integer
// near each range.
TEST(JsonSchema, IntegerBoundsExactly) {
  struct Range {
    const char* schema;
    int64_t lo, hi;
  };
  for (const Range& r : std::initializer_list<Range>{
           {R"({"type": "integer", "minimum": -13, "maximum": 127})", -13, 127},
           {R"({"type": "integer", "minimum": 0, "maximum": 0})", 0, 0},
           {R"({"type": "integer", "minimum": 7, "maximum": 1000})", 7, 1000},
           {R"({"type": "integer", "minimum": -1000, "maximum": -7})", -1000, -7},
           {R"({"type": "integer", "exclusiveMinimum": 99, "exclusiveMaximum": 1001})", 100, 1000},
           {R"({"type": "integer", "minimum": 2.5, "maximum": 19.9})", 3, 19},
           {R"({"type": "integer", "minimum": 95})", 95, 9999999999999999},
           {R"({"type": "integer", "maximum": -95})", -9999999999999999, -95},
       }) {
    SCOPED_TRACE(r.schema);
    auto a = schema_automaton(r.schema);
    ASSERT_TRUE(a);
    const int64_t from = std::max<int64_t>(r.lo, -2000) - 60,
                  to = std::min<int64_t>(r.hi, 2000) + 60;
    for (int64_t v = from; v <= to; ++v) {
      EXPECT_EQ(match(*a, std::to_string(v)) == Match::kComplete, v >= r.lo && v <= r.hi) << v;
    }
    EXPECT_NE(match(*a, "-0"), Match::kComplete);
    EXPECT_NE(match(*a, "1.0"), Match::kComplete);
  }
}

// Schemas built to make a grammar engine blow up: huge bounds, deep nesting, big enums and
// nested repetitions. Each must compile at once and stay small while text is matched: the
// repetitions are rules the automaton walks, never unrolled copies.
TEST(JsonSchema, AdversarialSchemasStaySmall) {
  std::string nested = R"({"type": "integer"})";
  for (int i = 0; i < 60; ++i) nested = R"({"type": "array", "items": )" + nested + "}";
  std::string big_enum = R"({"enum": [)";
  for (int i = 0; i < 4000; ++i)
    big_enum += (i ? "," : "") + fmt::format(R"("{}{}")", std::string(40, 'x'), i);
  big_enum += "]}";
  const std::vector<std::string> schemas = {
      R"({"type": "string", "maxLength": 10000})",
      R"({"type": "string", "minLength": 10000})",
      R"({"type": "array", "items": {"type": "string", "maxLength": 10000}, "minItems": 10000, "maxItems": 10000})",
      R"({"type": "string", "pattern": "^((a{1,100}){1,100}){1,100}$"})",
      R"({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991})",
      nested,
      big_enum,
  };
  std::mt19937 rng(4);
  for (const std::string& schema : schemas) {
    SCOPED_TRACE(schema.substr(0, 120));
    auto a = schema_automaton(schema);
    ASSERT_TRUE(a);
    int32_t s = a->start();
    for (int step = 0; step < 400 && s != GrammarAutomaton::kDead; ++step) {
      const std::vector<uint64_t> bits = a->allowed_tokens(s);
      std::vector<int> ok;
      for (int b = 0; b < 256; ++b) {
        if ((bits[b >> 6] >> (b & 63)) & 1) ok.push_back(b);
      }
      if (ok.empty()) break;
      const char c = static_cast<char>(ok[rng() % ok.size()]);
      s = a->advance(s, std::string_view(&c, 1));
    }
    const auto stats = a->stats();
    EXPECT_LT(stats.states, 5000);
    EXPECT_LT(stats.stack_nodes, 200000);
  }
}

TEST(JsonSchema, UnsupportedSchemasAreRefusedByName) {
  struct Case {
    const char* schema;
    const char* needle;
  };
  for (
      const Case& c : std::initializer_list<Case>{
          {R"({"type": "object", "properties": {"x": {"type": "object", "patternProperties": {}}}})",
           "at '#/properties/x': unsupported JSON Schema keyword 'patternProperties'"},
          {R"({"$ref": "#/$defs/missing"})", "points at nothing"},
          {R"({"$ref": "https://example.com/s.json"})", "only local $ref"},
          {R"({"type": "string", "minLength": -1})", "'minLength' must be an integer"},
          {R"({"type": "number", "maximum": 3})", "bounds on a 'number'"},
          {R"({"type": "string", "format": "hostname"})", "unsupported string format 'hostname'"},
          {R"({"items": false, "prefixItems": [{}], "minItems": 2})", "'minItems' exceeds"},
          {R"({"not": {}})", "unsupported JSON Schema keyword 'not'"},
          {R"({"type": "object", "required": ["a"], "additionalProperties": false})",
           "required property 'a' is not in 'properties', and 'additionalProperties' is false"},
          {R"({"type": "object", "propertyNames": {"pattern": "^a"}})",
           "'propertyNames' is supported only"},
          {R"({"type": "number", "exclusiveMinimum": 1})", "bounds on a 'number'"},
          {R"({"type": "integer", "minimum": 5, "maximum": 4})", "leave no value"},
          {R"({"type": "string", "pattern": "(a)\\1"})", "'pattern': "},
          {R"({"type": "decimal"})", "unknown type 'decimal'"},
          {R"(false)", "matches nothing"},
      }) {
    auto r = json_schema_to_gbnf(ojson::parse(c.schema));
    ASSERT_FALSE(r.ok()) << c.schema;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.schema << " -> " << r.error().message;
  }
}

TEST(JsonSchema, ChoiceMatchesExactlyOneOption) {
  auto a = automaton(choice_gbnf({"yes", "no", "n/a \"quoted\"", "é"}));
  ASSERT_TRUE(a);
  for (const char* ok : {"yes", "no", "n/a \"quoted\"", "é"})
    EXPECT_EQ(match(*a, ok), Match::kComplete) << ok;
  EXPECT_EQ(match(*a, "ye"), Match::kPrefix);
  for (const char* bad : {"yess", "", "No", "n/a"})
    EXPECT_NE(match(*a, bad), Match::kComplete) << bad;
}

}  // namespace
}  // namespace moon::grammar::test
