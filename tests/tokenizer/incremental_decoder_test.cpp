// Streaming detokenization: whole characters only, each exactly once, same text as decode().
#include "tokenizer/incremental_decoder.h"

#include <gtest/gtest.h>

#include "common/test_data.h"
#include "text_generator.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

using Ids = std::vector<TokenId>;
const std::string kFffd = "\xEF\xBF\xBD";

// Independent of the code under test: a strict UTF-8 check (no overlongs, surrogates, or
// code points past U+10FFFF).
bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if ((b >> 5) == 0x6) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b >> 4) == 0xE) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b >> 3) == 0x1E) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Streams `ids`, checking that every chunk is whole characters; returns the concatenation.
std::string stream(const Tokenizer& tok, const Ids& ids, bool skip_special) {
  IncrementalDecoder decoder(tok, skip_special);
  std::string all;
  for (TokenId id : ids) {
    const std::string chunk = decoder.push(id);
    EXPECT_TRUE(is_valid_utf8(chunk)) << test::hex_bytes(chunk);
    EXPECT_LE(decoder.pending_bytes(), 3u);
    all += chunk;
  }
  const std::string rest = decoder.flush();
  EXPECT_TRUE(is_valid_utf8(rest));
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  return all + rest;
}

class StreamingAllVocabs : public test::VocabTest {};

TEST_P(StreamingAllVocabs, ConcatenationEqualsDecode) {
  test::TextGenerator gen(99);
  for (int i = 0; i < 300; ++i) {
    const bool invalid = i % 3 == 2;
    const std::string text = gen.text(10, invalid);
    const Ids ids = tok_->encode(text, i % 2 == 0, false);
    const std::string decoded = tok_->decode(ids, true);
    EXPECT_TRUE(is_valid_utf8(decoded));
    EXPECT_EQ(stream(*tok_, ids, true), decoded) << test::hex_bytes(text);
    EXPECT_EQ(stream(*tok_, ids, false), tok_->decode(ids, false));
    // Valid text comes back whole, with two exceptions by design: SentencePiece reads a
    // literal U+2581 as a space, and Phi-3's </s> eats the whitespace after it.
    const bool spm = tok_->kind() == TokenizerKind::Spm;
    if (!invalid && !(spm && text.find("\xE2\x96\x81") != std::string::npos) &&
        !(name_ == "phi-3" && text.find("</s>") != std::string::npos)) {
      EXPECT_EQ(decoded, text) << name_ << " " << test::hex_bytes(text);
    }
  }
}

TEST_P(StreamingAllVocabs, RandomIds) {
  test::TextGenerator gen(7);
  for (int i = 0; i < 300; ++i) {
    Ids ids(1 + gen.below(16));
    for (TokenId& id : ids) id = static_cast<TokenId>(gen.below(tok_->vocab_size()));
    for (bool skip : {true, false}) {
      const std::string decoded = tok_->decode(ids, skip);
      EXPECT_TRUE(is_valid_utf8(decoded));
      EXPECT_EQ(stream(*tok_, ids, skip), decoded) << test::ids_to_string(ids);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, StreamingAllVocabs, ::testing::ValuesIn(test::kAllVocabs),
                         test::vocab_param_name);

TEST(IncrementalDecoder, CharacterSplitOverByteFallbackTokensComesOutOnce) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  const Ids ids = tok->encode("🦙!", false, false);
  // ▁, then 🦙 as four <0xNN> tokens, then "!".
  ASSERT_EQ(ids, (Ids{29871, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99, 29991}));
  IncrementalDecoder decoder(*tok);
  std::vector<std::string> chunks;
  for (TokenId id : ids) chunks.push_back(decoder.push(id));
  EXPECT_EQ(chunks, (std::vector<std::string>{"", "", "", "", "🦙", "!"}));
  EXPECT_EQ(decoder.flush(), "");
}

TEST(IncrementalDecoder, CharacterSplitOverByteLevelTokensComesOutOnce) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-gpt-2.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("gpt-2");
  ASSERT_NE(tok, nullptr);
  const std::string text = "a 🦙 日本";
  const Ids ids = tok->encode(text, false, false);
  IncrementalDecoder decoder(*tok);
  std::string all;
  int holds = 0;
  for (TokenId id : ids) {
    const std::string chunk = decoder.push(id);
    if (chunk.empty()) ++holds;
    all += chunk;
  }
  EXPECT_GT(holds, 0);  // some token ended mid-character
  EXPECT_EQ(all, text);
  EXPECT_EQ(decoder.flush(), "");
}

