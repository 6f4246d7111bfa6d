#include "cli/engine_options.h"

#include <chrono>
#include <optional>

#include "dist/shard.h"
#include "dist/tensor_parallel_rank.h"
#include "gguf/gguf_prefetch.h"
#include "kv/memory_size.h"
#include "util/logging.h"
#include "util/progress.h"

namespace moon {

void add_engine_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option(
      "-m,--model", o.model,
      "GGUF model file, or builtin:tiny (the default: random weights, meaningless text)");
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory,
                 "KV cache size, e.g. 4GiB or 512MiB (default: room for max-num-seqs sequences "
                 "of max-model-len tokens, at most 40% of available memory)");
  cmd.add_option("--kv-cache-dtype", o.kv_cache_dtype, "KV cache element type")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}, CLI::ignore_case))
      ->capture_default_str();
  cmd.add_option("--block-size", o.block_size, "Tokens per KV cache block")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd.add_option("--max-num-seqs", o.max_num_seqs, "Most sequences in one batch")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd.add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                 "Most tokens computed in one step")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--max-model-len", o.max_model_len,
                 "Most tokens (prompt + output) per sequence (default: the model's context)")
      ->check(CLI::Range(0, 1 << 24));
  cmd.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o.enable_prefix_caching,
               "Reuse KV blocks of common prompt prefixes (default on)");
  cmd.add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", o.enable_chunked_prefill,
               "Split long prompts over several steps (default on)");
  cmd.add_option("-t,--threads", o.threads, "Worker threads (0: all cores)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd.add_flag_callback(
      "--mmap", [&o] { o.weights = WeightMemory::kMapped; },
      "Use the weights in place from the mapped file (default: copy them into memory when they "
      "take at most half of the available memory, which decodes faster, else map)");
  cmd.add_flag_callback(
      "--no-mmap", [&o] { o.weights = WeightMemory::kCopied; },
      "Copy the weights into memory (huge pages where the kernel gives them) whatever their "
      "size");
}

Result<EngineConfig> make_engine_config(const EngineOptions& o, const ModelHparams& hp) {
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

namespace {

// Cuts the rank's slice out of the loaded model and says what it kept.
Status keep_rank_slice(Model* model, Communicator& comm, ForwardRanks* ranks) {
  const ModelHparams full = model->hparams;
  MOON_ASSIGN_OR_RETURN(ShardPlan plan, plan_shard(full, model->weights, comm.rank(), comm.size()));
  MOON_TRY(shard_model(model, plan));
  uint64_t kept = 0;
  for (const auto& lw : model->weights.layers) {
    for (const WeightView* m : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      kept += m->row_bytes * static_cast<uint64_t>(m->rows);
    }
  }
  const ModelWeights& w = model->weights;
  kept += w.token_embd.row_bytes * static_cast<uint64_t>(w.token_embd.rows);
  if (!w.output_tied) kept += w.output.row_bytes * static_cast<uint64_t>(w.output.rows);
  spdlog::info(
      "tensor-parallel rank {} of {}: attention heads {}-{} of {}, KV heads {}-{} of {}, "
      "feed-forward units {}-{} of {}, vocabulary {}-{} of {}; {} of sliced weights",
      plan.rank, plan.size, plan.head_begin, plan.head_begin + plan.num_heads - 1, full.n_head,
      plan.kv_head_begin, plan.kv_head_begin + plan.num_kv_heads - 1, full.n_head_kv, plan.ff_begin,
      plan.ff_begin + plan.ff_size - 1, full.n_ff, plan.vocab_begin,
      plan.vocab_begin + plan.vocab_counts[plan.rank] - 1, full.n_vocab, format_bytes(kept));
  ranks->comm = &comm;
  ranks->vocab_counts = plan.vocab_counts;
  ranks->vocab_begin = plan.vocab_begin;
  return Status::success();
}

}  // namespace

Result<LoadedEngine> load_engine(const EngineOptions& o, Communicator* comm) {
  const auto start = std::chrono::steady_clock::now();
  LoadedEngine e;
  spdlog::info("loading model {}", o.model.empty() ? "builtin:tiny" : o.model);
  {
    std::optional<ProgressLine> copying;  // made once the size is known
    LoadOptions load;
    // A rank copies its slices out of the mapping; copying the whole file first would hold
    // all of it.
    load.weights = comm ? WeightMemory::kMapped : o.weights;
    load.progress = [&](uint64_t done, uint64_t total) {
      if (!copying) copying.emplace("reading weights into memory", total);
      copying->update(done);
    };
    MOON_ASSIGN_OR_RETURN(e.model, load_model(o.model, load));
    if (copying) {
      spdlog::info("read {} of weights into memory in {:.1f} s",
                   format_bytes(gguf::tensor_data_bytes(*e.model->file)), copying->finish());
    }
  }
  ForwardRanks ranks;
  if (comm) MOON_TRY(keep_rank_slice(e.model.get(), *comm, &ranks));
  const ModelHparams& hp = e.model->hparams;
  // Mapped: read the pages now, not mid-request (a rank read its slices already).
  if (!comm && !e.model->file->tensor_data_copied()) {
    const uint64_t bytes = gguf::tensor_data_bytes(*e.model->file);
    ProgressLine line("loading weights", bytes);
    gguf::prefetch_tensor_data(*e.model->file, [&](uint64_t done, uint64_t) { line.update(done); });
    spdlog::info("read {} of weights in {:.1f} s", format_bytes(bytes), line.finish());
  }
  spdlog::info("loading tokenizer");
  MOON_ASSIGN_OR_RETURN(e.tokenizer, Tokenizer::from_gguf(*e.model->file));
  if (e.tokenizer->vocab_size() != hp.n_vocab) {
    return make_error("the tokenizer has {} tokens but the model's output has {}",
                      e.tokenizer->vocab_size(), hp.n_vocab);
  }
  MOON_ASSIGN_OR_RETURN(e.config, make_engine_config(o, hp));
  e.config.ranks = ranks;
  if (comm && comm->rank() != 0) {  // rank 0 decides the blocks; this rank holds its heads
    e.rank_kv_layout = {.num_layers = hp.n_layer,
                        .num_kv_heads = hp.n_head_kv,
                        .head_dim = hp.head_dim,
                        .block_size = e.config.block_size,
                        .dtype = e.config.kv_cache_dtype};
    MOON_TRY(share_kv_layout(*comm, &e.rank_kv_layout));
    return e;
  }
  spdlog::info("allocating the KV cache");
  MOON_ASSIGN_OR_RETURN(e.engine, Engine::create(*e.model, e.tokenizer->eog_ids(), e.config));
  if (comm) {
    KvLayout layout = e.engine->kv_layout();
    MOON_TRY(share_kv_layout(*comm, &layout));
  }
  e.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const KvLayout& kv = e.engine->kv_layout();
  spdlog::info(
      "engine ready: {} ({} layers, {} dims, vocab {}); KV cache {} blocks of {} tokens "
      "({:.1f} MiB); {:.0f} ms",
      hp.name.empty() ? e.model->file->name() : hp.name, hp.n_layer, hp.n_embd, hp.n_vocab,
      kv.num_blocks, kv.block_size, 2.0 * hp.n_layer * kv.layer_bytes() / (1 << 20), e.load_ms);
  return e;
}

}  // namespace moon
