#include "reference/reference_forward.h"

#include <algorithm>
#include <cmath>

#include "tensor/convert.h"
#include "tensor/half.h"

namespace moon::reference {
namespace {

std::vector<float> dequantize_matrix(const WeightView& w) {
  std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) dequantize_row(w.type, w.row(r), &out[r * w.cols], w.cols);
  return out;
}

// x as the int8 path sees it: each block of 32 rounded to d * q with d = max|x| / 127 (an
// fp16) and q = x * 127 / max|x| rounded to nearest even.
std::vector<float> round_through_q8_0(const float* x, int64_t n) {
  std::vector<float> out(x, x + n);
  for (int64_t b = 0; b < n; b += 32) {
    float max = 0.0f;
    for (int64_t i = b; i < b + 32; ++i) max = std::max(max, std::fabs(x[i]));
    const float d = fp16_to_fp32(fp32_to_fp16(max / 127.0f));
    for (int64_t i = b; i < b + 32; ++i) {
      out[i] = max == 0.0f ? 0.0f : d * std::nearbyint(x[i] * (127.0f / max));
    }
  }
  return out;
}

// out[rows] = W[rows][cols] . x[cols]
void matvec(const Matrix& w, const float* x, float* out, int64_t rows, int64_t cols) {
  std::vector<float> rounded;
  if (w.int8_input) {
    rounded = round_through_q8_0(x, cols);
    x = rounded.data();
  }
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0.0f;
    for (int64_t c = 0; c < cols; ++c) sum += w.values[r * cols + c] * x[c];
    out[r] = sum;
  }
}

void rmsnorm(float* out, const float* x, const std::vector<float>& weight, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Rotates pairs of each head's first n_rot dims by pos * theta_i: adjacent pairs
// (x[2i], x[2i+1]) as GGUF Llama files store Q and K, or the halves (x[i], x[i + n_rot/2])
// for the NEOX families. Llama 3.1 files divide each pair's frequency by a factor
// (rope_freqs), when present.
void rope(float* vec, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox, int64_t pos,
          const LayerAttention& layer, const std::vector<float>& freq_factors) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = vec + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float theta = static_cast<float>(pos) * layer.rope_freq_scale *
                          std::pow(layer.rope_freq_base,
                                   -2.0f * static_cast<float>(i) / static_cast<float>(n_rot)) /
                          (freq_factors.empty() ? 1.0f : freq_factors[i]);
      const float c = std::cos(theta), s = std::sin(theta);
      float& a = head[neox ? i : 2 * i];
      float& b = head[neox ? i + n_rot / 2 : 2 * i + 1];
      const float a0 = a, b0 = b;
      a = a0 * c - b0 * s;
      b = a0 * s + b0 * c;
    }
  }
}

void add_bias(float* x, const std::vector<float>& bias) {
  for (size_t i = 0; i < bias.size(); ++i) x[i] += bias[i];
}

float softcap(float x, float cap) {
  return cap > 0.0f ? cap * std::tanh(x / cap) : x;
}

float activation(FfnActivation act, float g) {
  if (act == FfnActivation::kSilu) return g / (1.0f + std::exp(-g));
  return 0.5f * g * (1.0f + std::tanh(0.7978845608f * (g + 0.044715f * g * g * g)));
}

