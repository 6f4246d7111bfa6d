#include "model/paged_forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/paged_attention.h"

namespace moon {
namespace {

// x[r] += bias for each of the n rows, when the family has the bias.
void add_bias(float* x, int64_t n, const std::vector<float>& bias) {
  const auto width = static_cast<int64_t>(bias.size());
  for (int64_t r = 0; r < n && width > 0; ++r) {
    kernels::add(x + r * width, bias.data(), x + r * width, width);
  }
}

}  // namespace

PagedForward::PagedForward(const Model& model, KvStorage* kv, int64_t max_num_tokens,
                           ThreadPool* pool, ForwardRanks ranks)
    : model_(model),
      hp_(model.hparams),
      kv_(kv),
      pool_(pool),
      ranks_(std::move(ranks)),
      max_num_tokens_(std::max<int64_t>(max_num_tokens, 1)) {
  for (const LayerAttention& layer : hp_.layers) {
    kernels::RopeParams& rope = rope_.emplace_back();
    rope.rot_dim = hp_.n_rot;
    rope.neox = hp_.rope_neox;
    rope.freq_base = layer.rope_freq_base;
    rope.linear_scale = 1.0f / layer.rope_freq_scale;
    rope.freq_factors =
        model.weights.rope_freqs.empty() ? nullptr : model.weights.rope_freqs.data();
  }
  const auto n = static_cast<size_t>(max_num_tokens_);
  x_.resize(n * hp_.n_embd);
  xb_.resize(n * hp_.n_embd);
  q_.resize(n * hp_.n_embd_q());
  k_.resize(n * hp_.n_embd_kv());
  v_.resize(n * hp_.n_embd_kv());
  att_.resize(n * hp_.n_embd_q());
  gate_.resize(n * hp_.n_ff);
  up_.resize(n * hp_.n_ff);
  tmp_.resize(n * hp_.n_embd);
}

Status PagedForward::validate(const ForwardBatch& b) const {
  const int64_t n = b.num_tokens();
  if (n == 0) return make_error("forward called with no tokens");
  if (n > max_num_tokens_) {
    return make_error("batch of {} tokens exceeds the forward's capacity of {}", n,
                      max_num_tokens_);
  }
  const KvLayout& layout = kv_->layout();
  const int64_t num_slots = layout.num_blocks * layout.block_size;
  if (static_cast<int64_t>(b.positions.size()) != n ||
      static_cast<int64_t>(b.slot_mapping.size()) != n ||
      static_cast<int64_t>(b.query_start.size()) != b.num_seqs() + 1 || b.query_start.back() != n) {
    return make_error("malformed forward batch: inconsistent array sizes");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= hp_.n_vocab) {
      return make_error("token id {} is outside the vocabulary (0..{})", b.tokens[i],
                        hp_.n_vocab - 1);
    }
    if (b.slot_mapping[i] >= num_slots)
      return make_error("slot {} is outside the KV pool", b.slot_mapping[i]);
  }
  for (int64_t row : b.logits_rows) {
    if (row < 0 || row >= n) return make_error("logits row {} is outside the batch", row);
  }
  return Status::success();
}

void PagedForward::project(const float* x, int64_t n,
                           std::initializer_list<Projection> projections) {
  // One quantization serves them all when they take the same activation blocks (mixed files
  // such as Q4_K_M's Q6_K attn_v still share Q8_K blocks).
  const kernels::ActivationBlocks format = kernels::activation_blocks(projections.begin()->w->type);
  const bool shared = format != kernels::ActivationBlocks::kNone &&
                      std::all_of(projections.begin(), projections.end(), [&](const Projection& p) {
                        return kernels::activation_blocks(p.w->type) == format;
                      });
  if (!shared) {
    for (const Projection& p : projections) kernels::matmul(x, n, *p.w, p.y, pool_);
    return;
  }
  kernels::quantize_rows(x, n, projections.begin()->w->cols, &xq_, pool_, format);
  for (const Projection& p : projections) kernels::matmul(xq_, *p.w, p.y, pool_);
}

Status PagedForward::all_reduce(float* x, int64_t n) {
  if (ranks_.comm == nullptr) return Status::success();
  return ranks_.comm->all_reduce_sum(x, static_cast<size_t>(n * hp_.n_embd));
}

Status PagedForward::embed(const ForwardBatch& b) {
  const int64_t n = b.num_tokens(), dim = hp_.n_embd;
  const WeightView& table = model_.weights.token_embd;
  if (ranks_.comm == nullptr) {
    for (int64_t i = 0; i < n; ++i) kernels::get_row(table, b.tokens[i], &x_[i * dim]);
    return Status::success();
  }
  // One rank holds each row; the others add zeros, so the sum is the row exactly.
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = b.tokens[i] - ranks_.vocab_begin;
    if (row >= 0 && row < table.rows) {
      kernels::get_row(table, row, &x_[i * dim]);
    } else {
      std::fill_n(&x_[i * dim], dim, 0.0f);
    }
  }
  return all_reduce(x_.data(), n);
}

Status PagedForward::gather_logits(int64_t rows, float* logits) {
  const std::vector<int64_t>& counts = ranks_.vocab_counts;
  std::vector<int64_t> floats(counts.size());
  for (size_t r = 0; r < counts.size(); ++r) floats[r] = rows * counts[r];
  const bool root = ranks_.comm->rank() == 0;
  if (root) gathered_.resize(static_cast<size_t>(rows * hp_.n_vocab));
  MOON_TRY(ranks_.comm->gather_to_root(local_logits_.data(), floats, gathered_.data()));
  if (!root) return Status::success();
  // Rank r's block is [rows, counts[r]]; row i of the logits is every block's row i in turn.
  const float* block = gathered_.data();
  int64_t column = 0;
  for (int64_t count : counts) {
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(block + i * count, count, logits + i * hp_.n_vocab + column);
    }
    block += rows * count;
    column += count;
  }
  return Status::success();
}

