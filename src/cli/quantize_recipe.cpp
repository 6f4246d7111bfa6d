#include "cli/quantize_recipe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace moon {
namespace {

constexpr std::array kFileTypes = {
    FileType{"F32", 0, DType::F32},      FileType{"F16", 1, DType::F16},
    FileType{"BF16", 32, DType::BF16},   FileType{"Q8_0", 7, DType::Q8_0},
    FileType{"Q4_0", 2, DType::Q4_0},    FileType{"Q4_1", 3, DType::Q4_1},
    FileType{"Q5_0", 8, DType::Q5_0},    FileType{"Q5_1", 9, DType::Q5_1},
    FileType{"Q2_K", 10, DType::Q2_K},   FileType{"Q3_K_S", 11, DType::Q3_K},
    FileType{"Q3_K_M", 12, DType::Q3_K}, FileType{"Q3_K_L", 13, DType::Q3_K},
    FileType{"Q4_K_S", 14, DType::Q4_K}, FileType{"Q4_K_M", 15, DType::Q4_K},
    FileType{"Q5_K_S", 16, DType::Q5_K}, FileType{"Q5_K_M", 17, DType::Q5_K},
    FileType{"Q6_K", 18, DType::Q6_K},   FileType{"IQ4_XS", 30, DType::IQ4_XS},
};

bool is_quantized(DType t) {
  return dtype_traits(t).block_size > 1;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Layer i of n gets more bits: the first and last eighths and every third one between.
bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// "blk.<i>." -> i; -1 for tensors outside the layers.
int64_t layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int64_t i = 0;
  size_t p = 4;
  for (; p < name.size() && std::isdigit(static_cast<unsigned char>(name[p])); ++p) {
    i = i * 10 + (name[p] - '0');
  }
  return p > 4 ? i : -1;
}

DType mixture_type(const FileType& ft, std::string_view name, const RecipeContext& ctx,
                   int64_t cols) {
  const std::string_view f = ft.name;
  const DType base = ft.base;
  const int64_t i = std::max<int64_t>(0, layer_of(name)), n = ctx.n_layer;
  const bool output = name == "output.weight" || (!ctx.has_output && name == "token_embd.weight");
  if (output) {
    if (cols % dtype_traits(base).block_size != 0) return DType::Q8_0;
    return base == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  }
  if (name.find("attn_v.weight") != std::string_view::npos) {
    if (f == "Q2_K") return ctx.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    if (f == "Q3_K_M") return i < 2 ? DType::Q5_K : DType::Q4_K;
    if (f == "Q3_K_L") return DType::Q5_K;
    if (f == "IQ4_XS" && ctx.n_gqa >= 4) return DType::Q5_K;
    if ((f == "Q4_K_M" || f == "Q5_K_M") && use_more_bits(i, n)) return DType::Q6_K;
    if (f == "Q4_K_S" && i < 4) return DType::Q5_K;
    return base;
  }
  if (name.find("ffn_down") != std::string_view::npos) {
    if (f == "Q2_K") return DType::Q3_K;
    if (f == "Q3_K_M") return i < n / 16 ? DType::Q5_K : DType::Q4_K;
    if (f == "Q3_K_L") return DType::Q5_K;
    if (f == "Q4_K_M") return use_more_bits(i, n) ? DType::Q6_K : base;
    if (f == "IQ4_XS" && i < n / 8) return DType::Q5_K;
    if (f == "Q5_K_M" && use_more_bits(i, n)) return DType::Q6_K;
    if (f == "Q4_K_S" && i < n / 8) return DType::Q5_K;
    return base;
  }
  if (name.find("attn_qkv.weight") != std::string_view::npos) {  // fused (Phi-3)
    if (f == "Q3_K_M" || f == "Q3_K_L") return DType::Q4_K;
    if (f == "Q4_K_M") return DType::Q5_K;
    if (f == "Q5_K_M") return DType::Q6_K;
    return base;
  }
  if (name.find("attn_output.weight") != std::string_view::npos) {
    if (f == "Q2_K") return DType::Q3_K;
    if (f == "Q3_K_M") return DType::Q4_K;
    if (f == "Q3_K_L") return DType::Q5_K;
  }
  return base;
}

DType fallback(DType type, int64_t cols, DType source) {
  if (cols % dtype_traits(type).block_size == 0) return type;
  switch (type) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::IQ4_XS:
      type = DType::Q4_0;
      break;
    case DType::Q4_K:
      type = DType::Q5_0;
      break;
    case DType::Q5_K:
      type = DType::Q5_1;
      break;
    case DType::Q6_K:
      type = DType::Q8_0;
      break;
    default:
      break;
  }
  if (cols % dtype_traits(type).block_size == 0) return type;
  return source == DType::F32 ? DType::F16 : source;
}

}  // namespace

std::span<const FileType> file_types() {
  return kFileTypes;
}

const FileType* find_file_type(std::string_view name) {
  for (const FileType& ft : kFileTypes) {
    if (std::equal(ft.name.begin(), ft.name.end(), name.begin(), name.end(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) ==
                 std::toupper(static_cast<unsigned char>(b));
        })) {
      return &ft;
    }
  }
  return nullptr;
}

DType recipe_tensor_type(const FileType& ft, const gguf::TensorInfo& t, const RecipeContext& ctx) {
  if (t.n_dims != 2 || !ends_with(t.name, "weight")) return t.type;
  const auto cols = static_cast<int64_t>(t.ne[0]);
  const DType type = is_quantized(ft.base) ? mixture_type(ft, t.name, ctx, cols) : ft.base;
  return fallback(type, cols, t.type);
}

}  // namespace moon
