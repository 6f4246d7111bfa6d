#include "tensor/quant_k.h"

#include <algorithm>
#include <cmath>

#include "tensor/half.h"
#include "util/check.h"
#include "util/simd/target.h"

namespace moon {
namespace {

template <class Block>
const Block& block_at(const uint8_t* row, int64_t index) {
  return reinterpret_cast<const Block*>(row)[index];
}

void unpack_q2_k(const BlockQ2_K& b, SuperBlock* out) {
  out->d = fp16_to_fp32(b.d);
  out->dmin = fp16_to_fp32(b.dmin);
  for (int k = 0; k < kSuperBlockSize; ++k) {
    // 128-element halves use 32 bytes each; within one, bits 2j..2j+1 of byte l (l < 32)
    // hold element 32 j + l.
    const int half = k / 128, r = k % 128;
    out->q[k] = static_cast<int8_t>((b.qs[32 * half + r % 32] >> (2 * (r / 32))) & 3);
  }
  for (int g = 0; g < kSuperBlockGroups; ++g) {
    out->scale[g] = static_cast<int16_t>(b.scales[g] & 0x0F);
    out->min[g] = static_cast<int16_t>(b.scales[g] >> 4);
  }
}

void unpack_q3_k(const BlockQ3_K& b, SuperBlock* out) {
  out->d = fp16_to_fp32(b.d);
  for (int k = 0; k < kSuperBlockSize; ++k) {
    const int half = k / 128, r = k % 128, j = r / 32, l = r % 32;
    const int low = (b.qs[32 * half + l] >> (2 * j)) & 3;
    const bool high = (b.hmask[l] >> (4 * half + j)) & 1;
    out->q[k] = static_cast<int8_t>(low - (high ? 0 : 4));
  }
  int8_t scales[16];
  decode_scales_q3_k(b.scales, scales);
  for (int g = 0; g < kSuperBlockGroups; ++g) {
    out->scale[g] = scales[g];
    out->min[g] = 0;
  }
}

// Q4_K and Q5_K share the scales and the order of the low 4 bits: each 64-element chunk c
// has 32 bytes, element 64 c + l in the low nibble of byte l and 64 c + 32 + l in the high.
template <class Block>
void unpack_q45_k(const Block& b, bool fifth_bit, SuperBlock* out) {
  out->d = fp16_to_fp32(b.d);
  out->dmin = fp16_to_fp32(b.dmin);
  for (int k = 0; k < kSuperBlockSize; ++k) {
    const int c = k / 64, upper = (k % 64) / 32, l = k % 32;
    int q = (b.qs[32 * c + l] >> (4 * upper)) & 0x0F;
    if constexpr (requires { b.qh; }) {
      if (fifth_bit) q |= ((b.qh[l] >> (2 * c + upper)) & 1) << 4;
    }
    out->q[k] = static_cast<int8_t>(q);
  }
  uint8_t scales[8], mins[8];
  decode_scales_k4(b.scales, scales, mins);
  for (int g = 0; g < kSuperBlockGroups; ++g) {
    out->scale[g] = scales[g / 2];
    out->min[g] = mins[g / 2];
  }
}

void unpack_q6_k(const BlockQ6_K& b, SuperBlock* out) {
  out->d = fp16_to_fp32(b.d);
  for (int k = 0; k < kSuperBlockSize; ++k) {
    // 128-element halves use 64 ql bytes and 32 qh bytes; quarter t of a half takes its low
    // 4 bits from nibble t / 2 of ql byte l + 32 (t % 2) and its top 2 from bits 2t of qh l.
    const int half = k / 128, t = (k % 128) / 32, l = k % 32;
    const int low = (b.ql[64 * half + l + 32 * (t % 2)] >> (4 * (t / 2))) & 0x0F;
    const int high = (b.qh[32 * half + l] >> (2 * t)) & 3;
    out->q[k] = static_cast<int8_t>((low | high << 4) - 32);
  }
  for (int g = 0; g < kSuperBlockGroups; ++g) {
    out->scale[g] = b.scales[g];
    out->min[g] = 0;
  }
}

void unpack_iq4_xs(const BlockIQ4_XS& b, SuperBlock* out) {
  out->d = fp16_to_fp32(b.d);
  for (int k = 0; k < kSuperBlockSize; ++k) {
    const int ib = k / 32, j = k % 32;
    const int nibble = (b.qs[16 * ib + j % 16] >> (4 * (j / 16))) & 0x0F;
    out->q[k] = kIq4Values[nibble];
  }
  int8_t scales[8];
  decode_scales_iq4_xs(b, scales);
  for (int g = 0; g < kSuperBlockGroups; ++g) {
    out->scale[g] = scales[g / 2];
    out->min[g] = 0;
  }
}

}  // namespace

bool is_super_block_type(DType type) {
  switch (type) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

bool has_group_mins(DType type) {
  return type == DType::Q2_K || type == DType::Q4_K || type == DType::Q5_K;
}

void unpack(DType type, const uint8_t* row, int64_t index, SuperBlock* out) {
  out->dmin = 0.0f;
  switch (type) {
    case DType::Q2_K:
      return unpack_q2_k(block_at<BlockQ2_K>(row, index), out);
    case DType::Q3_K:
      return unpack_q3_k(block_at<BlockQ3_K>(row, index), out);
    case DType::Q4_K:
      return unpack_q45_k(block_at<BlockQ4_K>(row, index), false, out);
    case DType::Q5_K:
      return unpack_q45_k(block_at<BlockQ5_K>(row, index), true, out);
    case DType::Q6_K:
      return unpack_q6_k(block_at<BlockQ6_K>(row, index), out);
    case DType::IQ4_XS:
      return unpack_iq4_xs(block_at<BlockIQ4_XS>(row, index), out);
    default:
      MOON_FAIL("unpack: {} is not a super-block weight format", dtype_name(type));
  }
}

// ggml multiplies d by the group's integer scale first (and dmin by its min), then the
// element's q, then subtracts: the same three roundings here.
MOON_NO_FP_CONTRACT void dequantize_row_super_block(DType type, const void* x, float* y,
                                                    int64_t n) {
  const bool mins = has_group_mins(type);
  SuperBlock sb;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    unpack(type, static_cast<const uint8_t*>(x), i, &sb);
    float* yb = y + i * kSuperBlockSize;
    for (int g = 0; g < kSuperBlockGroups; ++g) {
      const float dl = sb.d * static_cast<float>(sb.scale[g]);
      const float ml = sb.dmin * static_cast<float>(sb.min[g]);
      for (int k = 16 * g; k < 16 * g + 16; ++k) {
        const float scaled = dl * static_cast<float>(sb.q[k]);
        yb[k] = mins ? scaled - ml : scaled;
      }
    }
  }
}

MOON_NO_FP_CONTRACT void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    const float* xb = x + i * kSuperBlockSize;
    BlockQ8_K& out = y[i];
    float amax = 0.0f, max = 0.0f;
    for (int k = 0; k < kSuperBlockSize; ++k) {
      if (std::fabs(xb[k]) > amax) {
        amax = std::fabs(xb[k]);
        max = xb[k];
      }
    }
    if (amax == 0.0f) {
      out = BlockQ8_K{};
      continue;
    }
    const float iscale = -127.0f / max;
    for (int k = 0; k < kSuperBlockSize; ++k) {
      out.qs[k] = static_cast<int8_t>(std::min(127.0f, std::nearbyint(iscale * xb[k])));
    }
    for (int g = 0; g < kSuperBlockGroups; ++g) {
      int sum = 0;
      for (int k = 16 * g; k < 16 * g + 16; ++k) sum += out.qs[k];
      out.bsums[g] = static_cast<int16_t>(sum);
    }
    out.d = 1.0f / iscale;
  }
}

}  // namespace moon
