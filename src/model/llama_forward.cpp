#include "model/llama_forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/kernels.h"

namespace moon {

LlamaForward::LlamaForward(const LlamaModel& model, int64_t max_context, ThreadPool* pool,
                           int64_t max_batch)
    : model_(model),
      hp_(model.hparams),
      pool_(pool),
      max_context_(std::max<int64_t>(max_context, 1)),
      max_batch_(std::max<int64_t>(std::min(max_batch, max_context_), 1)) {
  rope_.rot_dim = hp_.n_rot;
  rope_.freq_base = hp_.rope_freq_base;
  rope_.linear_scale = 1.0f / hp_.rope_freq_scale;
  rope_.freq_factors = model.weights.rope_freqs.empty() ? nullptr : model.weights.rope_freqs.data();
  const auto b = static_cast<size_t>(max_batch_);
  positions_.resize(b);
  x_.resize(b * hp_.n_embd);
  xb_.resize(b * hp_.n_embd);
  q_.resize(b * hp_.n_embd_q());
  k_.resize(b * hp_.n_embd_kv());
  v_.resize(b * hp_.n_embd_kv());
  att_.resize(b * hp_.n_embd_q());
  gate_.resize(b * hp_.n_ff);
  up_.resize(b * hp_.n_ff);
  tmp_.resize(b * hp_.n_embd);
  k_cache_.assign(hp_.n_layer, std::vector<float>(max_context_ * hp_.n_embd_kv()));
  v_cache_.assign(hp_.n_layer, std::vector<float>(max_context_ * hp_.n_embd_kv()));
}

Status LlamaForward::forward(std::span<const int32_t> tokens, int64_t pos, float* logits,
                             bool all_logits) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return make_error("forward called with no tokens");
  if (pos < 0 || pos + n > max_context_) {
    return make_error("positions {}..{} exceed the context of {} tokens", pos, pos + n - 1,
                      max_context_);
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= hp_.n_vocab) {
      return make_error("token id {} is outside the vocabulary (0..{})", t, hp_.n_vocab - 1);
    }
  }
  for (int64_t start = 0; start < n; start += max_batch_) {
    const int64_t len = std::min(max_batch_, n - start);
    const bool last_chunk = start + len == n;
    float* out = all_logits ? logits + start * hp_.n_vocab : logits;
    if (all_logits || last_chunk) {
      forward_chunk(tokens.subspan(start, len), pos + start, out, all_logits);
    } else {
      forward_chunk(tokens.subspan(start, len), pos + start, nullptr, false);
    }
  }
  return Status::success();
}

void LlamaForward::forward_chunk(std::span<const int32_t> tokens, int64_t pos, float* logits,
                                 bool all_logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t dim = hp_.n_embd;
  const LlamaWeights& w = model_.weights;
  for (int64_t i = 0; i < n; ++i) {
    positions_[i] = static_cast<int32_t>(pos + i);
    kernels::get_row(w.token_embd, tokens[i], &x_[i * dim]);
  }
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const LlamaLayerWeights& lw = w.layers[l];
    kernels::rmsnorm(x_.data(), lw.attn_norm.data(), xb_.data(), n, dim, hp_.rms_eps);
    kernels::matmul(xb_.data(), n, lw.wq, q_.data(), pool_);
    kernels::matmul(xb_.data(), n, lw.wk, k_.data(), pool_);
    kernels::matmul(xb_.data(), n, lw.wv, v_.data(), pool_);
    kernels::rope(q_.data(), n, hp_.n_head, hp_.head_dim, positions_.data(), rope_);
    kernels::rope(k_.data(), n, hp_.n_head_kv, hp_.head_dim, positions_.data(), rope_);
    const int64_t kv_dim = hp_.n_embd_kv();
    std::copy_n(k_.data(), n * kv_dim, k_cache_[l].data() + pos * kv_dim);
    std::copy_n(v_.data(), n * kv_dim, v_cache_[l].data() + pos * kv_dim);
    attention(n, pos, l);
    kernels::matmul(att_.data(), n, lw.wo, tmp_.data(), pool_);
    kernels::add(x_.data(), tmp_.data(), x_.data(), n * dim);

    kernels::rmsnorm(x_.data(), lw.ffn_norm.data(), xb_.data(), n, dim, hp_.rms_eps);
    kernels::matmul(xb_.data(), n, lw.w_gate, gate_.data(), pool_);
    kernels::matmul(xb_.data(), n, lw.w_up, up_.data(), pool_);
    kernels::silu_mul(gate_.data(), up_.data(), gate_.data(), n * hp_.n_ff);
    kernels::matmul(gate_.data(), n, lw.w_down, tmp_.data(), pool_);
    kernels::add(x_.data(), tmp_.data(), x_.data(), n * dim);
  }
  if (!logits) return;
  // Only the rows whose logits are wanted go through the (large) output projection.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  kernels::rmsnorm(&x_[first * dim], w.output_norm.data(), xb_.data(), rows, dim, hp_.rms_eps);
  kernels::matmul(xb_.data(), rows, w.output, logits, pool_);
}

// Causal attention of the chunk's queries over the cached keys: token i (at position pos+i)
// sees positions 0..pos+i. Each (token, head) pair is computed whole by one thread in a
// fixed order, so a token's result never depends on what else is in the batch.
void LlamaForward::attention(int64_t n_tokens, int64_t pos, int64_t layer) {
  const int64_t hd = hp_.head_dim, kv_dim = hp_.n_embd_kv(), q_dim = hp_.n_embd_q();
  const int64_t n_head = hp_.n_head, group = hp_.n_gqa();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* kc = k_cache_[layer].data();
  const float* vc = v_cache_[layer].data();
  pool_->parallel_for(n_tokens * n_head, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t i = job / n_head, h = job % n_head, kv_h = h / group;
      const int64_t n_ctx = pos + i + 1;
      if (static_cast<int64_t>(scores.size()) < n_ctx) scores.resize(n_ctx);
      const float* q = &q_[i * q_dim + h * hd];
      float max = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float* k = kc + t * kv_dim + kv_h * hd;
        float dot = 0.0f;
        for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
        scores[t] = dot * scale;
        max = std::max(max, scores[t]);
      }
      float sum = 0.0f;
      for (int64_t t = 0; t < n_ctx; ++t) {
        scores[t] = std::exp(scores[t] - max);
        sum += scores[t];
      }
      const float inv_sum = 1.0f / sum;
      float* out = &att_[i * q_dim + h * hd];
      std::fill(out, out + hd, 0.0f);
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float* v = vc + t * kv_dim + kv_h * hd;
        const float p = scores[t] * inv_sum;
        for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
      }
    }
  });
}

}  // namespace moon
