// The int8 tiles for the super-block formats (Q2_K to Q6_K, IQ4_XS) against Q8_K
// activations, written once on 256-bit integer vectors for every level that has AVX2 (the
// including .cpp defines MOON_SIMD_TARGET, kernels/cpu/simd.h says how).
//
// Per super-block and weight row, the 256 quants are unpacked into eight registers of 32
// bytes and the group scales into 16-bit lanes; every activation row of the tile then
// reuses them. A register pair of 16 elements goes through maddubs (unsigned weight bytes
// times signed activation bytes into 16-bit pair sums, none of which can saturate: weights
// are at most 63, or enter as |w| <= 127 with the sign moved onto x for IQ4_XS) and then
// madd with the groups' scales, so the lanes accumulate sum of scale_g * q_w * q_x exactly.
// Formats whose quants are signed (Q3_K, Q6_K) enter offset to unsigned, q + bias, and
// subtract bias * sum of scale_g * bsums_g, which Q8_K's group sums give for free. The
// exact integers S and M then meet the float rule of matmul.h in the same order as the
// scalar tiles, so every level gives the same bits.
#pragma once

#ifndef MOON_SIMD_TARGET
#error "define MOON_SIMD_TARGET to the including file's target attribute first (see simd.h)"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/matmul_int8_simd.h"  // block_sums4
#include "kernels/cpu/matmul_tiles.h"
#include "tensor/quant_k.h"
#include "util/simd/target.h"

namespace moon::kernels::detail {
namespace {

// One weight row's super-block, unpacked for the tiles.
struct UnpackedSuperBlock {
  __m256i q[8];    // elements 32 v .. 32 v + 31: unsigned (q + bias), or signed for IQ4_XS
  __m256i scales;  // the 16 group scales as int16
  __m256i mins;    // the 16 group mins as int16 (formats with mins)
  float d, dmin;
};

template <DType T>
constexpr bool kHasMins = T == DType::Q2_K || T == DType::Q4_K || T == DType::Q5_K;
// The offset of Q6_K's and Q3_K's signed quants, as a power of two.
template <DType T>
constexpr int kQuantBiasShift = T == DType::Q6_K   ? 5
                                : T == DType::Q3_K ? 2
                                                   : -1;
template <DType T>
constexpr bool kSignedQuants = T == DType::IQ4_XS;

template <DType T>
constexpr size_t kSuperBlockBytes = T == DType::Q2_K   ? sizeof(BlockQ2_K)
                                    : T == DType::Q3_K ? sizeof(BlockQ3_K)
                                    : T == DType::Q4_K ? sizeof(BlockQ4_K)
                                    : T == DType::Q5_K ? sizeof(BlockQ5_K)
                                    : T == DType::Q6_K ? sizeof(BlockQ6_K)
                                                       : sizeof(BlockIQ4_XS);

MOON_SIMD_TARGET inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 8 per-32 values (one per sub-block) as the 16 group lanes, each twice.
MOON_SIMD_TARGET inline __m256i pairs_from_bytes(__m128i eight_bytes_as_int16) {
  return _mm256_set_m128i(_mm_unpackhi_epi16(eight_bytes_as_int16, eight_bytes_as_int16),
                          _mm_unpacklo_epi16(eight_bytes_as_int16, eight_bytes_as_int16));
}

// Bits `bit` of 32 bytes moved to bit `to` (byte-wise; 16-bit shifts never carry a masked
// bit across a byte here).
template <int kBit, int kTo>
MOON_SIMD_TARGET inline __m256i move_bit(__m256i v) {
  const __m256i masked = _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(1 << kBit)));
  if constexpr (kTo >= kBit) {
    return _mm256_slli_epi16(masked, kTo - kBit);
  } else {
    return _mm256_srli_epi16(masked, kBit - kTo);
  }
}

