#include "model/model_test_util.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <unordered_set>

#include "kernels/cpu/matmul.h"
#include "model/llama_forward.h"
#include "reference/reference_forward.h"
#include "tensor/convert.h"
#include "util/thread_pool.h"

namespace moon::test {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float SplitMix64::uniform(float scale) {
  const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
  return static_cast<float>((2.0 * u - 1.0) * scale);
}

std::vector<uint8_t> encode_rows(DType type, const std::vector<float>& values, int64_t cols) {
  const size_t row_bytes = dtype_row_bytes(type, static_cast<size_t>(cols));
  const auto rows = static_cast<int64_t>(values.size()) / cols;
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, &values[r * cols], out.data() + r * row_bytes, cols);
  }
  return out;
}

Status add_random_llama(gguf::GgufWriter& w, const RandomLlamaSpec& s) {
  const std::string p = "llama.";
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", s.name);
  w.add_uint32(p + "context_length", static_cast<uint32_t>(s.n_ctx));
  w.add_uint32(p + "embedding_length", static_cast<uint32_t>(s.n_embd));
  w.add_uint32(p + "block_count", static_cast<uint32_t>(s.n_layer));
  w.add_uint32(p + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.add_uint32(p + "attention.head_count", static_cast<uint32_t>(s.n_head));
  if (s.write_head_count_kv) {
    w.add_uint32(p + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  }
  if (s.key_length) w.add_uint32(p + "attention.key_length", static_cast<uint32_t>(*s.key_length));
  if (s.value_length) {
    w.add_uint32(p + "attention.value_length", static_cast<uint32_t>(*s.value_length));
  }
  if (s.rope_dims) w.add_uint32(p + "rope.dimension_count", static_cast<uint32_t>(*s.rope_dims));
  if (s.freq_base) w.add_float32(p + "rope.freq_base", *s.freq_base);
  if (s.rope_scaling_type) w.add_string(p + "rope.scaling.type", *s.rope_scaling_type);
  if (s.rope_scaling_factor) w.add_float32(p + "rope.scaling.factor", *s.rope_scaling_factor);
  if (s.rms_eps) w.add_float32(p + "attention.layer_norm_rms_epsilon", *s.rms_eps);
  if (s.write_vocab_size) w.add_uint32(p + "vocab_size", static_cast<uint32_t>(s.n_vocab));

  SplitMix64 rng(s.seed);
  const uint64_t embd = s.n_embd, hd = s.head_dim(), ff = s.n_ff, vocab = s.n_vocab;
  const uint64_t q_dim = s.n_head * hd, kv_dim = s.n_head_kv * hd;
  auto matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) {
    std::vector<float> v(cols * rows);
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols));
    for (float& x : v) x = rng.uniform(scale);
    const DType type =
        cols % dtype_traits(s.matrix_type).block_size == 0 ? s.matrix_type : DType::F16;
    return w.add_tensor(name, {cols, rows}, type, encode_rows(type, v, cols));
  };
  // Norm weights near 1 but not all 1, so that a mixed-up norm shows.
  auto norm = [&](const std::string& name) {
    std::vector<float> v(embd);
    for (float& x : v) x = 1.0f + rng.uniform(0.25f);
    return w.add_tensor(name, {embd}, DType::F32, encode_rows(DType::F32, v, embd));
  };
  MOON_TRY(matrix("token_embd.weight", embd, vocab));
  MOON_TRY(norm("output_norm.weight"));
  if (!s.tied_output) MOON_TRY(matrix("output.weight", embd, vocab));
  if (!s.rope_freqs.empty()) {
    const uint64_t n = s.rope_freqs.size();
    MOON_TRY(w.add_tensor("rope_freqs.weight", {n}, DType::F32,
                          encode_rows(DType::F32, s.rope_freqs, static_cast<int64_t>(n))));
  }
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    MOON_TRY(norm(b + "attn_norm.weight"));
    MOON_TRY(matrix(b + "attn_q.weight", embd, q_dim));
    MOON_TRY(matrix(b + "attn_k.weight", embd, kv_dim));
    MOON_TRY(matrix(b + "attn_v.weight", embd, kv_dim));
    MOON_TRY(matrix(b + "attn_output.weight", q_dim, embd));
    MOON_TRY(norm(b + "ffn_norm.weight"));
    MOON_TRY(matrix(b + "ffn_gate.weight", embd, ff));
    MOON_TRY(matrix(b + "ffn_up.weight", embd, ff));
    MOON_TRY(matrix(b + "ffn_down.weight", ff, embd));
  }
  return Status::success();
}

