// The super-block int8 matmul on AMX tiles, for Q4_K and Q5_K weights in batches of 16
// activation rows or more (util/cpu_features.h says when AMX is used).
//
// The formats' group scales are 6-bit integers sc = 8 hi + lo with lo, hi < 8, so
// q * sc = q * lo + 8 (q * hi), and both products fit a byte (q <= 31). Packing the weights
// as the bytes q * lo and q * hi lets two tdpbsud chains (signed activations times unsigned
// weights) add up a whole super-block's exact integers, C_lo and C_hi, in the tiles; then
// S = C_lo + 8 C_hi is the integer matmul.h's rule names, and the minimums' M = sum of
// min_g * (group's activation sum) comes from Q8_K's group sums with vpmaddwd. The float
// work is the super-block tiles' (acc = fma(float(S), d_x * d, acc), then
// acc = fma(float(M), -(d_x * dmin), acc)), so the bits are theirs, and a row's result
// does not depend on whether its batch reached AMX.
//
// Weights are packed per call and thread, 16 rows at a time: each row's super-block is
// unpacked to bytes (matmul_super_block_simd.h), multiplied by its groups' lo and hi
// (one 16-bit multiply per 32 bytes: no product carries into the next byte), and gathered
// into the VNNI layout B tiles need. Activations are repacked so that tile rows are aligned.
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AMX
#include "kernels/cpu/amx_support.h"
#include "kernels/cpu/matmul_super_block_simd.h"  // unpack_simd
#include "kernels/cpu/matmul_tiles.h"

