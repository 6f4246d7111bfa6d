#include <vector>

#include "kernels/ref/ref_kernels.h"
#include "tensor/convert.h"

namespace moon::kernels::ref {

void matmul_ref(const float* x, int64_t m, const WeightView& w, float* y) {
  const int64_t k_dim = w.cols;
  const int64_t n_dim = w.rows;
  std::vector<float> w_row(static_cast<size_t>(k_dim));  // [K], one dequantized weight row
  for (int64_t n = 0; n < n_dim; ++n) {
    dequantize_row(w.type, w.row(n), w_row.data(), k_dim);
    for (int64_t i = 0; i < m; ++i) {
      const float* x_row = x + i * k_dim;  // [K]
      float sum = 0.0f;
      for (int64_t k = 0; k < k_dim; ++k) sum += x_row[k] * w_row[static_cast<size_t>(k)];
      y[i * n_dim + n] = sum;
    }
  }
}

void get_row_ref(const WeightView& w, int64_t row, float* out) {
  dequantize_row(w.type, w.row(row), out, w.cols);
}

}  // namespace moon::kernels::ref
