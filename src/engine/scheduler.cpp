#include "engine/scheduler.h"

#include <algorithm>

namespace moon {

size_t SchedulerOutput::num_samples() const {
  size_t n = 0;
  for (const ScheduledChunk& c : chunks) n += c.samples ? 1 + c.forks.size() : 0;
  return n;
}

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv,
                     std::vector<TokenId> eog_ids)
    : config_(config), kv_(kv), eog_ids_(std::move(eog_ids)) {}

Status Scheduler::check_fits(int64_t num_tokens_prompt, int64_t max_tokens) const {
  const int64_t max_len = num_tokens_prompt + max_tokens;
  if (max_len > config_.max_model_len) {
    return make_error(
        "this request needs {} tokens ({} prompt + {} max tokens), more than the maximum "
        "model length of {}",
        max_len, num_tokens_prompt, max_tokens, config_.max_model_len);
  }
  const int64_t blocks_alone = (max_len + kv_->block_size() - 1) / kv_->block_size();
  if (blocks_alone > kv_->num_blocks() - kv_->num_watermark_blocks()) {
    return make_error(
        "this request needs {} KV cache blocks ({} tokens) but the whole cache has {} usable: "
        "raise --kv-cache-memory or lower max tokens",
        blocks_alone, max_len, kv_->num_blocks() - kv_->num_watermark_blocks());
  }
  return Status::success();
}

Status Scheduler::add(std::unique_ptr<Sequence> seq) {
  if (seq->num_tokens_prompt <= 0 || seq->num_tokens() != seq->num_tokens_prompt) {
    return make_error("a new sequence needs a non-empty prompt and no generated tokens");
  }
  if (!seq->sampling) return make_error("a new sequence needs its sampling state");
  MOON_TRY(check_fits(seq->num_tokens_prompt, seq->max_tokens()));
  if (sequences_.contains(seq->id)) return make_error("sequence id {} is already in use", seq->id);
  for (SequenceId id : seq->pending_forks) {
    if (id == seq->id || sequences_.contains(id)) {
      return make_error("sequence id {} is already in use", id);
    }
  }
  seq->status = SequenceStatus::kWaiting;
  seq->num_tokens_computed = 0;
  waiting_.push_back(seq.get());
  requests_[seq->request_id].push_back(seq->id);
  sequences_.emplace(seq->id, std::move(seq));
  return Status::success();
}

void Scheduler::preempt(Sequence& seq, SchedulerOutput& out) {
  kv_->free(seq.id, seq.tokens);  // its computed tokens stay findable in the prefix cache
  seq.num_tokens_computed = 0;
  seq.status = SequenceStatus::kWaiting;
  waiting_.push_front(&seq);
  out.preempted.push_back(seq.id);
  ++num_preemptions_;
}

// Gives a running sequence slots for `num_tokens`, preempting the most recently admitted
// running sequences (those at the back, not yet scheduled this step) until the pool can.
// False when the sequence itself had to be preempted.
bool Scheduler::try_allocate(Sequence& seq, int64_t num_tokens, SchedulerOutput& out) {
  while (!kv_->allocate_slots(seq.id, seq.tokens, num_tokens)) {
    Sequence* victim = running_.back();
    running_.pop_back();
    preempt(*victim, out);
    if (victim == &seq) return false;
  }
  return true;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;

  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& seq = *running_[i];
    const int64_t n = std::min(seq.num_tokens_uncomputed(), budget);
    if (n <= 0) continue;
    if (!try_allocate(seq, n, out)) break;  // it was the last running sequence
    add_chunk(seq, n, out);
    budget -= n;
  }

  // Admitting new work in a step that had to preempt would only preempt more next step.
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    Sequence& seq = *waiting_.front();
    if (!kv_->has_sequence(seq.id) && !seq.needs_prompt_logits) {
      seq.num_tokens_computed = kv_->match_prefix(seq.id, seq.tokens);
    }
    const int64_t uncomputed = seq.num_tokens_uncomputed();
    const int64_t n = std::min(uncomputed, budget);
    const bool fits = (config_.enable_chunked_prefill || n == uncomputed) &&
                      kv_->can_allocate(kv_->num_blocks_needed_for(seq.id, n)) &&
                      kv_->allocate_slots(seq.id, seq.tokens, n);
    if (!fits) {
      // First come, first served: nobody overtakes the head of the queue. Its prefix hits
      // are given back so that cached blocks stay evictable while it waits.
      kv_->free(seq.id);
      seq.num_tokens_computed = 0;
      break;
    }
    waiting_.pop_front();
    seq.status = SequenceStatus::kRunning;
    running_.push_back(&seq);
    add_chunk(seq, n, out);
    budget -= n;
  }

  out.num_batched_tokens = config_.max_num_batched_tokens - budget;
  out.block_copies = kv_->take_pending_copies();
  return out;
}

void Scheduler::add_chunk(Sequence& seq, int64_t num_tokens, SchedulerOutput& out) {
  if (!seq.scheduled) {
    seq.scheduled = true;
    if (seq.index == 0) out.started.push_back(seq.request_id);
  }
  ScheduledChunk chunk{&seq,
                       seq.num_tokens_computed,
                       num_tokens,
                       seq.num_tokens_computed + num_tokens == seq.num_tokens(),
                       {}};
  if (chunk.samples && !seq.pending_forks.empty()) chunk.forks = make_forks(seq);
  out.chunks.push_back(std::move(chunk));
}

