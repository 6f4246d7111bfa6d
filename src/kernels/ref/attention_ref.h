// Reference attention: the plain oracle the paged attention kernel is tested against.
// One sequence, a contiguous fp32 cache, every sum in double, written to be read.
#pragma once

#include <cstdint>

namespace moon::kernels::ref {

// Causal grouped-query attention of one sequence's newest query tokens over its cache.
// q, out: [num_queries, num_heads * head_dim]; k, v: [n_ctx, num_kv_heads * head_dim]
// (position-major, the new tokens' K and V included). Query row i sits at position
// n_ctx - num_queries + i and sees positions 0 ..= that; head h reads KV head
// h / (num_heads / num_kv_heads).
//   out[i, h] = sum_t softmax_t(cap(scale * q[i, h] . k[t, kv(h)])) * v[t, kv(h)]
// where cap(s) = softcap * tanh(s / softcap) when softcap > 0, and with window > 0 only
// positions t > position - window take part.
void attention_ref(const float* q, const float* k, const float* v, float* out, int64_t num_queries,
                   int64_t n_ctx, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                   float scale, float softcap = 0.0f, int64_t window = 0);

}  // namespace moon::kernels::ref
