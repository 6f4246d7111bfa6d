// Decode tiles (one or two activation rows) for Q4_K, Q5_K and Q6_K weights with AVX-512
// VNNI: the super-block tiles' integers and float folding (matmul.h's rule), so the same
// bits, with far less work per weight byte, because one activation row cannot amortize
// unpacking the way a batch does.
//
// - 64 weight bytes per vpdpbusd: the quants are used as the nibbles they are stored as, and
//   the activations are gathered into the stored order instead (Q4_K and Q5_K keep elements
//   64c + l and 64c + 32 + l in the low and high nibbles of one byte; Q6_K's order is already
//   the natural one, in 64-element halves).
// - Each dword lane of a vpdpbusd holds four products of one group, and fits 16 bits (at
//   most 4 * 63 * 127), so vpdpwssd multiplies it by its group's scale and adds it to the
//   super-block's int32 lanes in one instruction, with the scale in the low half of a
//   zero-extended dword (the lane's sign-extension half meets a zero).
// - Q6_K's quants enter offset by 32, and 32 sum(scale_g * bsum_g) comes off, as in the
//   vector tiles; Q4_K's and Q5_K's minimums are their vpmaddwd over the group sums.
#include "kernels/cpu/simd_avx512.h"  // first: see its note on <immintrin.h>
#define MOON_SIMD_TARGET MOON_TARGET_AVX512_VNNI
#include "kernels/cpu/matmul_super_block_simd.h"

namespace moon::kernels::detail {
namespace {

template <DType T>
constexpr bool kVnniDecode = T == DType::Q4_K || T == DType::Q5_K || T == DType::Q6_K;

// One activation super-block in the weights' element order: 4 vectors of 64 bytes.
struct Activations {
  __m512i x[4];
};

template <DType T>
MOON_SIMD_TARGET inline Activations gather_activations(const BlockQ8_K& xb) {
  Activations a;
  if constexpr (T == DType::Q6_K) {
    for (int k = 0; k < 4; ++k) a.x[k] = _mm512_loadu_si512(xb.qs + 64 * k);
  } else {
    // Vector 2j + n (n = 0: low nibbles, 1: high) of qs bytes 64j ..: elements
    // 128j + 32n + 0..31 and 128j + 64 + 32n + 0..31.
    for (int j = 0; j < 2; ++j) {
      for (int n = 0; n < 2; ++n) {
        const int first = 128 * j + 32 * n;
        a.x[2 * j + n] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(xb.qs + first)),
                                            load256(xb.qs + first + 64), 1);
      }
    }
  }
  return a;
}

// One weight super-block: the 4 byte vectors in gather_activations' order, the int32 group
// scale vectors that go with each, and what the float folding needs.
struct Weights {
  __m512i q[4];
  __m512i scale[4];  // per dword lane: its group's scale, zero-extended from 16 bits
  __m256i scales16;  // the 16 group scales as int16 (Q6_K's bias term)
  __m256i mins16;    // the 16 group minimums as int16 (Q4_K, Q5_K)
  float d, dmin;
};

template <DType T>
MOON_SIMD_TARGET inline Weights load_weights(const uint8_t* row, int64_t index) {
  Weights w;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  if constexpr (T == DType::Q6_K) {
    const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(row)[index];
    w.d = _cvtsh_ss(b.d);
    w.dmin = 0.0f;
    w.scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m512i scales32 = _mm512_cvtepu16_epi32(w.scales16);
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(b.ql + 64 * half);
      // qh byte l holds the top bits of elements l, 32 + l, 64 + l and 96 + l of the half
      // (bits 0-1, 2-3, 4-5, 6-7).
      const __m512i qh = _mm512_broadcast_i64x4(load256(b.qh + 32 * half));
      const __m512i top_lo = _mm512_srlv_epi16(
          qh, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1));
      const __m512i top_hi =
          _mm512_srlv_epi16(qh, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1));
      const __m512i three = _mm512_set1_epi8(3);
      w.q[2 * half] = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                      _mm512_slli_epi16(_mm512_and_si512(top_lo, three), 4));
      w.q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                          _mm512_slli_epi16(_mm512_and_si512(top_hi, three), 4));
    }
    // Vector k holds elements 64k ..: groups 4k .. 4k + 3, four dwords each.
    for (int k = 0; k < 4; ++k) {
      const __m512i idx = _mm512_setr_epi32(4 * k, 4 * k, 4 * k, 4 * k, 4 * k + 1, 4 * k + 1,
                                            4 * k + 1, 4 * k + 1, 4 * k + 2, 4 * k + 2, 4 * k + 2,
                                            4 * k + 2, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3);
      w.scale[k] = _mm512_permutexvar_epi32(idx, scales32);
    }
  } else {
    using Block = std::conditional_t<T == DType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block& b = reinterpret_cast<const Block*>(row)[index];
    w.d = _cvtsh_ss(b.d);
    w.dmin = _cvtsh_ss(b.dmin);
    alignas(16) uint8_t sc[16];  // scales then mins, one per 32 elements
    decode_scales_k4(b.scales, sc, sc + 8);
    const __m128i both = _mm_load_si128(reinterpret_cast<const __m128i*>(sc));
    w.mins16 = pairs_from_bytes(_mm_cvtepu8_epi16(_mm_srli_si128(both, 8)));
    const __m512i scales32 = _mm512_cvtepu8_epi32(both);  // lanes 0-7: the scales
    [[maybe_unused]] __m512i high;
    if constexpr (T == DType::Q5_K) high = _mm512_broadcast_i64x4(load256(b.qh));
    for (int j = 0; j < 2; ++j) {
      const __m512i qs = _mm512_loadu_si512(b.qs + 64 * j);
      for (int n = 0; n < 2; ++n) {
        __m512i q = _mm512_and_si512(n == 0 ? qs : _mm512_srli_epi16(qs, 4), low4);
        if constexpr (T == DType::Q5_K) {
          // Element 64c + 32n + l's fifth bit is bit 2c + n of qh byte l; this vector's
          // halves are chunks c = 2j and 2j + 1.
          const __m512i shift =
              _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(4 * j + n)),
                                 _mm256_set1_epi16(static_cast<int16_t>(4 * j + 2 + n)), 1);
          const __m512i bit = _mm512_and_si512(_mm512_srlv_epi16(high, shift), _mm512_set1_epi8(1));
          q = _mm512_or_si512(q, _mm512_slli_epi16(bit, 4));
        }
        w.q[2 * j + n] = q;
        // Sub-blocks 4j + n (first 8 dwords) and 4j + 2 + n (last 8).
        const int v = 4 * j + n;
        w.scale[2 * j + n] = _mm512_permutexvar_epi32(
            _mm512_inserti64x4(_mm512_set1_epi32(v), _mm256_set1_epi32(v + 2), 1), scales32);
      }
    }
  }
  return w;
}

