#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
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
  seq->sampling = SequenceState::for_request(params, 0, seq->tokens);
  MOON_TRY(scheduler_.add(std::move(seq)));
  RequestState& request = requests_[id];
  request.params = params;
  request.sequences = {seq_id};
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
    const auto seq = scheduler_.finish(seq_id, FinishReason::kAbort);
    if (!seq) continue;  // already finished
    updates.push_back({id, seq->index, -1, 0.0f, {}, true, FinishReason::kAbort});
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
    const Sequence* seq = scheduler_.find(seq_id);
    if (!seq || seq->index != index) continue;
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
  const RequestId request_id = scheduler_.finish(id, reason)->request_id;
  RequestState& request = requests_.at(request_id);
  const bool all_done = std::none_of(request.sequences.begin(), request.sequences.end(),
                                     [this](SequenceId s) { return scheduler_.find(s); });
  // A parallel-sampling request whose first sequence ended before it forked still owes
  // its other sequences: they are created from the same prompt logits in that step.
  if (all_done && (request.forked || request.params.n == 1)) requests_.erase(request_id);
}

SequenceUpdate Engine::finish_if_done(SequenceId id, const SampleOutput& sampled) {
  const Sequence& seq = *scheduler_.find(id);
  const SamplingParams& params = requests_.at(seq.request_id).params;
  SequenceUpdate update{seq.request_id, seq.index,          sampled.id, sampled.logprob, {},
                        false,          FinishReason::kNone};
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
  const SchedulerOutput out = scheduler_.schedule();
  if (out.empty()) return idle_step();
  last_step_tokens_ = out.num_batched_tokens;
  note_started(out);
  MOON_ASSIGN_OR_RETURN(ModelRunner::Logits logits, runner_.run(out));
  std::vector<SequenceUpdate> updates = report_prompt_logprobs(out, logits);
  sample(out, logits.sampling);
  scheduler_.update(out, sampled_);
  MOON_TRY(finish_step(out, updates));
  return updates;
}

Result<std::vector<SequenceUpdate>> Engine::idle_step() const {
  // Every running sequence has a token to compute and the head of the queue fits an empty
  // pool, so a step with work always schedules something; an empty one is a bug that would
  // otherwise spin the engine thread.
  if (scheduler_.has_work()) return make_error("internal error: the scheduler made no progress");
  return std::vector<SequenceUpdate>{};
}

void Engine::note_started(const SchedulerOutput& out) {
  started_.clear();
  for (const ScheduledChunk& c : out.chunks) {
    RequestState& request = requests_.at(c.sequence->request_id);
    if (!request.started) {
      request.started = true;
      started_.push_back(c.sequence->request_id);
    }
  }
}

void Engine::sample(const SchedulerOutput& out, std::span<float> logits) {
  const auto sample_start = std::chrono::steady_clock::now();
  const auto n_vocab = static_cast<size_t>(runner_.vocab_size());
  rows_.clear();
  forks_.clear();
  fork_rows_.clear();
  // Rows of `logits` are the sampling chunks in order.
  for (const ScheduledChunk& c : out.chunks) {
    if (!c.samples) continue;
    const size_t row = rows_.size();
    Sequence& parent = *c.sequence;
    rows_.push_back(&*parent.sampling);
    RequestState& request = requests_.at(parent.request_id);
    if (request.forked || request.params.n == 1) continue;
    // Parallel sampling: the other n-1 sequences draw their first token from the same prompt
    // logits (each with its own seed), then share the prompt's blocks.
    request.forked = true;
    const std::span<const TokenId> prompt =
        std::span(parent.tokens).first(static_cast<size_t>(parent.num_tokens_prompt));
    for (int k = 1; k < request.params.n; ++k) {
      auto child = std::make_unique<Sequence>();
      child->id = new_sequence_id();
      child->request_id = parent.request_id;
      child->index = k;
      child->num_tokens_prompt = parent.num_tokens_prompt;
      child->tokens.assign(prompt.begin(), prompt.end());
      child->max_tokens = parent.max_tokens;
      child->sampling = SequenceState::for_request(request.params, k, prompt);
      request.sequences.push_back(child->id);
      fork_rows_.push_back(&*child->sampling);
      fork_logits_.resize(fork_rows_.size() * n_vocab);
      std::copy_n(logits.begin() + static_cast<std::ptrdiff_t>(row * n_vocab), n_vocab,
                  fork_logits_.end() - static_cast<std::ptrdiff_t>(n_vocab));
      forks_.push_back({parent.id, std::move(child)});
    }
  }
  outputs_.assign(rows_.size(), SampleOutput{});
  sampler_.sample(logits, static_cast<int64_t>(n_vocab), rows_, outputs_);
  if (!fork_rows_.empty()) {
    fork_outputs_.assign(fork_rows_.size(), SampleOutput{});
    sampler_.sample(std::span(fork_logits_).first(fork_rows_.size() * n_vocab),
                    static_cast<int64_t>(n_vocab), fork_rows_, fork_outputs_);
  }
  sampled_.assign(out.chunks.size(), -1);
  for (size_t i = 0, row = 0; i < out.chunks.size(); ++i) {
    if (out.chunks[i].samples) sampled_[i] = outputs_[row++].id;
  }
  last_step_sample_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sample_start)
          .count();
}

Status Engine::finish_step(const SchedulerOutput& out, std::vector<SequenceUpdate>& updates) {
  size_t next_fork = 0;
  for (size_t i = 0, row = 0; i < out.chunks.size(); ++i) {
    if (!out.chunks[i].samples) continue;
    const SampleOutput& sampled = outputs_[row++];
    const SequenceId id = out.chunks[i].sequence->id;
    // A sibling starts as its parent is now: the prompt, then its own first token.
    for (; next_fork < forks_.size() && forks_[next_fork].parent == id; ++next_fork) {
      std::unique_ptr<Sequence>& child = forks_[next_fork].child;
      child->tokens.push_back(fork_outputs_[next_fork].id);
      const SequenceId child_id = child->id;
      MOON_TRY(scheduler_.fork(id, std::move(child)));
      updates.push_back(finish_if_done(child_id, fork_outputs_[next_fork]));
    }
    updates.push_back(finish_if_done(id, sampled));
  }
  return Status::success();
}

std::vector<SequenceUpdate> Engine::report_prompt_logprobs(const SchedulerOutput& out,
                                                           const ModelRunner::Logits& logits) {
  std::vector<SequenceUpdate> updates;
  const auto vocab = static_cast<size_t>(runner_.vocab_size());
  for (const ModelRunner::Logits::Chunk& c : logits.prompt) {
    const ScheduledChunk& chunk = out.chunks[c.chunk];
    Sequence& seq = *chunk.sequence;
    const SamplingParams& params = requests_.at(seq.request_id).params;
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
