#include <cmath>

#include "kernels/ref/ref_kernels.h"

namespace moon::kernels::ref {

void rmsnorm_ref(const float* x, const float* weight, float* out, int64_t rows, int64_t dim,
                 float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;  // [dim]
    float* yr = out + r * dim;      // [dim]
    float sum_squares = 0.0f;
    for (int64_t i = 0; i < dim; ++i) sum_squares += xr[i] * xr[i];
    const float scale = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
  }
}

void rope_ref(float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
              const int32_t* positions, const RopeParams& params) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const double pos = static_cast<double>(positions[t]) / params.linear_scale;
    for (int64_t h = 0; h < num_heads; ++h) {
      float* head = x + (t * num_heads + h) * head_dim;  // [head_dim]
      for (int64_t i = 0; 2 * i < params.rot_dim; ++i) {
        double theta = pos * std::pow(static_cast<double>(params.freq_base),
                                      -2.0 * static_cast<double>(i) / params.rot_dim);
        if (params.freq_factors != nullptr) theta /= params.freq_factors[i];
        const float c = static_cast<float>(std::cos(theta));
        const float s = static_cast<float>(std::sin(theta));
        const int64_t i0 = params.neox ? i : 2 * i;
        const int64_t i1 = params.neox ? i + params.rot_dim / 2 : 2 * i + 1;
        const float x0 = head[i0];
        const float x1 = head[i1];
        head[i0] = x0 * c - x1 * s;
        head[i1] = x0 * s + x1 * c;
      }
    }
  }
}

void softmax_ref(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;  // [cols]
    float max = -INFINITY;
    for (int64_t i = 0; i < cols; ++i) max = std::fmax(max, xr[i]);
    float sum = 0.0f;
    for (int64_t i = 0; i < cols; ++i) {
      xr[i] = std::exp(xr[i] - max);
      sum += xr[i];
    }
    for (int64_t i = 0; i < cols; ++i) xr[i] /= sum;
  }
}

void silu_mul_ref(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float u = kGeluSqrt2OverPi * (g + kGeluCubic * g * g * g);
    out[i] = 0.5f * g * (1.0f + std::tanh(u)) * up[i];
  }
}

void softcap_ref(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void add_ref(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace moon::kernels::ref
