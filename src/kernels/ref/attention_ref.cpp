#include "kernels/ref/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moon::kernels::ref {

void attention_ref(const float* q, const float* k, const float* v, float* out, int64_t num_queries,
                   int64_t n_ctx, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                   float scale, float softcap, int64_t window) {
  const int64_t q_dim = num_heads * head_dim, kv_dim = num_kv_heads * head_dim;
  const int64_t group = num_heads / num_kv_heads;
  std::vector<double> weights(static_cast<size_t>(n_ctx));  // [n_ctx]
  std::vector<double> sum(static_cast<size_t>(head_dim));   // [head_dim]
  for (int64_t i = 0; i < num_queries; ++i) {
    const int64_t visible = n_ctx - num_queries + i + 1;  // positions first .. visible - 1
    const int64_t first = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
    for (int64_t h = 0; h < num_heads; ++h) {
      const float* qh = q + i * q_dim + h * head_dim;
      const int64_t kv_offset = (h / group) * head_dim;

      // Scores, shifted by their max so that exp cannot overflow.
      double max_score = -INFINITY;
      for (int64_t t = first; t < visible; ++t) {
        const float* kt = k + t * kv_dim + kv_offset;
        double dot = 0.0;
        for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qh[d]) * kt[d];
        weights[t] = dot * scale;
        if (softcap > 0.0f) weights[t] = softcap * std::tanh(weights[t] / softcap);
        max_score = std::max(max_score, weights[t]);
      }
      double total = 0.0;
      for (int64_t t = first; t < visible; ++t) {
        weights[t] = std::exp(weights[t] - max_score);
        total += weights[t];
      }

      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t t = first; t < visible; ++t) {
        const float* vt = v + t * kv_dim + kv_offset;
        for (int64_t d = 0; d < head_dim; ++d) sum[d] += weights[t] / total * vt[d];
      }
      float* oh = out + i * q_dim + h * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) oh[d] = static_cast<float>(sum[d]);
    }
  }
}

}  // namespace moon::kernels::ref
