// The parts of `moon bench latency` and `moon bench throughput` that need no engine: the
// random prompts, what is said about the model file, the mean and standard deviation of
// repeated measurements, and llama-bench's aligned Markdown table.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "tensor/kv_layout.h"
#include "tokenizer/tokenizer.h"
#include "util/result.h"

namespace moon {

// Random prompts: ids drawn uniformly from the vocabulary's ordinary tokens (no control,
// user-defined, unknown, unused or end-of-generation ids), after BOS when the model adds one,
// as llama-bench makes them. Every call gives a new prompt, so the prefix cache never makes a
// later repetition cheaper.
class RandomPrompts {
 public:
  RandomPrompts(const Tokenizer& tok, uint64_t seed);
  // Whether the vocabulary has any ordinary token to draw.
  bool usable() const { return !candidates_.empty(); }
  // `n` tokens (BOS first when the model adds one); usable() must hold.
  std::vector<TokenId> make(int64_t n);

 private:
  std::vector<TokenId> candidates_;
  std::optional<TokenId> bos_;
  std::mt19937_64 rng_;
};

// What the table and the JSON say about the model.
struct ModelSummary {
  std::string name;       // the file's name, or builtin:<name>
  std::string path;       // as given (builtin:tiny for none)
  uint64_t size = 0;      // bytes of the GGUF file
  uint64_t n_params = 0;  // elements of every tensor
  std::string type;       // the dtype holding most of the matrices' bytes ("Q8_0")
};

// `spec` as --model gave it (empty for the built-in default).
ModelSummary summarize_model(const std::string& spec, const gguf::GgufFile& file);

// Whether `batch` sequences of `seq_len` tokens fit in the KV cache all at once, with the
// watermark the scheduler keeps free when it admits a sequence (otherwise sequences would wait
// or be preempted and recomputed, and the rates would measure that). The error gives the
// --kv-cache-memory that would fit, in whole MiB.
Status check_batch_fits(const KvLayout& kv, int64_t batch, int64_t seq_len);

struct MeanSd {
  double mean = 0.0;
  double sd = 0.0;  // sample standard deviation (n - 1, as llama-bench); 0 for one sample
};

MeanSd mean_sd(const std::vector<double>& samples);

// "1234.56 ± 7.89".
std::string format_mean_sd(const MeanSd& m);

// A parameter count as llama-bench writes it: "6.74 B", "292.35 K", "1.10 M".
std::string format_count(uint64_t n);

struct TableColumn {
  std::string header;
  bool right_aligned = false;
};

// A Markdown table with every column padded to its widest cell, right-aligned columns marked
// "---:" in the separator line, as llama-bench prints:
//   | model | size | test  |      t/s |
//   | ----- | ---: | ----: | -------: |
std::string format_table(const std::vector<TableColumn>& columns,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace moon
