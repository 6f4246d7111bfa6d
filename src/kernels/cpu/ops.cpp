#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops_impl.h"
#include "kernels/ref/ref_kernels.h"
#include "tensor/convert.h"
#include "util/check.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::kernels {
namespace {

using detail::OpsImpl;

// Work below roughly this many elements per chunk is not worth waking a worker for.
constexpr int64_t kMinElementsPerChunk = 16 * 1024;
// rope keeps per-token angle tables on the stack; wider rotations fall back to the reference.
constexpr int64_t kMaxRotDim = 1024;

// The vector bodies for the active level, or null at the scalar level (which runs the
// reference kernels on each chunk).
const OpsImpl* vector_ops() {
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      return &detail::ops_avx512();
    case SimdLevel::kAvx2:
      return &detail::ops_avx2();
    case SimdLevel::kScalar:
      break;
  }
  return nullptr;
}

void run(ThreadPool* pool, int64_t n, int64_t min_chunk, ThreadPool::RangeFn fn) {
  if (pool != nullptr) {
    pool->parallel_for(n, fn, min_chunk);
  } else if (n > 0) {
    fn(0, n);
  }
}

int64_t rows_per_chunk(int64_t row_elements) {
  return std::max<int64_t>(1, kMinElementsPerChunk / std::max<int64_t>(1, row_elements));
}

}  // namespace

void rmsnorm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps,
             ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, rows, rows_per_chunk(dim), [&](int64_t r0, int64_t r1) {
    if (ops == nullptr)
      return ref::rmsnorm_ref(x + r0 * dim, weight, out + r0 * dim, r1 - r0, dim, eps);
    for (int64_t r = r0; r < r1; ++r)
      ops->rmsnorm_row(x + r * dim, weight, out + r * dim, dim, eps);
  });
}

void rope(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
          const int32_t* positions, const RopeParams& params, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  const int64_t token_size = num_heads * head_dim;
  if (ops == nullptr || params.rot_dim > kMaxRotDim) {
    run(pool, num_tokens, rows_per_chunk(token_size), [&](int64_t t0, int64_t t1) {
      ref::rope_ref(x + t0 * token_size, t1 - t0, num_heads, head_dim, positions + t0, params);
    });
    return;
  }
  const int64_t half = params.rot_dim / 2;
  // base^(-2i / rot_dim) exactly as rope_ref computes it, so the angles match it bit for bit.
  double inv_freq[kMaxRotDim / 2];  // [rot_dim / 2]
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(static_cast<double>(params.freq_base),
                           -2.0 * static_cast<double>(i) / params.rot_dim);
  }
  run(pool, num_tokens, rows_per_chunk(token_size), [&](int64_t t0, int64_t t1) {
    float cos_dup[kMaxRotDim];     // [rot_dim]: c0, c0, c1, c1, ...
    float sin_signed[kMaxRotDim];  // [rot_dim]: -s0, s0, -s1, s1, ...
    for (int64_t t = t0; t < t1; ++t) {
      const double pos = static_cast<double>(positions[t]) / params.linear_scale;
      for (int64_t i = 0; i < half; ++i) {
        double theta = pos * inv_freq[i];
        if (params.freq_factors != nullptr) theta /= params.freq_factors[i];
        const float c = static_cast<float>(std::cos(theta));
        const float s = static_cast<float>(std::sin(theta));
        if (params.neox) {  // the first halves of the tables serve as plain cos and sin
          cos_dup[i] = c;
          sin_signed[i] = s;
          continue;
        }
        cos_dup[2 * i] = c;
        cos_dup[2 * i + 1] = c;
        sin_signed[2 * i] = -s;
        sin_signed[2 * i + 1] = s;
      }
      if (params.neox) {
        ops->rope_neox_token(x + t * token_size, num_heads, head_dim, params.rot_dim, cos_dup,
                             sin_signed);
      } else {
        ops->rope_token(x + t * token_size, num_heads, head_dim, params.rot_dim, cos_dup,
                        sin_signed);
      }
    }
  });
}

void softmax(float* x, int64_t rows, int64_t cols, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, rows, rows_per_chunk(cols), [&](int64_t r0, int64_t r1) {
    if (ops == nullptr) return ref::softmax_ref(x + r0 * cols, r1 - r0, cols);
    for (int64_t r = r0; r < r1; ++r) ops->softmax_row(x + r * cols, cols);
  });
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, n, kMinElementsPerChunk, [&](int64_t i0, int64_t i1) {
    if (ops == nullptr) return ref::silu_mul_ref(gate + i0, up + i0, out + i0, i1 - i0);
    ops->silu_mul(gate + i0, up + i0, out + i0, i1 - i0);
  });
}

void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, n, kMinElementsPerChunk, [&](int64_t i0, int64_t i1) {
    if (ops == nullptr) return ref::gelu_tanh_mul_ref(gate + i0, up + i0, out + i0, i1 - i0);
    ops->gelu_tanh_mul(gate + i0, up + i0, out + i0, i1 - i0);
  });
}

void softcap(float* x, int64_t n, float cap, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, n, kMinElementsPerChunk, [&](int64_t i0, int64_t i1) {
    if (ops == nullptr) return ref::softcap_ref(x + i0, i1 - i0, cap);
    ops->softcap(x + i0, i1 - i0, cap);
  });
}

void add(const float* a, const float* b, float* out, int64_t n, ThreadPool* pool) {
  const OpsImpl* ops = vector_ops();
  run(pool, n, kMinElementsPerChunk, [&](int64_t i0, int64_t i1) {
    if (ops == nullptr) return ref::add_ref(a + i0, b + i0, out + i0, i1 - i0);
    ops->add(a + i0, b + i0, out + i0, i1 - i0);
  });
}

void get_row(const WeightView& w, int64_t row, float* out) {
  const OpsImpl* ops = vector_ops();
  MOON_CHECK(is_row_convertible(w.type), "get_row: unsupported dtype {}", dtype_name(w.type));
  if (ops == nullptr) return ref::get_row_ref(w, row, out);
  ops->dequantize_row(w.type, w.row(row), out, w.cols);
}

}  // namespace moon::kernels