Result<std::unique_ptr<Model>> load_from_writer(const gguf::GgufWriter& w,
                                                const std::string& name) {
  MOON_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::from_bytes(w.serialize(), name));
  return make_model(std::move(file));
}

Status copy_metadata(gguf::GgufWriter& w, const gguf::GgufFile& src,
                     const std::function<bool(const std::string&)>& keep) {
  using gguf::ValueType;
  for (const auto& [key, v] : src.metadata()) {
    if (keep && !keep(key)) continue;
    switch (v.type()) {
      case ValueType::UInt32:
        w.add_uint32(key, static_cast<uint32_t>(*v.as_uint()));
        break;
      case ValueType::Int32:
        w.add_int32(key, static_cast<int32_t>(*v.as_int()));
        break;
      case ValueType::UInt64:
        w.add_uint64(key, *v.as_uint());
        break;
      case ValueType::Float32:
        w.add_float32(key, static_cast<float>(*v.as_float()));
        break;
      case ValueType::Bool:
        w.add_bool(key, *v.as_bool());
        break;
      case ValueType::String:
        w.add_string(key, std::string(*v.as_string()));
        break;
      case ValueType::Array: {
        const gguf::Value::Array& a = *v.array();
        if (a.element_type == ValueType::String) {
          w.add_string_array(key, std::vector<std::string>(a.strings.begin(), a.strings.end()));
        } else if (a.element_type == ValueType::Float32) {
          w.add_float32_array(key, std::vector<float>(a.floats.begin(), a.floats.end()));
        } else if (a.element_type == ValueType::Int32) {
          w.add_int32_array(key, std::vector<int32_t>(a.ints.begin(), a.ints.end()));
        } else {
          return make_error("copy_metadata: {} has an array type the writer cannot write", key);
        }
        break;
      }
      default:
        return make_error("copy_metadata: {} has a type the writer cannot write", key);
    }
  }
  return Status::success();
}

namespace {

Result<std::vector<uint8_t>> convert_once(const gguf::GgufFile& src, const ConvertOptions& o,
                                          const std::string& pad_name) {
  gguf::GgufWriter w;
  if (o.misalign > 0) w.set_alignment(o.misalign);
  MOON_TRY(copy_metadata(w, src, [](const std::string& k) { return k != "general.alignment"; }));
  if (o.misalign > 0) {
    MOON_TRY(w.add_tensor(pad_name, {o.misalign}, DType::I8, std::vector<uint8_t>(o.misalign)));
  }
  for (const gguf::TensorInfo& t : src.tensors()) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    if (t.n_dims != 2) {
      MOON_TRY(w.add_tensor(t.name, ne, t.type, std::vector<uint8_t>(t.data, t.data + t.n_bytes)));
      continue;
    }
    const auto cols = static_cast<int64_t>(t.ne[0]);
    std::vector<float> values(t.n_elements);
    const size_t row_bytes = t.n_bytes / t.n_rows();
    for (uint64_t r = 0; r < t.n_rows(); ++r) {
      dequantize_row(t.type, t.data + r * row_bytes, &values[r * cols], cols);
    }
    const DType type = cols % dtype_traits(o.type).block_size == 0 ? o.type : o.fallback;
    MOON_TRY(w.add_tensor(t.name, ne, type, encode_rows(type, values, cols)));
  }
  return w.serialize();
}

}  // namespace

