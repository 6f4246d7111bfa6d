#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>

#include "kv/memory_size.h"
#include "util/logging.h"

namespace moon {

Result<std::unique_ptr<Engine>> Engine::create(const Model& model, std::vector<TokenId> eog_ids,
                                               const EngineConfig& config) {
  const ModelHparams& hp = model.hparams;
  if (config.scheduler.max_num_batched_tokens < 1 || config.scheduler.max_num_seqs < 1) {
    return make_error("max-num-batched-tokens and max-num-seqs must be at least 1");
  }
  if (!config.scheduler.enable_chunked_prefill &&
      config.scheduler.max_num_batched_tokens < config.scheduler.max_model_len) {
    return make_error(
        "without chunked prefill, max-num-batched-tokens ({}) must be at least the "
        "maximum model length ({})",
        config.scheduler.max_num_batched_tokens, config.scheduler.max_model_len);
  }
  KvLayout shape;
  shape.num_layers = hp.n_layer;
  shape.num_kv_heads = hp.n_head_kv;
  shape.head_dim = hp.head_dim;
  shape.block_size = config.block_size;
  shape.dtype = config.kv_cache_dtype;
  uint64_t budget = config.kv_cache_bytes;
  if (budget == 0) {
    MOON_ASSIGN_OR_RETURN(budget, default_kv_budget());
    // Room for every sequence of a full batch at full length is all the scheduler can use
    // (beyond it only the prefix cache's tail grows): a small model should not reserve
    // gigabytes it never touches.
    budget = std::min(budget, kv_bytes_for_sequences(shape, config.scheduler.max_num_seqs,
                                                     config.scheduler.max_model_len));
  }
  MOON_ASSIGN_OR_RETURN(KvLayout layout, kv_layout_for_budget(shape, budget));
  MOON_ASSIGN_OR_RETURN(KvStorage storage, KvStorage::create(layout));
  return std::unique_ptr<Engine>(new Engine(model, std::move(eog_ids), config, std::move(storage)));
}

Engine::Engine(const Model& model, std::vector<TokenId> eog_ids, const EngineConfig& config,
               KvStorage storage)
    : model_(model),
      eog_ids_(std::move(eog_ids)),
      config_(config),
      pool_(config.num_threads),
      storage_(std::move(storage)),
      kv_(storage_.layout().num_blocks, storage_.layout().block_size, config.enable_prefix_caching,
          {.cache_partial_blocks = true}),
      scheduler_(config.scheduler, &kv_, eog_ids_),
      runner_(model, &storage_, &kv_, config.scheduler.max_num_batched_tokens, &pool_,
              config.ranks),
      sampler_(&pool_, eog_ids_),
      beams_({[this](RequestId id, std::vector<TokenId> prompt, const SamplingParams& params) {
                return add_sampling_request(id, std::move(prompt), params);
              },
              [this](RequestId id) { scheduler_.finish_request(id, FinishReason::kAbort); }},
             eog_ids_) {}

Status Engine::check_request(std::span<const TokenId> prompt, const SamplingParams& params) const {
  if (prompt.empty()) return make_error("the prompt has no tokens");
  for (TokenId t : prompt) {
    if (t < 0 || t >= model_.hparams.n_vocab) {
      return make_error("token id {} is outside the vocabulary (0..{})", t,
                        model_.hparams.n_vocab - 1);
    }
  }
  MOON_TRY(params.validate(model_.hparams.n_vocab));
  return scheduler_.check_fits(static_cast<int64_t>(prompt.size()), params.max_tokens);
}

Status Engine::add_request(RequestId id, std::vector<TokenId> prompt,
                           const SamplingParams& params) {
  if (BeamSearchDriver::is_round_id(id)) {
    return make_error("request id {} is reserved for beam search rounds", id);
  }
  if (scheduler_.has_request(id) || beams_.owns(id)) {
    return make_error("request id {} is already in use", id);
  }
  MOON_TRY(check_request(prompt, params));
  if (params.use_beam_search) return beams_.start(id, prompt, params);
  return add_sampling_request(id, std::move(prompt), params);
}

Status Engine::add_sampling_request(RequestId id, std::vector<TokenId> prompt,
                                    const SamplingParams& params) {
  if (scheduler_.has_request(id)) return make_error("request id {} is already in use", id);
  auto seq = std::make_unique<Sequence>();
  seq->id = new_sequence_id();
  seq->request_id = id;
  seq->num_tokens_prompt = static_cast<int64_t>(prompt.size());
  seq->tokens = std::move(prompt);
  seq->needs_prompt_logits = params.prompt_logprobs >= 0 && seq->num_tokens_prompt > 1;
  // One copy of the parameters for all the request's sequences.
  seq->sampling =
      SequenceState::for_request(std::make_shared<const SamplingParams>(params), 0, seq->tokens);
  for (int k = 1; k < params.n; ++k) seq->pending_forks.push_back(new_sequence_id());
  return scheduler_.add(std::move(seq));
}

std::vector<SequenceUpdate> Engine::abort(RequestId id) {
  if (beams_.owns(id)) return beams_.abort(id);
  return scheduler_.finish_request(id, FinishReason::kAbort);
}

std::vector<SequenceUpdate> Engine::stop_sequence(RequestId id, int index) {
  return scheduler_.finish_sequence(id, index, FinishReason::kStop);
}

Result<std::vector<SequenceUpdate>> Engine::step() {
  MOON_ASSIGN_OR_RETURN(std::vector<SequenceUpdate> updates, step_batch());
  started_ = beams_.started(started_);
  return beams_.absorb(std::move(updates));
}

Result<std::vector<SequenceUpdate>> Engine::step_batch() {
  const SchedulerOutput out = scheduler_.schedule();
  if (out.empty()) return idle_step();
  last_step_tokens_ = out.num_batched_tokens;
  started_ = out.started;
  MOON_ASSIGN_OR_RETURN(ModelRunner::Logits logits, runner_.run(out));
  std::vector<SequenceUpdate> updates = report_prompt_logprobs(out, logits);
  sample(out, logits.sampling);
  SchedulerUpdate done = scheduler_.update(out, outputs_);
  std::move(done.updates.begin(), done.updates.end(), std::back_inserter(updates));
  return updates;
}

Result<std::vector<SequenceUpdate>> Engine::idle_step() const {
  // Every running sequence has a token to compute and the head of the queue fits an empty
  // pool, so a step with work always schedules something; an empty one is a bug that would
  // otherwise spin the engine thread.
  if (scheduler_.has_work()) return make_error("internal error: the scheduler made no progress");
  return std::vector<SequenceUpdate>{};
}

void Engine::sample(const SchedulerOutput& out, std::span<float> logits) {
  const auto sample_start = std::chrono::steady_clock::now();
  rows_.clear();
  for (const ScheduledChunk& c : out.chunks) {
    if (!c.samples) continue;
    rows_.push_back({&*c.sequence->sampling, c.sequence->output()});
    for (Sequence* fork : c.forks) rows_.push_back({&*fork->sampling, fork->output()});
  }
  outputs_.assign(rows_.size(), SampleOutput{});
  sampler_.sample(logits, runner_.vocab_size(), rows_, outputs_);
  last_step_sample_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sample_start)
          .count();
}

