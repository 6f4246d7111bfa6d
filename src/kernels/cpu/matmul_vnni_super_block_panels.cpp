// The super-block formats' batch kernel on CPUs with AVX-512 VNNI and no AMX: Q2_K to Q6_K
// weights times Q8_K activations, 16 weight rows at a time, as matmul_vnni_panels.cpp does
// for the Q8_0 kind (its comment says why packing pays).
//
// Per super-block, each weight row is unpacked once (unpack_simd, the tiles' decoder) and 16
// rows are packed so that one register holds a 4-byte group of all 16; its four vpdpbusd
// leave each lane its row's exact sum of q_w * q_x over one 16-element group, which vpmulld
// scales by the row's group scale into S. The formats with signed quants enter as q + bias,
// and S then loses bias * sum of scale_g * bsums_g; the formats with minimums make
// M = sum of min_g * bsums_g. Both of those are vpdpwssd on (group, group + 1) pairs of
// 16-bit scales or minimums against Q8_K's 16-bit group sums, broadcast. The exact S and M
// meet the float rule of matmul.h in the tiles' order, so the bits are the tiles'.
// IQ4_XS (signed quants that do not fit a byte offset) stays on the tiles.
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512_VNNI
#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/matmul_super_block_simd.h"
#include "kernels/cpu/vnni_panel.h"

namespace moon::kernels::detail {
namespace {

constexpr int kRows = kVnniPanelRows;
constexpr int kDwords = kSuperBlockSize / 4;        // 4-byte groups per super-block
constexpr int kGroups = kSuperBlockGroups;          // 16-element groups
constexpr int kDwordsPerGroup = kDwords / kGroups;  // 4
constexpr int kRegisterRows = 8;                    // activation rows per register block

// One super-block of a packed panel of 16 weight rows (lane r: row r).
struct alignas(64) PackedSuperBlock {
  uint32_t q[kDwords][kRows];                // 4 unsigned quants each
  int32_t scale[kGroups][kRows];             // group scales
  uint32_t scale_pairs[kGroups / 2][kRows];  // (scale 2h, scale 2h + 1) as int16
  uint32_t min_pairs[kGroups / 2][kRows];    // (min 2h, min 2h + 1) as int16
  float d[kRows];
  float dmin[kRows];
};

template <DType T>
MOON_SIMD_TARGET void pack_panel(const uint8_t* w, size_t w_row_bytes, int64_t row_blocks,
                                 PackedSuperBlock* out) {
  constexpr size_t kBlockBytes = kSuperBlockBytes<T>;
  for (int64_t b = 0; b < row_blocks; ++b) {
    PackedSuperBlock& p = out[b];
    alignas(64) uint32_t q[kRows][kDwords];
    alignas(32) int16_t scales[kRows][kGroups];
    alignas(32) int16_t mins[kRows][kGroups];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* row = w + r * w_row_bytes;
      prefetch_ahead<kBlockBytes, kRows>(row, b, row_blocks, w_row_bytes);
      UnpackedSuperBlock u;
      unpack_simd<T>(row, b, &u);
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(&q[r][8 * v]), u.q[v]);
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(scales[r]), u.scales);
      if constexpr (kHasMins<T>) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(mins[r]), u.mins);
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(mins[r]), _mm256_setzero_si256());
      }
      p.d[r] = u.d;
      p.dmin[r] = u.dmin;
    }
    transpose_to_lanes(q, p.q);
    for (int g = 0; g < kGroups; ++g) {
      for (int r = 0; r < kRows; ++r) p.scale[g][r] = scales[r][g];
    }
    for (int h = 0; h < kGroups / 2; ++h) {
      for (int r = 0; r < kRows; ++r) {
        p.scale_pairs[h][r] = static_cast<uint16_t>(scales[r][2 * h]) |
                              static_cast<uint32_t>(static_cast<uint16_t>(scales[r][2 * h + 1]))
                                  << 16;
        p.min_pairs[h][r] = static_cast<uint16_t>(mins[r][2 * h]) |
                            static_cast<uint32_t>(static_cast<uint16_t>(mins[r][2 * h + 1])) << 16;
      }
    }
  }
}

MOON_SIMD_TARGET inline __m512i broadcast4(const void* p) {
  return _mm512_set1_epi32(static_cast<int>(load_u32(static_cast<const uint8_t*>(p))));
}