namespace moon::kernels::detail {
namespace {

constexpr int kRows = 16;                     // activation rows per tile, weight rows per panel
constexpr int kSteps = kSuperBlockSize / 64;  // 64-byte K steps per super-block
constexpr int64_t kTileBytes = 16 * 64;
constexpr int64_t kPairs = 4;  // int16 pairs of the 8 per-32 sums or minimums

// Tiles 0: A (16 rows x 64 activation bytes), 1-2: B lo and hi (16 x 64: 16 weight rows x 4
// bytes per K quad), 3-4: C lo and hi (16 x 16 int32).
constexpr TileConfig kConfig = {1, 0, {}, {64, 64, 64, 64, 64}, {16, 16, 16, 16, 16}};

// Per 16-row group and super-block: the 4 A tiles, the rows' scales d, and per row the
// 4 int32 pairs (sum of sub-block 2k | sum of sub-block 2k + 1 << 16).
constexpr int64_t kActBlockBytes = kSteps * kTileBytes + kRows * 4 + kRows * kPairs * 4;
// Per 16-row panel and super-block: 4 B-lo tiles, 4 B-hi tiles, d[16], dmin[16], and per
// pair k the 16 rows' int32 (min of sub-block 2k | min of 2k + 1 << 16).
constexpr int64_t kPanelBlockBytes = 2 * kSteps * kTileBytes + 2 * kRows * 4 + kPairs * kRows * 4;

int32_t int16_pair(int lo, int hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
                              static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

MOON_TARGET_AMX void pack_activations(const BlockQ8_K* x, int64_t m, int64_t nsb, uint8_t* out) {
  for (int64_t g = 0; g < m / kRows; ++g) {
    for (int64_t b = 0; b < nsb; ++b) {
      uint8_t* dst = out + (g * nsb + b) * kActBlockBytes;
      float* d = reinterpret_cast<float*>(dst + kSteps * kTileBytes);
      int32_t* pairs = reinterpret_cast<int32_t*>(d + kRows);
      for (int r = 0; r < kRows; ++r) {
        const BlockQ8_K& xb = x[(g * kRows + r) * nsb + b];
        for (int s = 0; s < kSteps; ++s) {
          _mm512_store_si512(dst + s * kTileBytes + r * 64, _mm512_loadu_si512(xb.qs + 64 * s));
        }
        d[r] = xb.d;
        for (int k = 0; k < kPairs; ++k) {
          pairs[r * kPairs + k] = int16_pair(xb.bsums[4 * k] + xb.bsums[4 * k + 1],
                                             xb.bsums[4 * k + 2] + xb.bsums[4 * k + 3]);
        }
      }
    }
  }
}

template <DType T>
MOON_TARGET_AMX void pack_panel(const uint8_t* w, size_t w_row_bytes, int64_t nsb, uint8_t* panel) {
  alignas(64) uint8_t lo[kRows][kSuperBlockSize];
  alignas(64) uint8_t hi[kRows][kSuperBlockSize];
  // Row c's dword i sits at dword c * 64 + i of lo (and hi).
  const __m512i rows =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kSuperBlockSize / 4));
  for (int64_t b = 0; b < nsb; ++b) {
    uint8_t* dst = panel + b * kPanelBlockBytes;
    float* d = reinterpret_cast<float*>(dst + 2 * kSteps * kTileBytes);
    float* dmin = d + kRows;
    int32_t* mins = reinterpret_cast<int32_t*>(dmin + kRows);
    for (int c = 0; c < kRows; ++c) {
      UnpackedSuperBlock u;
      unpack_simd<T>(w + c * w_row_bytes, b, &u);
      d[c] = u.d;
      dmin[c] = u.dmin;
      alignas(32) int16_t sc[kSuperBlockGroups], mn[kSuperBlockGroups];
      _mm256_store_si256(reinterpret_cast<__m256i*>(sc), u.scales);
      _mm256_store_si256(reinterpret_cast<__m256i*>(mn), u.mins);
      for (int v = 0; v < 8; ++v) {  // sub-block v: groups 2v and 2v + 1 share scale and min
        const int scale = sc[2 * v];
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(lo[c] + 32 * v),
            _mm256_mullo_epi16(u.q[v], _mm256_set1_epi16(static_cast<int16_t>(scale & 7))));
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(hi[c] + 32 * v),
            _mm256_mullo_epi16(u.q[v], _mm256_set1_epi16(static_cast<int16_t>(scale >> 3))));
      }
      for (int k = 0; k < kPairs; ++k) mins[k * kRows + c] = int16_pair(mn[4 * k], mn[4 * k + 2]);
    }
    // B tile row kk of step s: the 16 rows' dword 16 s + kk.
    for (int s = 0; s < kSteps; ++s) {
      for (int kk = 0; kk < 16; ++kk) {
        const int dword = 16 * s + kk;
        _mm512_store_si512(dst + s * kTileBytes + kk * 64,
                           _mm512_i32gather_epi32(rows, lo[0] + 4 * dword, 4));
        _mm512_store_si512(dst + (kSteps + s) * kTileBytes + kk * 64,
                           _mm512_i32gather_epi32(rows, hi[0] + 4 * dword, 4));
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
  uint8_t* xa = activations.get(static_cast<size_t>(m / kRows * nsb * kActBlockBytes));
  uint8_t* wp = panel.get(static_cast<size_t>(nsb * kPanelBlockBytes));
  pack_activations(x, m, nsb, xa);
  alignas(64) int32_t c_lo[kRows * 16], c_hi[kRows * 16];
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
        const uint8_t* a = xa + (g * nsb + b) * kActBlockBytes;
        const uint8_t* wb = wp + b * kPanelBlockBytes;
        _tile_zero(3);
        _tile_zero(4);
#pragma GCC unroll 4
        for (int s = 0; s < kSteps; ++s) {
          _tile_loadd(0, a + s * kTileBytes, 64);
          _tile_loadd(1, wb + s * kTileBytes, 64);
          _tile_loadd(2, wb + (kSteps + s) * kTileBytes, 64);
          _tile_dpbsud(3, 0, 1);
          _tile_dpbsud(4, 0, 2);
        }
        _tile_stored(3, c_lo, 64);
        _tile_stored(4, c_hi, 64);
        asm volatile("" ::: "memory");  // and the stored sums are read below
        const float* xd = reinterpret_cast<const float*>(a + kSteps * kTileBytes);
        const int32_t* sums = reinterpret_cast<const int32_t*>(xd + kRows);
        const float* wd = reinterpret_cast<const float*>(wb + 2 * kSteps * kTileBytes);
        const __m512 d = _mm512_load_ps(wd), dmin = _mm512_load_ps(wd + kRows);
        const int32_t* mins = reinterpret_cast<const int32_t*>(wd + 2 * kRows);
        __m512i min_pairs[kPairs];
#pragma GCC unroll 4
        for (int k = 0; k < kPairs; ++k) min_pairs[k] = _mm512_load_si512(mins + k * kRows);
#pragma GCC unroll 16
        for (int r = 0; r < kRows; ++r) {
          const __m512i s_int =
              _mm512_add_epi32(_mm512_load_si512(c_lo + 16 * r),
                               _mm512_slli_epi32(_mm512_load_si512(c_hi + 16 * r), 3));
          const __m512 xr = _mm512_set1_ps(xd[r]);
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s_int), _mm512_mul_ps(xr, d), acc[r]);
          __m512i m_int = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int k = 0; k < kPairs; ++k) {
            m_int = _mm512_add_epi32(
                m_int, _mm512_madd_epi16(min_pairs[k], _mm512_set1_epi32(sums[r * kPairs + k])));
          }
          acc[r] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(m_int), negate(_mm512_mul_ps(xr, dmin)), acc[r]);
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
    default:
      return false;
  }
}

}  // namespace moon::kernels::detail