Result<std::vector<uint8_t>> convert_gguf(const gguf::GgufFile& src, const ConvertOptions& o) {
  if (o.misalign == 0) return convert_once(src, o, "");
  // Heap buffers are at least 8-aligned, so an address modulo 4 is the file position modulo 4,
  // which the header's length decides: lengthening the pad tensor's name shifts it.
  std::string pad = "moon.test.pad";
  for (int attempt = 0; attempt < 8; ++attempt, pad += '_') {
    MOON_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, convert_once(src, o, pad));
    MOON_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::from_bytes(bytes, "probe"));
    bool all_misaligned = true;
    for (const gguf::TensorInfo& t : file->tensors()) {
      const auto address = reinterpret_cast<uintptr_t>(t.data);
      if (t.name != pad) all_misaligned &= address % (2 * o.misalign) == o.misalign;
    }
    if (all_misaligned) return bytes;
  }
  return make_error("convert_gguf: could not misalign every tensor by {}", o.misalign);
}

std::vector<int32_t> random_prompt(uint32_t seed, int64_t n_vocab, int64_t length) {
  SplitMix64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(n_vocab));
  return ids;
}

std::vector<std::vector<float>> reference_logits(const Model& model,
                                                 const std::vector<int32_t>& prompt) {
  reference::ReferenceForward ref(model);
  return ref.forward_all(prompt);
}

float max_abs_diff(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  float m = 0.0f;
  for (size_t p = 0; p < std::min(a.size(), b.size()); ++p) {
    for (size_t i = 0; i < std::min(a[p].size(), b[p].size()); ++i) {
      m = std::max(m, std::fabs(a[p][i] - b[p][i]));
    }
  }
  return m;
}

void expect_engine_matches_reference(const Model& model, int threads, uint32_t seed, int trials,
                                     int64_t max_len, float tol) {
  SplitMix64 rng(seed);
  const int64_t n_vocab = model.hparams.n_vocab;
  ThreadPool pool(threads);
  LogitsComparison comparison(model, tol);
  for (int trial = 0; trial < trials; ++trial) {
    const auto len = static_cast<int64_t>(1 + rng.next() % static_cast<uint64_t>(max_len));
    const auto prompt = random_prompt(static_cast<uint32_t>(rng.next()), n_vocab, len);
    const auto want = reference_logits(model, prompt);
    // An internal batch of 8 with chunks of up to 17 tokens: chunks both within one batch and
    // spanning several.
    LlamaForward engine(model, max_len, &pool, /*max_batch=*/8);
    std::vector<float> got(prompt.size() * n_vocab);
    size_t pos = 0;
    while (pos < prompt.size()) {
      const size_t n = std::min<size_t>(prompt.size() - pos, 1 + rng.next() % 17);
      const Status s = engine.forward(std::span(prompt).subspan(pos, n), static_cast<int64_t>(pos),
                                      &got[pos * n_vocab], /*all_logits=*/true);
      ASSERT_TRUE(s.ok()) << s.error().message;
      pos += n;
    }
    for (size_t p = 0; p < prompt.size(); ++p) {
      comparison.add(
          &got[p * n_vocab], want[p],
          fmt::format("threads {}, trial {}, position {} of {}", threads, trial, p, prompt.size()));
    }
  }
}

LogitsComparison::LogitsComparison(const Model& model, float tol) : tol_(tol) {
  const auto int8 = [](const WeightView& w) { return kernels::uses_int8_path(w.type); };
  int8_ = int8(model.weights.output);
  for (const LayerWeights& l : model.weights.layers) {
    int8_ = int8_ || int8(l.wq) || int8(l.wk) || int8(l.wv) || int8(l.wo) || int8(l.w_gate) ||
            int8(l.w_up) || int8(l.w_down);
  }
}

void LogitsComparison::add(const float* got, const std::vector<float>& want,
                           const std::string& where) {
  float diff = 0.0f;
  for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
  ++positions_;
  within_tol_ += diff <= tol_;
  EXPECT_LE(diff, int8_ ? kInt8FlipBound : tol_) << where;
}