// y[i * ldy + r] for R activation rows and the panel's 16 weight rows.
template <DType T, int R>
MOON_SIMD_TARGET void panel_rows(const PackedSuperBlock* panel, const BlockQ8_K* x,
                                 int64_t row_blocks, float* y, int64_t ldy) {
  __m512 acc[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < row_blocks; ++b) {
    const PackedSuperBlock& p = panel[b];
    __m512i s[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) s[i] = _mm512_setzero_si512();
    for (int g = 0; g < kGroups; ++g) {
      __m512i group[R];
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) group[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int t = 0; t < kDwordsPerGroup; ++t) {
        const int k = g * kDwordsPerGroup + t;
        const __m512i wq = _mm512_load_si512(p.q[k]);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
          group[i] =
              _mm512_dpbusd_epi32(group[i], wq, broadcast4(x[i * row_blocks + b].qs + 4 * k));
        }
      }
      const __m512i scale = _mm512_load_si512(p.scale[g]);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i)
        s[i] = _mm512_add_epi32(s[i], _mm512_mullo_epi32(group[i], scale));
    }
    if constexpr (kQuantBiasShift<T> >= 0) {
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        __m512i bias = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int h = 0; h < kGroups / 2; ++h) {
          bias = _mm512_dpwssd_epi32(bias, _mm512_load_si512(p.scale_pairs[h]),
                                     broadcast4(x[i * row_blocks + b].bsums + 2 * h));
        }
        s[i] = _mm512_sub_epi32(s[i], _mm512_slli_epi32(bias, kQuantBiasShift<T>));
      }
    }
    const __m512 wd = _mm512_load_ps(p.d);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const BlockQ8_K& xb = x[i * row_blocks + b];
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(_mm512_set1_ps(xb.d), wd),
                               acc[i]);
      if constexpr (kHasMins<T>) {
        __m512i m = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int h = 0; h < kGroups / 2; ++h) {
          m = _mm512_dpwssd_epi32(m, _mm512_load_si512(p.min_pairs[h]),
                                  broadcast4(xb.bsums + 2 * h));
        }
        // -(d_x * dmin_w), as the tiles form it.
        const __m512 min_scale = _mm512_xor_ps(
            _mm512_mul_ps(_mm512_set1_ps(xb.d), _mm512_load_ps(p.dmin)), _mm512_set1_ps(-0.0f));
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), min_scale, acc[i]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) _mm512_storeu_ps(y + i * ldy, acc[i]);
}

template <DType T>
using PanelRowsFn = void (*)(const PackedSuperBlock*, const BlockQ8_K*, int64_t, float*, int64_t);

template <DType T, int... R>
constexpr auto make_panel_rows(std::integer_sequence<int, R...>) {
  return std::array<PanelRowsFn<T>, sizeof...(R)>{&panel_rows<T, R + 1>...};
}

template <DType T>
MOON_SIMD_TARGET void vnni_columns(const BlockQ8_K* x, int64_t m, int64_t row_blocks,
                                   const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                                   int64_t ldy) {
  static constexpr auto kPanelRows =
      make_panel_rows<T>(std::make_integer_sequence<int, kRegisterRows>());
  thread_local std::vector<PackedSuperBlock> packed;  // per calling thread, kept
  if (packed.size() < static_cast<size_t>(row_blocks)) packed.resize(row_blocks);
  for (int64_t p = 0; p < panels; ++p) {
    pack_panel<T>(w + p * kRows * w_row_bytes, w_row_bytes, row_blocks, packed.data());
    for (int64_t i = 0; i < m; i += kRegisterRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRegisterRows, m - i));
      kPanelRows[rows - 1](packed.data(), x + i * row_blocks, row_blocks, y + i * ldy + p * kRows,
                           ldy);
    }
  }
}

}  // namespace

bool vnni_super_block_columns(DType type, const BlockQ8_K* x, int64_t m, int64_t row_blocks,
                              const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                              int64_t ldy) {
  if (type == DType::IQ4_XS) return false;
  return for_super_block_dtype(type, [&]<DType T>() {
    if constexpr (T != DType::IQ4_XS) {
      vnni_columns<T>(x, m, row_blocks, w, w_row_bytes, panels, y, ldy);
    }
  });
}

}  // namespace moon::kernels::detail
