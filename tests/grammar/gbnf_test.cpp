// GBNF parsing and the automaton that matches it, byte by byte and token by token. The
// oracles: Unicode's UTF-8 encoding (util/utf8's encoder), hand-checked sentences, and a
// brute-force walk of every token for the masks.
#include "grammar/gbnf.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "grammar/grammar_test_util.h"
#include "util/utf8.h"

namespace moon::grammar::test {
namespace {

TEST(Gbnf, LiteralsAlternativesAndRepetitions) {
  auto a = automaton(R"(
# a comment
root ::= "ab" ("c" | "d")+ x? [0-9]{2,3}
x ::= "x"   # trailing comment
)");
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "abc12"), Match::kComplete);
  EXPECT_EQ(match(*a, "abdcdx123"), Match::kComplete);
  EXPECT_EQ(match(*a, "abdcdx1234"), Match::kRejected);
  EXPECT_EQ(match(*a, "ab12"), Match::kRejected);
  EXPECT_EQ(match(*a, "abc1"), Match::kPrefix);
  EXPECT_EQ(match(*a, ""), Match::kPrefix);
  EXPECT_EQ(match(*a, "b"), Match::kRejected);
}

TEST(Gbnf, ContinuationLinesAndGroupsAcrossLines) {
  auto a = automaton("root ::= \"a\"\n  | \"b\"\n  | (\n \"c\"\n | \"d\" )\nother ::= \"z\"\n");
  ASSERT_TRUE(a);
  for (const char* s : {"a", "b", "c", "d"}) EXPECT_EQ(match(*a, s), Match::kComplete) << s;
  EXPECT_EQ(match(*a, "z"), Match::kRejected);
}

TEST(Gbnf, EscapesInLiteralsAndClasses) {
  auto a = automaton(R"(root ::= "\"\\\n\t" [\x41-\x43] "\u00e9" [\]\-])");
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "\"\\\n\tB\xC3\xA9]"), Match::kComplete);
  EXPECT_EQ(match(*a, "\"\\\n\tB\xC3\xA9-"), Match::kComplete);
  EXPECT_EQ(match(*a, "\"\\\n\tD"), Match::kRejected);
}

TEST(Gbnf, ClassesMatchWholeUtf8CharactersOnly) {
  auto a = automaton(R"(root ::= [α-ω] [^a]*)");
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "β"), Match::kComplete);
  EXPECT_EQ(match(*a, "\xCE"), Match::kPrefix);  // half of a Greek letter
  EXPECT_EQ(match(*a, "a"), Match::kRejected);
  EXPECT_EQ(match(*a, "γé€😀b"), Match::kComplete);
  EXPECT_EQ(match(*a, "γa"), Match::kRejected);
  EXPECT_EQ(match(*a, "γ\xC0\x80"), Match::kRejected);          // overlong
  EXPECT_EQ(match(*a, "γ\xED\xA0\x80"), Match::kRejected);      // a surrogate
  EXPECT_EQ(match(*a, "γ\xF4\x90\x80\x80"), Match::kRejected);  // above U+10FFFF
  EXPECT_EQ(match(*a, "γ\x80"), Match::kRejected);              // a lone continuation byte
}

// Every code point in [lo, hi] matches exactly one sequence, and none outside does.
TEST(Gbnf, Utf8SequencesCoverExactlyTheRange) {
  std::mt19937 rng(7);
  std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0, 0x10FFFF},     {0x7F, 0x80},   {0x7FF, 0x800},      {0xD7FF, 0xE000},
      {0xFFFF, 0x10000}, {0x3B1, 0x3C9}, {0x10000, 0x10FFFF}, {0x61, 0x61}};
  for (int i = 0; i < 40; ++i) {
    uint32_t x = rng() % 0x110000, y = rng() % 0x110000;
    if (i % 2) y = x + rng() % 3000;
    ranges.emplace_back(std::min(x, y), std::min<uint32_t>(0x10FFFF, std::max(x, y)));
  }
  for (const auto& [lo, hi] : ranges) {
    const auto seqs = utf8_sequences(lo, hi);
    auto count = [&](uint32_t cp) {
      std::string b;
      utf8::append_codepoint(b, cp);
      int n = 0;
      for (const auto& seq : seqs) {
        if (seq.size() != b.size()) continue;
        bool ok = true;
        for (size_t k = 0; k < b.size(); ++k) {
          const auto c = static_cast<uint8_t>(b[k]);
          ok &= c >= seq[k].first && c <= seq[k].second;
        }
        n += ok;
      }
      return n;
    };
    for (int k = 0; k < 3000; ++k) {
      uint32_t cp = k < 1000 ? lo + rng() % (hi - lo + 1) : rng() % 0x110000;
      if (k < 20) cp = std::min(hi, lo + static_cast<uint32_t>(k));
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const bool inside = cp >= lo && cp <= hi;
      EXPECT_EQ(count(cp), inside ? 1 : 0)
          << std::hex << "cp " << cp << " in [" << lo << ", " << hi << "]";
    }
  }
}

