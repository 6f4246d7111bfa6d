// The super-block int8 matmul on AMX tiles, for the K-quants (Q2_K .. Q6_K) and IQ4_XS in
// batches of 16 activation rows or more (util/cpu_features.h says when AMX is used).
//
// The tiles multiply bytes, so a group scale sc is folded into the packed weights as digits
// small enough that q * digit still fits a byte, one tile chain per digit:
//  - Q4_K and Q5_K: 6-bit scales sc = lo + 8 hi with lo, hi < 8, and q <= 31, so q * lo and
//    q * hi are unsigned bytes; two tdpbsud chains (signed activations times unsigned
//    weights) give C_0 and C_1 and S = C_0 + 8 C_1. The minimums' M = sum of
//    min_g * (group's activation sum) comes from Q8_K's group sums with vpmaddwd.
//  - Q2_K: 4-bit scales and q <= 3, so q * sc is already a byte: one tdpbsud chain; its
//    minimums are per group of 16 (Q4_K's per 32), paired with Q8_K's raw group sums.
//  - Q3_K: 6-bit signed scales sc = lo + 8 hi with lo in [0, 7], hi in [-4, 3], and q in
//    [-4, 3], so q * lo and q * hi are signed bytes: two tdpbssd chains, S = C_0 + 8 C_1.
//  - IQ4_XS: 8-bit quants (its table's values) leave room only for digits in [-1, 1], so
//    its 6-bit signed scales go in balanced base 3, four tdpbssd chains (one B tile reloaded
//    for each), S = C_0 + 3 (C_1 + 3 (C_2 + 3 C_3)).
//  - Q6_K: int8 scales in balanced base 7, sc = d_0 + 7 d_1 + 49 d_2 with digits in [-3, 3]
//    (which spans [-171, 171]), and q in [-32, 31], so q * d_k is a signed byte; three
//    tdpbssd chains give S = C_0 + 7 (C_1 + 7 C_2).
// Each chain adds up a whole super-block's exact integers, so S is exactly the integer
// matmul.h's rule names, and the float work is the super-block tiles'
// (acc = fma(float(S), d_x * d, acc), then for the formats with minimums
// acc = fma(float(M), -(d_x * dmin), acc)): the bits are theirs, and a row's result does not
// depend on whether its batch reached AMX.
//
// Weights are packed per call and thread, 16 rows at a time: each row's super-block is
// unpacked to bytes (matmul_super_block_simd.h), multiplied by its groups' digits (16-bit
// multiplies that leave each byte's product in its byte), and gathered into the VNNI layout
// B tiles need. Activations are repacked so that tile rows are aligned.
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AMX
#include <array>

#include "kernels/cpu/amx_support.h"
#include "kernels/cpu/matmul_super_block_simd.h"  // unpack_simd
#include "kernels/cpu/matmul_tiles.h"