LogitsComparison::~LogitsComparison() {
  if (int8_) {
    EXPECT_GE(2 * within_tol_, positions_)
        << within_tol_ << " of " << positions_ << " positions within " << tol_;
  }
}

Result<SmallVocab> SmallVocab::from(const gguf::GgufFile& vocab, int64_t n,
                                    const std::vector<std::string>& also_keep) {
  SmallVocab v;
  v.src_ = &vocab;
  const gguf::Value* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || !tokens->array() || tokens->array_size() < static_cast<size_t>(n)) {
    return make_error("{}: fewer than {} tokens", vocab.name(), n);
  }
  const auto& all = tokens->array()->strings;
  v.tokens_.assign(all.begin(), all.begin() + n);
  const gguf::Value* scores = vocab.find("tokenizer.ggml.scores");
  const gguf::Value* types = vocab.find("tokenizer.ggml.token_type");
  auto take = [&](size_t id) {
    if (scores) v.scores_.push_back(static_cast<float>(scores->array()->floats.at(id)));
    if (types) v.types_.push_back(static_cast<int32_t>(types->array()->ints.at(id)));
  };
  for (int64_t id = 0; id < n; ++id) take(static_cast<size_t>(id));
  for (const std::string& text : also_keep) {
    const auto it = std::find(all.begin() + n, all.end(), text);
    if (it == all.end())
      return make_error("{}: no token '{}' beyond the first {}", vocab.name(), text, n);
    v.tokens_.emplace_back(*it);
    take(static_cast<size_t>(it - all.begin()));
  }
  std::map<uint64_t, uint32_t> appended;  // old id -> new id, for ids shared by several keys
  for (const auto& [key, value] : vocab.metadata()) {
    if (!key.starts_with("tokenizer.ggml.") || !key.ends_with("_token_id")) continue;
    const std::optional<uint64_t> id = value.as_uint();
    if (!id || *id >= all.size()) continue;  // "none" (-1) or broken: leave it out
    uint32_t new_id = static_cast<uint32_t>(*id);
    if (*id >= static_cast<uint64_t>(n)) {
      auto [it, inserted] = appended.emplace(*id, static_cast<uint32_t>(v.tokens_.size()));
      if (inserted) {
        v.tokens_.emplace_back(all[*id]);
        take(*id);
      }
      new_id = it->second;
    }
    v.ids_.emplace_back(key, new_id);
  }
  if (const gguf::Value* merges = vocab.find("tokenizer.ggml.merges")) {
    std::unordered_set<std::string> kept(v.tokens_.begin(), v.tokens_.end());
    for (std::string_view m : merges->array()->strings) {
      const size_t space = m.find(' ');
      if (space == std::string_view::npos) continue;
      const std::string left(m.substr(0, space)), right(m.substr(space + 1));
      if (kept.contains(left) && kept.contains(right) && kept.contains(left + right)) {
        v.merges_.emplace_back(m);
      }
    }
  }
  return v;
}

void SmallVocab::write(gguf::GgufWriter& w) const {
  for (const char* key :
       {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template"}) {
    if (const gguf::Value* v = src_->find(key); v && v->as_string()) {
      w.add_string(key, std::string(*v->as_string()));
    }
  }
  w.add_string_array("tokenizer.ggml.tokens", tokens_);
  if (!scores_.empty()) w.add_float32_array("tokenizer.ggml.scores", scores_);
  if (!types_.empty()) w.add_int32_array("tokenizer.ggml.token_type", types_);
  if (!merges_.empty()) w.add_string_array("tokenizer.ggml.merges", merges_);
  for (const auto& [key, id] : ids_) w.add_uint32(key, id);
  for (const auto& [key, value] : src_->metadata()) {
    if (key.starts_with("tokenizer.ggml.add_") && value.as_bool())
      w.add_bool(key, *value.as_bool());
  }
}

}  // namespace moon::test
