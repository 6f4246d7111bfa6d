// The file types `moon quantize --type` accepts, named and numbered as llama.cpp's
// llama-quantize does, and which dtype each tensor of a Llama file gets in each: the
// K-quant "_S"/"_M"/"_L" mixtures give the value projections, the feed-forward down
// projections and the output more bits, with llama.cpp's rules, so a moon Q4_K_M file has
// the tensor types of llama.cpp's.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "gguf/gguf_file.h"
#include "tensor/dtype.h"

namespace moon {

struct FileType {
  std::string_view name;  // "Q4_K_M"
  uint32_t llama_ftype;   // general.file_type
  DType base;             // the type of the matrices no rule singles out
};

std::span<const FileType> file_types();
// Case-insensitive ("q4_k_m" works); nullptr when unknown.
const FileType* find_file_type(std::string_view name);

// What the rules look at besides the tensor.
struct RecipeContext {
  int64_t n_layer = 0;
  int64_t n_gqa = 1;       // query heads per KV head
  bool has_output = true;  // false: the embedding is tied and doubles as the output
};

// The dtype tensor `t` is stored in. Only 2-D matrices whose names end in "weight" change; a
// type whose blocks do not divide the rows falls back as llama-quantize's does (Q4_K to Q5_0,
// Q5_K to Q5_1, Q6_K to Q8_0, Q2_K/Q3_K to Q4_0; IQ4_XS to Q4_0 where llama.cpp takes
// IQ4_NL, which moon does not have), and past that an F32 matrix becomes F16 and any other
// keeps its type.
DType recipe_tensor_type(const FileType& ft, const gguf::TensorInfo& t, const RecipeContext& ctx);

}  // namespace moon
