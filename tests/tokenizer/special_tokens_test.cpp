// Special tokens in text, BOS/EOS, end-of-generation ids, on the real vocabularies.
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

using Ids = std::vector<TokenId>;

#define REQUIRE_VOCAB(var, name)                                               \
  MOON_REQUIRE_TEST_FILE(var##_path, "models/vocab/ggml-vocab-" name ".gguf"); \
  const Tokenizer* var = test::vocab_tokenizer(name);                          \
  ASSERT_NE(var, nullptr)

Ids concat(Ids a, const Ids& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(SpecialTokens, Llama3BeginOfTextIsParsedOnlyWhenAsked) {
  REQUIRE_VOCAB(tok, "llama-bpe");
  const Ids parsed = tok->encode("<|begin_of_text|>hello", false, true);
  EXPECT_EQ(parsed, concat({128000}, tok->encode("hello", false, false)));

  const Ids literal = tok->encode("<|begin_of_text|>hello", false, false);
  ASSERT_FALSE(literal.empty());
  EXPECT_NE(literal.front(), 128000);
  for (TokenId id : literal) EXPECT_FALSE(tok->is_special(id)) << id;
  EXPECT_EQ(tok->decode(literal, true), "<|begin_of_text|>hello");
}

TEST(SpecialTokens, Llama3ChatTemplate) {
  REQUIRE_VOCAB(tok, "llama-bpe");
  const std::string text =
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  const Ids ids = tok->encode(text, true, true);
  Ids expected = {128000, 128006};
  expected = concat(expected, tok->encode("user", false, false));
  expected.push_back(128007);
  expected = concat(expected, tok->encode("\n\nHi there", false, false));
  expected.push_back(128009);
  expected.push_back(128006);
  expected = concat(expected, tok->encode("assistant", false, false));
  expected.push_back(128007);
  expected = concat(expected, tok->encode("\n\n", false, false));
  EXPECT_EQ(ids, expected);
  // Rendering specials gives the text back; hiding them leaves the plain text.
  EXPECT_EQ(tok->decode(ids, false), "<|begin_of_text|>" + text);
  EXPECT_EQ(tok->decode(ids, true), "user\n\nHi thereassistant\n\n");
}

TEST(SpecialTokens, AdjacentAndPartialSpecials) {
  REQUIRE_VOCAB(tok, "llama-bpe");
  EXPECT_EQ(tok->encode("<|eot_id|><|eot_id|>", false, true), (Ids{128009, 128009}));
  EXPECT_EQ(tok->encode("<|eot_id|>", false, true), (Ids{128009}));
  const Ids partial = tok->encode("<|eot_id", false, true);
  EXPECT_EQ(partial, tok->encode("<|eot_id", false, false));
  EXPECT_EQ(tok->encode("a<|eot_id|>", false, true),
            concat(tok->encode("a", false, false), {128009}));
}

TEST(SpecialTokens, QwenChatMarkers) {
  REQUIRE_VOCAB(tok, "qwen2");
  const Ids ids = tok->encode("<|im_start|>user\nhi<|im_end|>", false, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
  EXPECT_TRUE(tok->is_eog(151645));
  EXPECT_TRUE(tok->is_eog(151643));
  EXPECT_FALSE(tok->is_eog(151644));
}

TEST(SpecialTokens, Llama2ControlTokensAndDummyPrefix) {
  REQUIRE_VOCAB(tok, "llama-spm");
  // Like llama.cpp and Hugging Face's legacy Llama tokenizer: text after a special token
  // starts with its own dummy-prefix space.
  const Ids ids = tok->encode("<s>[INST] hi [/INST]", false, true);
  EXPECT_EQ(ids, concat({1}, tok->encode("[INST] hi [/INST]", false, false)));
  EXPECT_EQ(tok->encode("</s>", false, true), (Ids{2}));
  EXPECT_EQ(tok->encode("<unk>", false, true), (Ids{0}));
  EXPECT_NE(tok->encode("</s>", false, false), (Ids{2}));
}

TEST(SpecialTokens, UserDefinedTokensAreAlwaysSplitOut) {
  REQUIRE_VOCAB(tok, "deepseek-coder");
  // <|EOT|> is user-defined (type 4) in this vocabulary: like Hugging Face's non-special added
  // tokens it is recognised without parse_special; control tokens are not.
  ASSERT_EQ(tok->token_type(32021), TokenType::UserDefined);
  EXPECT_EQ(tok->encode("x<|EOT|>", false, false), concat(tok->encode("x", false, false), {32021}));
  ASSERT_EQ(tok->token_type(32014), TokenType::Control);
  const std::string eos(tok->token_text(32014));
  EXPECT_NE(tok->encode(eos, false, false), (Ids{32014}));
  EXPECT_EQ(tok->encode(eos, false, true), (Ids{32014}));
  // User-defined tokens are text, not hidden by skip_special.
  EXPECT_EQ(tok->decode(Ids{32021}, true), "<|EOT|>");
  EXPECT_EQ(tok->decode(Ids{32014}, true), "");
}

TEST(SpecialTokens, Phi3TokensSwallowFollowingWhitespace) {
  REQUIRE_VOCAB(tok, "phi-3");
  // As in llama.cpp (Phi-3's tokenizer.json marks its added tokens rstrip).
  EXPECT_EQ(tok->encode("<|user|>\nHello", false, true),
            concat({32010}, tok->encode("Hello", false, false)));
  // <|endoftext|> is excluded from that rule.
  EXPECT_EQ(tok->encode("<|endoftext|> x", false, true),
            concat({32000}, tok->encode(" x", false, false)));
  EXPECT_TRUE(tok->is_eog(32000));  // eos
  EXPECT_TRUE(tok->is_eog(32007));  // <|end|>
}

TEST(SpecialTokens, BosAndEosFollowMetadata) {
  struct Case {
    const char* name;
    bool bos;
    TokenId bos_id;
  };
  for (const Case& c : {Case{"llama-spm", true, 1}, Case{"phi-3", true, 1},
                        Case{"llama-bpe", true, 128000}, Case{"deepseek-coder", true, 32013},
                        Case{"qwen2", false, 151643}, Case{"gpt-2", false, 50256}}) {
    if (test::vocab_path(c.name).empty()) MOON_MISSING_TEST_DATA(c.name);
    const Tokenizer* tok = test::vocab_tokenizer(c.name);
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->add_bos(), c.bos) << c.name;
    EXPECT_FALSE(tok->add_eos()) << c.name;
    EXPECT_EQ(tok->bos_id(), c.bos_id) << c.name;
    const Ids plain = tok->encode("Hello", false, false);
    const Ids with = tok->encode("Hello", true, false);
    EXPECT_EQ(with, c.bos ? concat({c.bos_id}, plain) : plain) << c.name;
    EXPECT_EQ(tok->encode("", true, false), c.bos ? Ids{c.bos_id} : Ids{}) << c.name;
    EXPECT_TRUE(tok->is_eog(tok->eos_id())) << c.name;
    EXPECT_EQ(tok->decode(with, true), "Hello") << c.name;
  }
}

TEST(SpecialTokens, EndOfGeneration) {
  REQUIRE_VOCAB(tok, "llama-bpe");
  EXPECT_TRUE(tok->is_eog(128001));  // <|end_of_text|>, the eos
  EXPECT_TRUE(tok->is_eog(128009));  // <|eot_id|>
  EXPECT_FALSE(tok->is_eog(128000));
  EXPECT_FALSE(tok->is_eog(1000));
  EXPECT_FALSE(tok->is_eog(kNoToken));
  EXPECT_TRUE(tok->is_special(128000));
  EXPECT_FALSE(tok->is_special(1000));
}

}  // namespace
}  // namespace moon
