#include "model/llama_hparams.h"

#include <cmath>

namespace moon {
namespace {

Result<int64_t> positive(const gguf::GgufFile& file, const std::string& key, int64_t limit) {
  MOON_ASSIGN_OR_RETURN(uint64_t v, file.get_uint(key));
  if (v == 0 || v > static_cast<uint64_t>(limit)) {
    return make_error("{}: hyperparameter '{}' = {} is out of range (1..{})", file.name(), key, v,
                      limit);
  }
  return static_cast<int64_t>(v);
}

}  // namespace

Result<LlamaHparams> read_llama_hparams(const gguf::GgufFile& file) {
  LlamaHparams hp;
  MOON_ASSIGN_OR_RETURN(std::string_view arch, file.get_string("general.architecture"));
  if (arch != "llama") {
    return make_error(
        "{}: architecture '{}' is not supported (moon runs Llama-architecture models)", file.name(),
        arch);
  }
  hp.architecture = std::string(arch);
  if (const gguf::Value* name = file.find("general.name"); name && name->as_string()) {
    hp.name = std::string(*name->as_string());
  }
  const std::string p = hp.architecture + ".";
  constexpr int64_t kMaxDim = 1 << 20;
  MOON_ASSIGN_OR_RETURN(hp.n_embd, positive(file, p + "embedding_length", kMaxDim));
  MOON_ASSIGN_OR_RETURN(hp.n_ff, positive(file, p + "feed_forward_length", kMaxDim));
  MOON_ASSIGN_OR_RETURN(hp.n_layer, positive(file, p + "block_count", 4096));
  MOON_ASSIGN_OR_RETURN(hp.n_head, positive(file, p + "attention.head_count", 4096));
  MOON_ASSIGN_OR_RETURN(hp.n_ctx_train, positive(file, p + "context_length", 1 << 24));
  if (file.find(p + "attention.head_count_kv")) {
    MOON_ASSIGN_OR_RETURN(hp.n_head_kv, positive(file, p + "attention.head_count_kv", 4096));
  } else {
    hp.n_head_kv = hp.n_head;
  }
  if (hp.n_head % hp.n_head_kv != 0) {
    return make_error("{}: {} query heads cannot be grouped over {} KV heads", file.name(),
                      hp.n_head, hp.n_head_kv);
  }
  if (file.find(p + "attention.key_length")) {
    MOON_ASSIGN_OR_RETURN(hp.head_dim, positive(file, p + "attention.key_length", kMaxDim));
  } else {
    if (hp.n_embd % hp.n_head != 0) {
      return make_error("{}: embedding length {} is not a multiple of the head count {}",
                        file.name(), hp.n_embd, hp.n_head);
    }
    hp.head_dim = hp.n_embd / hp.n_head;
  }
  if (file.find(p + "attention.value_length")) {
    MOON_ASSIGN_OR_RETURN(int64_t v_len, positive(file, p + "attention.value_length", kMaxDim));
    if (v_len != hp.head_dim) {
      return make_error("{}: value head size {} differs from key head size {}", file.name(), v_len,
                        hp.head_dim);
    }
  }
  MOON_ASSIGN_OR_RETURN(uint64_t n_rot, file.get_uint_or(p + "rope.dimension_count",
                                                         static_cast<uint64_t>(hp.head_dim)));
  if (n_rot == 0 || n_rot > static_cast<uint64_t>(hp.head_dim) || n_rot % 2 != 0) {
    return make_error("{}: rope.dimension_count {} must be even and at most the head size {}",
                      file.name(), n_rot, hp.head_dim);
  }
  hp.n_rot = static_cast<int64_t>(n_rot);

  MOON_ASSIGN_OR_RETURN(double base, file.get_float_or(p + "rope.freq_base", 10000.0));
  MOON_ASSIGN_OR_RETURN(double eps,
                        file.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(base > 0) || !std::isfinite(base)) {
    return make_error("{}: rope.freq_base {} must be positive", file.name(), base);
  }
  if (!(eps > 0) || !(eps < 1)) {
    return make_error("{}: layer_norm_rms_epsilon {} must be in (0, 1)", file.name(), eps);
  }
  hp.rope_freq_base = static_cast<float>(base);
  hp.rms_eps = static_cast<float>(eps);

  // Linear RoPE scaling stretches positions: pos / factor. As in llama.cpp, a factor with no
  // scaling type (or type "none") is applied linearly too.
  std::string scaling;
  if (const gguf::Value* v = file.find(p + "rope.scaling.type"); v && v->as_string()) {
    scaling = std::string(*v->as_string());
  }
  MOON_ASSIGN_OR_RETURN(double factor, file.get_float_or(p + "rope.scaling.factor", 0.0));
  if (file.find(p + "rope.scale_linear")) {  // older key for the same thing
    MOON_ASSIGN_OR_RETURN(factor, file.get_float(p + "rope.scale_linear"));
    scaling = "linear";
  }
  if (!scaling.empty() && scaling != "none" && scaling != "linear") {
    return make_error("{}: RoPE scaling type '{}' is not supported (none and linear are)",
                      file.name(), scaling);
  }
  if (factor != 0.0) {
    if (!(factor > 0) || !std::isfinite(factor)) {
      return make_error("{}: rope scaling factor {} must be positive", file.name(), factor);
    }
    hp.rope_freq_scale = static_cast<float>(1.0 / factor);
  }

  if (file.find(p + "vocab_size")) {
    MOON_ASSIGN_OR_RETURN(hp.n_vocab, positive(file, p + "vocab_size", 1 << 24));
  } else if (const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
             tokens && tokens->array() && tokens->array_size() > 0) {
    hp.n_vocab = static_cast<int64_t>(tokens->array_size());
  } else {
    return make_error(
        "{}: the vocabulary size is unknown (no {}vocab_size and no tokenizer.ggml.tokens)",
        file.name(), p);
  }
  return hp;
}

}  // namespace moon
