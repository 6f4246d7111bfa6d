// How the SIMD kernels are written once for every instruction set.
//
// Each level has a vector type, a struct of static functions around its intrinsics (Avx2 in
// simd_avx2.h, Avx512 in simd_avx512.h; same names, same meaning). The plain vector
// operations come from util/simd (vec_avx2.h, vec_avx512.h), which the sampler uses too;
// these structs derive from those and add the stored dtypes' loads and conversions. A kernel
// is written once as templates over that type S (matmul_simd.h, ops_simd.h,
// paged_attention_simd.h), and each level's .cpp instantiates it for its own S.
//
// A template cannot take a target attribute from its parameter, yet every function that
// holds intrinsics must carry its level's attribute (see util/simd/target.h). So the generic
// code is tagged MOON_SIMD_TARGET, which the level's .cpp defines to its attribute just before
// including the generic header:
//
//   #include "kernels/cpu/simd_avx512.h"
//   #define MOON_SIMD_TARGET MOON_TARGET_AVX512
//   #include "kernels/cpu/matmul_simd.h"
//
// and then instantiates only S = Avx512 (a mismatch either fails to compile or puts AVX-512
// instructions on the AVX2 path). The generic code sits in an unnamed namespace, so each
// .cpp compiles its own copy and no two levels' versions can be merged at link time.
//
// This header holds what the kernels share: loads that widen each stored dtype to fp32,
// the fp32 -> bf16 rounding, and the vector exp (from util/simd/vec_exp.h, shared with the
// sampler).
#pragma once

#ifndef MOON_SIMD_TARGET
#error "define MOON_SIMD_TARGET to the including file's target attribute first (see simd.h)"
#endif

#include <immintrin.h>

#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"   // IWYU pragma: export
#include "util/simd/vec_exp.h"  // IWYU pragma: export

namespace moon::kernels::detail {
namespace {

// S::kLanes elements of a plain-dtype (F32, F16, BF16) row starting at element k, as fp32.
template <class S, DType T>
MOON_SIMD_TARGET inline typename S::Vec load_plain(const uint8_t* row, int64_t k) {
  if constexpr (T == DType::F32) {
    return S::load(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == DType::F16) {
    return S::from_f16(S::load_u16(row + 2 * k));
  } else {
    return S::from_bf16(S::load_u16(row + 2 * k));
  }
}

// The same for the last, partial vector: lanes outside `tail` are zero and are not read.
template <class S, DType T>
MOON_SIMD_TARGET inline typename S::Vec load_plain(const uint8_t* row, int64_t k,
                                                   typename S::Tail tail) {
  if constexpr (T == DType::F32) {
    return S::load(reinterpret_cast<const float*>(row) + k, tail);
  } else if constexpr (T == DType::F16) {
    return S::from_f16(S::load_u16(row + 2 * k, tail));
  } else {
    return S::from_bf16(S::load_u16(row + 2 * k, tail));
  }
}

// Part `part` (elements kLanes * part ..) of block `block` of a Q8_0 or Q4_0 row,
// dequantized to exactly the values dequantize_row gives (d * q, one fp32 rounding).
template <class S, DType T>
MOON_SIMD_TARGET inline typename S::Vec load_block(const uint8_t* row, int64_t block, int part) {
  if constexpr (T == DType::Q8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + block;
    return S::mul(S::load_i8(b->qs + S::kLanes * part), S::set1(_cvtsh_ss(b->d)));
  } else {
    const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + block;
    return S::mul(S::q4_0_values(b->qs, part), S::set1(_cvtsh_ss(b->d)));
  }
}

// fp32 -> bf16, round to nearest even, exactly as fp32_to_bf16 (NaN stays a quiet NaN).
// Not vcvtneps2bf16: that one flushes subnormal inputs to zero. Written with the compiler's
// vector extensions (reinterpret_cast between same-size vectors keeps the bits), which it
// lowers to the level's own integer instructions.
template <class S>
MOON_SIMD_TARGET inline typename S::Half to_bf16(typename S::Vec x) {
  using U = typename S::U32;
  const U bits = reinterpret_cast<U>(x);
  const U rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16;
  const U quiet = (bits >> 16) | 0x40;
  const auto nan = reinterpret_cast<typename S::I32>(bits & 0x7FFFFFFF) > 0x7F800000;
  return S::pack_u16(nan ? quiet : rounded);
}

// The vector exp is the one the sampler uses too (util/simd/vec_exp.h).
using simd::exp;

}  // namespace
}  // namespace moon::kernels::detail
