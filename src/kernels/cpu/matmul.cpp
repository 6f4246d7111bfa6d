#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul_tiles.h"
#include "tensor/half.h"
#include "util/check.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::kernels {
namespace {

using detail::Int8Tiles;
using detail::MatmulTiles;

// Activation rows are processed in groups sized to stay in L2 while a thread sweeps its
// weight rows over them; weights then stream from memory once per group.
constexpr int64_t kActivationGroupBytes = 256 * 1024;
// Below this many multiply-adds a call runs on one thread: waking workers costs more.
constexpr int64_t kMinParallelMacs = 1 << 16;

MatmulTiles select_tiles(DType type) {
  MatmulTiles tiles;
  bool ok = false;
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      ok = detail::matmul_tiles_avx512(type, &tiles);
      break;
    case SimdLevel::kAvx2:
      ok = detail::matmul_tiles_avx2(type, &tiles);
      break;
    case SimdLevel::kScalar:
      ok = detail::matmul_tiles_scalar(type, &tiles);
      break;
  }
  MOON_CHECK(ok, "matmul: unsupported weight dtype {}", dtype_name(type));
  return tiles;
}

// The int8 tiles for m activation rows.
Int8Tiles select_int8_tiles(DType type, int64_t m) {
  Int8Tiles tiles;
  bool ok = false;
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      ok = m <= detail::kDecodeMaxRows ? detail::int8_decode_tiles_avx512(type, &tiles)
                                       : detail::int8_tiles_avx512(type, &tiles);
      break;
    case SimdLevel::kAvx2:
      ok = detail::int8_tiles_avx2(type, &tiles);
      break;
    case SimdLevel::kScalar:
      ok = detail::int8_tiles_scalar(type, &tiles);
      break;
  }
  MOON_CHECK(ok, "matmul: {} weights do not take the int8 path", dtype_name(type));
  return tiles;
}

detail::Q8_1Tiles select_q8_1_tiles(DType type) {
  detail::Q8_1Tiles tiles;
  MOON_CHECK(detail::q8_1_tiles_scalar(type, &tiles), "matmul: {} weights do not take Q8_1 blocks",
             dtype_name(type));
  return tiles;
}

detail::SuperBlockTiles select_super_block_tiles(DType type, int64_t m) {
  detail::SuperBlockTiles tiles;
  bool ok = false;
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      ok = m <= detail::kDecodeMaxRows ? detail::super_block_decode_tiles_avx512(type, &tiles)
                                       : detail::super_block_tiles_avx512(type, &tiles);
      break;
    case SimdLevel::kAvx2:
      ok = detail::super_block_tiles_avx2(type, &tiles);
      break;
    case SimdLevel::kScalar:
      ok = detail::super_block_tiles_scalar(type, &tiles);
      break;
  }
  MOON_CHECK(ok, "matmul: {} weights do not take Q8_K blocks", dtype_name(type));
  return tiles;
}

// The VNNI batch kernel runs at the AVX-512 level of a CPU with VNNI (AMX, where enabled,
// comes first).
bool vnni_panels_enabled() {
  return simd_level() == SimdLevel::kAvx512 && cpu_features().avx512_vnni;
}

using QuantizeRowFn = void (*)(const float* x, BlockQ8_0* y, int64_t n);

QuantizeRowFn select_quantizer() {
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      return detail::quantize_row_avx512;
    case SimdLevel::kAvx2:
      return detail::quantize_row_avx2;
    case SimdLevel::kScalar:
      break;
  }
  return detail::quantize_row_scalar;
}

// Output columns [n_begin, n_end) for all m activation rows; row i of the left operand is
// at x + i * x_stride (floats or blocks, whichever the tiles take).
template <class Fn, class X>
void matmul_columns(const detail::Tiles<Fn>& tiles, const X* x, int64_t x_stride,
                    int64_t x_row_bytes, int64_t m, const WeightView& w, float* y, int64_t n_begin,
                    int64_t n_end) {
  const int64_t n_dim = w.rows;
  const int64_t group_rows =
      std::max<int64_t>(tiles.rows, kActivationGroupBytes / x_row_bytes / tiles.rows * tiles.rows);

  auto run_tiles = [&](const Fn* fns, int64_t m0, int64_t m1, int64_t n) {
    for (int64_t i = m0; i < m1; i += tiles.rows) {
      const int rows = static_cast<int>(std::min<int64_t>(tiles.rows, m1 - i));
      fns[rows](x + i * x_stride, x_stride, w.row(n), w.row_bytes, y + i * n_dim + n, n_dim);
    }
  };
  for (int64_t m0 = 0; m0 < m; m0 += group_rows) {
    const int64_t m1 = std::min(m, m0 + group_rows);
    int64_t n = n_begin;
    for (; n + tiles.cols <= n_end; n += tiles.cols) run_tiles(tiles.wide, m0, m1, n);
    for (; n < n_end; ++n) run_tiles(tiles.narrow, m0, m1, n);
  }
}

