#include "model/weights.h"

#include <cstring>
#include <memory>
#include <string>

#include "tensor/convert.h"

namespace moon {
namespace {

std::string supported_matrix_types() {
  std::string out;
  for (uint32_t id = 0; id < 64; ++id) {
    const DTypeTraits* t = dtype_traits(id);
    if (t && t->supported) out += (out.empty() ? "" : ", ") + std::string(t->name);
  }
  return out;
}

Result<const gguf::TensorInfo*> find_shaped(const gguf::GgufFile& file, const std::string& name,
                                            std::initializer_list<int64_t> shape) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (!t) return make_error("{}: required tensor '{}' is missing", file.name(), name);
  std::string want, got;
  bool match = t->n_dims == static_cast<int>(shape.size());
  int d = 0;
  for (int64_t n : shape) {
    want += (d ? " x " : "") + std::to_string(n);
    match = match && t->ne[d] == static_cast<uint64_t>(n);
    ++d;
  }
  for (int i = 0; i < t->n_dims; ++i) got += (i ? " x " : "") + std::to_string(t->ne[i]);
  if (!match) {
    return make_error("{}: tensor '{}' has shape [{}] but the hyperparameters need [{}]",
                      file.name(), name, got, want);
  }
  return t;
}

// The kernels read 2- and 4-byte fields in place, so a matrix must sit at an address
// aligned for them. Files aligned to 32 (all converters' default) always are; otherwise the
// matrix is copied once into memory that is.
const uint8_t* aligned_data(const gguf::TensorInfo& t, ModelWeights& w) {
  const size_t need = t.type == DType::F32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(t.data) % need == 0) return t.data;
  auto copy = std::make_unique<uint64_t[]>((t.n_bytes + 7) / 8);
  std::memcpy(copy.get(), t.data, t.n_bytes);
  w.realigned.push_back(std::move(copy));
  return reinterpret_cast<const uint8_t*>(w.realigned.back().get());
}

Result<WeightView> matrix(const gguf::GgufFile& file, const std::string& name, int64_t cols,
                          int64_t rows, ModelWeights& w) {
  MOON_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find_shaped(file, name, {cols, rows}));
  const DTypeTraits& traits = dtype_traits(t->type);
  if (!traits.supported) {
    return make_error(
        "{}: tensor '{}' has type {}, which moon cannot compute with yet "
        "(supported: {})",
        file.name(), name, traits.name, supported_matrix_types());
  }
  return make_weight_view(t->type, aligned_data(*t, w), rows, cols);
}

Result<std::vector<float>> vector_f32(const gguf::GgufFile& file, const std::string& name,
                                      int64_t n) {
  MOON_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find_shaped(file, name, {n}));
  if (t->type != DType::F32 && t->type != DType::F16 && t->type != DType::BF16) {
    return make_error("{}: norm tensor '{}' has type {} (expected F32, F16 or BF16)", file.name(),
                      name, dtype_name(t->type));
  }
  std::vector<float> out(static_cast<size_t>(n));
  std::memcpy(out.data(), t->data, t->n_bytes);  // aligned staging: the file's may be odd
  if (t->type != DType::F32) {
    const std::vector<float> raw = out;
    dequantize_row(t->type, raw.data(), out.data(), n);
  }
  return out;
}

// rows [first, first + count) of w.
WeightView row_range(const WeightView& w, int64_t first, int64_t count) {
  WeightView out = w;
  out.data = w.row(first);
  out.rows = count;
  return out;
}

// An optional vector: empty when the file lacks it.
Result<std::vector<float>> optional_vector(const gguf::GgufFile& file, const std::string& name,
                                           int64_t n) {
  if (!file.find_tensor(name)) return std::vector<float>{};
  return vector_f32(file, name, n);
}

