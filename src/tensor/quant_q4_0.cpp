#include "tensor/quant_q4_0.h"

#include <algorithm>
#include <cmath>

#include "tensor/half.h"

namespace moon {

// ggml's reference computes x * id + 8.5f as a multiply then an add; a fused multiply-add
// (which -march flags may allow) would round once and change some nibbles.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  constexpr int kHalf = kQ4_0BlockSize / 2;
  const int64_t num_blocks = n / kQ4_0BlockSize;
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float* xb = x + b * kQ4_0BlockSize;  // [32]
    // The signed element of largest magnitude (the first one on ties) becomes -8, which
    // uses the asymmetric range [-8, 7] fully on that side.
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQ4_0BlockSize; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      // Truncation after adding 8.5 rounds half up; the +8 side can reach 16, hence the cap.
      const float scaled_lo = xb[j] * id;  // separate statements keep clang from fusing
      const float scaled_hi = xb[kHalf + j] * id;
      const int lo = std::min(15, static_cast<int>(scaled_lo + 8.5f));
      const int hi = std::min(15, static_cast<int>(scaled_hi + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  constexpr int kHalf = kQ4_0BlockSize / 2;
  const int64_t num_blocks = n / kQ4_0BlockSize;
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    float* yb = y + b * kQ4_0BlockSize;  // [32]
    for (int j = 0; j < kHalf; ++j) {
      yb[j] = d * static_cast<float>((x[b].qs[j] & 0x0F) - 8);
      yb[kHalf + j] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
    }
  }
}

}  // namespace moon
