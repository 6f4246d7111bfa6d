// The int8 path's SIMD tiles and activation quantizer, written once for every level that
// has AVX2 (kernels/cpu/simd.h says how a level's .cpp instantiates them).
//
// A tile multiplies Q8_0 activation blocks by Q8_0 or Q4_0 weight blocks, 32 signed bytes by
// 32 signed bytes, into exact int32 block sums, and follows the int8 rule stated in
// matmul_scalar.cpp: acc = fma(float(block sum), d_x * d_w, acc), block after block. `Dot`
// makes 8 partial lane sums per block pair (AVX2's maddubs/madd, DotMaddubs below, or VNNI's
// vpdpbusd); four pairs' lanes are then summed together with horizontal adds, so one fp32
// FMA serves four outputs. Integer sums do not depend on their order, so every level, and
// the AMX kernel (matmul_amx.cpp), gives the same bits.
#pragma once

#ifndef MOON_SIMD_TARGET
#error "define MOON_SIMD_TARGET to the including file's target attribute first (see simd.h)"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/matmul_tiles.h"
#include "tensor/half.h"
#include "tensor/quant_legacy.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"
#include "util/simd/target.h"
#include "util/simd/vec_avx2.h"

namespace moon::kernels::detail {
namespace {

// Lane sums of w * x over 32 signed bytes, with AVX2's unsigned-by-signed multiply: |w| times
// x carrying w's sign. No pair overflows int16: |x| <= 127 (the quantizer never makes -128)
// and |w| <= 128.
struct DotMaddubs {
  static constexpr bool kUnsignedWeights = false;
  MOON_SIMD_TARGET static __m256i dot(__m256i w, __m256i x) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

// The same for weights whose unsigned quants u = w + bias are at most 31 (Q4_0, Q5_0): maddubs
// takes them as they are, with no sign juggling, and no pair overflows int16 (2 * 31 * 127).
// Each lane starts at -bias times the sum of its four x, made once per activation block.
// Q8_0's u reach 255 and would saturate, so it keeps DotMaddubs.
struct DotMaddubsUnsigned {
  static constexpr bool kUnsignedWeights = true;
  MOON_SIMD_TARGET static __m256i start_lanes(__m256i x, int bias) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(static_cast<char>(bias)), x),
                             _mm256_set1_epi16(-1));
  }
  MOON_SIMD_TARGET static __m256i dot_unsigned(__m256i start, __m256i w_unsigned, __m256i x) {
    return _mm256_add_epi32(
        start, _mm256_madd_epi16(_mm256_maddubs_epi16(w_unsigned, x), _mm256_set1_epi16(1)));
  }
};

template <DType T>
constexpr int64_t kWeightBlockBytes = T == DType::Q8_0   ? sizeof(BlockQ8_0)
                                      : T == DType::Q4_0 ? sizeof(BlockQ4_0)
                                                         : sizeof(BlockQ5_0);

// A Q4_0 or Q5_0 block's 16 bytes of nibbles as 32 bytes 0..15 in element order (one mask
// for both halves, after they are joined).
MOON_SIMD_TARGET inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bytes, 4), bytes),
                          _mm256_set1_epi8(0x0F));
}

// A Q5_0 block's 5-bit quants 0..31: bit j of qh becomes 16 in byte j, which takes qh's
// byte j / 8 (a shuffle within each 128-bit half) and tests bit j % 8.
MOON_SIMD_TARGET inline __m256i q5_0_unsigned(const BlockQ5_0* block) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(load_u32(block->qh))),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(unpack_nibbles(block->qs), _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

// Block b of a Q8_0, Q4_0 or Q5_0 weight row as 32 signed bytes in element order, and its
// scale.
template <DType T>
MOON_SIMD_TARGET inline __m256i weight_block(const uint8_t* row, int64_t b, float* scale) {
  if constexpr (T == DType::Q5_0) {
    const BlockQ5_0* block = reinterpret_cast<const BlockQ5_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_sub_epi8(q5_0_unsigned(block), _mm256_set1_epi8(16));
  } else if constexpr (T == DType::Q8_0) {
    const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block->qs));
  } else {
    const BlockQ4_0* block = reinterpret_cast<const BlockQ4_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_sub_epi8(unpack_nibbles(block->qs), _mm256_set1_epi8(8));
  }
}

