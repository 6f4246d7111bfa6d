#include "tensor/quant_q8_0.h"

#include <cmath>

#include "tensor/half.h"

namespace moon {

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t num_blocks = n / kQ8_0BlockSize;
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;  // [32]
    float amax = 0.0f;
    for (int j = 0; j < kQ8_0BlockSize; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    // ggml multiplies by the reciprocal instead of dividing; the rounding differs in rare
    // cases, and matching its bytes matters more than the last half-ulp.
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQ8_0BlockSize; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  const int64_t num_blocks = n / kQ8_0BlockSize;
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQ8_0BlockSize; ++j) {
      y[b * kQ8_0BlockSize + j] = d * static_cast<float>(x[b].qs[j]);
    }
  }
}

}  // namespace moon