void softmax(float* x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace

ReferenceForward::ReferenceForward(const Model& model) : hp_(model.hparams), w_(model.weights) {
  const auto matrix = [](const WeightView& w) {
    return Matrix{dequantize_matrix(w),
                  w.type == DType::Q8_0 || w.type == DType::Q4_0 || w.type == DType::Q5_0};
  };
  token_embd_ = dequantize_matrix(w_.token_embd);
  output_ = matrix(w_.output);
  for (const LayerWeights& lw : w_.layers) {
    layers_.push_back({matrix(lw.wq), matrix(lw.wk), matrix(lw.wv), matrix(lw.wo),
                       matrix(lw.w_gate), matrix(lw.w_up), matrix(lw.w_down)});
  }
  x_.resize(hp_.n_embd);
  xb_.resize(hp_.n_embd);
  q_.resize(hp_.n_embd_q());
  k_.resize(hp_.n_embd_kv());
  v_.resize(hp_.n_embd_kv());
  att_out_.resize(hp_.n_embd_q());
  hb_.resize(hp_.n_ff);
  hb2_.resize(hp_.n_ff);
  tmp_.resize(hp_.n_embd);
  logits_.resize(hp_.n_vocab);
  key_cache_.resize(hp_.n_layer);
  value_cache_.resize(hp_.n_layer);
}

const std::vector<float>& ReferenceForward::forward(int32_t token, int64_t pos) {
  const int64_t dim = hp_.n_embd, kv_dim = hp_.n_embd_kv(), hd = hp_.head_dim;
  std::copy_n(&token_embd_[static_cast<size_t>(token) * dim], dim, x_.begin());
  if (hp_.embd_scale != 1.0f) {
    for (float& v : x_) v *= hp_.embd_scale;
  }

  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const Layer& L = layers_[l];
    const LayerWeights& lw = w_.layers[l];

    const LayerAttention& la = hp_.layers[l];

    // Attention block: x += Wo . attention(rope(Wq xb + bq), rope(Wk xb + bk), Wv xb + bv),
    // with Q and K normed per head before RoPE where the family has those norms.
    rmsnorm(xb_.data(), x_.data(), lw.attn_norm, dim, hp_.rms_eps);
    matvec(L.wq, xb_.data(), q_.data(), hp_.n_embd_q(), dim);
    matvec(L.wk, xb_.data(), k_.data(), kv_dim, dim);
    matvec(L.wv, xb_.data(), v_.data(), kv_dim, dim);
    add_bias(q_.data(), lw.bq);
    add_bias(k_.data(), lw.bk);
    add_bias(v_.data(), lw.bv);
    if (!lw.q_norm.empty()) {
      for (int64_t h = 0; h < hp_.n_head; ++h) {
        rmsnorm(&q_[h * hd], &q_[h * hd], lw.q_norm, hd, hp_.rms_eps);
      }
      for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
        rmsnorm(&k_[h * hd], &k_[h * hd], lw.k_norm, hd, hp_.rms_eps);
      }
    }
    rope(q_.data(), hp_.n_head, hd, hp_.n_rot, hp_.rope_neox, pos, la, w_.rope_freqs);
    rope(k_.data(), hp_.n_head_kv, hd, hp_.n_rot, hp_.rope_neox, pos, la, w_.rope_freqs);

    std::vector<float>& kc = key_cache_[l];
    std::vector<float>& vc = value_cache_[l];
    kc.resize(static_cast<size_t>((pos + 1) * kv_dim));
    vc.resize(static_cast<size_t>((pos + 1) * kv_dim));
    std::copy(k_.begin(), k_.end(), kc.begin() + pos * kv_dim);
    std::copy(v_.begin(), v_.end(), vc.begin() + pos * kv_dim);

    // A sliding-window layer sees only the last `window` positions.
    const int64_t first = la.window > 0 ? std::max<int64_t>(0, pos + 1 - la.window) : 0;
    const int64_t n_keys = pos + 1 - first;
    scores_.resize(n_keys);
    for (int64_t h = 0; h < hp_.n_head; ++h) {
      const int64_t kv_h = h / hp_.n_gqa();  // query heads share KV heads in groups
      const float* qh = &q_[h * hd];
      for (int64_t t = first; t <= pos; ++t) {
        const float* kt = &kc[t * kv_dim + kv_h * hd];
        float dot = 0.0f;
        for (int64_t i = 0; i < hd; ++i) dot += qh[i] * kt[i];
        scores_[t - first] = softcap(dot * hp_.attn_scale, hp_.attn_softcap);
      }
      softmax(scores_.data(), n_keys);
      float* out = &att_out_[h * hd];
      std::fill(out, out + hd, 0.0f);
      for (int64_t t = first; t <= pos; ++t) {
        const float* vt = &vc[t * kv_dim + kv_h * hd];
        for (int64_t i = 0; i < hd; ++i) out[i] += scores_[t - first] * vt[i];
      }
    }
    matvec(L.wo, att_out_.data(), tmp_.data(), dim, hp_.n_embd_q());
    if (hp_.post_norms) rmsnorm(tmp_.data(), tmp_.data(), lw.post_attention_norm, dim, hp_.rms_eps);
    for (int64_t i = 0; i < dim; ++i) x_[i] += tmp_[i];

    // Feed-forward block (gated): x += W_down . (act(W_gate xb) * W_up xb)
    rmsnorm(xb_.data(), x_.data(), lw.ffn_norm, dim, hp_.rms_eps);
    matvec(L.w_gate, xb_.data(), hb_.data(), hp_.n_ff, dim);
    matvec(L.w_up, xb_.data(), hb2_.data(), hp_.n_ff, dim);
    for (int64_t i = 0; i < hp_.n_ff; ++i) hb_[i] = activation(hp_.ffn_act, hb_[i]) * hb2_[i];
    matvec(L.w_down, hb_.data(), tmp_.data(), dim, hp_.n_ff);
    if (hp_.post_norms) rmsnorm(tmp_.data(), tmp_.data(), lw.post_ffw_norm, dim, hp_.rms_eps);
    for (int64_t i = 0; i < dim; ++i) x_[i] += tmp_[i];
  }

  rmsnorm(x_.data(), x_.data(), w_.output_norm, dim, hp_.rms_eps);
  matvec(output_, x_.data(), logits_.data(), hp_.n_vocab, dim);
  for (float& v : logits_) v = softcap(v, hp_.final_softcap);
  return logits_;
}

std::vector<std::vector<float>> ReferenceForward::forward_all(const std::vector<int32_t>& tokens) {
  std::vector<std::vector<float>> all;
  for (size_t p = 0; p < tokens.size(); ++p) {
    all.push_back(forward(tokens[p], static_cast<int64_t>(p)));
  }
  return all;
}

}  // namespace moon::reference
