// The int8 path's batch kernels on CPUs with AVX-512 VNNI but no AMX (Zen 4, Ice Lake,
// Cascade Lake), 16 weight rows at a time: Q8_0, Q4_0 and Q5_0 weights times Q8_0
// activations, and the super-block formats times Q8_K.
//
// The 4 x 4 vector tiles (matmul_int8_simd.h) spend most of their instructions summing each
// block pair's eight lanes into one number. Here a panel of 16 weight rows is first packed
// (once per call, into a buffer that stays in L2) so that one 512-bit register holds bytes
// 4g..4g+3 of one block of all 16 rows, lane r for row r. One vpdpbusd with four activation
// bytes broadcast then adds to each of 16 lanes its own row's four products: after eight of
// them a lane holds its row's exact block sum, with no horizontal adds, and eight activation
// rows share each weight register. The packed copy lives only for the call, so resident
// memory does not grow.
//
// The bits equal the vector tiles': each output takes acc = fma(float(block sum),
// d_x * d_w, acc), block after block (matmul.h), the block sum exact in int32. vpdpbusd
// multiplies unsigned by signed bytes, so the weights are packed as u = w + bias
// (unsigned_weight_block) and each lane starts at -bias * sum(q_x), as in DotVnni.
//
// The super-block formats (Q2_K to Q6_K) against Q8_K activations, the same way: per
// super-block, each weight row is unpacked once (unpack_simd, the tiles' decoder) and 16
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

#include "kernels/cpu/matmul_super_block_simd.h"  // and with it matmul_int8_simd.h

namespace moon::kernels::detail {
namespace {

// out[k][r] = rows[r][k] for the panel's rows r and 4-byte groups k: one gather per group,
// from L1.
template <int kDwords>
MOON_SIMD_TARGET inline void transpose_to_lanes(const uint32_t (&rows)[kVnniPanelRows][kDwords],
                                                uint32_t (*out)[kVnniPanelRows]) {
  const __m512i index =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kDwords));
#pragma GCC unroll 8
  for (int k = 0; k < kDwords; ++k) {
    _mm512_store_si512(out[k], _mm512_i32gather_epi32(index, &rows[0][k], 4));
  }
}

namespace q8_0 {

constexpr int kGroups = kQ8_0BlockSize / 4;  // 4-byte groups per block
constexpr int kRegisterRows = 8;             // activation rows per register block

// One block of a packed panel: q[g][r] holds bytes 4g..4g+3 of row r's unsigned quants, and
// d[r] its scale.
struct alignas(64) PackedBlock {
  uint32_t q[kGroups][kVnniPanelRows];
  float d[kVnniPanelRows];
};

template <DType T>
MOON_SIMD_TARGET void pack_panel(const uint8_t* w, size_t w_row_bytes, int64_t row_blocks,
                                 PackedBlock* out) {
  constexpr int64_t block_bytes = kWeightBlockBytes<T>;
  for (int64_t b = 0; b < row_blocks; ++b) {
    alignas(32) uint32_t rows[kVnniPanelRows][kGroups];
#pragma GCC unroll 16
    for (int r = 0; r < kVnniPanelRows; ++r) {
      const uint8_t* row = w + r * w_row_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(row + (b + kPrefetchBlocks) * block_bytes),
                   _MM_HINT_T0);
      const __m256i u = unsigned_weight_block<T>(row, b, &out[b].d[r]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(rows[r]), u);
    }
    transpose_to_lanes(rows, out[b].q);
  }
}