template <DType T>
MOON_SIMD_TARGET inline void unpack_simd(const uint8_t* row, int64_t index, UnpackedSuperBlock* u) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    using Block = std::conditional_t<T == DType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block& b = reinterpret_cast<const Block*>(row)[index];
    u->d = _cvtsh_ss(b.d);
    u->dmin = _cvtsh_ss(b.dmin);
    alignas(16) uint8_t sc[16];  // scales then mins
    decode_scales_k4(b.scales, sc, sc + 8);
    const __m128i both = _mm_load_si128(reinterpret_cast<const __m128i*>(sc));
    u->scales = pairs_from_bytes(_mm_cvtepu8_epi16(both));
    u->mins = pairs_from_bytes(_mm_cvtepu8_epi16(_mm_srli_si128(both, 8)));
    [[maybe_unused]] __m256i high;
    if constexpr (T == DType::Q5_K) high = load256(b.qh);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i bytes = load256(b.qs + 32 * c);
      u->q[2 * c] = _mm256_and_si256(bytes, low4);
      u->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
      if constexpr (T == DType::Q5_K) {
        // Bit 2c of qh byte l is element 64 c + l's fifth bit, bit 2c + 1 element 64 c + 32 + l's.
        const __m256i h = _mm256_srli_epi16(high, 2 * c);  // bits 2c, 2c + 1 now 0, 1
        u->q[2 * c] = _mm256_or_si256(u->q[2 * c], move_bit<0, 4>(h));
        u->q[2 * c + 1] = _mm256_or_si256(u->q[2 * c + 1], move_bit<1, 4>(h));
      }
    }
  } else if constexpr (T == DType::Q6_K) {
    const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(row)[index];
    u->d = _cvtsh_ss(b.d);
    u->scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i a = load256(b.ql + 64 * half), c = load256(b.ql + 64 * half + 32);
      const __m256i h = load256(b.qh + 32 * half);
      const __m256i top = _mm256_set1_epi8(0x30);
      // Quarter t: low 4 bits from nibble t / 2 of ql (bytes l, or l + 32 for odd t), top 2
      // from bits 2t of qh.
      u->q[4 * half + 0] = _mm256_or_si256(_mm256_and_si256(a, low4),
                                           _mm256_and_si256(_mm256_slli_epi16(h, 4), top));
      u->q[4 * half + 1] = _mm256_or_si256(_mm256_and_si256(c, low4),
                                           _mm256_and_si256(_mm256_slli_epi16(h, 2), top));
      u->q[4 * half + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4),
                                           _mm256_and_si256(h, top));
      u->q[4 * half + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4),
                                           _mm256_and_si256(_mm256_srli_epi16(h, 2), top));
    }
  } else if constexpr (T == DType::Q3_K) {
    const BlockQ3_K& b = reinterpret_cast<const BlockQ3_K*>(row)[index];
    u->d = _cvtsh_ss(b.d);
    alignas(16) int8_t sc[16];
    decode_scales_q3_k(b.scales, sc);
    u->scales = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i hmask = load256(b.hmask);
    const __m256i three = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i bytes = load256(b.qs + 32 * half);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        // q + 4: the two low bits, plus 4 where hmask's bit 4 half + j is set.
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * j), three);
        const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * half + j)));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hmask, bit), bit);
        u->q[4 * half + j] = _mm256_or_si256(low, _mm256_and_si256(set, _mm256_set1_epi8(4)));
      }
    }
  } else if constexpr (T == DType::Q2_K) {
    const BlockQ2_K& b = reinterpret_cast<const BlockQ2_K*>(row)[index];
    u->d = _cvtsh_ss(b.d);
    u->dmin = _cvtsh_ss(b.dmin);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    u->scales = _mm256_cvtepu8_epi16(_mm_and_si128(packed, nibble));
    u->mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), nibble));
    const __m256i three = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i bytes = load256(b.qs + 32 * half);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        u->q[4 * half + j] = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * j), three);
      }
    }
  } else {
    static_assert(T == DType::IQ4_XS);
    const BlockIQ4_XS& b = reinterpret_cast<const BlockIQ4_XS*>(row)[index];
    u->d = _cvtsh_ss(b.d);
    alignas(16) int8_t sc[16] = {};
    decode_scales_iq4_xs(b, sc);
    u->scales =
        pairs_from_bytes(_mm_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sc))));
    const __m256i table =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ++ib) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 16 * ib));
      const __m128i nibble = _mm_set1_epi8(0x0F);
      const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble),
                                           _mm_and_si128(bytes, nibble));
      u->q[ib] = _mm256_shuffle_epi8(table, idx);
    }
  }
}

// The scales of register v's two groups, 2v in the low 128 bits and 2v + 1 in the high.
MOON_SIMD_TARGET inline __m256i group_scales(__m256i scales, int v) {
  const __m256i pair = _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(v));
  return _mm256_shuffle_epi8(
      pair, _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
                             2, 3, 2, 3, 2, 3, 2, 3));
}

