// The merge loops on small hand-made vocabularies, where the right answer is easy to see.
#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

using Ids = std::vector<TokenId>;

// A byte-level vocabulary: the 256 byte characters (ids 0..255, in byte order), then `extra`.
VocabSpec byte_level_spec(const std::vector<std::string>& extra,
                          const std::vector<std::string>& merges, const std::string& pre) {
  VocabSpec spec;
  spec.kind = TokenizerKind::Bpe;
  spec.pre = pre;
  for (int b = 0; b < 256; ++b) {
    spec.tokens.emplace_back(byte_level::byte_to_utf8(static_cast<uint8_t>(b)));
  }
  for (const auto& t : extra) spec.tokens.push_back(t);
  spec.merges = merges;
  return spec;
}

std::unique_ptr<Tokenizer> build(const VocabSpec& spec) {
  auto tok = Tokenizer::from_spec(spec);
  EXPECT_TRUE(tok.ok()) << tok.error().message;
  return tok.ok() ? std::move(*tok) : nullptr;
}

TEST(ToyBpe, LowestRankMergesFirst) {
  // ids: ab=256, bc=257, abc=258
  auto tok = build(byte_level_spec({"ab", "bc", "abc"}, {"b c", "a b", "a bc"}, "gpt-2"));
  ASSERT_TRUE(tok);
  // "b c" outranks "a b", so abc = a + bc, then "a bc".
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{258}));
  EXPECT_EQ(tok->encode("abd", false, false), (Ids{256, 'd'}));
}

TEST(ToyBpe, EqualRanksMergeLeftmostFirst) {
  auto tok = build(byte_level_spec({"aa"}, {"a a"}, "gpt-2"));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("aaa", false, false), (Ids{256, 'a'}));
  EXPECT_EQ(tok->encode("aaaaa", false, false), (Ids{256, 256, 'a'}));
}

TEST(ToyBpe, MergesStayInsideWords) {
  // "Ġ" is the space character; " a" is one word for GPT-2's pattern, "a a" is two.
  auto tok = build(byte_level_spec({"Ġa"}, {"Ġ a"}, "gpt-2"));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a a", false, false), (Ids{'a', 256}));
  EXPECT_EQ(tok->decode(Ids{'a', 256}, true), "a a");
}

TEST(ToyBpe, IgnoreMergesTakesWholeWordTokens) {
  // "xyz" is a token but no merge builds it: only Llama-3's ignore_merges finds it.
  const auto merges = std::vector<std::string>{"x y"};
  auto llama3 = build(byte_level_spec({"xy", "xyz"}, merges, "llama-bpe"));
  auto gpt2 = build(byte_level_spec({"xy", "xyz"}, merges, "gpt-2"));
  ASSERT_TRUE(llama3 && gpt2);
  EXPECT_EQ(llama3->encode("xyz", false, false), (Ids{257}));
  EXPECT_EQ(gpt2->encode("xyz", false, false), (Ids{256, 'z'}));
}

TEST(ToyBpe, MergesOfNonTokensAreIgnored) {
  auto tok = build(byte_level_spec({"ab"}, {"q r", "a b"}, "gpt-2"));  // "qr" is no token
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("qrab", false, false), (Ids{'q', 'r', 256}));
}

TEST(ToyBpe, MalformedMergeIsAnError) {
  auto tok = Tokenizer::from_spec(byte_level_spec({}, {"nospace"}, "gpt-2"));
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.error().message.find("nospace"), std::string::npos);
}

TEST(ToyBpe, InvalidUtf8RoundTripsThroughPieces) {
  auto tok = build(byte_level_spec({}, {"a b"}, "llama-bpe"));
  ASSERT_TRUE(tok);
  const std::string text = "a\xFF\xC3 b\x80";
  std::string pieces;
  for (TokenId id : tok->encode(text, false, false)) pieces += tok->token_to_piece(id);
  EXPECT_EQ(pieces, text);  // byte-level BPE loses nothing...
  // ...but decode() promises valid UTF-8.
  EXPECT_EQ(tok->decode(tok->encode(text, false, false), true),
            "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD");
}

// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens (3..258), then `pieces`.
VocabSpec spm_spec(const std::vector<std::pair<std::string, float>>& pieces,
                   const std::vector<TokenType>& piece_types = {}) {
  VocabSpec spec;
  spec.kind = TokenizerKind::Spm;
  spec.tokens = {"<unk>", "<s>", "</s>"};
  spec.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  spec.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    spec.tokens.push_back(name);
    spec.types.push_back(TokenType::Byte);
    spec.scores.push_back(0);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    spec.tokens.push_back(pieces[i].first);
    spec.scores.push_back(pieces[i].second);
    spec.types.push_back(i < piece_types.size() ? piece_types[i] : TokenType::Normal);
  }
  spec.unk = 0;
  spec.bos = 1;
  spec.eos = 2;
  return spec;
}

constexpr TokenId kFirst = 259;  // id of the first piece in spm_spec

TEST(ToySpm, HighestScoreMergesFirst) {
  // ▁=259 a=260 b=261 c=262 ▁a=263 bc=264 ab=265 ▁abc=266
  auto tok = build(spm_spec({{"▁", -1},
                             {"a", -1},
                             {"b", -1},
                             {"c", -1},
                             {"▁a", -5},
                             {"bc", -2},
                             {"ab", -3},
                             {"▁abc", -4}}));
  ASSERT_TRUE(tok);
  // ▁a b c: bc (-2) beats ab (-3) and ▁a (-5); then ▁a (-5); then ▁a+bc = ▁abc.
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{kFirst + 7}));
  EXPECT_EQ(tok->encode("abc", true, false), (Ids{1, kFirst + 7}));
  EXPECT_EQ(tok->decode(Ids{1, kFirst + 7}, true), "abc");
  EXPECT_EQ(tok->decode(Ids{1, kFirst + 7}, false), "<s> abc");
}

TEST(ToySpm, EqualScoresMergeLeftmostFirst) {
  auto tok = build(spm_spec({{"▁", -1}, {"a", -1}, {"aa", -2}}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("aaa", false, false), (Ids{kFirst, kFirst + 2, kFirst + 1}));
}

TEST(ToySpm, ByteFallbackForUnknownCharacters) {
  auto tok = build(spm_spec({{"▁", -1}, {"a", -1}}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a\xC3\xA9", false, false), (Ids{kFirst, kFirst + 1, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok->decode(Ids{kFirst, kFirst + 1, 3 + 0xC3, 3 + 0xA9}, true), "a\xC3\xA9");
}

TEST(ToySpm, UnusedPiecesAreSplitBack) {
  // "▁ab" is unused: merges may pass through it, but it is never emitted.
  auto tok = build(spm_spec({{"▁", -1}, {"a", -1}, {"b", -1}, {"▁a", -2}, {"▁ab", 0}},
                            {TokenType::Normal, TokenType::Normal, TokenType::Normal,
                             TokenType::Normal, TokenType::Unused}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("ab", false, false), (Ids{kFirst + 3, kFirst + 2}));
}

TEST(ToySpm, ControlTokensAreNeverMergeResults) {
  auto tok = build(spm_spec({{"▁", -1}, {"<", -1}, {"s", -1}, {">", -1}, {"<s", -1}}));
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("<s>", false, false);
  EXPECT_EQ(ids, (Ids{kFirst, kFirst + 4, kFirst + 3}));
  EXPECT_EQ(tok->encode("<s>", false, true), (Ids{1}));
}

TEST(ToySpm, NoDummyPrefixWhenTheFileSaysSo) {
  VocabSpec spec = spm_spec({{"▁", -1}, {"a", -1}});
  spec.add_space_prefix = false;
  auto tok = build(spec);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a a", false, false), (Ids{kFirst + 1, kFirst, kFirst + 1}));
  EXPECT_EQ(tok->decode(Ids{kFirst, kFirst + 1}, true), " a");  // nothing to strip
}

TEST(ToySpm, MissingByteTokensFallBackToUnknown) {
  VocabSpec spec;
  spec.kind = TokenizerKind::Spm;
  spec.tokens = {"<unk>", "<s>", "</s>", "▁", "a"};
  spec.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
                TokenType::Normal};
  spec.unk = 0;
  spec.bos = 1;
  spec.eos = 2;
  auto tok = build(spec);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a\xC3\xA9", false, false), (Ids{3, 4, 0, 0}));
}

}  // namespace
}  // namespace moon
