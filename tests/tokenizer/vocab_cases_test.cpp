// llama.cpp's tokenizer test cases for each vocabulary-only GGUF: every text must encode to
// exactly the ids llama.cpp (checked upstream against Hugging Face) produced, and decode back.
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

class VocabCases : public test::VocabTest {};

TEST_P(VocabCases, EncodeMatchesLlamaCpp) {
  const auto cases = test::read_vocab_cases(path_);
  ASSERT_EQ(cases.size(), 46u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::vector<TokenId> got = tok_->encode(c.text, /*add_special=*/false,
                                                  /*parse_special=*/false);
    EXPECT_EQ(test::ids_to_string(got), test::ids_to_string(c.ids))
        << name_ << " case " << i << " text " << test::hex_bytes(c.text);
  }
}

TEST_P(VocabCases, DecodeRoundTrips) {
  for (const auto& c : test::read_vocab_cases(path_)) {
    // Both the expected ids and ours: decoding is the inverse of llama.cpp's encoding too.
    EXPECT_EQ(tok_->decode(c.ids, /*skip_special=*/true), c.text)
        << name_ << " text " << test::hex_bytes(c.text);
    EXPECT_EQ(tok_->decode(tok_->encode(c.text, false, false), true), c.text) << name_;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabCases, ::testing::ValuesIn(test::kAllVocabs),
                         test::vocab_param_name);

}  // namespace
}  // namespace moon
