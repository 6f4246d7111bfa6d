// The SIMD bodies of the element-wise and row-wise kernels, written once over a vector type
// S (see simd.h for how a level's .cpp instantiates them). Tails use masked loads and stores,
// so every element goes through the same vector arithmetic wherever it sits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/ops_impl.h"
#include "kernels/cpu/simd.h"
#include "kernels/ref/ref_kernels.h"  // the GELU constants
#include "tensor/convert.h"

namespace moon::kernels::detail {
namespace {

template <class S>
MOON_SIMD_TARGET void rmsnorm_row(const float* x, const float* weight, float* out, int64_t dim,
                                  float eps) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  // Four accumulators hide the FMA latency; their combination order is fixed.
  Vec acc[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= dim; i += 4 * kLanes) {
    for (int a = 0; a < 4; ++a) {
      const Vec v = S::load(x + i + a * kLanes);
      acc[a] = S::fmadd(v, v, acc[a]);
    }
  }
  for (; i < dim; i += kLanes) {
    const Vec v = S::load(x + i, S::tail(std::min(kLanes, dim - i)));
    acc[0] = S::fmadd(v, v, acc[0]);
  }
  const float sum_squares = S::reduce_add(S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3])));
  const Vec scale = S::set1(1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps));
  for (i = 0; i < dim; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, dim - i));
    const Vec v = S::load(x + i, m);
    const Vec w = S::load(weight + i, m);
    S::store(out + i, m, S::mul(S::mul(v, scale), w));
  }
}

template <class S>
MOON_SIMD_TARGET void rope_token(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim,
                                 const float* cos_dup, const float* sin_signed) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  for (int64_t h = 0; h < num_heads; ++h) {
    float* head = x + h * head_dim;  // [head_dim]
    for (int64_t i = 0; i < rot_dim; i += kLanes) {
      const typename S::Tail m = S::tail(std::min(kLanes, rot_dim - i));
      const Vec v = S::load(head + i, m);
      const Vec swapped = S::swap_pairs(v);  // (x1, x0) per pair
      // Multiply then add, no FMA: the reference's two roundings, so the bits match.
      const Vec r =
          S::add(S::mul(v, S::load(cos_dup + i, m)), S::mul(swapped, S::load(sin_signed + i, m)));
      S::store(head + i, m, r);
    }
  }
}

template <class S>
MOON_SIMD_TARGET void rope_neox_token(float* x, int64_t num_heads, int64_t head_dim,
                                      int64_t rot_dim, const float* cos, const float* sin) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    float* lo = x + h * head_dim;  // [half], paired element-wise with hi
    float* hi = lo + half;
    for (int64_t i = 0; i < half; i += kLanes) {
      const typename S::Tail m = S::tail(std::min(kLanes, half - i));
      const Vec a = S::load(lo + i, m), b = S::load(hi + i, m);
      const Vec c = S::load(cos + i, m), s = S::load(sin + i, m);
      // Multiply then add, no FMA: the reference's two roundings, so the bits match.
      S::store(lo + i, m, S::sub(S::mul(a, c), S::mul(b, s)));
      S::store(hi + i, m, S::add(S::mul(a, s), S::mul(b, c)));
    }
  }
}

template <class S>
MOON_SIMD_TARGET void softmax_row(float* x, int64_t cols) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  const Vec neg_inf = S::set1(-INFINITY);
  Vec vmax = neg_inf;
  for (int64_t i = 0; i < cols; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, cols - i));
    vmax = S::max(vmax, S::load_or(x + i, m, neg_inf));
  }
  const Vec max = S::set1(S::reduce_max(vmax));
  Vec vsum = S::zero();
  for (int64_t i = 0; i < cols; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, cols - i));
    const Vec e = exp<S>(S::sub(S::load(x + i, m), max));
    vsum = S::mask_add(vsum, m, e);
    S::store(x + i, m, e);
  }
  const Vec sum = S::set1(S::reduce_add(vsum));
  for (int64_t i = 0; i < cols; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, cols - i));
    S::store(x + i, m, S::div(S::load(x + i, m), sum));
  }
}

