// Shared helpers for the tokenizer tests: loading the vocabulary-only GGUF files once per
// binary, a fixture for tests run over each of them, and reading llama.cpp's .inp/.out test
// cases.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace moon::test {

// The tokenizer of models/vocab/ggml-vocab-<name>.gguf, loaded once and shared (a Tokenizer
// is safe for concurrent const use). Null when the file is absent; fails the test when it
// does not load.
const Tokenizer* vocab_tokenizer(const std::string& name);

// Path of models/vocab/ggml-vocab-<name>.gguf, or "" when absent.
std::string vocab_path(const std::string& name);

// The vocabulary-only GGUFs, as parameters of a VocabTest suite: all of them, and those
// with a byte-level BPE tokenizer.
inline constexpr const char* kAllVocabs[] = {"llama-spm", "phi-3", "llama-bpe",
                                             "qwen2",     "gpt-2", "deepseek-coder"};
inline constexpr const char* kByteLevelVocabs[] = {"llama-bpe", "qwen2", "gpt-2", "deepseek-coder"};

// A vocab parameter as a test name: "deepseek-coder" -> "deepseek_coder".
std::string vocab_param_name(const ::testing::TestParamInfo<const char*>& info);

// A test run once per vocab name (its parameter): skips when the vocab's file is absent
// (TEST DATA MISSING, as MOON_REQUIRE_TEST_FILE), else has its name, path and tokenizer.
//   class MySuite : public test::VocabTest {};
//   INSTANTIATE_TEST_SUITE_P(AllVocabs, MySuite, ::testing::ValuesIn(test::kAllVocabs),
//                            test::vocab_param_name);
class VocabTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override;

  std::string name_;
  std::string path_;
  const Tokenizer* tok_ = nullptr;
};

struct VocabCase {
  std::string text;
  std::vector<TokenId> ids;
};

// Reads <gguf>.inp (texts, each followed by "\n__ggml_vocab_test__\n") and <gguf>.out (one
// line of space-separated ids per text). Empty on failure, with a test failure recorded.
std::vector<VocabCase> read_vocab_cases(const std::string& gguf_path);

// "[68 65 ...]": bytes in hex, for messages about strings that may not be printable.
std::string hex_bytes(const std::string& s);
std::string ids_to_string(const std::vector<TokenId>& ids);

}  // namespace moon::test
