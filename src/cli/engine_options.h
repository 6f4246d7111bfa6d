// The engine settings shared by `moon generate` and `moon serve`, with vLLM's flag
// names: --model, --kv-cache-memory, --kv-cache-dtype, --block-size, --max-num-seqs,
// --max-num-batched-tokens, --max-model-len, --enable-prefix-caching / --no-enable-prefix-caching,
// --no-enable-chunked-prefill, --threads; and llama.cpp's --mmap / --no-mmap.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "engine/engine.h"
#include "model/hparams.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/result.h"

namespace moon {

struct EngineOptions {
  std::string model;            // GGUF path or builtin:<name>; empty for the built-in default
  std::string kv_cache_memory;  // "" = default share of free memory
  std::string kv_cache_dtype = "f32";
  int64_t block_size = 16;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;  // 0: the model's context length
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  int threads = 0;
  WeightMemory weights = WeightMemory::kAuto;  // --mmap / --no-mmap force one
};

void add_engine_options(CLI::App& cmd, EngineOptions& options);

// Resolves the options against the model (max_model_len defaults to its context length).
Result<EngineConfig> make_engine_config(const EngineOptions& options, const ModelHparams& hp);

// Everything a command needs to generate: the model, its tokenizer (checked against the
// model's vocabulary) and the engine over them. The engine refers to the model, so keep
// them together.
// Under tensor parallelism (`comm` given) `model` is this rank's slice (dist/shard.h), and
// only rank 0 has an engine: the other ranks get the KV layout rank 0 chose and run its
// plans (dist/tensor_parallel_rank.h).
struct LoadedEngine {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  EngineConfig config;
  std::unique_ptr<Engine> engine;  // null on tensor-parallel ranks other than 0
  KvLayout rank_kv_layout;         // those ranks' KV cache
  double load_ms = 0.0;
};

// Loads --model and builds the engine, logging each stage (loading a big file takes a while).
// With `comm`, every rank calls it: each keeps its slice of the weights.
Result<LoadedEngine> load_engine(const EngineOptions& options, Communicator* comm = nullptr);

}  // namespace moon