TEST(Gbnf, ErrorsNameTheProblemAndWhere) {
  struct Case {
    std::string text;
    const char* needle;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"root ::= foo", "undefined rule 'foo'"},
           {"start ::= \"a\"", "no 'root' rule"},
           {"root ::= root \"a\" | \"b\"", "left-recursive"},
           {"root ::= x \"a\"\nx ::= \"\" | root", "left-recursive"},
           {"root ::= \"abc", "line 1, column 14: unterminated string literal"},
           {"root ::= \"a\"\n\nroot ::= \"b\"", "line 3"},
           {"root ::= [a-", "unterminated character class"},
           {"root ::= [z-a]", "ends before it starts"},
           {"root ::= \"a\"{3,2}", "maximum is below its minimum"},
           {"root ::= (\"a\"", "expected ')'"},
           {"root = \"a\"", "expected '::='"},
           {"root ::= \"\\q\"", "unknown escape"},
           {"root ::= \"a\"{999999}", "repetition counts stop at"},
           {"root ::= " + std::string(100000, '(') + "\"a\"" + std::string(100000, ')'),
            "groups nest deeper than 256"},
       }) {
    auto g = parse_gbnf(c.text);
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_NE(g.error().message.find(c.needle), std::string::npos)
        << c.text << " -> " << g.error().message;
  }
}

// A long chain of rules, each empty only once the next one is known to be: the emptiness
// analysis must take one pass over the grammar, not one per link (a hostile grammar of a
// million rules would take hours that way).
TEST(Gbnf, LongRuleChainsAreAnalysedInOnePass) {
  constexpr int kRules = 200000;
  std::string text = "root ::= r0 \"x\"\n";
  for (int i = 0; i + 1 < kRules; ++i) text += fmt::format("r{} ::= r{}\n", i, i + 1);
  text += fmt::format("r{} ::= \"\" | \"y\"\n", kRules - 1);
  auto a = automaton(text);
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, "x"), Match::kComplete);
  EXPECT_EQ(match(*a, "yx"), Match::kComplete);
  EXPECT_EQ(match(*a, "yy"), Match::kRejected);
}

// A grammar whose states could hold more than kMaxLivePositions positions is refused with a
// message, before any automaton is built: something that can be empty, repeated, keeps every
// copy live. Found by fuzz_grammar: the regex `.(,;*|){9090}` took 7.5 s for 16 bytes.
// Wide but honest grammars still compile: a choice among 4,096 strings, and the same
// repetition written without the empty alternative.
TEST(Gbnf, GrammarsWithTooManyLivePositionsAreRefused) {
  for (const char* text :
       {"root ::= \".\" (\",\" \";\"* | \"\"){9090}\n", "root ::= ((\"a\" | \"\"){100}){100}\n",
        "root ::= x{5000}\nx ::= \"a\"? \"b\"?\n"}) {
    SCOPED_TRACE(text);
    auto g = parse_gbnf(text);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.error().message.find("too ambiguous"), std::string::npos) << g.error().message;
  }
  std::string choice = "root ::= ";
  for (int i = 0; i < 4096; ++i) choice += fmt::format("{}\"w{}\"", i ? " | " : "", i);
  EXPECT_TRUE(parse_gbnf(choice + "\n").ok());
  EXPECT_TRUE(parse_gbnf("root ::= \".\" (\",\" \";\"*){0,9090}\n").ok());
  EXPECT_TRUE(parse_gbnf("root ::= (\"a\" | \"\"){4000}\n").ok());
  auto a = automaton("root ::= \".\" (\",\" \";\"*){0,9090}\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(match(*a, ".,;;,"), Match::kComplete);
}