TEST(IncrementalDecoder, BytesThatCannotCompleteBecomeReplacementCharacters) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  IncrementalDecoder decoder(*tok);
  EXPECT_EQ(decoder.push(3 + 0xE2), "");
  EXPECT_EQ(decoder.push(3 + 0x82), "");
  EXPECT_EQ(decoder.push(29874), kFffd + kFffd + "a");  // "a" cannot continue € (E2 82 AC)
  EXPECT_EQ(decoder.push(3 + 0xE0), "");
  EXPECT_EQ(decoder.push(3 + 0x80), kFffd + kFffd);  // E0 80 can only be overlong
  EXPECT_EQ(decoder.push(3 + 0xF0), "");
  EXPECT_EQ(decoder.push(3 + 0x9F), "");
  EXPECT_EQ(decoder.flush(), kFffd + kFffd);
  EXPECT_EQ(decoder.push(3 + 0xFF), kFffd);  // can never start a character
}

TEST(IncrementalDecoder, SpecialTokensEndCharactersInProgress) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  // C3 </s> A9 does not make é, hidden </s> or not (as SentencePiece decodes it).
  EXPECT_EQ(tok->decode(Ids{3 + 0xC3, 2, 3 + 0xA9}, true), kFffd + kFffd);
  EXPECT_EQ(tok->decode(Ids{3 + 0xC3, 2, 3 + 0xA9}, false), kFffd + "</s>" + kFffd);
  EXPECT_EQ(tok->decode(Ids{3 + 0xC3, 3 + 0xA9}, true), "é");
}

// A completion continues its prompt's text, so its first word keeps its space, as in
// llama.cpp's golden output_text (" was a little girl..." after "The little dog").
TEST(IncrementalDecoder, ContinuationKeepsTheFirstPiecesSpace) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  const TokenId hello = 15043;  // "▁Hello"
  IncrementalDecoder decoder(*tok, /*skip_special=*/true, /*continuation=*/true);
  EXPECT_EQ(decoder.push(hello), " Hello");
  EXPECT_EQ(decoder.push(hello), " Hello");
}

TEST(IncrementalDecoder, DummyPrefixSpaceIsDroppedOncePerText) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  const TokenId hello = 15043;  // "▁Hello"
  IncrementalDecoder decoder(*tok);
  EXPECT_EQ(decoder.push(1), "");  // BOS, hidden, does not use up the removal
  EXPECT_EQ(decoder.push(hello), "Hello");
  EXPECT_EQ(decoder.push(hello), " Hello");
  decoder.reset();
  EXPECT_EQ(decoder.push(hello), "Hello");

  IncrementalDecoder shown(*tok, /*skip_special=*/false);
  EXPECT_EQ(shown.push(1), "<s>");
  EXPECT_EQ(shown.push(hello), " Hello");

  // A leading byte token is a real character, kept as is.
  EXPECT_EQ(tok->decode(Ids{3 + ' ', hello}, true), "  Hello");
  // Byte-level BPE has no dummy prefix: its leading spaces are text.
  if (const Tokenizer* bpe = test::vocab_tokenizer("llama-bpe")) {
    EXPECT_EQ(bpe->decode(bpe->encode(" Hello", false, false), true), " Hello");
  }
}

TEST(IncrementalDecoder, OutOfRangeIdsAreIgnored) {
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-llama-spm.gguf");
  const Tokenizer* tok = test::vocab_tokenizer("llama-spm");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->decode(Ids{-5, 15043, 1 << 20}, true), "Hello");
  EXPECT_EQ(tok->token_text(-1), "");
  EXPECT_EQ(tok->token_to_piece(1 << 20), "");
}

}  // namespace
}  // namespace moon
