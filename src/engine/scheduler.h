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
#include <unordered_map>
#include <vector>

#include "engine/sequence.h"
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
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  // Copy-on-write block copies the storage must run before the forward.
  std::vector<std::pair<BlockId, BlockId>> block_copies;
  int64_t num_batched_tokens = 0;
  std::vector<SequenceId> preempted;  // preempted during this step's scheduling

  bool empty() const { return chunks.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv);

  // Queues a sequence (status waiting, nothing computed). Refused with a clear error when
  // it could never run: longer than max_model_len, or more blocks than the whole pool.
  Status add(std::unique_ptr<Sequence> sequence);
  // The admission check of add(): whether a request of this size could ever run. Reads only
  // the configuration and the pool's size, so any thread may call it.
  Status check_fits(int64_t num_tokens_prompt, int64_t max_tokens) const;

  // Forms the next batch. Sequences listed in the output stay valid until update().
  SchedulerOutput schedule();

  // Records a step's results: the chunks' tokens are now computed (full blocks enter the
  // prefix cache), and each sampling chunk's sequence gets its new token
  // (`sampled[i]` for chunks[i]; ignored for chunks that do not sample).
  void update(const SchedulerOutput& output, const std::vector<TokenId>& sampled);

  // Finishes a sequence (any state) with `reason` and returns its blocks to the pool. The
  // sequence object is handed back to the caller; nullptr for an unknown id.
  std::unique_ptr<Sequence> finish(SequenceId id, FinishReason reason);

  // Starts `child` as a copy of running sequence `parent` (parallel sampling). Forks count
  // against max_num_seqs like any sequence: with room in the batch the child shares all the
  // parent's blocks and runs from the next step on; without, it waits at the back of the
  // queue and is admitted as room frees up.
  Status fork(SequenceId parent, std::unique_ptr<Sequence> child);

  Sequence* find(SequenceId id);
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  bool try_allocate(Sequence& seq, int64_t num_tokens, SchedulerOutput& out);
  void preempt(Sequence& seq, SchedulerOutput& out);
  void remove_from_queues(SequenceId id);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::unordered_map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::deque<Sequence*> waiting_;   // arrival order; preempted ones return to the front
  std::vector<Sequence*> running_;  // admission order: the last is preempted first
  int64_t num_preemptions_ = 0;
};

}  // namespace moon
