// Iteration-level scheduling: every step forms one batch under a token budget and a
// sequence cap. Running sequences go first (a decode token each, or the next chunk of a
// prompt still being prefilled), then waiting ones in arrival order, as far as the budget
// and the KV pool allow. Nothing is padded: a sequence contributes exactly the tokens it
// needs computed.
//
// There are no prefill and decode phases: every sequence has `num_tokens_computed` catching
// up with its token count, and each step hands out part of the budget. Chunked prefill,
// prefix-cache hits (computed tokens that cost nothing) and recompute after preemption all
// follow from that one subtraction.
//
// After the forward, update() records the step: tokens computed, each sampled sequence's new
// token, the siblings a parallel-sampling request forks off its first sample, and, once, the
// stop and length checks that end sequences.
//
// When the pool cannot give a running sequence its next slots, the most recently admitted
// running sequence is preempted: its blocks are freed and it goes back to the front of the
// waiting queue, to be recomputed later (the prefix cache usually gives most of it back).
// No sequence fails because the cache is full; only one that could not fit even alone in the
// whole pool is refused, when it is added.
//
// Pure bookkeeping: no tensors. Not thread-safe: the engine thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/sequence.h"
#include "engine/sequence_update.h"
#include "kv/kv_cache_manager.h"
#include "util/result.h"

namespace moon {

struct SchedulerConfig {
  int64_t max_num_seqs = 256;             // sequences in one batch
  int64_t max_num_batched_tokens = 2048;  // tokens computed in one step
  int64_t max_model_len = 4096;           // prompt + output tokens of one sequence
  bool enable_chunked_prefill = true;     // a prompt may be split over several steps
};

// Work for one sequence in one step: compute tokens [start, start + num_tokens).
struct ScheduledChunk {
  Sequence* sequence = nullptr;
  int64_t start = 0;
  int64_t num_tokens = 0;
  // The chunk reaches the sequence's last token, so its logits are sampled this step.
  bool samples = false;
  // Siblings forked off this chunk's sample (parallel sampling): each draws its own first
  // token from a copy of the same logits, then shares the sequence's blocks.
  std::vector<Sequence*> forks;
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  // Copy-on-write block copies the storage must run before the forward.
  std::vector<std::pair<BlockId, BlockId>> block_copies;
  int64_t num_batched_tokens = 0;
  std::vector<SequenceId> preempted;  // preempted during this step's scheduling
  std::vector<RequestId> started;     // requests whose first tokens are in this batch

  bool empty() const { return chunks.empty(); }
  // Rows the sampler draws: each sampling chunk's sequence, then its forks, in chunk order.
  size_t num_samples() const;
};

// What update() did to the sequences it ended this step (a stop token or max_tokens); the
// front ends see the same through the updates.
struct SchedulerUpdate {
  std::vector<SequenceUpdate> updates;
  std::vector<std::unique_ptr<Sequence>> finished;
};

class Scheduler {
 public:
  // `eog_ids`: the tokens that end generation (unless a request ignores them).
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv, std::vector<TokenId> eog_ids = {});

  // Queues a sequence (status waiting, nothing computed; sampling state set). Refused with a
  // clear error when it could never run: longer than max_model_len, or more blocks than the
  // whole pool.
  Status add(std::unique_ptr<Sequence> sequence);
  // The admission check of add(): whether a request of this size could ever run. Reads only
  // the configuration and the pool's size, so any thread may call it.
  Status check_fits(int64_t num_tokens_prompt, int64_t max_tokens) const;

  // Forms the next batch. Sequences listed in the output stay valid until update().
  SchedulerOutput schedule();

  // Records a step's results, `sampled` holding one output per sampled row (see
  // SchedulerOutput::num_samples). The chunks' tokens are now computed (full blocks enter the
  // prefix cache); each sampled sequence gets its new token; forks start; then every sampled
  // sequence is checked for its end (a stop token after min_tokens, or max_tokens), and those
  // that ended are finished. Returns one update per sampled row, forks first, as they were
  // appended.
  SchedulerUpdate update(const SchedulerOutput& output, std::span<const SampleOutput> sampled);

  // Finishes a sequence (any state) with `reason` and returns its blocks to the pool. The
  // sequence object is handed back to the caller; nullptr for an unknown id.
  std::unique_ptr<Sequence> finish(SequenceId id, FinishReason reason);
  // Finishes every sequence of a request, and reports the siblings it had not forked yet
  // as finished too. Empty for an unknown request.
  std::vector<SequenceUpdate> finish_request(RequestId id, FinishReason reason);
  // Finishes sequence `index` of a request (a stop string, found by a front end). Empty for
  // an unknown or finished one.
  std::vector<SequenceUpdate> finish_sequence(RequestId id, int index, FinishReason reason);

  Sequence* find(SequenceId id);
  bool has_request(RequestId id) const { return requests_.contains(id); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  bool try_allocate(Sequence& seq, int64_t num_tokens, SchedulerOutput& out);
  void preempt(Sequence& seq, SchedulerOutput& out);
  void remove_from_queues(SequenceId id);
  void add_chunk(Sequence& seq, int64_t num_tokens, SchedulerOutput& out);
  // Parallel sampling: the siblings of `parent`, as it is before its first token.
  std::vector<Sequence*> make_forks(Sequence& parent);
  // A sibling whose first token was just sampled joins the batch (sharing its parent's
  // blocks) or, when the batch is full, the back of the queue.
  void start_fork(const Sequence& parent, Sequence& child);
  // The update for a sequence that has just gained `sampled.id`, finishing it if it ended.
  SequenceUpdate check_end(Sequence& seq, const SampleOutput& sampled, SchedulerUpdate& result);
  bool is_stop(const SamplingParams& params, TokenId token) const;

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::vector<TokenId> eog_ids_;
  std::unordered_map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::unordered_map<RequestId, std::vector<SequenceId>> requests_;  // live sequences
  std::deque<Sequence*> waiting_;   // arrival order; preempted ones return to the front
  std::vector<Sequence*> running_;  // admission order: the last is preempted first
  int64_t num_preemptions_ = 0;
};

}  // namespace moon