// Splits the weight rows across the pool in units of a wide tile, so tiles stay whole; this
// does not affect results (see matmul.h), only speed.
template <class Fn, class X>
void run_matmul(const detail::Tiles<Fn>& tiles, const X* x, int64_t x_stride, int64_t x_row_bytes,
                int64_t m, const WeightView& w, float* y, ThreadPool* pool) {
  const int64_t unit = tiles.cols;
  const int64_t num_units = (w.rows + unit - 1) / unit;
  const int64_t macs_per_unit = std::max<int64_t>(1, m * unit * w.cols);
  const int64_t min_units = std::max<int64_t>(1, kMinParallelMacs / macs_per_unit);
  auto body = [&](int64_t u0, int64_t u1) {
    matmul_columns(tiles, x, x_stride, x_row_bytes, m, w, y, u0 * unit,
                   std::min(w.rows, u1 * unit));
  };
  if (pool != nullptr) {
    pool->parallel_for(num_units, body, min_units);
  } else {
    body(0, num_units);
  }
}

// The int8 path's panel kernels (AMX, or VNNI on packed panels): whole panels of
// `panel_rows` weight rows times the first multiple of `row_multiple` activation rows on the
// panel kernel (`panel`), the rest on the vector tiles, which give the same bits. Work is
// split across the pool by panel.
template <class Fn, class X, class Panel>
void run_panels(const detail::Tiles<Fn>& tiles, const X* x, int64_t m, int64_t row_blocks,
                const WeightView& w, float* y, ThreadPool* pool, int64_t panel_rows,
                int64_t row_multiple, Panel&& panel) {
  const int64_t n_dim = w.rows;
  const int64_t x_row_bytes = row_blocks * static_cast<int64_t>(sizeof(X));
  const int64_t m_tiles = m / row_multiple * row_multiple;
  const int64_t full_panels = n_dim / panel_rows;
  const int64_t num_units = (n_dim + panel_rows - 1) / panel_rows;
  auto body = [&](int64_t u0, int64_t u1) {
    const int64_t n0 = u0 * panel_rows, n1 = std::min(n_dim, u1 * panel_rows);
    const int64_t panels = std::min(u1, full_panels) - u0;
    const int64_t n_tiles = n0 + std::max<int64_t>(0, panels) * panel_rows;
    if (panels > 0) panel(x, m_tiles, row_blocks, w.row(n0), w.row_bytes, panels, y + n0, n_dim);
    if (n_tiles < n1) {  // the last weight rows, short of a panel
      matmul_columns(tiles, x, row_blocks, x_row_bytes, m_tiles, w, y, n_tiles, n1);
    }
    if (m_tiles < m) {  // the last activation rows, short of a tile
      matmul_columns(tiles, x + m_tiles * row_blocks, row_blocks, x_row_bytes, m - m_tiles, w,
                     y + m_tiles * n_dim, n0, n1);
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(num_units, body, 1);
  } else {
    body(0, num_units);
  }
}

// Q8_1: Q8_0's bytes (the level's quantizer) plus s = d * sum(q) with d = max|x| / 127 before
// its rounding to fp16, as llama.cpp's x86 quantizer computes it.
void quantize_row_q8_1(QuantizeRowFn quantize_q8_0, const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    BlockQ8_0 q;
    quantize_q8_0(xb, &q, kQ8_0BlockSize);
    float max = 0.0f;
    int sum = 0;
    for (int k = 0; k < kQ8_0BlockSize; ++k) {
      max = std::max(max, std::fabs(xb[k]));
      sum += q.qs[k];
    }
    y[b].d = q.d;
    y[b].s = fp32_to_fp16(max / 127.0f * static_cast<float>(sum));
    std::memcpy(y[b].qs, q.qs, sizeof(q.qs));
  }
}

template <class Block>
Block* reserve(std::vector<Block>& blocks, int64_t count) {
  if (blocks.size() < static_cast<size_t>(count)) blocks.resize(static_cast<size_t>(count));
  return blocks.data();
}

}  // namespace

ActivationBlocks activation_blocks(DType weight_type) {
  switch (weight_type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
      return ActivationBlocks::kQ8_0;
    case DType::Q4_1:
    case DType::Q5_1:
      return ActivationBlocks::kQ8_1;
    default:
      return is_super_block_type(weight_type) ? ActivationBlocks::kQ8_K : ActivationBlocks::kNone;
  }
}