namespace moon::kernels::detail {
namespace {

constexpr int kRows = 16;                     // activation rows per tile, weight rows per panel
constexpr int kSteps = kSuperBlockSize / 64;  // 64-byte K steps per super-block
constexpr int64_t kTileBytes = 16 * 64;

// Tiles 0: A (16 rows x 64 activation bytes), 1 .. chains: B, one per digit (16 x 64: 16
// weight rows x 4 bytes per K quad), then as many C (16 x 16 int32).
constexpr TileConfig kConfig = {
    1, 0, {}, {64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16}};

template <DType T>
constexpr int kChains = T == DType::IQ4_XS ? 4
                        : T == DType::Q6_K ? 3
                        : T == DType::Q2_K ? 1
                                           : 2;
template <DType T>
constexpr bool kMins = T == DType::Q2_K || T == DType::Q4_K || T == DType::Q5_K;
// int16 pairs of minimums and of activation sums: Q4_K and Q5_K have a minimum per 32 (4
// pairs of sub-blocks), Q2_K one per group of 16 (8 pairs of groups).
template <DType T>
constexpr int kPairsOf = T == DType::Q2_K ? 8 : 4;
// Q3_K, Q6_K and IQ4_XS quants are signed: their chains are tdpbssd (and the packed bytes
// signed).
template <DType T>
constexpr bool kSignedWeights = T == DType::Q3_K || T == DType::Q6_K || T == DType::IQ4_XS;

// Per 16-row group and super-block: the 4 A tiles, the rows' scales d, and per row the
// int32 pairs (sum of sub-block or group 2k | sum of 2k + 1 << 16).
template <DType T>
constexpr int64_t kActBlockBytes = kSteps* kTileBytes + kRows * 4 + kRows* kPairsOf<T> * 4;
// Per 16-row panel and super-block: 4 B tiles per digit, d[16], and for the formats with
// minimums dmin[16] and per pair k the 16 rows' int32 (min of sub-block 2k | min of 2k + 1
// << 16).
template <DType T>
constexpr int64_t kPanelBlockBytes = kChains<T>* kSteps* kTileBytes + kRows * 4 +
                                     (kMins<T> ? kRows * 4 + kPairsOf<T> * kRows * 4 : 0);

// A group scale's digits (see the top of the file).
template <DType T>
constexpr std::array<int, 4> scale_digits(int sc) {
  if constexpr (T == DType::IQ4_XS) {
    const int t = sc + 40;  // balanced base 3: 40 = 1 + 3 + 9 + 27
    return {t % 3 - 1, t / 3 % 3 - 1, t / 9 % 3 - 1, t / 27 - 1};
  } else if constexpr (T == DType::Q6_K) {
    const int t = sc + 171;  // balanced base 7: 171 = 3 (1 + 7 + 49)
    return {t % 7 - 3, t / 7 % 7 - 3, t / 49 - 3, 0};
  } else if constexpr (T == DType::Q2_K) {
    return {sc, 0, 0, 0};  // 4 bits: q * sc <= 45
  } else {
    return {sc & 7, sc >> 3, 0, 0};
  }
}

// Register v's 32 weight bytes (groups 2v and 2v + 1) times each group's digit k, as bytes.
template <DType T>
MOON_TARGET_AMX inline __m256i times_digit(__m256i q, int digit_lo, int digit_hi) {
  const __m256i digits = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(digit_hi)),
                                          _mm_set1_epi16(static_cast<int16_t>(digit_lo)));
  if constexpr (kSignedWeights<T>) {
    // Signed products: the even bytes' would borrow into the odd ones, so each half on its own.
    const __m256i even = _mm256_and_si256(_mm256_mullo_epi16(q, digits), _mm256_set1_epi16(0xFF));
    const __m256i odd = _mm256_slli_epi16(_mm256_mullo_epi16(_mm256_srli_epi16(q, 8), digits), 8);
    return _mm256_or_si256(even, odd);
  } else {
    return _mm256_mullo_epi16(q, digits);  // q * digit < 256: no carry into the next byte
  }
}

