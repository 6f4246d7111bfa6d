#include "tensor/quant_legacy.h"

#include "tensor/half.h"
#include "util/simd/target.h"

namespace moon {

MOON_NO_FP_CONTRACT void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      const float scaled = static_cast<float>(q4_1_quant(x[b], k)) * d;
      y[b * kLegacyBlockSize + k] = scaled + m;
    }
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      y[b * kLegacyBlockSize + k] = static_cast<float>(q5_quant(x[b], k) - 16) * d;
    }
  }
}

MOON_NO_FP_CONTRACT void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      const float scaled = static_cast<float>(q5_quant(x[b], k)) * d;
      y[b * kLegacyBlockSize + k] = scaled + m;
    }
  }
}

}  // namespace moon
