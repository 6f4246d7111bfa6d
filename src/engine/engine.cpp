#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

#include "kv/memory_size.h"
#include "util/logging.h"

namespace moon {

Result<std::unique_ptr<Engine>> Engine::create(const LlamaModel& model,
                                               std::vector<TokenId> eog_ids,
                                               const EngineConfig& config) {
  const LlamaHparams& hp = model.hparams;
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

Engine::Engine(const LlamaModel& model, std::vector<TokenId> eog_ids, const EngineConfig& config,
               KvStorage storage)
    : model_(model),
      eog_ids_(std::move(eog_ids)),
      config_(config),
      pool_(config.num_threads),
      storage_(std::move(storage)),
      kv_(storage_.layout().num_blocks, storage_.layout().block_size, config.enable_prefix_caching),
      scheduler_(config.scheduler, &kv_),
      runner_(model, &storage_, &kv_, config.scheduler.max_num_batched_tokens, &pool_),
      sampler_(&pool_, eog_ids_),
      beams_({[this](RequestId id, std::vector<TokenId> prompt, const SamplingParams& params) {
                return add_sampling_request(id, std::move(prompt), params);
              },
              [this](RequestId id) { abort_sampling_request(id); }},
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
  if (requests_.contains(id) || beams_.owns(id)) {
    return make_error("request id {} is already in use", id);
  }
  MOON_TRY(check_request(prompt, params));
  if (params.use_beam_search) return beams_.start(id, prompt, params);
  return add_sampling_request(id, std::move(prompt), params);
}

Status Engine::add_sampling_request(RequestId id, std::vector<TokenId> prompt,
                                    const SamplingParams& params) {
  if (requests_.contains(id)) return make_error("request id {} is already in use", id);
  auto seq = std::make_unique<Sequence>();
  seq->id = new_sequence_id();
  seq->request_id = id;
  seq->num_tokens_prompt = static_cast<int64_t>(prompt.size());
  seq->tokens = std::move(prompt);
  seq->max_tokens = params.max_tokens;
  const SequenceId seq_id = seq->id;
  seq->needs_prompt_logits = params.prompt_logprobs >= 0 && seq->num_tokens_prompt > 1;
  LiveSequence live{id, 0, SequenceState::for_request(params, 0, seq->tokens), 1};
  MOON_TRY(scheduler_.add(std::move(seq)));
  RequestState& request = requests_[id];
  request.params = params;
  request.sequences = {seq_id};
  sequences_.emplace(seq_id, std::move(live));
  return Status::success();
}

std::vector<SequenceUpdate> Engine::abort(RequestId id) {
  if (beams_.owns(id)) return beams_.abort(id);
  return abort_sampling_request(id);
}

std::vector<SequenceUpdate> Engine::abort_sampling_request(RequestId id) {
  std::vector<SequenceUpdate> updates;
  auto it = requests_.find(id);
  if (it == requests_.end()) return updates;
  for (SequenceId seq_id : it->second.sequences) {
    auto live = sequences_.find(seq_id);
    if (live == sequences_.end()) continue;  // already finished
    scheduler_.finish(seq_id, FinishReason::kAbort);
    updates.push_back({id, live->second.index, -1, 0.0f, {}, true, FinishReason::kAbort});
    sequences_.erase(live);
  }
  // The sequences of a parallel-sampling request that never forked are reported too.
  for (int k = it->second.forked ? it->second.params.n : 1; k < it->second.params.n; ++k) {
    updates.push_back({id, k, -1, 0.0f, {}, true, FinishReason::kAbort});
  }
  requests_.erase(it);
  return updates;
}

std::vector<SequenceUpdate> Engine::stop_sequence(RequestId id, int index) {
  std::vector<SequenceUpdate> updates;
  auto it = requests_.find(id);
  if (it == requests_.end()) return updates;  // beam searches are not in requests_
  for (SequenceId seq_id : it->second.sequences) {
    auto live = sequences_.find(seq_id);
    if (live == sequences_.end() || live->second.index != index) continue;
    updates.push_back({id, index, -1, 0.0f, {}, true, FinishReason::kStop});
    retire(seq_id, FinishReason::kStop);  // may forget the request: `it` is not used again
    break;
  }
  return updates;
}

bool Engine::is_stop(const SamplingParams& params, TokenId token) const {
  const bool is_eog = std::find(eog_ids_.begin(), eog_ids_.end(), token) != eog_ids_.end();
  return (is_eog && !params.ignore_eos) ||
         std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
             params.stop_token_ids.end();
}

void Engine::retire(SequenceId id, FinishReason reason) {
  const RequestId request_id = sequences_.at(id).request_id;
  scheduler_.finish(id, reason);
  sequences_.erase(id);
  RequestState& request = requests_.at(request_id);
  const bool all_done = std::none_of(request.sequences.begin(), request.sequences.end(),
                                     [this](SequenceId s) { return sequences_.contains(s); });
  // A parallel-sampling request whose first sequence ended before it forked still owes
  // its other sequences: they are created from the same prompt logits in that step.
  if (all_done && (request.forked || request.params.n == 1)) requests_.erase(request_id);
}

SequenceUpdate Engine::finish_if_done(SequenceId id, const SampleOutput& sampled) {
  const LiveSequence& live = sequences_.at(id);
  const SamplingParams& params = requests_.at(live.request_id).params;
  const Sequence& seq = *scheduler_.find(id);
  SequenceUpdate update{live.request_id, live.index,         sampled.id, sampled.logprob, {},
                        false,           FinishReason::kNone};
  if (params.top_logprobs > 0) {
    update.top_logprobs.assign(sampled.top.begin(), sampled.top.begin() + sampled.n_top);
  }
  // Before min_tokens the sampler masks stop tokens; one can still come out of a row with
  // nothing else left, and then it is just a token.
  if (is_stop(params, sampled.id) && seq.num_tokens_output() > params.min_tokens) {
    // The stop token ends the text; it is not part of it.
    update.token = -1;
    update.top_logprobs.clear();
    update.finished = true;
    update.finish_reason = FinishReason::kStop;
  } else if (seq.num_tokens_output() >= seq.max_tokens) {
    update.finished = true;
    update.finish_reason = FinishReason::kLength;
  }
  if (update.finished) retire(id, update.finish_reason);
  return update;
}

Result<std::vector<SequenceUpdate>> Engine::step() {
  MOON_ASSIGN_OR_RETURN(std::vector<SequenceUpdate> updates, step_batch());
  started_ = beams_.started(started_);
  return beams_.absorb(std::move(updates));
}

Result<std::vector<SequenceUpdate>> Engine::step_batch() {
  std::vector<SequenceUpdate> updates;
  const SchedulerOutput out = scheduler_.schedule();
  started_.clear();
  if (out.empty()) {
    // Every running sequence has a token to compute and the head of the queue fits an
    // empty pool, so a step with work always schedules something; an empty one is a bug
    // that would otherwise spin the engine thread.
    if (scheduler_.has_work()) return make_error("internal error: the scheduler made no progress");
    return updates;
  }
  for (const ScheduledChunk& c : out.chunks) {
    RequestState& request = requests_.at(c.sequence->request_id);
    if (!request.started) {
      request.started = true;
      started_.push_back(c.sequence->request_id);
    }
  }
  MOON_ASSIGN_OR_RETURN(ModelRunner::Logits step_logits, runner_.run(out));
  const std::span<float> logits = step_logits.sampling;
  for (const ModelRunner::Logits::Chunk& c : step_logits.prompt) {
    report_prompt_logprobs(out.chunks[c.chunk], c.rows, updates);
  }

  const auto sample_start = std::chrono::steady_clock::now();
  const auto n_vocab = static_cast<size_t>(runner_.vocab_size());
  // Rows of `logits` are the sampling chunks in order.
  struct Fork {
    SequenceId parent;
    int index;
    SequenceId child;
  };
  std::vector<Fork> forks;
  rows_.clear();
  fork_rows_.clear();
  for (const ScheduledChunk& c : out.chunks) {
    if (!c.samples) continue;
    const size_t row = rows_.size();
    const SequenceId id = c.sequence->id;
    LiveSequence& live = sequences_.at(id);
    RequestState& request = requests_.at(live.request_id);
    rows_.push_back(&live.sampling);
    if (!request.forked && request.params.n > 1) {
      // Parallel sampling: the other n-1 sequences draw their first token from the same
      // prompt logits (each with its own seed), then share the prompt's blocks.
      request.forked = true;
      for (int k = 1; k < request.params.n; ++k) {
        const SequenceId child_id = new_sequence_id();
        LiveSequence child{live.request_id, k,
                           SequenceState::for_request(
                               request.params, k,
                               std::span(c.sequence->tokens)
                                   .first(static_cast<size_t>(c.sequence->num_tokens_prompt))),
                           0};
        auto [pos, inserted] = sequences_.emplace(child_id, std::move(child));
        request.sequences.push_back(child_id);
        forks.push_back({id, k, child_id});
        fork_rows_.push_back(&pos->second.sampling);
        fork_logits_.resize(fork_rows_.size() * n_vocab);
        std::copy_n(logits.begin() + row * n_vocab, n_vocab,
                    fork_logits_.end() - static_cast<std::ptrdiff_t>(n_vocab));
      }
    }
  }
  outputs_.assign(rows_.size(), SampleOutput{});
  sampler_.sample(logits, static_cast<int64_t>(n_vocab), rows_, outputs_);
  if (!fork_rows_.empty()) {
    fork_outputs_.assign(fork_rows_.size(), SampleOutput{});
    sampler_.sample(std::span(fork_logits_).first(fork_rows_.size() * n_vocab),
                    static_cast<int64_t>(n_vocab), fork_rows_, fork_outputs_);
  }
  last_step_sample_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sample_start)
          .count();

  std::vector<TokenId> sampled(out.chunks.size(), -1);
  for (size_t i = 0, row = 0; i < out.chunks.size(); ++i) {
    if (out.chunks[i].samples) sampled[i] = outputs_[row++].id;
  }
  scheduler_.update(out, sampled);

  // Children are created from the parent as it is now (prompt + its first token).
  size_t next_fork = 0;
  for (size_t i = 0, row = 0; i < out.chunks.size(); ++i) {
    if (!out.chunks[i].samples) continue;
    const size_t r = row++;
    const SequenceId id = out.chunks[i].sequence->id;
    for (; next_fork < forks.size() && forks[next_fork].parent == id; ++next_fork) {
      const Fork& f = forks[next_fork];
      const Sequence& parent = *scheduler_.find(id);
      auto child = std::make_unique<Sequence>();
      child->id = f.child;
      child->request_id = parent.request_id;
      child->num_tokens_prompt = parent.num_tokens_prompt;
      child->tokens.assign(parent.tokens.begin(), parent.tokens.end() - 1);
      child->tokens.push_back(fork_outputs_[next_fork].id);
      child->max_tokens = parent.max_tokens;
      MOON_TRY(scheduler_.fork(id, std::move(child)));
      updates.push_back(finish_if_done(f.child, fork_outputs_[next_fork]));
    }
    updates.push_back(finish_if_done(id, outputs_[r]));
  }
  return updates;
}

void Engine::report_prompt_logprobs(const ScheduledChunk& chunk, std::span<const float> rows,
                                    std::vector<SequenceUpdate>& updates) {
  Sequence& seq = *chunk.sequence;
  LiveSequence& live = sequences_.at(seq.id);
  const SamplingParams& params = requests_.at(live.request_id).params;
  const auto vocab = static_cast<size_t>(runner_.vocab_size());
  SequenceUpdate update{live.request_id, live.index, -1, 0.0f, {}, false, FinishReason::kNone};
  // Row j predicts token start + j + 1; recomputed rows (after a preemption) were reported.
  for (int64_t j = 0; j < chunk.num_tokens; ++j) {
    const int64_t target = chunk.start + j + 1;
    if (target >= seq.num_tokens_prompt) break;
    if (target < live.next_prompt_logprob) continue;
    const std::span<const float> row = rows.subspan(static_cast<size_t>(j) * vocab, vocab);
    const GreedyResult g = greedy_pass(row, params.prompt_logprobs);
    const TokenId token = seq.tokens[target];
    PromptLogprob entry{{token, logprob_of(g, row[token])}, {}};
    entry.top.assign(g.top.begin(), g.top.begin() + std::min(g.n_top, params.prompt_logprobs));
    update.prompt_logprobs.push_back(std::move(entry));
    live.next_prompt_logprob = target + 1;
  }
  if (live.next_prompt_logprob >= seq.num_tokens_prompt) seq.needs_prompt_logits = false;
  if (!update.prompt_logprobs.empty()) updates.push_back(std::move(update));
}

}  // namespace moon