// A state's step by a byte is the same for every byte the grammar's byte sets cannot tell
// apart, so a mask computes it once per such class. Found by fuzz_grammar: the regex
// `.(,;*|){8180}`, just under the live-position bound, took 3 s under ASan for one mask over
// a 256-byte vocabulary: each of the ~200 bytes that can start a character stepped the start
// state into the same 8,180-position closure.
TEST(GrammarAutomaton, BytesTheGrammarCannotTellApartStepOnce) {
  const std::string text = "root ::= [\\x00-\\x7f] (\",\" \";\"* | \"\"){4000}\n";
  auto a = automaton(text);
  ASSERT_TRUE(a);
  const int64_t before = a->stats().closure_visits;
  ASSERT_NE(a->advance(a->start(), "a"), GrammarAutomaton::kDead);
  const int64_t one_step = a->stats().closure_visits - before;
  EXPECT_GT(one_step, 4000);  // the step really is wide
  const std::vector<uint64_t> allowed = a->allowed_tokens(a->start());
  // Classes here: [\x00-\x7f] minus ',' and ';', then ',' and ';', then the rest (dead);
  // the step by 'a' was the first class's, so the mask adds at most two more.
  EXPECT_LE(a->stats().closure_visits - before, 3 * one_step);
  // And the mask is still right: exactly the ASCII bytes may start the text.
  for (int b = 0; b < 256; ++b)
    EXPECT_EQ((allowed[b >> 6] >> (b & 63)) & 1, b < 0x80 ? 1u : 0u) << b;
  // The class's other bytes reach the very state its first byte reached.
  EXPECT_EQ(a->advance(a->start(), "a"), a->advance(a->start(), "\x01"));
  EXPECT_NE(a->advance(a->start(), ","), GrammarAutomaton::kDead);
}

// A vocabulary of multi-byte tokens, some splitting UTF-8 characters, some duplicates.
std::shared_ptr<const TokenTrie> word_vocab() {
  std::vector<std::string> pieces = {"",     "{",   "}",  "\"",   "\":", "a",  "ab",  "abc", " ",
                                     "b",    "1",   "12", "[",    "]",   ",",  "\"a", "é",   "\xC3",
                                     "\xA9", "x\"", "a",  "true", "tr",  "ue", ":",   " \"", "{\""};
  std::vector<bool> matchable(pieces.size(), true);
  matchable[0] = false;  // a control token
  return std::make_shared<const TokenTrie>(pieces, matchable, std::vector<int32_t>{0});
}

TEST(GrammarAutomaton, MasksEqualABruteForceWalkOfEveryToken) {
  auto vocab = word_vocab();
  auto a = automaton(R"(
root ::= "{" ws "\"" [a-zé]* "\":" ws ("true" | [0-9]+ | "[" [0-9] ("," [0-9])* "]") ws "}"
ws ::= " "?
)",
                     vocab);
  ASSERT_TRUE(a);
  std::mt19937 rng(3);
  for (int walk = 0; walk < 200; ++walk) {
    int32_t s = a->start();
    for (int step = 0; step < 30 && s != GrammarAutomaton::kDead; ++step) {
      const std::vector<uint64_t> bits = a->allowed_tokens(s);
      std::vector<int32_t> allowed;
      bool any_text = false;
      for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
        const bool got = (bits[id >> 6] >> (id & 63)) & 1;
        bool want;
        if (id == 0) {
          want = a->accepts(s);  // filled in below when nothing else is allowed
        } else {
          want = a->advance(s, vocab->piece(id)) != GrammarAutomaton::kDead;
          any_text |= want;
        }
        if (id == 0 && !any_text) continue;  // checked after the loop
        EXPECT_EQ(got, want) << "token " << id << " at walk " << walk << " step " << step;
        if (got) allowed.push_back(id);
      }
      if (!any_text) {
        EXPECT_TRUE((bits[0] & 1) != 0) << "with nothing else allowed, the end stays allowed";
      }
      if (allowed.empty()) break;
      const int32_t t = allowed[rng() % allowed.size()];
      if (t == 0) break;
      s = a->advance(s, vocab->piece(t));
    }
  }
}