std::vector<SequenceUpdate> Engine::report_prompt_logprobs(const SchedulerOutput& out,
                                                           const ModelRunner::Logits& logits) {
  std::vector<SequenceUpdate> updates;
  const auto vocab = static_cast<size_t>(runner_.vocab_size());
  for (const ModelRunner::Logits::Chunk& c : logits.prompt) {
    const ScheduledChunk& chunk = out.chunks[c.chunk];
    Sequence& seq = *chunk.sequence;
    const SamplingParams& params = seq.params();
    SequenceUpdate update{seq.request_id, seq.index, -1, 0.0f, {}, false, FinishReason::kNone};
    // Row j predicts token start + j + 1; recomputed rows (after a preemption) were reported.
    for (int64_t j = 0; j < chunk.num_tokens; ++j) {
      const int64_t target = chunk.start + j + 1;
      if (target >= seq.num_tokens_prompt) break;
      if (target < seq.next_prompt_logprob) continue;
      const std::span<const float> row = c.rows.subspan(static_cast<size_t>(j) * vocab, vocab);
      const GreedyResult g = greedy_pass(row, params.prompt_logprobs);
      const TokenId token = seq.tokens[target];
      PromptLogprob entry{{token, logprob_of(g, row[token])}, {}};
      entry.top.assign(g.top.begin(), g.top.begin() + std::min(g.n_top, params.prompt_logprobs));
      update.prompt_logprobs.push_back(std::move(entry));
      seq.next_prompt_logprob = target + 1;
    }
    if (seq.next_prompt_logprob >= seq.num_tokens_prompt) seq.needs_prompt_logits = false;
    if (!update.prompt_logprobs.empty()) updates.push_back(std::move(update));
  }
  return updates;
}

}  // namespace moon