// y[i * ldy + r] for R activation rows and the panel's 16 weight rows. x_d and x_start hold
// each activation block's scale as fp32 and -bias * sum(q), row i at i * row_blocks.
template <int R>
MOON_SIMD_TARGET void panel_rows(const PackedBlock* panel, const BlockQ8_0* x, int64_t row_blocks,
                                 const float* x_d, const int32_t* x_start, float* y, int64_t ldy) {
  __m512 acc[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < row_blocks; ++b) {
    const PackedBlock& p = panel[b];
    __m512i sum[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) sum[i] = _mm512_set1_epi32(x_start[i * row_blocks + b]);
#pragma GCC unroll 8
    for (int g = 0; g < kGroups; ++g) {
      const __m512i wq = _mm512_load_si512(p.q[g]);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const auto* q = reinterpret_cast<const uint8_t*>(x[i * row_blocks + b].qs) + 4 * g;
        const __m512i xq = _mm512_set1_epi32(static_cast<int>(load_u32(q)));
        sum[i] = _mm512_dpbusd_epi32(sum[i], wq, xq);
      }
    }
    const __m512 wd = _mm512_load_ps(p.d);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      // d_x * d_w as the tiles form it (a product of two floats: the order does not matter).
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(x_d[i * row_blocks + b]), wd);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[i]), scale, acc[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) _mm512_storeu_ps(y + i * ldy, acc[i]);
}

using PanelRowsFn = void (*)(const PackedBlock*, const BlockQ8_0*, int64_t, const float*,
                             const int32_t*, float*, int64_t);

template <int... R>
constexpr auto make_panel_rows(std::integer_sequence<int, R...>) {
  return std::array<PanelRowsFn, sizeof...(R)>{&panel_rows<R + 1>...};
}

template <DType T>
MOON_SIMD_TARGET void vnni_columns(const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                                   const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                                   int64_t ldy) {
  static constexpr auto kPanelRows =
      make_panel_rows(std::make_integer_sequence<int, kRegisterRows>());
  // Per calling thread and kept: the engine calls this for every matrix of every layer.
  thread_local std::vector<PackedBlock> packed;
  thread_local std::vector<float> x_d;
  thread_local std::vector<int32_t> x_start;
  if (packed.size() < static_cast<size_t>(row_blocks)) packed.resize(row_blocks);
  const size_t count = static_cast<size_t>(m * row_blocks);
  if (x_d.size() < count) {
    x_d.resize(count);
    x_start.resize(count);
  }
  const __m256i ones = _mm256_set1_epi8(1);
  for (size_t k = 0; k < count; ++k) {
    x_d[k] = _cvtsh_ss(x[k].d);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].qs));
    const __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
    const __m128i half =
        _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
    const __m128i quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    const int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0xB1)));
    x_start[k] = -kWeightBias<T> * sum;
  }
  for (int64_t p = 0; p < panels; ++p) {
    pack_panel<T>(w + p * kVnniPanelRows * w_row_bytes, w_row_bytes, row_blocks, packed.data());
    for (int64_t i = 0; i < m; i += kRegisterRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRegisterRows, m - i));
      kPanelRows[rows - 1](packed.data(), x + i * row_blocks, row_blocks,
                           x_d.data() + i * row_blocks, x_start.data() + i * row_blocks,
                           y + i * ldy + p * kVnniPanelRows, ldy);
    }
  }
}

}  // namespace q8_0

namespace super_block {

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

}  // namespace super_block
}  // namespace

bool vnni_int8_columns(DType type, const BlockQ8_0* x, int64_t m, int64_t row_blocks,
                       const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                       int64_t ldy) {
  return for_int8_weight_dtype(type, [&]<DType T>() {
    q8_0::vnni_columns<T>(x, m, row_blocks, w, w_row_bytes, panels, y, ldy);
  });
}

bool vnni_super_block_columns(DType type, const BlockQ8_K* x, int64_t m, int64_t row_blocks,
                              const uint8_t* w, size_t w_row_bytes, int64_t panels, float* y,
                              int64_t ldy) {
  if (type == DType::IQ4_XS) return false;
  return for_super_block_dtype(type, [&]<DType T>() {
    if constexpr (T != DType::IQ4_XS) {
      super_block::vnni_columns<T>(x, m, row_blocks, w, w_row_bytes, panels, y, ldy);
    }
  });
}

}  // namespace moon::kernels::detail
