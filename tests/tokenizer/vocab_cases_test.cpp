// llama.cpp's tokenizer test cases for each vocabulary-only GGUF: every text must encode to
// exactly the ids llama.cpp (checked upstream against Hugging Face) produced, and decode back.
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

class VocabCases : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabCases, EncodeMatchesLlamaCpp) {
  const std::string name = GetParam();
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-" + name + ".gguf");
  const Tokenizer* tok = test::vocab_tokenizer(name);
  ASSERT_NE(tok, nullptr);
  const auto cases = test::read_vocab_cases(path);
  ASSERT_EQ(cases.size(), 46u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::vector<TokenId> got = tok->encode(c.text, /*add_special=*/false,
                                                 /*parse_special=*/false);
    EXPECT_EQ(test::ids_to_string(got), test::ids_to_string(c.ids))
        << name << " case " << i << " text " << test::hex_bytes(c.text);
  }
}

TEST_P(VocabCases, DecodeRoundTrips) {
  const std::string name = GetParam();
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-" + name + ".gguf");
  const Tokenizer* tok = test::vocab_tokenizer(name);
  ASSERT_NE(tok, nullptr);
  for (const auto& c : test::read_vocab_cases(path)) {
    // Both the expected ids and ours: decoding is the inverse of llama.cpp's encoding too.
    EXPECT_EQ(tok->decode(c.ids, /*skip_special=*/true), c.text)
        << name << " text " << test::hex_bytes(c.text);
    EXPECT_EQ(tok->decode(tok->encode(c.text, false, false), true), c.text) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabCases,
                         ::testing::Values("llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2",
                                           "deepseek-coder"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) {
                             if (c == '-') c = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace moon
