#include "model/hparams.h"

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

struct ArchName {
  Arch arch;
  const char* name;
};
constexpr ArchName kArchs[] = {{Arch::kLlama, "llama"},   {Arch::kQwen2, "qwen2"},
                               {Arch::kQwen3, "qwen3"},   {Arch::kPhi3, "phi3"},
                               {Arch::kGemma2, "gemma2"}, {Arch::kGemma3, "gemma3"}};

Result<float> positive_float(const gguf::GgufFile& file, const std::string& key, double fallback) {
  MOON_ASSIGN_OR_RETURN(double v, file.get_float_or(key, fallback));
  if (!(v > 0) || !std::isfinite(v)) {
    return make_error("{}: hyperparameter '{}' = {} must be positive", file.name(), key, v);
  }
  return static_cast<float>(v);
}

// Gemma's 27B models scale queries by 1/sqrt(n_embd / n_head) (their query_pre_attn_scalar)
// rather than by the head size; the GGUF carries no key for it, so, as llama.cpp does, the
// model is recognised by its depth.
bool is_gemma_27b(const ModelHparams& hp) {
  return (hp.arch == Arch::kGemma2 && hp.n_layer == 46) ||
         (hp.arch == Arch::kGemma3 && hp.n_layer == 62);
}

// The per-family switches and per-layer attention, once the common keys are read.
Status read_family(const gguf::GgufFile& file, const std::string& p, ModelHparams& hp) {
  hp.rope_neox = hp.arch != Arch::kLlama;
  hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  const LayerAttention global = hp.layers.at(0);  // the RoPE the common keys gave
  hp.layers.assign(static_cast<size_t>(hp.n_layer), global);
  if (hp.arch == Arch::kPhi3 && (file.find_tensor("rope_factors_long.weight") ||
                                 file.find_tensor("rope_factors_short.weight"))) {
    return make_error(
        "{}: this Phi-3 file uses LongRoPE scaling (rope_factors_long/short, the 128k-context "
        "variants), which moon does not support yet",
        file.name());
  }
  // Phi-3 files carry phi3.attention.sliding_window (2047 for Phi-3-mini); llama.cpp
  // ignores it and so does moon, so that the two agree past that length.
  if (hp.arch != Arch::kGemma2 && hp.arch != Arch::kGemma3) return Status::success();

  hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
  hp.ffn_act = FfnActivation::kGeluTanh;
  hp.post_norms = true;
  if (is_gemma_27b(hp)) {
    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_embd / hp.n_head));
  }
  // Local (sliding-window) layers: Gemma 2 alternates, local first; Gemma 3 has five local
  // layers to every global one. Gemma 2's defaults are its published configuration.
  const bool gemma2 = hp.arch == Arch::kGemma2;
  MOON_ASSIGN_OR_RETURN(uint64_t window,
                        file.get_uint_or(p + "attention.sliding_window", gemma2 ? 4096 : 0));
  if (window > static_cast<uint64_t>(1) << 30) {
    return make_error("{}: attention.sliding_window {} is out of range", file.name(), window);
  }
  if (gemma2) {
    MOON_ASSIGN_OR_RETURN(hp.attn_softcap, positive_float(file, p + "attn_logit_softcapping", 50));
    MOON_ASSIGN_OR_RETURN(hp.final_softcap,
                          positive_float(file, p + "final_logit_softcapping", 30));
  } else if (file.find(p + "final_logit_softcapping")) {
    MOON_ASSIGN_OR_RETURN(hp.final_softcap, positive_float(file, p + "final_logit_softcapping", 0));
  }
  if (window == 0) return Status::success();
  // Gemma 3's local layers keep their own RoPE base (10000 unless the file says) and no
  // scaling: the linear factor of long-context files stretches the global layers only.
  LayerAttention local{static_cast<int64_t>(window), global.rope_freq_base, global.rope_freq_scale};
  if (!gemma2) {
    MOON_ASSIGN_OR_RETURN(local.rope_freq_base,
                          positive_float(file, p + "rope.freq_base_swa", 1e4));
    local.rope_freq_scale = 1.0f;
  }
  const int64_t period = gemma2 ? 2 : 6;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    if (l % period < period - 1) hp.layers[l] = local;
  }
  return Status::success();
}

}  // namespace

bool ModelHparams::has_sliding_window() const {
  for (const LayerAttention& l : layers) {
    if (l.window > 0) return true;
  }
  return false;
}

std::string supported_architectures() {
  std::string out;
  for (const ArchName& a : kArchs) out += (out.empty() ? "" : ", ") + std::string(a.name);
  return out;
}

Result<ModelHparams> read_hparams(const gguf::GgufFile& file) {
  ModelHparams hp;
  MOON_ASSIGN_OR_RETURN(std::string_view arch, file.get_string("general.architecture"));
  const ArchName* known = nullptr;
  for (const ArchName& a : kArchs) {
    if (arch == a.name) known = &a;
  }
  if (known == nullptr) {
    return make_error("{}: architecture '{}' is not supported (moon runs: {})", file.name(), arch,
                      supported_architectures());
  }
  hp.arch = known->arch;
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
  float rope_freq_base = static_cast<float>(base);
  float rope_freq_scale = 1.0f;
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
    rope_freq_scale = static_cast<float>(1.0 / factor);
  }
  hp.layers.assign(1, LayerAttention{0, rope_freq_base, rope_freq_scale});

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
  MOON_TRY(read_family(file, p, hp));
  return hp;
}

}  // namespace moon