TEST(GrammarAutomaton, MaskLogitsAllowsTheEndOnlyWhenComplete) {
  auto vocab = word_vocab();
  auto a = automaton("root ::= \"ab\" \"c\"?", vocab);
  ASSERT_TRUE(a);
  const auto v = static_cast<size_t>(vocab->vocab_size());
  std::vector<float> logits(v + 3, 1.0f);  // a model row may be wider than the vocabulary
  GrammarMatcher m(a);
  m.mask_logits(logits);
  auto allowed = [&] {
    std::vector<size_t> out;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] == 1.0f) out.push_back(i);
    }
    return out;
  };
  EXPECT_EQ(allowed(), (std::vector<size_t>{5, 6, 7, 20}));  // a, ab, abc, a
  m.accept(6);                                               // "ab"
  EXPECT_TRUE(m.complete());
  std::fill(logits.begin(), logits.end(), 1.0f);
  m.mask_logits(logits);
  EXPECT_EQ(allowed(), (std::vector<size_t>{0}));  // no "c" token: only the end
  m.accept(0);
  EXPECT_TRUE(m.done());
  std::fill(logits.begin(), logits.end(), 1.0f);
  m.mask_logits(logits);  // after the end nothing is masked
  EXPECT_EQ(allowed().size(), logits.size());
}

TEST(GrammarAutomaton, StatesAndMasksAreReused) {
  auto a = automaton(R"(root ::= "\"" [^"]* "\"")");
  ASSERT_TRUE(a);
  int32_t s = a->advance(a->start(), "\"");
  (void)a->allowed_tokens(s);
  const auto before = a->stats();
  for (char c : std::string("hello world, no new state")) {
    s = a->advance(s, std::string(1, c));
    (void)a->allowed_tokens(s);
  }
  const auto after = a->stats();
  EXPECT_EQ(after.states, before.states);
  EXPECT_EQ(after.masks_computed, before.masks_computed);
  EXPECT_GT(after.mask_cache_hits, before.mask_cache_hits);
}

// Stacks that grow with the text escape the static bound: each letter below adds a frame whose
// optional items stay live, so a state after n letters holds about 4n + 1 positions. The
// automaton gives up (rejects) past kMaxLivePositions positions in one state or 2^24 kept in
// all, instead of spending n^2 time and memory.
TEST(GrammarAutomaton, StatesThatGrowWithTheTextAreBounded) {
  auto wide = automaton("root ::= [a-z] root [0-9]? [b-c]? [d-e]? [f-g]? | \"\"\n");
  ASSERT_TRUE(wide);
  EXPECT_EQ(match(*wide, std::string(2000, 'a') + "9bdf"), Match::kComplete);
  EXPECT_FALSE(wide->stats().gave_up);
  EXPECT_EQ(match(*wide, std::string(2100, 'a')), Match::kRejected);
  EXPECT_TRUE(wide->stats().gave_up);
  // One position per letter: 5,000 letters keep about 12.5 million in all, 6,000 about 18
  // million (past 2^24), though no single state reaches 8,192.
  auto deep = automaton("root ::= [a-z] root [0-9]? | \"\"\n");
  ASSERT_TRUE(deep);
  EXPECT_EQ(match(*deep, std::string(5000, 'a') + "123"), Match::kComplete);
  EXPECT_FALSE(deep->stats().gave_up);
  EXPECT_EQ(match(*deep, std::string(6000, 'a')), Match::kRejected);
  EXPECT_TRUE(deep->stats().gave_up);
  // The last state kept allows only the end of generation (token 256): every other step
  // would make a new state, so the sequence stops there instead of wandering.
  int32_t last = deep->start();
  for (int32_t s = last; s != GrammarAutomaton::kDead; s = deep->advance(s, "a")) last = s;
  const std::vector<uint64_t> allowed = deep->allowed_tokens(last);
  std::vector<uint64_t> only_end(allowed.size(), 0);
  only_end[256 / 64] = uint64_t{1} << (256 % 64);
  EXPECT_EQ(allowed, only_end);
}

}  // namespace
}  // namespace moon::grammar::test
