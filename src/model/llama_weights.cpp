#include "model/llama_weights.h"

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

Result<WeightView> matrix(const gguf::GgufFile& file, const std::string& name, int64_t cols,
                          int64_t rows) {
  MOON_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find_shaped(file, name, {cols, rows}));
  const DTypeTraits& traits = dtype_traits(t->type);
  if (!traits.supported) {
    return make_error(
        "{}: tensor '{}' has type {}, which moon cannot compute with yet "
        "(supported: {})",
        file.name(), name, traits.name, supported_matrix_types());
  }
  return make_weight_view(t->type, t->data, rows, cols);
}

Result<std::vector<float>> vector_f32(const gguf::GgufFile& file, const std::string& name,
                                      int64_t n) {
  MOON_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find_shaped(file, name, {n}));
  if (t->type != DType::F32 && t->type != DType::F16 && t->type != DType::BF16) {
    return make_error("{}: norm tensor '{}' has type {} (expected F32, F16 or BF16)", file.name(),
                      name, dtype_name(t->type));
  }
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t->type, t->data, out.data(), n);
  return out;
}

}  // namespace

Result<LlamaWeights> read_llama_weights(const gguf::GgufFile& file, const LlamaHparams& hp) {
  LlamaWeights w;
  MOON_ASSIGN_OR_RETURN(w.token_embd, matrix(file, "token_embd.weight", hp.n_embd, hp.n_vocab));
  MOON_ASSIGN_OR_RETURN(w.output_norm, vector_f32(file, "output_norm.weight", hp.n_embd));
  if (file.find_tensor("output.weight")) {
    MOON_ASSIGN_OR_RETURN(w.output, matrix(file, "output.weight", hp.n_embd, hp.n_vocab));
  } else {
    w.output = w.token_embd;
    w.output_tied = true;
  }
  if (file.find_tensor("rope_freqs.weight")) {
    MOON_ASSIGN_OR_RETURN(w.rope_freqs, vector_f32(file, "rope_freqs.weight", hp.n_rot / 2));
  }
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayerWeights layer;
    MOON_ASSIGN_OR_RETURN(layer.attn_norm, vector_f32(file, p + "attn_norm.weight", hp.n_embd));
    MOON_ASSIGN_OR_RETURN(layer.wq, matrix(file, p + "attn_q.weight", hp.n_embd, hp.n_embd_q()));
    MOON_ASSIGN_OR_RETURN(layer.wk, matrix(file, p + "attn_k.weight", hp.n_embd, hp.n_embd_kv()));
    MOON_ASSIGN_OR_RETURN(layer.wv, matrix(file, p + "attn_v.weight", hp.n_embd, hp.n_embd_kv()));
    MOON_ASSIGN_OR_RETURN(layer.wo,
                          matrix(file, p + "attn_output.weight", hp.n_embd_q(), hp.n_embd));
    MOON_ASSIGN_OR_RETURN(layer.ffn_norm, vector_f32(file, p + "ffn_norm.weight", hp.n_embd));
    MOON_ASSIGN_OR_RETURN(layer.w_gate, matrix(file, p + "ffn_gate.weight", hp.n_embd, hp.n_ff));
    MOON_ASSIGN_OR_RETURN(layer.w_up, matrix(file, p + "ffn_up.weight", hp.n_embd, hp.n_ff));
    MOON_ASSIGN_OR_RETURN(layer.w_down, matrix(file, p + "ffn_down.weight", hp.n_ff, hp.n_embd));
    w.layers.push_back(std::move(layer));
  }
  return w;
}

}  // namespace moon