int32_t int16_pair(int lo, int hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
                              static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

template <DType T>
MOON_TARGET_AMX void pack_activations(const BlockQ8_K* x, int64_t m, int64_t nsb, uint8_t* out) {
  constexpr int kPairs = kPairsOf<T>;
  for (int64_t g = 0; g < m / kRows; ++g) {
    for (int64_t b = 0; b < nsb; ++b) {
      uint8_t* dst = out + (g * nsb + b) * kActBlockBytes<T>;
      float* d = reinterpret_cast<float*>(dst + kSteps * kTileBytes);
      int32_t* pairs = reinterpret_cast<int32_t*>(d + kRows);
      for (int r = 0; r < kRows; ++r) {
        const BlockQ8_K& xb = x[(g * kRows + r) * nsb + b];
        for (int s = 0; s < kSteps; ++s) {
          _mm512_store_si512(dst + s * kTileBytes + r * 64, _mm512_loadu_si512(xb.qs + 64 * s));
        }
        d[r] = xb.d;
        for (int k = 0; k < kPairs; ++k) {
          if constexpr (kPairs == 8) {
            pairs[r * kPairs + k] = int16_pair(xb.bsums[2 * k], xb.bsums[2 * k + 1]);
          } else {
            pairs[r * kPairs + k] = int16_pair(xb.bsums[4 * k] + xb.bsums[4 * k + 1],
                                               xb.bsums[4 * k + 2] + xb.bsums[4 * k + 3]);
          }
        }
      }
    }
  }
}

template <DType T>
MOON_TARGET_AMX void pack_panel(const uint8_t* w, size_t w_row_bytes, int64_t nsb, uint8_t* panel) {
  constexpr int kDigits = kChains<T>;
  alignas(64) uint8_t digit_bytes[kDigits][kRows][kSuperBlockSize];
  // Row c's dword i sits at dword c * 64 + i of each digit's bytes.
  const __m512i rows =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kSuperBlockSize / 4));
  for (int64_t b = 0; b < nsb; ++b) {
    uint8_t* dst = panel + b * kPanelBlockBytes<T>;
    float* d = reinterpret_cast<float*>(dst + kDigits * kSteps * kTileBytes);
    for (int c = 0; c < kRows; ++c) {
      UnpackedSuperBlock u;
      unpack_simd<T>(w + c * w_row_bytes, b, &u);
      d[c] = u.d;
      alignas(32) int16_t sc[kSuperBlockGroups];
      _mm256_store_si256(reinterpret_cast<__m256i*>(sc), u.scales);
      for (int v = 0; v < 8; ++v) {  // elements 32 v ..: groups 2v and 2v + 1
        __m256i q = u.q[v];
        if constexpr (kQuantBiasShift<T> >= 0) {  // unpacked as q + 2^shift: back to signed
          q = _mm256_sub_epi8(q, _mm256_set1_epi8(static_cast<char>(1 << kQuantBiasShift<T>)));
        }
        const std::array<int, 4> lo = scale_digits<T>(sc[2 * v]);
        const std::array<int, 4> hi = scale_digits<T>(sc[2 * v + 1]);
        for (int k = 0; k < kDigits; ++k) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(digit_bytes[k][c] + 32 * v),
                             times_digit<T>(q, lo[k], hi[k]));
        }
      }
      if constexpr (kMins<T>) {
        float* dmin = d + kRows;
        int32_t* mins = reinterpret_cast<int32_t*>(dmin + kRows);
        dmin[c] = u.dmin;
        alignas(32) int16_t mn[kSuperBlockGroups];
        _mm256_store_si256(reinterpret_cast<__m256i*>(mn), u.mins);
        for (int k = 0; k < kPairsOf<T>; ++k) {  // Q4_K's lanes hold each minimum twice
          mins[k * kRows + c] = kPairsOf<T> == 8 ? int16_pair(mn[2 * k], mn[2 * k + 1])
                                                 : int16_pair(mn[4 * k], mn[4 * k + 2]);
        }
      }
    }
    // B tile row kk of step s: the 16 rows' dword 16 s + kk.
    for (int k = 0; k < kDigits; ++k) {
      for (int s = 0; s < kSteps; ++s) {
        for (int kk = 0; kk < 16; ++kk) {
          const int dword = 16 * s + kk;
          _mm512_store_si512(dst + (k * kSteps + s) * kTileBytes + kk * 64,
                             _mm512_i32gather_epi32(rows, digit_bytes[k][0] + 4 * dword, 4));
        }
      }
    }
  }
}

MOON_TARGET_AMX inline __m512 negate(__m512 v) {
  return _mm512_xor_ps(v, _mm512_set1_ps(-0.0f));
}