// 8 int32 lanes summing to S for one (activation, weight) super-block pair.
template <DType T>
MOON_SIMD_TARGET inline __m256i super_block_lanes(const Weights& w, const Activations& a,
                                                  const BlockQ8_K& xb) {
  __m512i acc = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.q[k], a.x[k]);
    acc = _mm512_dpwssd_epi32(acc, p, w.scale[k]);
  }
  __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
  if constexpr (T == DType::Q6_K) {
    const __m256i bias_sums = _mm256_madd_epi16(w.scales16, load256(xb.bsums));
    lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(bias_sums, 5));
  }
  return lanes;
}

template <DType T, int R, int C>
MOON_SIMD_TARGET void decode_tile(const BlockQ8_K* x, int64_t x_row_blocks, const uint8_t* w,
                                  size_t w_row_bytes, float* y, int64_t ldy) {
  constexpr int kPairs = R * C;
  constexpr int kGroups = (kPairs + 3) / 4;
  constexpr bool kMinsToo = T != DType::Q6_K;
  constexpr size_t kBlockBytes = kSuperBlockBytes<T>;
  __m128 acc[kGroups];
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm_setzero_ps();
  for (int64_t b = 0; b < x_row_blocks; ++b) {
    Activations act[R];
    for (int i = 0; i < R; ++i) act[i] = gather_activations<T>(x[i * x_row_blocks + b]);
    __m256i s_lanes[kGroups * 4], m_lanes[kGroups * 4];
    alignas(16) float s_scale[kGroups * 4], m_scale[kGroups * 4];
    for (int p = kPairs; p < kGroups * 4; ++p) {
      s_lanes[p] = m_lanes[p] = _mm256_setzero_si256();
      s_scale[p] = m_scale[p] = 0.0f;
    }
    for (int j = 0; j < C; ++j) {
      const uint8_t* row = w + j * w_row_bytes;
      prefetch_ahead<kBlockBytes, C>(row, b, x_row_blocks, w_row_bytes);
      const Weights wt = load_weights<T>(row, b);
      for (int i = 0; i < R; ++i) {
        const BlockQ8_K& xb = x[i * x_row_blocks + b];
        s_lanes[i * C + j] = super_block_lanes<T>(wt, act[i], xb);
        s_scale[i * C + j] = xb.d * wt.d;
        if constexpr (kMinsToo) {
          m_lanes[i * C + j] = _mm256_madd_epi16(wt.mins16, load256(xb.bsums));
          m_scale[i * C + j] = -(xb.d * wt.dmin);
        }
      }
    }
    for (int g = 0; g < kGroups; ++g) {
      const __m128i s =
          block_sums4(s_lanes[4 * g], s_lanes[4 * g + 1], s_lanes[4 * g + 2], s_lanes[4 * g + 3]);
      acc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(s), _mm_load_ps(s_scale + 4 * g), acc[g]);
      if constexpr (kMinsToo) {
        const __m128i m =
            block_sums4(m_lanes[4 * g], m_lanes[4 * g + 1], m_lanes[4 * g + 2], m_lanes[4 * g + 3]);
        acc[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(m), _mm_load_ps(m_scale + 4 * g), acc[g]);
      }
    }
  }
  alignas(16) float out[kGroups * 4];
  for (int g = 0; g < kGroups; ++g) _mm_store_ps(out + 4 * g, acc[g]);
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) y[i * ldy + j] = out[i * C + j];
  }
}

}  // namespace

bool super_block_decode_tiles_avx512_vnni(DType type, SuperBlockTiles* tiles) {
  bool ok = false;
  for_super_block_dtype(type, [&]<DType T>() {
    if constexpr (kVnniDecode<T>) {
      set_tiles<2, 4>(tiles, []<int R, int C>() { return &decode_tile<T, R, C>; });
      ok = true;
    }
  });
  return ok;
}

}  // namespace moon::kernels::detail
