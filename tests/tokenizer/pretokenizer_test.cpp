// Word splitting for byte-level BPE.
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <chrono>

namespace moon {
namespace {

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  auto preset = bpe_preset_for(pre);
  EXPECT_TRUE(preset.ok()) << preset.error().message;
  auto tokenizer = PreTokenizer::create(preset->patterns);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  std::vector<std::string_view> pieces;
  tokenizer->split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world's  end!!"),
            (Pieces{"Hello", " world", "'s", " ", " end", "!!"}));
  EXPECT_EQ(split("gpt-2", "a 12345 b"), (Pieces{"a", " 12345", " b"}));
  // A whitespace run gives its last character to what follows, even a lone newline.
  EXPECT_EQ(split("gpt-2", "x  \n\ny "), (Pieces{"x", "  \n", "\n", "y", " "}));
  EXPECT_EQ(split("default", "I'M"), (Pieces{"I", "'", "M"}));  // case-sensitive contractions
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(split("llama-bpe", "I'M here"), (Pieces{"I", "'M", " here"}));
  EXPECT_EQ(split("llama-bpe", "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(split("llama-bpe", "(x) = 1;\n"), (Pieces{"(x", ")", " =", " ", "1", ";\n"}));
  EXPECT_EQ(split("llama-bpe", "Привет, мир"), (Pieces{"Привет", ",", " мир"}));
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(split("qwen2", "x 2024"), (Pieces{"x", " ", "2", "0", "2", "4"}));
}

TEST(PreTokenizer, DeepseekCoderAppliesPatternsInSequence) {
  EXPECT_EQ(split("deepseek-coder", "ab 12\ncd, 中文"),
            (Pieces{"ab", " ", "1", "2", "\n", "cd", ",", " ", "中文"}));
}

TEST(PreTokenizer, InvalidUtf8StaysInPiecesOfItsOwn) {
  const std::string text =
      "ab\xFF\xFE"
      "cd \xC3";
  const Pieces pieces = split("llama-bpe", text);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  EXPECT_EQ(pieces.front(), "ab");
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  auto preset = bpe_preset_for("no-such-model");
  ASSERT_FALSE(preset.ok());
  EXPECT_NE(preset.error().message.find("no-such-model"), std::string::npos);
  EXPECT_NE(preset.error().message.find("llama-bpe"), std::string::npos);  // lists supported
}

TEST(PreTokenizer, MissingNameFallsBackToGpt2) {
  auto preset = bpe_preset_for("");
  ASSERT_TRUE(preset.ok());
  EXPECT_EQ(preset->patterns, bpe_preset_for("gpt-2")->patterns);
}

TEST(PreTokenizer, BadPatternIsAnError) {
  auto pre = PreTokenizer::create({"(unclosed"});
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.error().message.find("(unclosed"), std::string::npos);
}

TEST(PreTokenizer, LongRunsStayFast) {
  for (std::string_view pre : {"llama-bpe", "gpt-2", "deepseek-coder"}) {
    for (char c : {' ', 'a', '1', '!', '\n'}) {
      std::string text(1 << 20, c);
      text += "x";
      const auto start = std::chrono::steady_clock::now();
      const Pieces pieces = split(pre, text);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      size_t total = 0;
      for (const auto& p : pieces) total += p.size();
      EXPECT_EQ(total, text.size()) << pre << " " << int(c);
      EXPECT_LT(s, 5.0) << pre << " " << int(c);
    }
  }
}

}  // namespace
}  // namespace moon
