// Building small Llama GGUF files in memory (random weights, metadata in the style of a real
// model family, or an existing file converted to another dtype) and checking the engine
// forward against the reference forward on them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "tensor/dtype.h"
#include "util/result.h"

namespace moon::test {

// splitmix64: fully specified, so a seed gives the same weights with every standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  float uniform(float scale);  // in [-scale, scale)

 private:
  uint64_t state_;
};

// Rows of `cols` fp32 values, stored as `type` (quantize_row per row).
std::vector<uint8_t> encode_rows(DType type, const std::vector<float>& values, int64_t cols);

// A randomly initialised Llama model. Optional fields are written to the metadata only when
// set, so a spec also says which keys a family's files carry.
struct RandomLlamaSpec {
  std::string name = "random llama";
  int64_t n_vocab = 128;
  int64_t n_embd = 64;
  int64_t n_ff = 160;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 4;
  int64_t n_ctx = 256;
  bool write_head_count_kv = true;
  std::optional<int64_t> key_length;    // llama.attention.key_length (head size)
  std::optional<int64_t> value_length;  // llama.attention.value_length
  std::optional<int64_t> rope_dims;     // llama.rope.dimension_count
  std::optional<float> freq_base;       // llama.rope.freq_base
  std::optional<std::string> rope_scaling_type;
  std::optional<float> rope_scaling_factor;
  std::optional<float> rms_eps = 1e-5f;
  bool write_vocab_size = true;
  bool tied_output = false;        // no output.weight: the embedding doubles as the output
  std::vector<float> rope_freqs;   // rope_freqs.weight [n_rot / 2] when non-empty
  DType matrix_type = DType::F32;  // of every 2-D tensor whose rows are whole blocks
  uint64_t seed = 1;

  int64_t head_dim() const { return key_length.value_or(n_embd / n_head); }
};

// Writes the spec's general.* / llama.* metadata and tensors. Weights are U(-1/sqrt(fan_in),
// +1/sqrt(fan_in)) like a trained model's init, norms around 1. Callers may add more metadata
// afterwards (a vocabulary, say): the writer keeps metadata and tensors apart.
Status add_random_llama(gguf::GgufWriter& w, const RandomLlamaSpec& spec);

// Serializes `w` and loads it as a model (from memory, as tests of built files do).
Result<std::unique_ptr<Model>> load_from_writer(const gguf::GgufWriter& w, const std::string& name);

// Copies `src`'s metadata through the writer's typed adders, in order, skipping keys for
// which `keep` returns false. Fails on value types the writer cannot write.
Status copy_metadata(gguf::GgufWriter& w, const gguf::GgufFile& src,
                     const std::function<bool(const std::string&)>& keep = nullptr);

// `src` with every 2-D tensor whose rows are whole blocks of `type` converted to it; other
// matrices become `fallback` (F16 for stories260K's 172-wide ffn_down), vectors stay.
// `misalign` k (1 or 2) writes the file with alignment k and a k-byte tensor first, so that
// every other tensor's data starts at an address that is k modulo 2k: odd, or 2-aligned but
// not 4-aligned. A test that nothing assumes weights more aligned than their elements.
struct ConvertOptions {
  DType type = DType::F16;
  DType fallback = DType::F16;
  uint32_t misalign = 0;
};
Result<std::vector<uint8_t>> convert_gguf(const gguf::GgufFile& src, const ConvertOptions& opts);

// Compares the engine's logits with the reference's, position by position; checks the
// whole set when destroyed.
//
// On the fp32 path every position must be within `tol`. On the int8 path (a model with Q8_0
// or Q4_0 matrices) the reference rounds activations through Q8_0 blocks as the engine does,
// and most positions agree as closely; but an activation sitting on a rounding boundary of
// its block can land on either side after a last-bit difference upstream, which moves that
// position's logits by up to a few tenths (measured on stories260K: at most 0.2, and 74% to
// 100% of positions within 1e-4). So there at least half the positions must be within `tol`
// and every one within kInt8FlipBound. An int8 path that did not round activations as the
// reference does misses at nearly every position (one Q8_0 matrix alone moves outputs by
// about 0.03).
class LogitsComparison {
 public:
  static constexpr float kInt8FlipBound = 0.5f;

  LogitsComparison(const Model& model, float tol);
  ~LogitsComparison();

  // One position: got [n_vocab] against want; `where` names it in failures.
  void add(const float* got, const std::vector<float>& want, const std::string& where);

 private:
  bool int8_;
  float tol_;
  int positions_ = 0;
  int within_tol_ = 0;
};

// Feeds random prompts (lengths 1..max_len) to the engine in random chunks (1..17 tokens,
// internal batch of 8) and compares every position's logits with the reference's
// (LogitsComparison with `tol`).
void expect_engine_matches_reference(const Model& model, int threads, uint32_t seed, int trials = 2,
                                     int64_t max_len = 40, float tol = 1e-4f);

// Reference logits of every position of `prompt`.
std::vector<std::vector<float>> reference_logits(const Model& model,
                                                 const std::vector<int32_t>& prompt);

// Largest |a - b| over all positions and logits.
float max_abs_diff(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b);

std::vector<int32_t> random_prompt(uint32_t seed, int64_t n_vocab, int64_t length);

// A real vocabulary (a ggml-vocab-*.gguf) cut down to its first `n` tokens, so that a tiny
// model can carry a family's genuine tokenizer metadata: the per-token arrays are truncated,
// BPE merges are kept when both halves and the result are kept tokens, and special tokens
// (BOS, EOS, ...) numbered beyond `n` are appended with their ids renumbered, as are the tokens
// `also_keep` names (e.g. SentencePiece's lone "\u2581", without which every space would fall
// back to three byte tokens).
class SmallVocab {
 public:
  static Result<SmallVocab> from(const gguf::GgufFile& vocab, int64_t n,
                                 const std::vector<std::string>& also_keep = {});
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  // Adds the tokenizer.* keys to `w`. `vocab` (given to from()) must still be open.
  void write(gguf::GgufWriter& w) const;

 private:
  const gguf::GgufFile* src_ = nullptr;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  std::vector<std::string> merges_;
  std::vector<std::pair<std::string, uint32_t>> ids_;  // *_token_id keys, renumbered
};

}  // namespace moon::test