std::vector<Sequence*> Scheduler::make_forks(Sequence& parent) {
  std::vector<Sequence*> forks;
  const std::span<const TokenId> prompt = parent.tokens;  // the first sample: no output yet
  for (size_t k = 0; k < parent.pending_forks.size(); ++k) {
    auto child = std::make_unique<Sequence>();
    child->id = parent.pending_forks[k];
    child->request_id = parent.request_id;
    child->index = static_cast<int>(k) + 1;
    child->tokens.assign(prompt.begin(), prompt.end());
    child->num_tokens_prompt = parent.num_tokens_prompt;
    child->scheduled = true;
    child->sampling =
        SequenceState::for_request(parent.sampling->shared_params(), child->index, prompt);
    // In no queue until update() has its first token.
    forks.push_back(child.get());
    requests_[child->request_id].push_back(child->id);
    sequences_.emplace(child->id, std::move(child));
  }
  parent.pending_forks.clear();
  return forks;
}

void Scheduler::start_fork(const Sequence& parent, Sequence& child) {
  // Forks count against max_num_seqs like any sequence, so one request's n cannot crowd
  // others out.
  if (static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    kv_->fork(parent.id, child.id);
    child.num_tokens_computed = parent.num_tokens_computed;
    child.status = SequenceStatus::kRunning;
    running_.push_back(&child);
  } else {
    // The child queues behind everyone already waiting; admitted later, it gets the
    // parent's committed blocks back from the prefix cache and recomputes the rest.
    child.num_tokens_computed = 0;
    child.status = SequenceStatus::kWaiting;
    waiting_.push_back(&child);
  }
}

bool Scheduler::is_stop(const SamplingParams& params, TokenId token) const {
  const bool is_eog = std::find(eog_ids_.begin(), eog_ids_.end(), token) != eog_ids_.end();
  return (is_eog && !params.ignore_eos) ||
         std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
             params.stop_token_ids.end();
}

SequenceUpdate Scheduler::check_end(Sequence& seq, const SampleOutput& sampled,
                                    SchedulerUpdate& result) {
  const SamplingParams& params = seq.params();
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
  } else if (seq.num_tokens_output() >= seq.max_tokens()) {
    update.finished = true;
    update.finish_reason = FinishReason::kLength;
  }
  if (update.finished) result.finished.push_back(finish(seq.id, update.finish_reason));
  return update;
}

SchedulerUpdate Scheduler::update(const SchedulerOutput& output,
                                  std::span<const SampleOutput> sampled) {
  SchedulerUpdate result;
  size_t row = 0;
  for (const ScheduledChunk& chunk : output.chunks) {
    Sequence& seq = *chunk.sequence;
    seq.num_tokens_computed = chunk.start + chunk.num_tokens;
    kv_->commit_full_blocks(seq.id, seq.tokens);
    if (!chunk.samples) continue;
    const SampleOutput& own = sampled[row++];
    seq.tokens.push_back(own.id);
    // A sibling starts as its parent is now: the prompt, then its own first token.
    for (Sequence* child : chunk.forks) {
      const SampleOutput& first = sampled[row++];
      child->tokens.push_back(first.id);
      start_fork(seq, *child);
      result.updates.push_back(check_end(*child, first, result));
    }
    result.updates.push_back(check_end(seq, own, result));
  }
  return result;
}

void Scheduler::remove_from_queues(SequenceId id) {
  auto match = [id](const Sequence* s) { return s->id == id; };
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), match), waiting_.end());
  running_.erase(std::remove_if(running_.begin(), running_.end(), match), running_.end());
}

std::unique_ptr<Sequence> Scheduler::finish(SequenceId id, FinishReason reason) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return nullptr;
  std::unique_ptr<Sequence> seq = std::move(it->second);
  sequences_.erase(it);
  remove_from_queues(id);
  auto request = requests_.find(seq->request_id);
  std::erase(request->second, id);
  if (request->second.empty()) requests_.erase(request);
  // Between steps every slotted token is computed, so its last partial block can be cached.
  kv_->free(id, seq->tokens);
  seq->status = SequenceStatus::kFinished;
  seq->finish_reason = reason;
  return seq;
}

std::vector<SequenceUpdate> Scheduler::finish_request(RequestId id, FinishReason reason) {
  std::vector<SequenceUpdate> updates;
  auto it = requests_.find(id);
  if (it == requests_.end()) return updates;
  const std::vector<SequenceId> live = it->second;  // finish() edits the entry
  for (SequenceId seq_id : live) {
    const std::unique_ptr<Sequence> seq = finish(seq_id, reason);
    updates.push_back({id, seq->index, -1, 0.0f, {}, true, reason});
    // Siblings never forked end with it.
    for (size_t k = 0; k < seq->pending_forks.size(); ++k) {
      updates.push_back({id, static_cast<int>(k) + 1, -1, 0.0f, {}, true, reason});
    }
  }
  return updates;
}

std::vector<SequenceUpdate> Scheduler::finish_sequence(RequestId id, int index,
                                                       FinishReason reason) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return {};
  for (SequenceId seq_id : it->second) {
    if (sequences_.at(seq_id)->index != index) continue;
    finish(seq_id, reason);  // may erase `it`: not used again
    return {{id, index, -1, 0.0f, {}, true, reason}};
  }
  return {};
}

Sequence* Scheduler::find(SequenceId id) {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

}  // namespace moon
