// Non-owning view of a 2-D weight matrix stored row-major in any supported dtype, as GGUF
// lays it out: `rows` rows of `cols` elements, each row `row_bytes` long (quantized rows
// are whole blocks). The bytes belong to whoever loaded them (usually the mapped GGUF).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace moon {

struct WeightView {
  DType type = DType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;  // output features (GGUF ne[1])
  int64_t cols = 0;  // input features (GGUF ne[0]), contiguous
  size_t row_bytes = 0;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

inline WeightView make_weight_view(DType type, const void* data, int64_t rows, int64_t cols) {
  return WeightView{type, static_cast<const uint8_t*>(data), rows, cols,
                    dtype_row_bytes(type, static_cast<size_t>(cols))};
}

}  // namespace moon
