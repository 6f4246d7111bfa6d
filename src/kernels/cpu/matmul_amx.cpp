// The int8 matmul on AMX tiles, for batches of 16 activation rows or more on CPUs that have
// AMX-INT8 (util/cpu_features.h says when it is used).
//
// One tdpbssd multiplies 16 activation rows by 16 weight rows over one 32-value block, into
// the 256 exact int32 block sums; each is then scaled into its fp32 accumulator by the
// int8 rule of matmul_scalar.cpp, acc = fma(float(sum), d_x * d_w, acc), block after block.
// The integers are the ones every other level makes and the float work is the same, so the
// bits are too, and a row's result cannot depend on whether its batch was large enough for
// AMX.
//
// Operands: A is 16 activation rows x 32 bytes, packed per call into 16-row groups so that a
// tile row never straddles cache lines. B must be in the VNNI layout, 8 rows of (16 weight
// rows x 4 consecutive bytes), which no weight file stores, so each thread packs its 32
// weight rows into a panel once per call (and Q4_0's nibbles into bytes) and reuses it for
// every activation row of the batch.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AMX
#include "kernels/cpu/amx_support.h"
#include "kernels/cpu/matmul_int8_simd.h"  // weight_block: the weights as signed bytes
#include "kernels/cpu/matmul_tiles.h"
#include "tensor/half.h"
#include "tensor/quant_q4_0.h"
#include "tensor/quant_q8_0.h"

namespace moon::kernels::detail {
namespace {

constexpr int kBlock = kQ8_0BlockSize;         // 32 values per block
constexpr int64_t kPanelRows = kAmxPanelRows;  // two B tiles
constexpr int64_t kBTileBytes = 8 * 64;        // B: 8 rows (32 values / 4) x 64 bytes
constexpr int64_t kPanelBlockBytes = 2 * kBTileBytes + kPanelRows * sizeof(float);

// Tiles 0-1: A, 16 activation rows x 32 bytes; 2-3: B, 8 x 64 bytes (16 weight rows); 4-5:
// C, 16 x 16 int32. Even blocks use 0, 2, 4 and odd ones 1, 3, 5.
constexpr TileConfig kTileConfig = {1, 0, {}, {32, 32, 64, 64, 64, 64}, {16, 16, 8, 8, 16, 16}};

// Packs weight rows [0, 32) of w, blocks [0, row_blocks), into the panel layout: per block,
// B0 (rows 0-15) and B1 (rows 16-31) as 8 x (16 rows x 4 bytes), then the 32 row scales as
// fp32. B is the 16 rows' 8 dwords transposed: rows r and r + 8 share a register (low and
// high half), and an 8 x 8 dword transpose in both halves at once leaves tile row k, the
// 16 rows' dword k, in one register.
template <DType T>
MOON_TARGET_AMX void pack_panel(const uint8_t* w, size_t w_row_bytes, int64_t row_blocks,
                                uint8_t* panel) {
  const __m512i lanes_low = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i lanes_high = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int64_t b = 0; b < row_blocks; ++b) {
    uint8_t* block_out = panel + b * kPanelBlockBytes;
    float* scales = reinterpret_cast<float*>(block_out + 2 * kBTileBytes);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* rows = w + half * 16 * w_row_bytes;
      __m512i z[8];
      for (int r = 0; r < 8; ++r) {
        const __m256i lo = weight_block<T>(rows + r * w_row_bytes, b, &scales[16 * half + r]);
        const __m256i hi =
            weight_block<T>(rows + (r + 8) * w_row_bytes, b, &scales[16 * half + r + 8]);
        z[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      }
      __m512i a[8], t[8];
      for (int p = 0; p < 4; ++p) {
        a[2 * p] = _mm512_unpacklo_epi32(z[2 * p], z[2 * p + 1]);
        a[2 * p + 1] = _mm512_unpackhi_epi32(z[2 * p], z[2 * p + 1]);
      }
      for (int q = 0; q < 2; ++q) {  // rows 0-3 (q = 0) and 4-7 of each half
        t[4 * q + 0] = _mm512_unpacklo_epi64(a[4 * q], a[4 * q + 2]);
        t[4 * q + 1] = _mm512_unpackhi_epi64(a[4 * q], a[4 * q + 2]);
        t[4 * q + 2] = _mm512_unpacklo_epi64(a[4 * q + 1], a[4 * q + 3]);
        t[4 * q + 3] = _mm512_unpackhi_epi64(a[4 * q + 1], a[4 * q + 3]);
      }
      // t[k] (k < 4) holds dwords k and k + 4 of rows 0-3; t[4 + k] those of rows 4-7.
      uint8_t* out = block_out + half * kBTileBytes;
      for (int k = 0; k < 4; ++k) {
        _mm512_store_si512(out + k * 64, _mm512_permutex2var_epi64(t[k], lanes_low, t[4 + k]));
        _mm512_store_si512(out + (k + 4) * 64,
                           _mm512_permutex2var_epi64(t[k], lanes_high, t[4 + k]));
      }
    }
  }
}

// The activations repacked for tile loads: per group of 16 rows and block, the 16 rows' 32
// quants back to back (a 512-byte A tile in 8 whole cache lines) and then their 16 scales as
// fp32. Read in place, a tile row would straddle cache lines at the 34-byte block stride.
constexpr int kGroupRows = 16;
constexpr int64_t kATileBytes = kGroupRows * kBlock;
constexpr int64_t kGroupBlockBytes = kATileBytes + kGroupRows * sizeof(float);
constexpr int64_t kPrefetchMaxRows = 128;

MOON_TARGET_AMX void pack_activations(const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                                      uint8_t* out) {
  for (int64_t g = 0; g < m / kGroupRows; ++g) {
    for (int64_t b = 0; b < row_blocks; ++b) {
      uint8_t* dst = out + (g * row_blocks + b) * kGroupBlockBytes;
      float* scales = reinterpret_cast<float*>(dst + kATileBytes);
      for (int r = 0; r < kGroupRows; ++r) {
        const BlockQ8_0& block = x[(g * kGroupRows + r) * row_blocks + b];
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + r * kBlock),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs)));
        scales[r] = _cvtsh_ss(block.d);
      }
    }
  }
}

