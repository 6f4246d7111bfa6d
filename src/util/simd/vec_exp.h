// The one exponential of the SIMD code, shared by the kernels (softmax, silu, gelu, softcap,
// attention) and the sampler, so that its accuracy and speed are settled in one place and the
// levels cannot drift apart.
//
// Everything rests on one polynomial, exp2_fraction(t) = 2^(t - 1/2) for t in [0, 1]: 2^u is
// 2^floor(v) · exp2_fraction(v - floor(v)) with v = u + 1/2. Its interval is centred on 2^0,
// which is what lets degree 5 reach 2 ulp (fitting 2^t on [0, 1) instead leaves 3 ulp at the
// same degree). And taking v rather than u suits the sampler's hot loop: the 1/2 folds into
// the FMA that already forms the argument, and AVX-512's vreduceps and vscalefps then split
// and scale by floor(v) in one instruction each. A polynomial in u - round(u) would need one
// more subtraction a vector there, since vscalefps always floors (11% of the fused pass).
//
// The constants and the scalar exp2_fraction are plain C++, for portable twins of the vector
// code (sampling/kernels_scalar.cpp). The vector templates after them, written once over a
// wrapper struct V (vec_avx2.h, vec_avx512.h or a struct derived from one), exist only where
// the includer has defined MOON_SIMD_TARGET to its level's attribute first (kernels/cpu/simd.h
// says why), and sit in an unnamed namespace so that no two levels' copies merge at link time.

#ifndef MOON_UTIL_SIMD_VEC_EXP_CONSTANTS
#define MOON_UTIL_SIMD_VEC_EXP_CONSTANTS

namespace moon::simd {

// exp2_fraction's coefficients, constant term first: a relative-error minimax fit of
// 2^(t - 1/2) on [0, 1] (its own error 9e-8), held to exactly 1 at t = 1/2 (in float, with
// FMAs or without) so that exp(0) is exactly 1, then nudged by a few ulps to lower the error
// of the float evaluation: 1.65e-7 with FMAs, 1.85e-7 without.
inline constexpr int kExp2Degree = 5;
inline constexpr float kExp2Coeffs[kExp2Degree + 1] = {7.071067095e-01f, 4.901338816e-01f,
                                                       1.698105335e-01f, 3.948049247e-02f,
                                                       6.355334073e-03f, 1.326472731e-03f};

// log2(e) as the float nearest to it, and the float nearest to the rest: kLog2e alone is off
// by 1.3e-8 relative, which x·log2e near ±88 turns into 20 ulp of e^x.
inline constexpr float kLog2e = 1.44269502162933349609375f;
inline constexpr float kLog2eLow = 1.925963033500011079e-8f;

// In the unnamed namespace with the vector version below, so that `using simd::exp2_fraction`
// brings in both.
namespace {

// exp2_fraction in portable scalar code: separate multiplies and adds where no FMA is
// guaranteed, so its bits may differ from the vector version's by a rounding.
inline float exp2_fraction(float t) {
  float p = kExp2Coeffs[kExp2Degree];
  for (int k = kExp2Degree - 1; k >= 0; --k) p = p * t + kExp2Coeffs[k];
  return p;
}

}  // namespace
}  // namespace moon::simd

#endif  // MOON_UTIL_SIMD_VEC_EXP_CONSTANTS

// A second guard, so that a translation unit that first took only the constants (without
// MOON_SIMD_TARGET) still gets the vector code when it includes this again after defining it.
#if defined(MOON_SIMD_TARGET) && !defined(MOON_UTIL_SIMD_VEC_EXP_VECTOR)
#define MOON_UTIL_SIMD_VEC_EXP_VECTOR

namespace moon::simd {
namespace {

// 2^(t - 1/2) per lane for t in [0, 1] (a little beyond is fine), by Horner's rule in FMAs.
template <class V>
MOON_SIMD_TARGET inline typename V::Vec exp2_fraction(typename V::Vec t) {
  typename V::Vec p = V::set1(kExp2Coeffs[kExp2Degree]);
#pragma GCC unroll 8
  for (int k = kExp2Degree - 1; k >= 0; --k) p = V::fmadd(p, t, V::set1(kExp2Coeffs[k]));
  return p;
}

// e^x per lane, within 2 ulp and 2.1e-7 relative where e^x is a normal float (2.01e-7 at worst
// over every float; tests/util/vec_exp_test.cpp), and the same bits at every level;
// overflows to +inf, underflows to 0, keeps NaN.
template <class V>
MOON_SIMD_TARGET inline typename V::Vec exp(typename V::Vec x) {
  using Vec = typename V::Vec;
  const Vec half = V::set1(0.5f);
  // max/min return their second operand for NaN, so NaN passes through the clamp.
  x = V::min(V::set1(89.0f), V::max(V::set1(-104.0f), x));
  const Vec n = V::floor(V::fmadd(x, V::set1(kLog2e), half));
  // t = x·log2e + 1/2 - n without rounding the product: the first FMA rounds only its
  // result (1/2 - n is exact), the second adds the part of log2e that kLog2e leaves out.
  Vec t = V::fmadd(x, V::set1(kLog2e), V::sub(half, n));
  t = V::fmadd(x, V::set1(kLog2eLow), t);
  return V::scale_pow2(exp2_fraction<V>(t), n);  // n in [-150, 128] after the clamp
}

}  // namespace
}  // namespace moon::simd

#endif  // MOON_SIMD_TARGET && !MOON_UTIL_SIMD_VEC_EXP_VECTOR
