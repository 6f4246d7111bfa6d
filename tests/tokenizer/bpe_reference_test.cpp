// The heap-driven merge loop against a plain restatement of byte-level BPE: at each step merge
// the leftmost adjacent pair with the lowest rank, until none is listed. Slow (quadratic) but
// obviously right, and sharing nothing with the code under test beyond the word splitting
// and the vocabulary lookup.
#include <gtest/gtest.h>

#include <unordered_map>

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "text_generator.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

// GPT-2's byte-to-character table, written out independently of src/tokenizer/byte_level.
std::vector<std::string> gpt2_byte_chars() {
  std::vector<std::string> chars(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : 256 + extra++;
    if (cp < 0x80) {
      chars[b] = std::string(1, static_cast<char>(cp));
    } else {
      chars[b] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
  }
  return chars;
}

class BpeReference : public ::testing::TestWithParam<const char*> {};

TEST_P(BpeReference, SameTokensAsNaiveMerging) {
  const std::string name = GetParam();
  MOON_REQUIRE_TEST_FILE(path, "models/vocab/ggml-vocab-" + name + ".gguf");
  auto file = gguf::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto spec = read_vocab_spec(**file);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  auto vocab = Vocab::build(*spec);
  ASSERT_TRUE(vocab.ok());
  auto preset = bpe_preset_for(spec->pre);
  ASSERT_TRUE(preset.ok());
  auto bpe = BpeTokenizer::create(*vocab, spec->merges, *preset, spec->unk);
  ASSERT_TRUE(bpe.ok()) << bpe.error().message;
  auto pre = PreTokenizer::create(preset->patterns);
  ASSERT_TRUE(pre.ok());

  std::unordered_map<std::string, int> rank;
  for (size_t i = 0; i < spec->merges.size(); ++i)
    rank.emplace(spec->merges[i], static_cast<int>(i));
  const auto byte_chars = gpt2_byte_chars();

  auto naive = [&](std::string_view word, std::vector<TokenId>& out) {
    std::vector<std::string> symbols;
    std::string whole;
    for (char c : word) {
      symbols.push_back(byte_chars[static_cast<uint8_t>(c)]);
      whole += symbols.back();
    }
    if (preset->ignore_merges && vocab->find(whole) != kNoToken) {
      out.push_back(vocab->find(whole));
      return;
    }
    while (symbols.size() > 1) {
      int best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = rank.find(symbols[i] + " " + symbols[i + 1]);
        if (it != rank.end() && (best < 0 || it->second < best)) {
          best = it->second;
          at = i;
        }
      }
      if (best < 0) break;
      symbols[at] += symbols[at + 1];
      symbols.erase(symbols.begin() + static_cast<long>(at) + 1);
    }
    for (const auto& s : symbols) out.push_back(vocab->find(s));
  };

  test::TextGenerator gen(31337);
  for (int i = 0; i < 400; ++i) {
    const std::string text = gen.text(10, i % 4 == 3);
    std::vector<std::string_view> words;
    pre->split(text, words);
    std::vector<TokenId> expected;
    for (std::string_view w : words) naive(w, expected);
    std::vector<TokenId> got;
    bpe->encode(text, got);
    ASSERT_EQ(test::ids_to_string(got), test::ids_to_string(expected)) << test::hex_bytes(text);
  }
}

INSTANTIATE_TEST_SUITE_P(ByteLevelVocabs, BpeReference, ::testing::ValuesIn(test::kByteLevelVocabs),
                         test::vocab_param_name);

}  // namespace
}  // namespace moon
