#include "tensor/quant_legacy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "tensor/half.h"
#include "util/simd/target.h"

namespace moon {

namespace {

// Q4_1 and Q5_1: element = q * d + m, a multiply then an add as ggml rounds them.
template <class Block, class Quant>
MOON_NO_FP_CONTRACT void dequantize_offset_blocks(const Block* x, float* y, int64_t n,
                                                  Quant quant) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      const float scaled = static_cast<float>(quant(x[b], k)) * d;
      y[b * kLegacyBlockSize + k] = scaled + m;
    }
  }
}

}  // namespace

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  dequantize_offset_blocks(x, y, n, q4_1_quant);
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      y[b * kLegacyBlockSize + k] = static_cast<float>(q5_quant(x[b], k) - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  dequantize_offset_blocks(x, y, n, q5_quant<BlockQ5_1>);
}

namespace {

// Q4_1 and Q5_1: quants (x - min) / d rounded half up, 2^bits - 1 steps from min to max.
// ggml's Q5_1 has no upper clamp (rounding cannot pass 31 there); Q4_1 keeps one.
template <int kBits, class Block>
MOON_NO_FP_CONTRACT void quantize_offset_blocks(const float* x, Block* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float* xb = x + b * kLegacyBlockSize;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      min = std::min(min, xb[k]);
      max = std::max(max, xb[k]);
    }
    const float d = (max - min) / static_cast<float>((1 << kBits) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float scaled_lo = (xb[j] - min) * id;
      const float scaled_hi = (xb[16 + j] - min) * id;
      int lo, hi;
      if constexpr (kBits == 4) {
        lo = std::min(15, static_cast<int>(static_cast<int8_t>(scaled_lo + 0.5f)));
        hi = std::min(15, static_cast<int>(static_cast<int8_t>(scaled_hi + 0.5f)));
      } else {
        lo = static_cast<uint8_t>(scaled_lo + 0.5f);
        hi = static_cast<uint8_t>(scaled_hi + 0.5f);
        qh |= static_cast<uint32_t>((lo >> 4) & 1) << j | static_cast<uint32_t>((hi >> 4) & 1)
                                                              << (j + 16);
      }
      y[b].qs[j] = static_cast<uint8_t>((lo & 0x0F) | (hi & 0x0F) << 4);
    }
    if constexpr (kBits == 5) store_u32(y[b].qh, qh);
  }
}

}  // namespace

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
  quantize_offset_blocks<4>(x, y, n);
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  quantize_offset_blocks<5>(x, y, n);
}

MOON_NO_FP_CONTRACT void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b) {
    const float* xb = x + b * kLegacyBlockSize;
    float amax = 0.0f, max = 0.0f;
    for (int k = 0; k < kLegacyBlockSize; ++k) {
      if (amax < std::fabs(xb[k])) {
        amax = std::fabs(xb[k]);
        max = xb[k];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float scaled_lo = xb[j] * id;
      const float scaled_hi = xb[16 + j] * id;
      const int lo = std::min(31, static_cast<int>(static_cast<int8_t>(scaled_lo + 16.5f)));
      const int hi = std::min(31, static_cast<int>(static_cast<int8_t>(scaled_hi + 16.5f)));
      y[b].qs[j] = static_cast<uint8_t>((lo & 0x0F) | (hi & 0x0F) << 4);
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j | static_cast<uint32_t>((hi >> 4) & 1)
                                                            << (j + 16);
    }
    store_u32(y[b].qh, qh);
  }
}

}  // namespace moon
