#include "cli/engine_options.h"

#include "kv/memory_size.h"

namespace moon {

void add_engine_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory,
                 "KV cache size, e.g. 4GiB or 512MiB (default: 40% of available memory, capped)");
  cmd.add_option("--kv-cache-dtype", o.kv_cache_dtype, "KV cache element type")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}, CLI::ignore_case));
  cmd.add_option("--block-size", o.block_size, "Tokens per KV cache block")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--max-num-seqs", o.max_num_seqs, "Most sequences in one batch")
      ->check(CLI::Range(1, 1 << 16));
  cmd.add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                 "Most tokens computed in one step")
      ->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--max-model-len", o.max_model_len,
                 "Most tokens (prompt + output) per sequence (default: the model's context)")
      ->check(CLI::Range(0, 1 << 24));
  cmd.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o.enable_prefix_caching,
               "Reuse KV blocks of common prompt prefixes (default on)");
  cmd.add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", o.enable_chunked_prefill,
               "Split long prompts over several steps (default on)");
  cmd.add_option("-t,--threads", o.threads, "Worker threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
}

Result<EngineConfig> make_engine_config(const EngineOptions& o, const LlamaHparams& hp) {
  EngineConfig c;
  if (!o.kv_cache_memory.empty()) {
    MOON_ASSIGN_OR_RETURN(c.kv_cache_bytes, parse_memory_size(o.kv_cache_memory));
    if (c.kv_cache_bytes == 0) return make_error("--kv-cache-memory must be more than 0");
  }
  const std::string dtype = CLI::detail::to_lower(o.kv_cache_dtype);
  c.kv_cache_dtype = dtype == "f16" ? DType::F16 : dtype == "bf16" ? DType::BF16 : DType::F32;
  c.block_size = o.block_size;
  c.scheduler.max_num_seqs = o.max_num_seqs;
  c.scheduler.max_num_batched_tokens = o.max_num_batched_tokens;
  if (o.max_model_len > hp.n_ctx_train) {
    return make_error("--max-model-len {} exceeds the model's context length of {}",
                      o.max_model_len, hp.n_ctx_train);
  }
  c.scheduler.max_model_len = o.max_model_len > 0 ? o.max_model_len : hp.n_ctx_train;
  c.scheduler.enable_chunked_prefill = o.enable_chunked_prefill;
  c.enable_prefix_caching = o.enable_prefix_caching;
  c.num_threads = o.threads;
  return c;
}

}  // namespace moon