template <DType T>
MOON_TARGET_AMX void amx_columns(const BlockQ8_K* x, int64_t m, int64_t nsb, const uint8_t* w,
                                 size_t w_row_bytes, int64_t panels, float* y, int64_t ldy) {
  thread_local ScratchBuffer activations, panel;
  uint8_t* xa = activations.get(static_cast<size_t>(m / kRows * nsb * kActBlockBytes<T>));
  uint8_t* wp = panel.get(static_cast<size_t>(nsb * kPanelBlockBytes<T>));
  pack_activations<T>(x, m, nsb, xa);
  alignas(64) int32_t c_sums[kChains<T>][kRows * 16];
  _tile_loadconfig(&kConfig);
  for (int64_t p = 0; p < panels; ++p) {
    pack_panel<T>(w + p * kRows * w_row_bytes, w_row_bytes, nsb, wp);
    // GCC's tile loads do not tell the compiler they read memory: the packed stores must not
    // sink past them.
    asm volatile("" ::: "memory");
    for (int64_t g = 0; g < m / kRows; ++g) {
      __m512 acc[kRows];
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
      for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* a = xa + (g * nsb + b) * kActBlockBytes<T>;
        const uint8_t* wb = wp + b * kPanelBlockBytes<T>;
        if constexpr (kChains<T> == 1) {
          _tile_zero(2);
#pragma GCC unroll 4
          for (int s = 0; s < kSteps; ++s) {
            _tile_loadd(0, a + s * kTileBytes, 64);
            _tile_loadd(1, wb + s * kTileBytes, 64);
            _tile_dpbsud(2, 0, 1);
          }
          _tile_stored(2, c_sums[0], 64);
        } else if constexpr (kChains<T> == 4) {
          // Nine tiles would not fit: one B tile is reloaded per digit.
          _tile_zero(2);
          _tile_zero(3);
          _tile_zero(4);
          _tile_zero(5);
#pragma GCC unroll 4
          for (int s = 0; s < kSteps; ++s) {
            _tile_loadd(0, a + s * kTileBytes, 64);
            _tile_loadd(1, wb + s * kTileBytes, 64);
            _tile_dpbssd(2, 0, 1);
            _tile_loadd(1, wb + (kSteps + s) * kTileBytes, 64);
            _tile_dpbssd(3, 0, 1);
            _tile_loadd(1, wb + (2 * kSteps + s) * kTileBytes, 64);
            _tile_dpbssd(4, 0, 1);
            _tile_loadd(1, wb + (3 * kSteps + s) * kTileBytes, 64);
            _tile_dpbssd(5, 0, 1);
          }
          _tile_stored(2, c_sums[0], 64);
          _tile_stored(3, c_sums[1], 64);
          _tile_stored(4, c_sums[2], 64);
          _tile_stored(5, c_sums[3], 64);
        } else if constexpr (kChains<T> == 3) {
          _tile_zero(4);
          _tile_zero(5);
          _tile_zero(6);
#pragma GCC unroll 4
          for (int s = 0; s < kSteps; ++s) {
            _tile_loadd(0, a + s * kTileBytes, 64);
            _tile_loadd(1, wb + s * kTileBytes, 64);
            _tile_loadd(2, wb + (kSteps + s) * kTileBytes, 64);
            _tile_loadd(3, wb + (2 * kSteps + s) * kTileBytes, 64);
            _tile_dpbssd(4, 0, 1);
            _tile_dpbssd(5, 0, 2);
            _tile_dpbssd(6, 0, 3);
          }
          _tile_stored(4, c_sums[0], 64);
          _tile_stored(5, c_sums[1], 64);
          _tile_stored(6, c_sums[2], 64);
        } else {
          _tile_zero(3);
          _tile_zero(4);
#pragma GCC unroll 4
          for (int s = 0; s < kSteps; ++s) {
            _tile_loadd(0, a + s * kTileBytes, 64);
            _tile_loadd(1, wb + s * kTileBytes, 64);
            _tile_loadd(2, wb + (kSteps + s) * kTileBytes, 64);
            if constexpr (kSignedWeights<T>) {
              _tile_dpbssd(3, 0, 1);
              _tile_dpbssd(4, 0, 2);
            } else {
              _tile_dpbsud(3, 0, 1);
              _tile_dpbsud(4, 0, 2);
            }
          }
          _tile_stored(3, c_sums[0], 64);
          _tile_stored(4, c_sums[1], 64);
        }
        asm volatile("" ::: "memory");  // and the stored sums are read below
        const float* xd = reinterpret_cast<const float*>(a + kSteps * kTileBytes);
        const int32_t* sums = reinterpret_cast<const int32_t*>(xd + kRows);
        const float* wd = reinterpret_cast<const float*>(wb + kChains<T> * kSteps * kTileBytes);
        const __m512 d = _mm512_load_ps(wd);
        [[maybe_unused]] __m512 dmin;
        constexpr int kPairs = kPairsOf<T>;
        [[maybe_unused]] __m512i min_pairs[kPairs];
        if constexpr (kMins<T>) {
          dmin = _mm512_load_ps(wd + kRows);
          const int32_t* mins = reinterpret_cast<const int32_t*>(wd + 2 * kRows);
#pragma GCC unroll 8
          for (int k = 0; k < kPairs; ++k) min_pairs[k] = _mm512_load_si512(mins + k * kRows);
        }
#pragma GCC unroll 16
        for (int r = 0; r < kRows; ++r) {
          __m512i s_int;
          if constexpr (kChains<T> == 1) {
            s_int = _mm512_load_si512(c_sums[0] + 16 * r);
          } else if constexpr (kChains<T> == 4) {
            const __m512i three = _mm512_set1_epi32(3);
            s_int = _mm512_load_si512(c_sums[3] + 16 * r);
#pragma GCC unroll 3
            for (int k = 2; k >= 0; --k) {
              s_int = _mm512_add_epi32(_mm512_load_si512(c_sums[k] + 16 * r),
                                       _mm512_mullo_epi32(three, s_int));
            }
          } else if constexpr (kChains<T> == 3) {
            const __m512i seven = _mm512_set1_epi32(7);
            s_int = _mm512_add_epi32(
                _mm512_load_si512(c_sums[0] + 16 * r),
                _mm512_mullo_epi32(
                    seven, _mm512_add_epi32(
                               _mm512_load_si512(c_sums[1] + 16 * r),
                               _mm512_mullo_epi32(seven, _mm512_load_si512(c_sums[2] + 16 * r)))));
          } else {
            s_int = _mm512_add_epi32(_mm512_load_si512(c_sums[0] + 16 * r),
                                     _mm512_slli_epi32(_mm512_load_si512(c_sums[1] + 16 * r), 3));
          }
          const __m512 xr = _mm512_set1_ps(xd[r]);
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s_int), _mm512_mul_ps(xr, d), acc[r]);
          if constexpr (kMins<T>) {
            __m512i m_int = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int k = 0; k < kPairs; ++k) {
              m_int = _mm512_add_epi32(
                  m_int, _mm512_madd_epi16(min_pairs[k], _mm512_set1_epi32(sums[r * kPairs + k])));
            }
            acc[r] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(m_int), negate(_mm512_mul_ps(xr, dmin)), acc[r]);
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) {
        _mm512_storeu_ps(y + (g * kRows + r) * ldy + p * kRows, acc[r]);
      }
    }
  }
  _tile_release();  // so that context switches save and restore no tile state
}

}  // namespace

bool amx_super_block_columns(DType type, const BlockQ8_K* x, int64_t m, int64_t nsb,
                             const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                             int64_t ldy) {
  switch (type) {
    case DType::Q4_K:
      amx_columns<DType::Q4_K>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    case DType::Q5_K:
      amx_columns<DType::Q5_K>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    case DType::Q2_K:
      amx_columns<DType::Q2_K>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    case DType::Q3_K:
      amx_columns<DType::Q3_K>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    case DType::Q6_K:
      amx_columns<DType::Q6_K>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    case DType::IQ4_XS:
      amx_columns<DType::IQ4_XS>(x, m, nsb, w, w_row_bytes, panels, y, ldy);
      return true;
    default:
      return false;
  }
}

}  // namespace moon::kernels::detail