Status PagedForward::forward(const ForwardBatch& b, float* logits) {
  MOON_TRY(validate(b));
  const int64_t n = b.num_tokens(), dim = hp_.n_embd;
  const ModelWeights& w = model_.weights;
  MOON_TRY(embed(b));
  if (hp_.embd_scale != 1.0f) {
    for (int64_t i = 0; i < n * dim; ++i) x_[i] *= hp_.embd_scale;
  }

  kernels::PagedAttentionBatch att;
  att.q = q_.data();
  att.out = att_.data();
  att.num_heads = hp_.n_head;
  att.scale = hp_.attn_scale;
  att.softcap = hp_.attn_softcap;
  att.num_seqs = b.num_seqs();
  att.query_start = b.query_start.data();
  att.context_len = b.context_len.data();
  att.block_tables = b.block_tables.data();
  att.block_table_stride = b.block_table_stride;
  att.layout = kv_->layout();

  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const LayerWeights& lw = w.layers[l];
    kernels::rmsnorm(x_.data(), lw.attn_norm.data(), xb_.data(), n, dim, hp_.rms_eps, pool_);
    project(xb_.data(), n, {{&lw.wq, q_.data()}, {&lw.wk, k_.data()}, {&lw.wv, v_.data()}});
    add_bias(q_.data(), n, lw.bq);
    add_bias(k_.data(), n, lw.bk);
    add_bias(v_.data(), n, lw.bv);
    if (!lw.q_norm.empty()) {  // per head: rows of head_dim
      kernels::rmsnorm(q_.data(), lw.q_norm.data(), q_.data(), n * hp_.n_head, hp_.head_dim,
                       hp_.rms_eps, pool_);
      kernels::rmsnorm(k_.data(), lw.k_norm.data(), k_.data(), n * hp_.n_head_kv, hp_.head_dim,
                       hp_.rms_eps, pool_);
    }
    kernels::rope(q_.data(), n, hp_.n_head, hp_.head_dim, b.positions.data(), rope_[l], pool_);
    kernels::rope(k_.data(), n, hp_.n_head_kv, hp_.head_dim, b.positions.data(), rope_[l], pool_);
    kernels::kv_write(kv_->layout(), kv_->k(l), kv_->v(l), k_.data(), v_.data(),
                      b.slot_mapping.data(), n);
    att.k_cache = kv_->k(l);
    att.v_cache = kv_->v(l);
    att.window = hp_.layers[l].window;
    kernels::paged_attention(att, pool_);
    kernels::matmul(att_.data(), n, lw.wo, tmp_.data(), pool_);
    MOON_TRY(all_reduce(tmp_.data(), n));
    if (hp_.post_norms) {
      kernels::rmsnorm(tmp_.data(), lw.post_attention_norm.data(), tmp_.data(), n, dim, hp_.rms_eps,
                       pool_);
    }
    kernels::add(x_.data(), tmp_.data(), x_.data(), n * dim, pool_);

    kernels::rmsnorm(x_.data(), lw.ffn_norm.data(), xb_.data(), n, dim, hp_.rms_eps, pool_);
    project(xb_.data(), n, {{&lw.w_gate, gate_.data()}, {&lw.w_up, up_.data()}});
    if (hp_.ffn_act == FfnActivation::kGeluTanh) {
      kernels::gelu_tanh_mul(gate_.data(), up_.data(), gate_.data(), n * hp_.n_ff, pool_);
    } else {
      kernels::silu_mul(gate_.data(), up_.data(), gate_.data(), n * hp_.n_ff, pool_);
    }
    kernels::matmul(gate_.data(), n, lw.w_down, tmp_.data(), pool_);
    MOON_TRY(all_reduce(tmp_.data(), n));
    if (hp_.post_norms) {
      kernels::rmsnorm(tmp_.data(), lw.post_ffw_norm.data(), tmp_.data(), n, dim, hp_.rms_eps,
                       pool_);
    }
    kernels::add(x_.data(), tmp_.data(), x_.data(), n * dim, pool_);
  }
  // Only the rows whose logits are wanted go through the (large) output projection.
  const auto rows = static_cast<int64_t>(b.logits_rows.size());
  if (rows == 0) return Status::success();
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(&x_[b.logits_rows[r] * dim], dim, &tmp_[r * dim]);
  }
  kernels::rmsnorm(tmp_.data(), w.output_norm.data(), xb_.data(), rows, dim, hp_.rms_eps, pool_);
  // A tensor-parallel rank computes its slice of the vocabulary, then rank 0 gathers them.
  float* out = logits;
  if (ranks_.comm != nullptr) {
    local_logits_.resize(static_cast<size_t>(rows * w.output.rows));
    out = local_logits_.data();
  }
  kernels::matmul(xb_.data(), rows, w.output, out, pool_);
  if (hp_.final_softcap > 0.0f) {
    kernels::softcap(out, rows * w.output.rows, hp_.final_softcap, pool_);
  }
  if (ranks_.comm != nullptr) return gather_logits(rows, logits);
  return Status::success();
}

}  // namespace moon
