// Reads a GGUF file's tokenizer.ggml.* metadata into a VocabSpec.
#pragma once

#include "gguf/gguf_file.h"
#include "tokenizer/vocab.h"
#include "util/result.h"

namespace moon {

// Errors name the file and the key: no tokenizer at all, an unsupported tokenizer.ggml.model,
// a missing or mistyped token list, scores, types or merges. Special-token ids outside the
// vocabulary are dropped with a warning (as llama.cpp does), not treated as errors.
Result<VocabSpec> read_vocab_spec(const gguf::GgufFile& file);

}  // namespace moon
