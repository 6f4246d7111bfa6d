// Shared helpers for the tokenizer tests: loading the vocabulary-only GGUF files once per
// binary, and reading llama.cpp's .inp/.out test cases.
#pragma once

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
