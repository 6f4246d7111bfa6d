#include "tensor/convert.h"

#include <cstring>

#include "tensor/half.h"
#include "tensor/quant_k.h"
#include "tensor/quant_legacy.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"
#include "util/check.h"

namespace moon {

bool is_row_convertible(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
      return true;
    default:
      return is_super_block_type(type);
  }
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  if (is_super_block_type(type)) return dequantize_row_super_block(type, src, dst, n);
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case DType::Q8_0:
      dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
      return;
    case DType::Q4_0:
      dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
      return;
    case DType::Q4_1:
      dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
      return;
    case DType::Q5_0:
      dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
      return;
    case DType::Q5_1:
      dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
      return;
    default:
      MOON_FAIL("dequantize_row: unsupported dtype {}", dtype_name(type));
  }
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  if (is_super_block_type(type)) return quantize_row_super_block(type, src, dst, n);
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0:
      quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
      return;
    case DType::Q4_0:
      quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
      return;
    case DType::Q4_1:
      quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
      return;
    case DType::Q5_0:
      quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
      return;
    case DType::Q5_1:
      quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
      return;
    default:
      MOON_FAIL("quantize_row: unsupported dtype {}", dtype_name(type));
  }
}

}  // namespace moon
