// Quantizers for the super-block formats, following ggml's reference algorithms (the ones
// llama-quantize runs without an importance matrix), so that moon writes the bytes llama.cpp
// writes: per group of 16 or 32 values a search for the scale (and minimum) that minimises a
// weighted squared error, then the group scales quantized against the super-block's largest,
// and the values requantized with the scales as stored.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant_k.h"
#include "util/check.h"
#include "util/simd/target.h"

namespace moon {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Round half to even, as ggml's nearest_int does for the values it meets.
int nearest_int(float f) {
  if (!(std::fabs(f) <= 4194303.0f)) return f > 0 ? 4194303 : -4194303;
  return static_cast<int>(std::nearbyint(f));
}

// The value of largest magnitude, with its sign (the first on ties).
float signed_max(const float* x, int n) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// Symmetric quants in [-nmax, nmax - 1] for n values: the value of largest magnitude maps
// to -nmax, then 18 nearby scales are tried and the one with the least x^2-weighted error
// kept. L gets q + nmax; returns the scale.
MOON_NO_FP_CONTRACT float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  const float max = signed_max(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float wx = w * x[i];
    sumlx += wx * static_cast<float>(l);
    const float wl = w * static_cast<float>(l);
    suml2 += wl * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      const float wx = w * x[i];
      sumlx += wx * static_cast<float>(l);
      const float wl = w * static_cast<float>(l);
      suml2 += wl * static_cast<float>(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Asymmetric quants in [0, nmax] with a minimum: x ~ scale * L + min, min <= 0. Starts from
// the range [min(x, 0), max(x)], then tries nstep + 1 scales (rmin + rdelta * is + nmax
// steps over the range), each with the least-squares scale and minimum for its quants, and
// keeps the one with the least weighted error (absolute with use_mad). Returns the scale and
// *the_min = -min.
MOON_NO_FP_CONTRACT float make_qkx2_quants(int n, int nmax, const float* x, const float* weights,
                                           uint8_t* L, float* the_min, uint8_t* Laux, float rmin,
                                           float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    const float w = weights[i];
    sum_w += w;
    const float wx = w * x[i];
    sum_x += wx;
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min) {
    std::fill(L, L + n, 0);
    *the_min = -min;
    return 0.0f;
  }
  const auto error_of = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    const float scaled = scale * static_cast<float>(L[i]);
    const float diff = scaled + min - x[i];
    const float e = weights[i] * error_of(diff);
    best_error += e;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float wl = w * static_cast<float>(l);
      sum_l += wl;
      const float wll = wl * static_cast<float>(l);
      sum_l2 += wll;
      const float wlx = wl * x[i];
      sum_xl += wlx;
    }
    const float a = sum_w * sum_l2, b = sum_l * sum_l;
    const float D = a - b;
    if (D > 0.0f) {
      const float p = sum_w * sum_xl, q = sum_x * sum_l;
      float this_scale = (p - q) / D;
      const float r = sum_l2 * sum_x, s = sum_l * sum_xl;
      float this_min = (r - s) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        const float scaled = this_scale * static_cast<float>(Laux[i]);
        const float diff = scaled + this_min - x[i];
        const float e = weights[i] * error_of(diff);
        cur_error += e;
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric 3-bit-style quants in [-nmax, nmax - 1], refined by moving single values while
// the x^2-weighted fit improves. L gets q + nmax.
MOON_NO_FP_CONTRACT float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  const float max = signed_max(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    const float wx = w * x[i];
    sumlx += wx * static_cast<float>(l);
    const float wl = w * static_cast<float>(l);
    suml2 += wl * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float wx = w * x[i];
      float slx = sumlx - wx * static_cast<float>(L[i]);
      if (slx > 0.0f) {
        const float wl = w * static_cast<float>(L[i]);
        float sl2 = suml2 - wl * static_cast<float>(L[i]);
        const float xs = x[i] * sl2;
        const int new_l = std::clamp(nearest_int(xs / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += wx * static_cast<float>(new_l);
          const float wn = w * static_cast<float>(new_l);
          sl2 += wn * static_cast<float>(new_l);
          const float lhs = slx * slx * suml2, rhs = sumlx * sumlx * sl2;
          if (sl2 > 0.0f && lhs > rhs) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// The 128-element halves' 2-bit fields: byte l of a half holds elements l, l + 32, l + 64,
// l + 96 in bits 0-1, 2-3, 4-5, 6-7 (Q2_K's and Q3_K's low bits).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* v = L + 128 * half + l;
      qs[32 * half + l] = static_cast<uint8_t>(v[0] | v[32] << 2 | v[64] << 4 | v[96] << 6);
    }
  }
}

MOON_NO_FP_CONTRACT void quantize_q2_k(const float* x, BlockQ2_K* y) {
  uint8_t L[kSuperBlockSize], Laux[16];
  float weights[16], mins[16], scales[16];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                 0.1f, 15, true);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  constexpr float kLevels = 15.0f;
  if (max_scale > 0.0f) {
    const float iscale = kLevels / max_scale;
    for (int j = 0; j < 16; ++j)
      y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    y->d = fp32_to_fp16(max_scale / kLevels);
  } else {
    std::fill(y->scales, y->scales + 16, 0);
    y->d = fp32_to_fp16(0.0f);
  }
  if (max_min > 0.0f) {
    const float iscale = kLevels / max_min;
    for (int j = 0; j < 16; ++j) {
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | nearest_int(iscale * mins[j]) << 4);
    }
    y->dmin = fp32_to_fp16(max_min / kLevels);
  } else {
    y->dmin = fp32_to_fp16(0.0f);
  }
  for (int j = 0; j < 16; ++j) {
    const float d = fp16_to_fp32(y->d) * static_cast<float>(y->scales[j] & 0x0F);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y->dmin) * static_cast<float>(y->scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] =
          static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
  }
  pack_2bit(L, y->qs);
}

MOON_NO_FP_CONTRACT void quantize_q3_k(const float* x, BlockQ3_K* y) {
  int8_t L[kSuperBlockSize];
  float scales[16];
  float max_scale = 0.0f, amax = 0.0f;
  for (int j = 0; j < 16; ++j) {
    scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  std::memset(y->scales, 0, sizeof(y->scales));
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < 16; ++j) {
      const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
      if (j < 8) {
        y->scales[j] = static_cast<uint8_t>(l & 0x0F);
      } else {
        y->scales[j - 8] = static_cast<uint8_t>(y->scales[j - 8] | (l & 0x0F) << 4);
      }
      y->scales[j % 4 + 8] = static_cast<uint8_t>(y->scales[j % 4 + 8] | (l >> 4) << (2 * (j / 4)));
    }
    y->d = fp32_to_fp16(1.0f / iscale);
  } else {
    y->d = fp32_to_fp16(0.0f);
  }
  int8_t stored[16];
  decode_scales_q3_k(y->scales, stored);
  for (int j = 0; j < 16; ++j) {
    const float d = fp16_to_fp32(y->d) * static_cast<float>(stored[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
  }
  // The third bit goes to hmask: bit b of byte m is element 32 b + m's.
  std::memset(y->hmask, 0, sizeof(y->hmask));
  uint8_t low[kSuperBlockSize];
  for (int k = 0; k < kSuperBlockSize; ++k) {
    int v = L[k];
    if (v > 3) {
      y->hmask[k % 32] = static_cast<uint8_t>(y->hmask[k % 32] | 1 << (k / 32));
      v -= 4;
    }
    low[k] = static_cast<uint8_t>(v);
  }
  pack_2bit(low, y->qs);
}

// Q4_K and Q5_K: 8 groups of 32 with weights |x| + rms(x), scales and mins to 6 bits.
template <int kNmax, class Block>
MOON_NO_FP_CONTRACT void quantize_q45_k(const float* x, Block* y, float rmin, int nstep) {
  uint8_t L[kSuperBlockSize], Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) {
      const float sq = x[32 * j + l] * x[32 * j + l];
      sum_x2 += sq;
    }
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                 0.1f, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    const int ls = std::min(63, nearest_int(inv_scale * scales[j]));
    const int lm = std::min(63, nearest_int(inv_min * mins[j]));
    if (j < 4) {
      y->scales[j] = static_cast<uint8_t>(ls);
      y->scales[j + 4] = static_cast<uint8_t>(lm);
    } else {
      y->scales[j + 4] = static_cast<uint8_t>((ls & 0x0F) | (lm & 0x0F) << 4);
      y->scales[j - 4] = static_cast<uint8_t>(y->scales[j - 4] | (ls >> 4) << 6);
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | (lm >> 4) << 6);
    }
  }
  y->d = fp32_to_fp16(max_scale / 63.0f);
  y->dmin = fp32_to_fp16(max_min / 63.0f);
  uint8_t sc[8], mn[8];
  decode_scales_k4(y->scales, sc, mn);
  for (int j = 0; j < 8; ++j) {
    const float d = fp16_to_fp32(y->d) * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y->dmin) * static_cast<float>(mn[j]);
    for (int ii = 0; ii < 32; ++ii) {
      L[32 * j + ii] =
          static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, kNmax));
    }
  }
  // 64-element chunks: element 64 c + l in the low nibble of byte l, 64 c + 32 + l in the
  // high; Q5_K's fifth bits in qh bits 2c (low) and 2c + 1 (high).
  if constexpr (requires { y->qh; }) std::memset(y->qh, 0, sizeof(y->qh));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
      if constexpr (requires { y->qh; }) {
        if (lo > 15) lo -= 16, y->qh[l] = static_cast<uint8_t>(y->qh[l] | 1 << (2 * c));
        if (hi > 15) hi -= 16, y->qh[l] = static_cast<uint8_t>(y->qh[l] | 2 << (2 * c));
      }
      y->qs[32 * c + l] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

