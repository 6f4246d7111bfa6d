// The Llama-2 vocabulary from GGUF against the real thing: libsentencepiece with Llama-2's
// tokenizer.model, on thousands of generated texts.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <memory>

#include "common/test_data.h"
#include "text_generator.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

constexpr int kTexts = 2500;

class SentencePieceOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = test::test_data_file("models/llama2-tokenizer.model");
    if (model.empty() || test::vocab_path("llama-spm").empty()) {
      MOON_MISSING_TEST_DATA(
          "models/llama2-tokenizer.model or models/vocab/ggml-vocab-llama-spm.gguf");
    }
    sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = sp_->Load(model);
    ASSERT_TRUE(status.ok()) << status.ToString();
    tok_ = test::vocab_tokenizer("llama-spm");
    ASSERT_NE(tok_, nullptr);
  }

  std::vector<TokenId> sp_encode(const std::string& text) {
    std::vector<int> ids;
    EXPECT_TRUE(sp_->Encode(text, &ids).ok());
    return {ids.begin(), ids.end()};
  }
  std::string sp_decode(const std::vector<TokenId>& ids) {
    std::string text;
    EXPECT_TRUE(sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text).ok());
    return text;
  }

  struct Encodings {
    std::vector<TokenId> got;       // ours
    std::vector<TokenId> expected;  // SentencePiece's
  };
  // Both encodings of generated text number `i`; a mismatch is a failure showing both.
  Encodings encode_both(int i, const std::string& text) {
    Encodings e{tok_->encode(text, false, false), sp_encode(text)};
    if (e.got != e.expected) {
      ADD_FAILURE() << "text " << i << " " << test::hex_bytes(text)
                    << "\n  sentencepiece: " << test::ids_to_string(e.expected)
                    << "\n  moon:          " << test::ids_to_string(e.got);
    }
    return e;
  }

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  const Tokenizer* tok_ = nullptr;
};

TEST_F(SentencePieceOracle, SameVocabulary) {
  ASSERT_EQ(tok_->vocab_size(), sp_->GetPieceSize());
  for (TokenId id = 0; id < tok_->vocab_size(); ++id) {
    ASSERT_EQ(tok_->token_text(id), sp_->IdToPiece(id)) << id;
  }
  EXPECT_EQ(tok_->bos_id(), sp_->bos_id());
  EXPECT_EQ(tok_->eos_id(), sp_->eos_id());
  EXPECT_EQ(tok_->unk_id(), sp_->unk_id());
  EXPECT_TRUE(tok_->add_bos());
  EXPECT_FALSE(tok_->add_eos());
}

TEST_F(SentencePieceOracle, HandPickedTexts) {
  const std::vector<std::string> texts = {
      "",
      " ",
      "  ",
      "Hello",
      " Hello",
      "Hello world",
      "\n",
      "a\tb",
      "<s>hi</s>",
      "<unk>",
      "▁",
      "▁▁a",
      "🦙 llama",
      "你好，世界",
      std::string("a\0b", 3),
      "\xEF\xBF\xBD",
      "x  \n\n  y   ",
      "1234567890",
      "ÅÄÖ åäö",
      "👨‍👩‍👧",
      "\x7F\x01",
  };
  for (const std::string& text : texts) {
    const auto expected = sp_encode(text);
    EXPECT_EQ(test::ids_to_string(tok_->encode(text, false, false)), test::ids_to_string(expected))
        << test::hex_bytes(text);
    EXPECT_EQ(tok_->decode(expected, true), sp_decode(expected)) << test::hex_bytes(text);
  }
}

TEST_F(SentencePieceOracle, GeneratedValidText) {
  test::TextGenerator gen(20240601);
  int mismatches = 0;
  for (int i = 0; i < kTexts && mismatches < 10; ++i) {
    const std::string text = gen.text(12, /*allow_invalid=*/false);
    const auto [got, expected] = encode_both(i, text);
    if (got != expected) {
      ++mismatches;
      continue;
    }
    const std::string decoded = tok_->decode(got, true);
    EXPECT_EQ(decoded, sp_decode(expected)) << test::hex_bytes(text);
    // Valid text survives the round trip (SentencePiece's identity normalizer keeps it),
    // except that a literal U+2581 is indistinguishable from an escaped space.
    if (text.find("\xE2\x96\x81") == std::string::npos) {
      EXPECT_EQ(decoded, text) << test::hex_bytes(text);
    }
  }
}

// Long texts: many merges interact over one long SentencePiece sequence.
TEST_F(SentencePieceOracle, GeneratedLongText) {
  test::TextGenerator gen(8086);
  for (int i = 0; i < 300; ++i) {
    const std::string text = gen.text(80, /*allow_invalid=*/i % 4 == 0);
    const auto expected = sp_encode(text);
    const auto got = tok_->encode(text, false, false);
    ASSERT_EQ(test::ids_to_string(got), test::ids_to_string(expected)) << test::hex_bytes(text);
    ASSERT_EQ(tok_->decode(got, true), sp_decode(expected)) << test::hex_bytes(text);
  }
}

// Malformed UTF-8: both replace each offending byte with U+FFFD before tokenizing.
TEST_F(SentencePieceOracle, GeneratedInvalidUtf8) {
  test::TextGenerator gen(77);
  int mismatches = 0;
  for (int i = 0; i < kTexts / 2 && mismatches < 10; ++i) {
    const std::string text = gen.text(10, /*allow_invalid=*/true);
    const auto [got, expected] = encode_both(i, text);
    if (got != expected) {
      ++mismatches;
      continue;
    }
    EXPECT_EQ(tok_->decode(got, true), sp_decode(expected)) << test::hex_bytes(text);
  }
}

// Arbitrary id sequences, including control tokens and byte tokens that do not form valid
// UTF-8. The unknown token is left out: SentencePiece renders it as " ⁇ ", while moon, like
// llama.cpp, drops it with skip_special and shows "<unk>" without.
TEST_F(SentencePieceOracle, DecodeRandomIds) {
  test::TextGenerator gen(4242);
  const auto n = static_cast<uint32_t>(tok_->vocab_size());
  for (int i = 0; i < kTexts; ++i) {
    std::vector<TokenId> ids(1 + gen.below(12));
    for (TokenId& id : ids) {
      switch (gen.below(3)) {
        case 0:
          id = static_cast<TokenId>(3 + gen.below(256));
          break;  // <0xNN>
        case 1:
          id = static_cast<TokenId>(1 + gen.below(2));
          break;  // <s>, </s>
        default:
          id = static_cast<TokenId>(1 + gen.below(n - 1));
          break;
      }
    }
    ASSERT_EQ(tok_->decode(ids, true), sp_decode(ids)) << test::ids_to_string(ids);
  }
}

}  // namespace
}  // namespace moon