// The same block as unsigned bytes u = w + bias (Q8_0: w ^ 0x80, bias 128; Q4_0 and Q5_0:
// the raw quants, bias 8 and 16), for a Dot that multiplies unsigned weights by signed
// activations.
template <DType T>
constexpr int kWeightBias = T == DType::Q8_0   ? 128
                            : T == DType::Q4_0 ? 8
                                               : 16;

template <DType T>
MOON_SIMD_TARGET inline __m256i unsigned_weight_block(const uint8_t* row, int64_t b, float* scale) {
  if constexpr (T == DType::Q5_0) {
    const BlockQ5_0* block = reinterpret_cast<const BlockQ5_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return q5_0_unsigned(block);
  } else if constexpr (T == DType::Q8_0) {
    const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block->qs)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  } else {
    const BlockQ4_0* block = reinterpret_cast<const BlockQ4_0*>(row) + b;
    *scale = _cvtsh_ss(block->d);
    return unpack_nibbles(block->qs);
  }
}

// How far ahead of the current block each weight row is prefetched. The hardware prefetcher
// alone leaves a decode matvec at about 8 GB/s per core from DRAM; 16 blocks ahead (about
// 0.5 KiB of Q8_0) measured best, at about 12. The distance is in bytes: 16 blocks of Q4_0
// are only 288 of them, and on a Zen 3 core 544 bytes ahead made Q4_0 decode 14-21% faster.
constexpr int64_t kPrefetchBlocks = 16;
constexpr int64_t kPrefetchBytes = kPrefetchBlocks * static_cast<int64_t>(sizeof(BlockQ8_0));

// The exact block sums of four pairs' lane sums, as four int32.
MOON_SIMD_TARGET inline __m128i block_sums4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

template <class Dot, DType T, int R, int C>
MOON_SIMD_TARGET void int8_tile(const BlockQ8_0* x, int64_t x_row_blocks, const uint8_t* w,
                                size_t w_row_bytes, float* y, int64_t ldy) {
  // Output (i, j) is pair p = i * C + j, in group p / 4 at position p % 4.
  constexpr int kPairs = R * C;
  constexpr int kGroups = (kPairs + 3) / 4;
  __m128 acc[kGroups];
#pragma GCC unroll 16
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm_setzero_ps();
  constexpr int64_t block_bytes = kWeightBlockBytes<T>;
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    __m256i wq[C];
    float wd[C];
    // Near the end of a row, prefetch the start of the same row of the next tile (the C rows
    // after this one; past the matrix it is a harmless hint), so that a new tile does not
    // begin with cold blocks. One offset from each row serves all.
    const int64_t ahead = b + kPrefetchBytes / block_bytes;
    const int64_t prefetch_offset =
        ahead * block_bytes +
        (ahead < x_row_blocks ? 0
                              : C * static_cast<int64_t>(w_row_bytes) - x_row_blocks * block_bytes);
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      const uint8_t* row = w + j * w_row_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(row + prefetch_offset), _MM_HINT_T0);
      if constexpr (Dot::kUnsignedWeights) {
        wq[j] = unsigned_weight_block<T>(row, b, &wd[j]);
      } else {
        wq[j] = weight_block<T>(row, b, &wd[j]);
      }
    }
    // Four columns' scales in one conversion (d leads every block).
    __m128 wd4 = _mm_setzero_ps();
    if constexpr (C == 4) {
      uint16_t bits[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        std::memcpy(&bits[j], w + j * w_row_bytes + b * block_bytes, sizeof(uint16_t));
      wd4 = _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(bits[0]), static_cast<short>(bits[1]),
                                        static_cast<short>(bits[2]), static_cast<short>(bits[3]), 0,
                                        0, 0, 0));
    }
    __m256i lanes[kGroups * 4];
    alignas(16) float scale[kGroups * 4];
    float xds[R];