MOON_NO_FP_CONTRACT void quantize_q6_k(const float* x, BlockQ6_K* y) {
  int8_t L[kSuperBlockSize];
  float scales[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, sizeof(*y));
    return;
  }
  const float iscale = -128.0f / max_scale;
  y->d = fp32_to_fp16(1.0f / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    y->scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < 16; ++j) {
    const float d = fp16_to_fp32(y->d) * static_cast<float>(y->scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] =
          static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* v = L + 128 * half;
    for (int l = 0; l < 32; ++l) {
      y->ql[64 * half + l] = static_cast<uint8_t>((v[l] & 0x0F) | (v[l + 64] & 0x0F) << 4);
      y->ql[64 * half + l + 32] =
          static_cast<uint8_t>((v[l + 32] & 0x0F) | (v[l + 96] & 0x0F) << 4);
      y->qh[32 * half + l] = static_cast<uint8_t>(v[l] >> 4 | (v[l + 32] >> 4) << 2 |
                                                  (v[l + 64] >> 4) << 4 | (v[l + 96] >> 4) << 6);
    }
  }
}

// The nearest of IQ4's 16 values to v (the lower one on ties), by bisection.
int best_iq4_index(float v) {
  if (v <= kIq4Values[0]) return 0;
  if (v >= kIq4Values[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < kIq4Values[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - kIq4Values[hi - 1] < kIq4Values[hi] - v ? hi - 1 : hi;
}

// IQ4_XS: per 32 values the x^2-weighted best scale over 15 trial scales, then the scales
// to 6 bits against the largest and the values re-picked with the stored scales.
MOON_NO_FP_CONTRACT void quantize_iq4_xs(const float* x, BlockIQ4_XS* y) {
  constexpr int kTries = 7;
  uint8_t L[kSuperBlockSize];
  float scales[8], weight[32];
  float max_scale = 0.0f, amax_scale = 0.0f;
  const float v0 = kIq4Values[0];
  for (int ib = 0; ib < 8; ++ib) {
    const float* xb = x + 32 * ib;
    for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
    const float max = signed_max(xb, 32);
    if (std::fabs(max) < kGroupMaxEps) {
      scales[ib] = 0.0f;
      continue;
    }
    const auto fit = [&](float id, float* sumqx, float* sumq2) {
      *sumqx = *sumq2 = 0.0f;
      for (int j = 0; j < 32; ++j) {
        const float q = kIq4Values[best_iq4_index(id * xb[j])];
        const float wq = weight[j] * q;
        const float a = wq * xb[j], b = wq * q;
        *sumqx += a;
        *sumq2 += b;
      }
    };
    float sumqx, sumq2;
    fit(1.0f / (-max / v0), &sumqx, &sumq2);
    float d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -kTries; itry <= kTries; ++itry) {
      fit((static_cast<float>(itry) + v0) / max, &sumqx, &sumq2);
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }
  const float d = -max_scale / 32.0f;
  y->d = fp32_to_fp16(d);
  y->scales_h = 0;
  std::memset(y->scales_l, 0, sizeof(y->scales_l));
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int ib = 0; ib < 8; ++ib) {
    int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
    for (int j = 0; j < 32; ++j)
      L[32 * ib + j] = static_cast<uint8_t>(best_iq4_index(idl * x[32 * ib + j]));
    l += 32;
    y->scales_l[ib / 2] = static_cast<uint8_t>(y->scales_l[ib / 2] | (l & 0x0F) << (4 * (ib % 2)));
    y->scales_h = static_cast<uint16_t>(y->scales_h | (l >> 4) << (2 * ib));
  }
  for (int ib = 0; ib < 8; ++ib) {
    for (int j = 0; j < 16; ++j) {
      y->qs[16 * ib + j] = static_cast<uint8_t>(L[32 * ib + j] | L[32 * ib + 16 + j] << 4);
    }
  }
}

}  // namespace

void quantize_row_super_block(DType type, const float* x, void* y, int64_t n) {
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    const float* xb = x + i * kSuperBlockSize;
    switch (type) {
      case DType::Q2_K:
        quantize_q2_k(xb, static_cast<BlockQ2_K*>(y) + i);
        break;
      case DType::Q3_K:
        quantize_q3_k(xb, static_cast<BlockQ3_K*>(y) + i);
        break;
      case DType::Q4_K:
        quantize_q45_k<15>(xb, static_cast<BlockQ4_K*>(y) + i, -1.0f, 20);
        break;
      case DType::Q5_K:
        quantize_q45_k<31>(xb, static_cast<BlockQ5_K*>(y) + i, -0.5f, 15);
        break;
      case DType::Q6_K:
        quantize_q6_k(xb, static_cast<BlockQ6_K*>(y) + i);
        break;
      case DType::IQ4_XS:
        quantize_iq4_xs(xb, static_cast<BlockIQ4_XS*>(y) + i);
        break;
      default:
        MOON_FAIL("quantize_row_super_block: {} is not a super-block weight format",
                  dtype_name(type));
    }
  }
}

}  // namespace moon
