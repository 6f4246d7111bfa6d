#include "kernels/cpu/matmul.h"

#include <algorithm>

#include "kernels/cpu/matmul_tiles.h"
#include "util/check.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::kernels {
namespace {

using detail::MatmulTileFn;
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

// Output columns [n_begin, n_end) for all m activation rows.
void matmul_columns(const MatmulTiles& tiles, const float* x, int64_t m, const WeightView& w,
                    float* y, int64_t n_begin, int64_t n_end) {
  const int64_t k_dim = w.cols;
  const int64_t n_dim = w.rows;
  const int64_t group_rows =
      std::max<int64_t>(tiles.rows, kActivationGroupBytes / (k_dim * 4) / tiles.rows * tiles.rows);

  auto run_tiles = [&](const MatmulTileFn* fns, int64_t m0, int64_t m1, int64_t n) {
    for (int64_t i = m0; i < m1; i += tiles.rows) {
      const int rows = static_cast<int>(std::min<int64_t>(tiles.rows, m1 - i));
      fns[rows](x + i * k_dim, k_dim, w.row(n), w.row_bytes, y + i * n_dim + n, n_dim);
    }
  };
  for (int64_t m0 = 0; m0 < m; m0 += group_rows) {
    const int64_t m1 = std::min(m, m0 + group_rows);
    int64_t n = n_begin;
    for (; n + tiles.cols <= n_end; n += tiles.cols) run_tiles(tiles.wide, m0, m1, n);
    for (; n < n_end; ++n) run_tiles(tiles.narrow, m0, m1, n);
  }
}

}  // namespace

void matmul(const float* x, int64_t m, const WeightView& w, float* y, ThreadPool* pool) {
  if (m <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {  // empty dot products
    std::fill(y, y + m * w.rows, 0.0f);
    return;
  }
  const MatmulTiles tiles = select_tiles(w.type);
  // Threads split the weight rows in units of a wide tile, so tiles stay whole; this does
  // not affect results (see matmul.h), only speed.
  const int64_t unit = tiles.cols;
  const int64_t num_units = (w.rows + unit - 1) / unit;
  const int64_t macs_per_unit = std::max<int64_t>(1, m * unit * w.cols);
  const int64_t min_units = std::max<int64_t>(1, kMinParallelMacs / macs_per_unit);
  auto body = [&](int64_t u0, int64_t u1) {
    matmul_columns(tiles, x, m, w, y, u0 * unit, std::min(w.rows, u1 * unit));
  };
  if (pool != nullptr) {
    pool->parallel_for(num_units, body, min_units);
  } else {
    body(0, num_units);
  }
}

}  // namespace moon::kernels
