// Built-in models: small Llama-shaped models made in memory from deterministic
// pseudo-random weights, so that moon runs on a fresh machine with nothing downloaded.
// Their output is meaningless text; they exist to exercise the whole pipeline.
//
// "tiny": 4 layers, 128-wide, 8 query heads over 4 KV heads, F32, and a byte-level
// SentencePiece-style vocabulary (control tokens, the 256 byte tokens, "▁" and printable
// ASCII), serialized as a real GGUF so it loads through the same path as a file.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace moon {

inline constexpr std::string_view kBuiltinPrefix = "builtin:";
inline constexpr std::string_view kDefaultBuiltinModel = "builtin:tiny";

// The GGUF bytes of the named built-in model, or an error listing the known names.
Result<std::vector<uint8_t>> builtin_model_gguf(std::string_view name);

}  // namespace moon
