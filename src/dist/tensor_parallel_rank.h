// A tensor-parallel rank other than 0: it serves no HTTP and schedules nothing. It holds
// its slice of the weights (shard.h) and of the KV cache (its KV heads of every block), and
// runs each step plan rank 0 broadcasts (step_plan.h) through the same paged forward,
// taking part in its all-reduces and sending its slice of the logits to rank 0.
#pragma once

#include <cstdint>

#include "dist/communicator.h"
#include "model/model.h"
#include "model/paged_forward.h"
#include "tensor/kv_layout.h"
#include "util/result.h"

namespace moon {

// Rank 0's KV layout on every rank: rank 0 decides the number of blocks (its scheduler
// hands them out), every rank holds the same blocks of its own heads.
Status share_kv_layout(Communicator& comm, KvLayout* layout);

// Runs plans until rank 0 says stop (success) or stops answering (an error after the
// communicator's timeout: rank 0 sends a heartbeat every second while idle).
Status run_tensor_parallel_rank(const Model& shard, ForwardRanks ranks, const KvLayout& layout,
                                int64_t max_num_batched_tokens, int num_threads);

}  // namespace moon