void quantize_rows(const float* x, int64_t m, int64_t k, QuantizedRows* out, ThreadPool* pool,
                   ActivationBlocks format) {
  MOON_CHECK(format != ActivationBlocks::kNone, "quantize_rows: no activation block format");
  out->format = format;
  out->rows = m;
  out->cols = k;
  const int64_t block = format == ActivationBlocks::kQ8_K ? kSuperBlockSize : kQ8_0BlockSize;
  MOON_CHECK(k % block == 0, "quantize_rows: row length {} is not a multiple of {}", k, block);
  const int64_t row_blocks = k / block;
  const QuantizeRowFn quantize = select_quantizer();
  BlockQ8_0* q8_0 =
      format == ActivationBlocks::kQ8_0 ? reserve(out->blocks, m * row_blocks) : nullptr;
  BlockQ8_1* q8_1 =
      format == ActivationBlocks::kQ8_1 ? reserve(out->blocks_q8_1, m * row_blocks) : nullptr;
  BlockQ8_K* q8_k =
      format == ActivationBlocks::kQ8_K ? reserve(out->blocks_q8_k, m * row_blocks) : nullptr;
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (q8_0 != nullptr) quantize(x + r * k, q8_0 + r * row_blocks, k);
      if (q8_1 != nullptr) quantize_row_q8_1(quantize, x + r * k, q8_1 + r * row_blocks, k);
      if (q8_k != nullptr) quantize_row_q8_k(x + r * k, q8_k + r * row_blocks, k);
    }
  };
  // A row is cheap (a few hundred cycles per 1,000 values): split only long batches.
  constexpr int64_t kMinParallelValues = 1 << 15;
  if (pool != nullptr) {
    pool->parallel_for(m, body, std::max<int64_t>(1, kMinParallelValues / std::max<int64_t>(1, k)));
  } else {
    body(0, m);
  }
}

void matmul(const float* x, int64_t m, const WeightView& w, float* y, ThreadPool* pool) {
  if (m <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {  // empty dot products
    std::fill(y, y + m * w.rows, 0.0f);
    return;
  }
  if (const ActivationBlocks format = activation_blocks(w.type);
      format != ActivationBlocks::kNone) {
    // One buffer per calling thread, kept: the engine calls this for every layer.
    thread_local QuantizedRows quantized;
    quantize_rows(x, m, w.cols, &quantized, pool, format);
    matmul(quantized, w, y, pool);
    return;
  }
  const MatmulTiles tiles = select_tiles(w.type);
  run_matmul(tiles, x, w.cols, w.cols * static_cast<int64_t>(sizeof(float)), m, w, y, pool);
}

void matmul(const QuantizedRows& x, const WeightView& w, float* y, ThreadPool* pool) {
  MOON_CHECK(x.cols == w.cols, "matmul: activations have {} columns, weights {}", x.cols, w.cols);
  MOON_CHECK(x.format == activation_blocks(w.type),
             "matmul: {} weights need other activation blocks", dtype_name(w.type));
  const int64_t m = x.rows;
  if (m <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {
    std::fill(y, y + m * w.rows, 0.0f);
    return;
  }
  const int64_t row_blocks = x.row_blocks();
  if (x.format == ActivationBlocks::kQ8_1) {
    run_matmul(select_q8_1_tiles(w.type), x.blocks_q8_1.data(), row_blocks,
               row_blocks * static_cast<int64_t>(sizeof(BlockQ8_1)), m, w, y, pool);
    return;
  }
  if (x.format == ActivationBlocks::kQ8_K) {
    const detail::SuperBlockTiles tiles = select_super_block_tiles(w.type, m);
    if (m >= detail::kAmxMinRows && amx_int8_enabled()) {
      const DType type = w.type;
      run_panels(tiles, x.blocks_q8_k.data(), m, row_blocks, w, y, pool,
                 detail::kAmxSuperBlockPanelRows, detail::kAmxMinRows,
                 [type](auto... args) { detail::amx_super_block_columns(type, args...); });
      return;
    }
    if (m >= detail::kVnniMinRows && vnni_panels_enabled() && w.type != DType::IQ4_XS) {
      const DType type = w.type;
      run_panels(tiles, x.blocks_q8_k.data(), m, row_blocks, w, y, pool, detail::kVnniPanelRows, 1,
                 [type](auto... args) { detail::vnni_super_block_columns(type, args...); });
      return;
    }
    run_matmul(tiles, x.blocks_q8_k.data(), row_blocks,
               row_blocks * static_cast<int64_t>(sizeof(BlockQ8_K)), m, w, y, pool);
    return;
  }
  const Int8Tiles tiles = select_int8_tiles(w.type, m);
  if (m >= detail::kAmxMinRows && amx_int8_enabled()) {
    const DType type = w.type;
    run_panels(tiles, x.blocks.data(), m, row_blocks, w, y, pool, detail::kAmxPanelRows,
               detail::kAmxMinRows,
               [type](auto... args) { detail::amx_int8_columns(type, args...); });
    return;
  }
  if (m >= detail::kVnniMinRows && vnni_panels_enabled()) {
    const DType type = w.type;
    run_panels(tiles, x.blocks.data(), m, row_blocks, w, y, pool, detail::kVnniPanelRows, 1,
               [type](auto... args) { detail::vnni_int8_columns(type, args...); });
    return;
  }
  run_matmul(tiles, x.blocks.data(), row_blocks,
             row_blocks * static_cast<int64_t>(sizeof(BlockQ8_0)), m, w, y, pool);
}

}  // namespace moon::kernels
