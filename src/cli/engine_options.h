// The engine settings shared by `moon generate` (and later `moon serve`), with vLLM's flag
// names: --kv-cache-memory, --kv-cache-dtype, --block-size, --max-num-seqs,
// --max-num-batched-tokens, --max-model-len, --enable-prefix-caching / --no-enable-prefix-caching,
// --no-enable-chunked-prefill, --threads.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/engine.h"
#include "model/llama_hparams.h"
#include "util/result.h"

namespace moon {

struct EngineOptions {
  std::string kv_cache_memory;  // "" = default share of free memory
  std::string kv_cache_dtype = "f32";
  int64_t block_size = 16;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;  // 0: the model's context length
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  int threads = 0;
};

void add_engine_options(CLI::App& cmd, EngineOptions& options);

// Resolves the options against the model (max_model_len defaults to its context length).
Result<EngineConfig> make_engine_config(const EngineOptions& options, const LlamaHparams& hp);

}  // namespace moon