// Row i's lanes for one unpacked weight super-block: 8 int32 summing to S.
template <DType T>
MOON_SIMD_TARGET inline __m256i super_block_lanes(const UnpackedSuperBlock& u,
                                                  const __m256i (&scale)[8], const BlockQ8_K& x,
                                                  __m256i bsums) {
  __m256i lanes = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int v = 0; v < 8; ++v) {
    const __m256i xq = load256(x.qs + 32 * v);
    __m256i pairs;
    if constexpr (kSignedQuants<T>) {
      pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(u.q[v], u.q[v]), _mm256_sign_epi8(xq, u.q[v]));
    } else {
      pairs = _mm256_maddubs_epi16(u.q[v], xq);
    }
    lanes = _mm256_add_epi32(lanes, _mm256_madd_epi16(pairs, scale[v]));
  }
  if constexpr (kQuantBiasShift<T> >= 0) {
    const __m256i bias_sums = _mm256_madd_epi16(u.scales, bsums);  // sum of scale_g * bsums_g
    lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(bias_sums, kQuantBiasShift<T>));
  }
  return lanes;
}

// How many super-blocks ahead each weight row is prefetched (about 0.5-1 KiB, as the Q8_0
// tiles' 16 blocks).
constexpr int64_t kPrefetchSuperBlocks = 4;

// Prefetches the weight super-block kPrefetchSuperBlocks ahead of block b of `row`, running
// on into the same row of the next tile of C rows past the row's end.
template <size_t kBlockBytes, int C>
MOON_SIMD_TARGET inline void prefetch_ahead(const uint8_t* row, int64_t b, int64_t row_blocks,
                                            size_t w_row_bytes) {
  const int64_t ahead = b + kPrefetchSuperBlocks;
  const uint8_t* next = ahead < row_blocks
                            ? row + ahead * kBlockBytes
                            : row + C * w_row_bytes + (ahead - row_blocks) * kBlockBytes;
  for (size_t line = 0; line < kBlockBytes; line += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(next + line), _MM_HINT_T0);
  }
}

template <DType T, int R, int C>
MOON_SIMD_TARGET void super_block_tile(const BlockQ8_K* x, int64_t x_row_blocks, const uint8_t* w,
                                       size_t w_row_bytes, float* y, int64_t ldy) {
  constexpr int kPairs = R * C;
  constexpr int kGroups = (kPairs + 3) / 4;
  constexpr size_t kBlockBytes = kSuperBlockBytes<T>;
  __m128 acc[kGroups];
#pragma GCC unroll 16
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm_setzero_ps();
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    __m256i s_lanes[kGroups * 4], m_lanes[kGroups * 4];
    alignas(16) float s_scale[kGroups * 4], m_scale[kGroups * 4];
#pragma GCC unroll 16
    for (int p = kPairs; p < kGroups * 4; ++p) {
      s_lanes[p] = m_lanes[p] = _mm256_setzero_si256();
      s_scale[p] = m_scale[p] = 0.0f;
    }
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const uint8_t* row = w + j * w_row_bytes;
      prefetch_ahead<kBlockBytes, C>(row, b, x_row_blocks, w_row_bytes);
      UnpackedSuperBlock u;
      unpack_simd<T>(row, b, &u);
      __m256i scale[8];
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) scale[v] = group_scales(u.scales, v);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const BlockQ8_K& xb = x[i * x_row_blocks + b];
        const __m256i bsums = load256(xb.bsums);
        s_lanes[i * C + j] = super_block_lanes<T>(u, scale, xb, bsums);
        s_scale[i * C + j] = xb.d * u.d;
        if constexpr (kHasMins<T>) {
          m_lanes[i * C + j] = _mm256_madd_epi16(u.mins, bsums);
          m_scale[i * C + j] = -(xb.d * u.dmin);
        }
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < kGroups; ++g) {
      const __m128i s =
          block_sums4(s_lanes[4 * g], s_lanes[4 * g + 1], s_lanes[4 * g + 2], s_lanes[4 * g + 3]);
      acc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(s), _mm_load_ps(s_scale + 4 * g), acc[g]);
      if constexpr (kHasMins<T>) {
        const __m128i m =
            block_sums4(m_lanes[4 * g], m_lanes[4 * g + 1], m_lanes[4 * g + 2], m_lanes[4 * g + 3]);
        acc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(m), _mm_load_ps(m_scale + 4 * g), acc[g]);
      }
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

template <int Rows, int Cols>
bool simd_super_block_tiles(DType type, SuperBlockTiles* tiles) {
  return for_super_block_dtype(type, [&]<DType T>() {
    set_tiles<Rows, Cols>(tiles, []<int R, int C>() { return &super_block_tile<T, R, C>; });
  });
}

}  // namespace
}  // namespace moon::kernels::detail