// acc[r] += the int8 rule over the 16 x 16 block sums c, for one block: row scales xd[r],
// column scales wd.
MOON_TARGET_AMX inline void scale_into(const int32_t* c, const float* xd, const float* wd,
                                       __m512* acc) {
  const __m512 w = _mm512_loadu_ps(wd);
#pragma GCC unroll 16
  for (int r = 0; r < kGroupRows; ++r) {
    const __m512 sums = _mm512_cvtepi32_ps(_mm512_load_si512(c + r * 16));
    acc[r] = _mm512_fmadd_ps(sums, _mm512_mul_ps(_mm512_set1_ps(xd[r]), w), acc[r]);
  }
}

// One block's product, into C tile 4 from tiles 0 and 2 (even blocks) or into 5 from 1 and 3
// (odd ones). Functions, not lambdas: clang does not give a lambda the target of the
// function that holds it; and not a template, as GCC's tile intrinsics paste the tile number
// into the assembly text.
MOON_TARGET_AMX inline void issue_even_block(const uint8_t* a, const uint8_t* w) {
  _tile_loadd(0, a, kBlock);
  _tile_loadd(2, w, 64);
  _tile_zero(4);
  _tile_dpbssd(4, 0, 2);
}
MOON_TARGET_AMX inline void issue_odd_block(const uint8_t* a, const uint8_t* w) {
  _tile_loadd(1, a, kBlock);
  _tile_loadd(3, w, 64);
  _tile_zero(5);
  _tile_dpbssd(5, 1, 3);
}

