#include "dist/shard.h"

#include <cstring>

namespace moon {
namespace {

// A copy of rows [begin, begin + count) and columns [col_begin, col_begin + col_count) of
// `w` (column bounds whole blocks), held by `model`.
WeightView slice(const WeightView& w, int64_t begin, int64_t count, int64_t col_begin,
                 int64_t col_count, ModelWeights* model) {
  const size_t col_offset = dtype_row_bytes(w.type, static_cast<size_t>(col_begin));
  const size_t row_bytes = dtype_row_bytes(w.type, static_cast<size_t>(col_count));
  const size_t bytes = row_bytes * static_cast<size_t>(count);
  auto copy = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* out = reinterpret_cast<uint8_t*>(copy.get());
  for (int64_t r = 0; r < count; ++r) {
    std::memcpy(out + static_cast<size_t>(r) * row_bytes, w.row(begin + r) + col_offset, row_bytes);
  }
  model->slices.push_back(std::move(copy));
  return make_weight_view(w.type, out, count, col_count);
}

WeightView rows(const WeightView& w, int64_t begin, int64_t count, ModelWeights* model) {
  return slice(w, begin, count, 0, w.cols, model);
}

WeightView columns(const WeightView& w, int64_t begin, int64_t count, ModelWeights* model) {
  return slice(w, 0, w.rows, begin, count, model);
}

std::vector<float> part(const std::vector<float>& v, int64_t begin, int64_t count) {
  if (v.empty()) return v;
  return std::vector<float>(v.begin() + begin, v.begin() + begin + count);
}

Status check_column_blocks(const char* what, const WeightView& w, int64_t per_rank, int size) {
  const uint32_t block = dtype_traits(w.type).block_size;
  if (per_rank % block == 0) return Status::success();
  return make_error(
      "--tensor-parallel-size {}: {} is {} ({}-value blocks) and its {} columns per rank are "
      "not whole blocks",
      size, what, dtype_name(w.type), block, per_rank);
}

}  // namespace

Result<ShardPlan> plan_shard(const ModelHparams& hp, const ModelWeights& weights, int rank,
                             int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    return make_error("rank {} of {} is not a valid tensor-parallel rank", rank, size);
  }
  ShardPlan p;
  p.rank = rank;
  p.size = size;
  if (hp.n_head % size != 0) {
    return make_error(
        "--tensor-parallel-size {}: the model's {} attention heads do not divide by it", size,
        hp.n_head);
  }
  if (hp.n_head_kv % size != 0 && size % hp.n_head_kv != 0) {
    return make_error(
        "--tensor-parallel-size {}: the model's {} KV heads neither divide by it nor divide it",
        size, hp.n_head_kv);
  }
  if (hp.n_ff % size != 0) {
    return make_error("--tensor-parallel-size {}: the feed-forward width {} does not divide by it",
                      size, hp.n_ff);
  }
  p.num_heads = hp.n_head / size;
  p.head_begin = rank * p.num_heads;
  if (hp.n_head_kv % size == 0) {
    p.num_kv_heads = hp.n_head_kv / size;
    p.kv_head_begin = rank * p.num_kv_heads;
  } else {  // replicated: the KV head this rank's query heads read
    p.num_kv_heads = 1;
    p.kv_head_begin = p.head_begin / hp.n_gqa();
  }
  p.ff_size = hp.n_ff / size;
  p.ff_begin = rank * p.ff_size;
  for (int r = 0; r < size; ++r) {
    p.vocab_counts.push_back(hp.n_vocab / size + (r < hp.n_vocab % size ? 1 : 0));
    if (r < rank) p.vocab_begin += p.vocab_counts.back();
  }
  for (const LayerWeights& lw : weights.layers) {
    MOON_TRY(check_column_blocks("attn_output", lw.wo, p.num_heads * hp.head_dim, size));
    MOON_TRY(check_column_blocks("ffn_down", lw.w_down, p.ff_size, size));
  }
  return p;
}

Status shard_model(Model* model, const ShardPlan& p) {
  ModelHparams& hp = model->hparams;
  ModelWeights& w = model->weights;
  const int64_t hd = hp.head_dim;
  const int64_t q0 = p.head_begin * hd, nq = p.num_heads * hd;
  const int64_t kv0 = p.kv_head_begin * hd, nkv = p.num_kv_heads * hd;
  // Every page a slice was read from is dropped once the slices are made (a column slice
  // reads part of every row, so it touches the whole matrix).
  std::vector<WeightView> sources;
  for (LayerWeights& lw : w.layers) {
    sources.insert(sources.end(), {lw.wq, lw.wk, lw.wv, lw.wo, lw.w_gate, lw.w_up, lw.w_down});
    lw.wq = rows(lw.wq, q0, nq, &w);
    lw.wk = rows(lw.wk, kv0, nkv, &w);
    lw.wv = rows(lw.wv, kv0, nkv, &w);
    lw.bq = part(lw.bq, q0, nq);
    lw.bk = part(lw.bk, kv0, nkv);
    lw.bv = part(lw.bv, kv0, nkv);
    lw.wo = columns(lw.wo, q0, nq, &w);
    lw.w_gate = rows(lw.w_gate, p.ff_begin, p.ff_size, &w);
    lw.w_up = rows(lw.w_up, p.ff_begin, p.ff_size, &w);
    lw.w_down = columns(lw.w_down, p.ff_begin, p.ff_size, &w);
  }
  // The embedding table and the output matrix keep the rank's vocabulary rows: a tied
  // model's two are one slice.
  sources.insert(sources.end(), {w.token_embd, w.output});
  const int64_t vocab = p.vocab_counts[p.rank];
  w.token_embd = rows(w.token_embd, p.vocab_begin, vocab, &w);
  w.output = w.output_tied ? w.token_embd : rows(w.output, p.vocab_begin, vocab, &w);
  for (const WeightView& s : sources) {
    model->file->drop_pages(s.data, s.row_bytes * static_cast<size_t>(s.rows));
  }
  hp.n_head = p.num_heads;
  hp.n_head_kv = p.num_kv_heads;
  hp.n_ff = p.ff_size;
  return Status::success();
}

}  // namespace moon