template <class S>
MOON_SIMD_TARGET void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  const Vec one = S::set1(1.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, n - i));
    const Vec g = S::load(gate + i, m);
    const Vec e = exp<S>(S::sub(S::zero(), g));
    const Vec silu = S::div(g, S::add(one, e));
    S::store(out + i, m, S::mul(silu, S::load(up + i, m)));
  }
}

// 0.5 g (1 + tanh(u)) is g * sigmoid(2u), which needs only the vector exp silu uses.
template <class S>
MOON_SIMD_TARGET void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  const Vec one = S::set1(1.0f);
  const Vec cubic = S::set1(ref::kGeluCubic);
  const Vec minus_two_sqrt_2_over_pi = S::set1(-2.0f * ref::kGeluSqrt2OverPi);
  for (int64_t i = 0; i < n; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, n - i));
    const Vec g = S::load(gate + i, m);
    const Vec inner = S::fmadd(S::mul(cubic, g), S::mul(g, g), g);  // g + 0.044715 g^3
    const Vec e = exp<S>(S::mul(minus_two_sqrt_2_over_pi, inner));
    const Vec gelu = S::div(g, S::add(one, e));
    S::store(out + i, m, S::mul(gelu, S::load(up + i, m)));
  }
}

// cap * tanh(x / cap) as cap * (1 - 2 / (e^(2x / cap) + 1)): the vector exp again.
template <class S>
MOON_SIMD_TARGET void softcap(float* x, int64_t n, float cap) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::kLanes;
  const Vec vcap = S::set1(cap), two_over_cap = S::set1(2.0f / cap);
  const Vec one = S::set1(1.0f), two = S::set1(2.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, n - i));
    const Vec e = exp<S>(S::mul(S::load(x + i, m), two_over_cap));
    S::store(x + i, m, S::mul(vcap, S::sub(one, S::div(two, S::add(e, one)))));
  }
}

template <class S>
MOON_SIMD_TARGET void add(const float* a, const float* b, float* out, int64_t n) {
  constexpr int64_t kLanes = S::kLanes;
  for (int64_t i = 0; i < n; i += kLanes) {
    const typename S::Tail m = S::tail(std::min(kLanes, n - i));
    S::store(out + i, m, S::add(S::load(a + i, m), S::load(b + i, m)));
  }
}

template <class S, DType T>
MOON_SIMD_TARGET void dequantize_plain(const uint8_t* src, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes) S::store(out + i, load_plain<S, T>(src, i));
  if (i < n) {
    const typename S::Tail m = S::tail(n - i);
    S::store(out + i, m, load_plain<S, T>(src, i, m));
  }
}

template <class S, DType T>
MOON_SIMD_TARGET void dequantize_blocks(const uint8_t* src, float* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    for (int part = 0; part < 32 / S::kLanes; ++part) {
      S::store(out + 32 * b + S::kLanes * part, load_block<S, T>(src, b, part));
    }
  }
}

template <class S>
void dequantize_row(DType type, const uint8_t* src, float* out, int64_t n) {
  switch (type) {
    case DType::F32:
      std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      return dequantize_plain<S, DType::F16>(src, out, n);
    case DType::BF16:
      return dequantize_plain<S, DType::BF16>(src, out, n);
    case DType::Q8_0:
      return dequantize_blocks<S, DType::Q8_0>(src, out, n);
    case DType::Q4_0:
      return dequantize_blocks<S, DType::Q4_0>(src, out, n);
    default:  // the formats no SIMD decoder covers yet: one row per token, so plainly
      return moon::dequantize_row(type, src, out, n);
  }
}

// The table ops.cpp dispatches to for level S.
template <class S>
const OpsImpl& simd_ops() {
  static const OpsImpl impl{&rmsnorm_row<S>, &rope_token<S>, &rope_neox_token<S>,
                            &softmax_row<S>, &silu_mul<S>,   &gelu_tanh_mul<S>,
                            &softcap<S>,     &add<S>,        &dequantize_row<S>};
  return impl;
}

}  // namespace
}  // namespace moon::kernels::detail