#pragma GCC unroll 16
    for (int p = kPairs; p < kGroups * 4; ++p) {
      lanes[p] = _mm256_setzero_si256();
      scale[p] = 0.0f;
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const BlockQ8_0& xb = x[i * x_row_blocks + b];
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
      const float xd = _cvtsh_ss(xb.d);
      xds[i] = xd;
      // With unsigned weights u = w + bias, each lane starts at -bias * (its four x) so
      // that it ends at the sum of w * x: integers, exact.
      __m256i start = _mm256_setzero_si256();
      if constexpr (Dot::kUnsignedWeights) start = Dot::start_lanes(xq, kWeightBias<T>);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) {
        if constexpr (Dot::kUnsignedWeights) {
          lanes[i * C + j] = Dot::dot_unsigned(start, wq[j], xq);
        } else {
          lanes[i * C + j] = Dot::dot(wq[j], xq);
        }
        if constexpr (C != 4) scale[i * C + j] = xd * wd[j];
      }
    }
    if constexpr (C == 4) {  // group i is row i
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m128i sums =
            block_sums4(lanes[4 * i], lanes[4 * i + 1], lanes[4 * i + 2], lanes[4 * i + 3]);
        acc[i] = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), _mm_mul_ps(_mm_set1_ps(xds[i]), wd4), acc[i]);
      }
      continue;
    }
#pragma GCC unroll 16
    for (int g = 0; g < kGroups; ++g) {
      const __m128i sums = block_sums4(lanes[4 * g], lanes[4 * g + 1], lanes[4 * g + 2],
                                       lanes[4 * g + 3]);  // exact: |sum| < 2^20
      acc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), _mm_load_ps(scale + 4 * g), acc[g]);
    }
  }
  alignas(16) float out[kGroups * 4];
#pragma GCC unroll 16
  for (int g = 0; g < kGroups; ++g) _mm_store_ps(out + 4 * g, acc[g]);
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) y[i * ldy + j] = out[i * C + j];
  }
}

// Fills `tiles` with Rows x Cols int8 tiles over `Dot` for a Q8_0, Q4_0 or Q5_0 weight;
// `NarrowDot`, where given, serves the formats whose unsigned quants fit in 5 bits.
template <class Dot, int Rows, int Cols, class NarrowDot = Dot>
bool simd_int8_tiles(DType type, Int8Tiles* tiles) {
  return for_int8_weight_dtype(type, [&]<DType T>() {
    using D = std::conditional_t<T == DType::Q8_0, Dot, NarrowDot>;
    set_tiles<Rows, Cols>(tiles, []<int R, int C>() { return &int8_tile<D, T, R, C>; });
  });
}

// The activation quantizer (matmul.h states the rule) over a vector type S with S::kLanes
// dividing 32.
template <class S>
MOON_SIMD_TARGET void quantize_row_simd(const float* x, BlockQ8_0* y, int64_t n) {
  using Vec = typename S::Vec;
  constexpr int kParts = kQ8_0BlockSize / S::kLanes;
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    Vec v[kParts];
    Vec amax = S::zero();
#pragma GCC unroll 4
    for (int p = 0; p < kParts; ++p) {
      v[p] = S::load(xb + p * S::kLanes);
      amax = S::max(S::max(v[p], S::sub(S::zero(), v[p])), amax);
    }
    const float max = S::reduce_max(amax);
    const Vec scale = S::set1(max != 0.0f ? 127.0f / max : 0.0f);
    y[b].d = fp32_to_fp16(max / 127.0f);
#pragma GCC unroll 4
    for (int p = 0; p < kParts; ++p)
      S::store_i8(y[b].qs + p * S::kLanes, S::round(S::mul(v[p], scale)));
  }
}

}  // namespace
}  // namespace moon::kernels::detail
