// Regular expressions turned into grammars, against PCRE2 as the oracle: for random strings,
// the grammar accepts exactly what PCRE2 matches whole, and rejects a prefix exactly when
// PCRE2 (partial matching) says no match can start that way.
#include "grammar/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <gtest/gtest.h>
#include <pcre2.h>

#include <random>

#include "grammar/grammar_test_util.h"
#include "util/utf8.h"

namespace moon::grammar::test {
namespace {

class Pcre {
 public:
  // Anchored at both ends by \z, which (unlike PCRE2_ENDANCHORED) works with partial matching.
  explicit Pcre(const std::string& p) {
    const std::string pattern = "(?:" + p + ")\\z";
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_ANCHORED | PCRE2_NO_START_OPTIMIZE, &err, &offset, nullptr);
    data_ = code_ ? pcre2_match_data_create_from_pattern(code_, nullptr) : nullptr;
  }
  ~Pcre() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  bool ok() const { return code_ != nullptr; }
  int run(const std::string& s, uint32_t options) const {
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, options, data_,
                       nullptr);
  }
  bool full(const std::string& s) const { return run(s, 0) >= 0; }
  bool viable(const std::string& s) const {
    if (s.empty()) return true;  // PCRE2 reports no partial match before the first character
    const int rc = run(s, PCRE2_PARTIAL_HARD);
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

TEST(Regex, AgreesWithPcre2OnRandomStrings) {
  struct Case {
    const char* pattern;
    const char* alphabet;
  };
  const Case cases[] = {
      {"abc", "abcx"},
      {"a|bc|", "abc"},
      {"^(ab|a)*c$", "abc"},
      {"[a-c]+x?", "abcx-"},
      {"[^a-c]{2,3}", "abcxy"},
      {"\\d{3}-\\d{2,}", "01-a"},
      {"\\w+@\\w+\\.(io|org)", "a_@.io"},
      {"(?:x|yz){1,3}q", "xyzq"},
      {"(?<year>\\d{4})-(0[1-9]|1[0-2])", "0129-"},
      {"a.c", "abc\n"},
      {"[\\s,]*\\S", " ,\ta"},
      {"\\D\\W", "a1 -"},
      {"[-a]b{0}c", "-abc"},
      {"x{2}y{0,1}z+?", "xyz"},
      {"é+[α-γ]?",
       "\xC3\xA9\xCE\xB1\xCE\xB3"
       "a"},
      {"[\\x41-\\x43\\x{e9}]+",
       "ABD"
       "\xC3\xA9"},
      {"(\\.|\\*|\\+|\\(|\\)|\\[|\\]|\\{|\\}|\\?|\\|)+", ".*+()[]{}?|a"},
      {"(a|b)*abb", "ab"},
      // Repetitions of what can be empty (found by fuzzing: the grammar was refused as
      // left-recursive).
      {"(a|){3,}b", "ab"},
      {"(|ab)*c", "abc"},
      {"((x?)*y)+", "xy"},
  };
  std::mt19937 rng(11);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pattern);
    Pcre pcre(c.pattern);
    ASSERT_TRUE(pcre.ok());
    auto gbnf = regex_to_gbnf(c.pattern);
    ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
    auto a = automaton("root ::= " + *gbnf);
    ASSERT_TRUE(a);
    // Whole characters: PCRE2 cannot judge a string that ends inside one.
    std::vector<std::string> alphabet;
    for (std::string_view rest = c.alphabet; !rest.empty();) {
      const size_t n = utf8::valid_char_length(rest);
      ASSERT_GT(n, 0u) << "the alphabet must be valid UTF-8";
      alphabet.emplace_back(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    int complete = 0;
    for (int i = 0; i < 20000; ++i) {
      std::string s;
      const size_t len = rng() % 9;
      for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
      const Match m = match(*a, s);
      EXPECT_EQ(m == Match::kComplete, pcre.full(s)) << "'" << s << "'";
      EXPECT_EQ(m != Match::kRejected, pcre.viable(s)) << "'" << s << "'";
      complete += m == Match::kComplete;
    }
    EXPECT_GT(complete, 0) << "no random string matched: the comparison says little";
  }
}

TEST(Regex, DeeplyNestedGroupsAreRefusedNotRecursedInto) {
  // Found by fuzzing: a few hundred '(' overflowed the parser's stack under ASan.
  for (size_t depth : {101u, 100000u}) {
    auto r = regex_to_gbnf(std::string(depth, '(') + "a" + std::string(depth, ')'));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("groups nest deeper than 100"), std::string::npos)
        << r.error().message;
  }
  EXPECT_TRUE(regex_to_gbnf(std::string(100, '(') + "a" + std::string(100, ')')).ok());
}

TEST(Regex, InsideJsonStringsSpecialCharactersAreEscaped) {
  auto gbnf = regex_to_gbnf("a\"[\\\\\\n]b.", RegexContext::kJsonString);
  ASSERT_TRUE(gbnf.ok()) << gbnf.error().message;
  auto a = automaton("root ::= " + *gbnf);
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "a\\\"\\\\bx"), Match::kComplete);
  EXPECT_EQ(match(*a, "a\\\"\\nbx"), Match::kComplete);
  EXPECT_EQ(match(*a, "a\"\\\\bx"), Match::kRejected);  // a raw quote would end the string
  EXPECT_EQ(match(*a, "a\\\"\\\\b\""), Match::kRejected);
  EXPECT_EQ(match(*a, "a\\\"\\\\b\x01"), Match::kRejected);
}

TEST(Regex, SurrogatePairEscapesAreOneCharacterAndHalvesAreRefused) {
  // Found by fuzzing: a lone `\uDDDD` became the three bytes UTF-8 would give U+DDDD, which
  // is no character, and the GBNF made from it failed to parse.
  auto pair = regex_to_gbnf("x\\uD83D\\uDE00+[\\uD83D\\uDE01-\\uD83D\\uDE4F]");
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  auto a = automaton("root ::= " + *pair);
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "x\U0001F600\U0001F600\U0001F64F"), Match::kComplete);
  EXPECT_EQ(match(*a, "x\U0001F600\U0001F650"), Match::kRejected);
  EXPECT_EQ(match(*a, "x\xED\xA0\xBD"), Match::kRejected);  // the high half's own bytes
  for (const char* lone :
       {"\\uDDDD", "a\\uD83Db", "\\uD83D\\u0041", "\\uDE00\\uD83D", "[\\uDC00]", "\\x{D800}"}) {
    auto r = regex_to_gbnf(lone);
    ASSERT_FALSE(r.ok()) << lone;
    EXPECT_NE(r.error().message.find("surrogate"), std::string::npos)
        << lone << ": " << r.error().message;
  }
}

TEST(Regex, UnsupportedConstructsAreRefusedByName) {
  struct Case {
    const char* pattern;
    const char* needle;
  };
  for (const Case& c : std::initializer_list<Case>{{"(a)\\1", "backreferences"},
                                                   {"(?=a)a", "lookaround"},
                                                   {"a^b", "anchors"},
                                                   {"\\bword", "word boundaries"},
                                                   {"(ab", "expected ')'"},
                                                   {"ab)", "unbalanced"},
                                                   {"*a", "quantifier follows nothing"},
                                                   {"[a-", "unterminated"},
                                                   {"a{3,1}", "below its minimum"}}) {
    auto r = regex_to_gbnf(c.pattern);
    ASSERT_FALSE(r.ok()) << c.pattern;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.pattern << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace moon::grammar::test