Status read_attention(const gguf::GgufFile& file, const ModelHparams& hp, const std::string& p,
                      ModelWeights& w, LayerWeights& layer) {
  const int64_t q = hp.n_embd_q(), kv = hp.n_embd_kv();
  if (file.find_tensor(p + "attn_qkv.weight")) {  // fused, rows Q then K then V (Phi-3)
    MOON_ASSIGN_OR_RETURN(WeightView qkv,
                          matrix(file, p + "attn_qkv.weight", hp.n_embd, q + 2 * kv, w));
    layer.wq = row_range(qkv, 0, q);
    layer.wk = row_range(qkv, q, kv);
    layer.wv = row_range(qkv, q + kv, kv);
  } else {
    MOON_ASSIGN_OR_RETURN(layer.wq, matrix(file, p + "attn_q.weight", hp.n_embd, q, w));
    MOON_ASSIGN_OR_RETURN(layer.wk, matrix(file, p + "attn_k.weight", hp.n_embd, kv, w));
    MOON_ASSIGN_OR_RETURN(layer.wv, matrix(file, p + "attn_v.weight", hp.n_embd, kv, w));
  }
  MOON_ASSIGN_OR_RETURN(layer.bq, optional_vector(file, p + "attn_q.bias", q));
  MOON_ASSIGN_OR_RETURN(layer.bk, optional_vector(file, p + "attn_k.bias", kv));
  MOON_ASSIGN_OR_RETURN(layer.bv, optional_vector(file, p + "attn_v.bias", kv));
  if (file.find_tensor(p + "attn_qkv.bias") || file.find_tensor(p + "attn_output.bias")) {
    return make_error(
        "{}: tensor '{}attn_qkv.bias' or '{}attn_output.bias': biases there are not "
        "supported",
        file.name(), p, p);
  }
  MOON_ASSIGN_OR_RETURN(layer.q_norm, optional_vector(file, p + "attn_q_norm.weight", hp.head_dim));
  MOON_ASSIGN_OR_RETURN(layer.k_norm, optional_vector(file, p + "attn_k_norm.weight", hp.head_dim));
  if (layer.q_norm.empty() != layer.k_norm.empty()) {
    return make_error("{}: layer '{}' has only one of attn_q_norm and attn_k_norm", file.name(), p);
  }
  MOON_ASSIGN_OR_RETURN(layer.wo, matrix(file, p + "attn_output.weight", q, hp.n_embd, w));
  return Status::success();
}

Status read_ffn(const gguf::GgufFile& file, const ModelHparams& hp, const std::string& p,
                ModelWeights& w, LayerWeights& layer) {
  if (file.find_tensor(p + "ffn_gate.weight")) {
    MOON_ASSIGN_OR_RETURN(layer.w_gate, matrix(file, p + "ffn_gate.weight", hp.n_embd, hp.n_ff, w));
    MOON_ASSIGN_OR_RETURN(layer.w_up, matrix(file, p + "ffn_up.weight", hp.n_embd, hp.n_ff, w));
  } else {  // gate and up fused in ffn_up, gate first (Phi-3)
    MOON_ASSIGN_OR_RETURN(WeightView up,
                          matrix(file, p + "ffn_up.weight", hp.n_embd, 2 * hp.n_ff, w));
    layer.w_gate = row_range(up, 0, hp.n_ff);
    layer.w_up = row_range(up, hp.n_ff, hp.n_ff);
  }
  MOON_ASSIGN_OR_RETURN(layer.w_down, matrix(file, p + "ffn_down.weight", hp.n_ff, hp.n_embd, w));
  return Status::success();
}

}  // namespace

Result<ModelWeights> read_weights(const gguf::GgufFile& file, const ModelHparams& hp) {
  ModelWeights w;
  MOON_ASSIGN_OR_RETURN(w.token_embd, matrix(file, "token_embd.weight", hp.n_embd, hp.n_vocab, w));
  MOON_ASSIGN_OR_RETURN(w.output_norm, vector_f32(file, "output_norm.weight", hp.n_embd));
  if (file.find_tensor("output.weight")) {
    MOON_ASSIGN_OR_RETURN(w.output, matrix(file, "output.weight", hp.n_embd, hp.n_vocab, w));
  } else {
    w.output = w.token_embd;
    w.output_tied = true;
  }
  if (file.find_tensor("rope_freqs.weight")) {
    MOON_ASSIGN_OR_RETURN(w.rope_freqs, vector_f32(file, "rope_freqs.weight", hp.n_rot / 2));
  }
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights layer;
    MOON_ASSIGN_OR_RETURN(layer.attn_norm, vector_f32(file, p + "attn_norm.weight", hp.n_embd));
    MOON_TRY(read_attention(file, hp, p, w, layer));
    MOON_ASSIGN_OR_RETURN(layer.ffn_norm, vector_f32(file, p + "ffn_norm.weight", hp.n_embd));
    MOON_TRY(read_ffn(file, hp, p, w, layer));
    if (hp.post_norms) {
      MOON_ASSIGN_OR_RETURN(layer.post_attention_norm,
                            vector_f32(file, p + "post_attention_norm.weight", hp.n_embd));
      MOON_ASSIGN_OR_RETURN(layer.post_ffw_norm,
                            vector_f32(file, p + "post_ffw_norm.weight", hp.n_embd));
    }
    w.layers.push_back(std::move(layer));
  }
  return w;
}

}  // namespace moon
