#include "dist/tensor_parallel_rank.h"

#include <cstring>

#include "dist/step_plan.h"
#include "kv/kv_storage.h"
#include "util/logging.h"
#include "util/thread_pool.h"

namespace moon {

Status share_kv_layout(Communicator& comm, KvLayout* layout) {
  std::vector<uint8_t> bytes(sizeof(KvLayout));
  std::memcpy(bytes.data(), layout, sizeof(KvLayout));
  MOON_TRY(comm.broadcast(&bytes));
  if (bytes.size() != sizeof(KvLayout)) return make_error("tensor parallel: bad KV layout message");
  const KvLayout mine = *layout;
  std::memcpy(layout, bytes.data(), sizeof(KvLayout));
  if (layout->num_kv_heads != mine.num_kv_heads || layout->head_dim != mine.head_dim ||
      layout->num_layers != mine.num_layers) {
    return make_error("tensor parallel: rank {} has a different model slice than rank 0",
                      comm.rank());
  }
  return Status::success();
}

Status run_tensor_parallel_rank(const Model& shard, ForwardRanks ranks, const KvLayout& layout,
                                int64_t max_num_batched_tokens, int num_threads) {
  Communicator& comm = *ranks.comm;
  MOON_ASSIGN_OR_RETURN(KvStorage storage, KvStorage::create(layout));
  ThreadPool pool(num_threads);
  PagedForward forward(shard, &storage, max_num_batched_tokens, &pool, std::move(ranks));
  spdlog::info("tensor-parallel rank {} of {} ready: {} KV heads of {} blocks ({:.1f} MiB)",
               comm.rank(), comm.size(), layout.num_kv_heads, layout.num_blocks,
               2.0 * layout.num_layers * layout.layer_bytes() / (1 << 20));
  std::vector<uint8_t> bytes;
  StepPlan plan;
  for (;;) {
    MOON_TRY(comm.broadcast(&bytes));
    MOON_TRY(decode_step_plan(bytes, &plan));
    if (plan.kind == StepPlan::Kind::kStop) return Status::success();
    if (plan.kind == StepPlan::Kind::kHeartbeat) continue;
    storage.copy_blocks(plan.block_copies);
    if (plan.batch.num_tokens() == 0) continue;
    // A batch the forward refuses is refused identically on rank 0, before any collective;
    // a failed collective shows again at the next broadcast.
    if (Status status = forward.forward(plan.batch, nullptr); !status.ok()) {
      spdlog::error("tensor-parallel rank {}: {}", comm.rank(), status.error().message);
    }
  }
}

}  // namespace moon