// y rows [0, m) x columns [0, 32) for a packed panel and packed activations, m a multiple of
// 16, in 16 x 16 output tiles whose accumulators stay in registers. Blocks alternate between
// two sets of tiles, so that the tile unit multiplies block b + 1 while the vector units
// scale block b's sums.
template <bool kPrefetch>
MOON_TARGET_AMX void panel_matmul(const uint8_t* xa, int64_t m, int64_t row_blocks,
                                  const uint8_t* panel, float* y, int64_t ldy, const uint8_t* next,
                                  int64_t next_bytes) {
  alignas(64) int32_t c[kGroupRows * 16];
  // For a small batch the next panel's weight rows are fetched into L2 while this one
  // computes, a few cache lines per block pair, so that packing them does not wait on DRAM
  // (without it, that wait was a third of a 32-sequence decode step). A long batch computes
  // long enough for the hardware prefetcher, and measured 5% slower with it.
  const int64_t steps = std::max<int64_t>(1, m / kGroupRows * 2 * ((row_blocks + 1) / 2));
  const int64_t lines_per_step = (next_bytes / 64 + steps - 1) / steps;
  const uint8_t* const next_end = next + next_bytes;
  for (int64_t g = 0; g < m / kGroupRows; ++g) {
    const uint8_t* xg = xa + g * row_blocks * kGroupBlockBytes;
    const auto x_scales = [&](int64_t b) {
      return reinterpret_cast<const float*>(xg + b * kGroupBlockBytes + kATileBytes);
    };
    for (int h = 0; h < 2; ++h) {
      const auto w_scales = [&](int64_t b) {
        return reinterpret_cast<const float*>(panel + b * kPanelBlockBytes + 2 * kBTileBytes) +
               16 * h;
      };
      __m512 acc[kGroupRows];
#pragma GCC unroll 16
      for (int r = 0; r < kGroupRows; ++r) acc[r] = _mm512_setzero_ps();
      const auto a = [&](int64_t b) { return xg + b * kGroupBlockBytes; };
      const auto w = [&](int64_t b) { return panel + b * kPanelBlockBytes + h * kBTileBytes; };
      // Block b + 1's multiply is issued before block b's sums are stored, so the tile unit
      // is not idle while a store waits for its product.
      const auto issue_even = [&](int64_t b) { issue_even_block(a(b), w(b)); };
      const auto issue_odd = [&](int64_t b) { issue_odd_block(a(b), w(b)); };
      issue_even(0);
      for (int64_t b = 0; b < row_blocks; b += 2) {
        if constexpr (kPrefetch) {
          for (int64_t l = 0; l < lines_per_step && next < next_end; ++l, next += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T1);
          }
        }
        if (b + 1 < row_blocks) issue_odd(b + 1);
        _tile_stored(4, c, 64);
        scale_into(c, x_scales(b), w_scales(b), acc);
        if (b + 1 < row_blocks) {
          if (b + 2 < row_blocks) issue_even(b + 2);
          _tile_stored(5, c, 64);
          scale_into(c, x_scales(b + 1), w_scales(b + 1), acc);
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < kGroupRows; ++r) {
        _mm512_storeu_ps(y + (g * kGroupRows + r) * ldy + 16 * h, acc[r]);
      }
    }
  }
}

template <DType T>
MOON_TARGET_AMX void amx_columns(const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                                 const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                                 int64_t ldy) {
  // Per thread, kept: the batch's activations (m x K bytes and scales) and one panel (32 x K
  // bytes and scales, about 200 KiB for K = 5632, which stays in L2 while the batch streams
  // past it).
  thread_local ScratchBuffer activations, panel;
  uint8_t* xa =
      activations.get(static_cast<size_t>(m / kGroupRows * row_blocks * kGroupBlockBytes));
  uint8_t* wp = panel.get(static_cast<size_t>(row_blocks * kPanelBlockBytes));
  pack_activations(x, m, row_blocks, xa);
  _tile_loadconfig(&kTileConfig);
  for (int64_t p = 0; p < panels; ++p) {
    pack_panel<T>(w + p * kPanelRows * w_row_bytes, w_row_bytes, row_blocks, wp);
    // GCC's tile loads do not tell the compiler they read memory: the packed stores must not
    // sink past them.
    asm volatile("" ::: "memory");
    const bool last = p + 1 == panels;
    const uint8_t* next = w + (p + 1) * kPanelRows * w_row_bytes;
    const int64_t next_bytes = last ? 0 : kPanelRows * static_cast<int64_t>(w_row_bytes);
    if (m <= kPrefetchMaxRows) {
      panel_matmul<true>(xa, m, row_blocks, wp, y + p * kPanelRows, ldy, next, next_bytes);
    } else {
      panel_matmul<false>(xa, m, row_blocks, wp, y + p * kPanelRows, ldy, next, next_bytes);
    }
  }
  // Frees the tile state, so context switches save and restore no 8 KiB of it.
  _tile_release();
}

}  // namespace

bool amx_int8_columns(DType type, const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                      const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y, int64_t ldy) {
  return for_int8_weight_dtype(
      type, [&]<DType T>() { amx_columns<T>(x, m, row_blocks, w, w_row_bytes, panels, y, ldy); });
}

}  // namespace moon::kernels::detail
