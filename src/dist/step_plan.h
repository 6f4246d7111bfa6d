// What rank 0 sends every other rank each step: the KV block copies to make and the flat
// batch to run (tokens, positions, slot mapping, block tables...), or a heartbeat while it
// is idle (so a rank whose rank 0 died notices), or the order to stop. The ranks run
// exactly this; they schedule nothing themselves.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "model/forward_batch.h"
#include "util/result.h"

namespace moon {

struct StepPlan {
  enum class Kind : uint8_t { kStep = 1, kHeartbeat = 2, kStop = 3 };
  Kind kind = Kind::kStep;
  std::vector<std::pair<BlockId, BlockId>> block_copies;  // (src, dst), in order
  ForwardBatch batch;
};

void encode_step_plan(StepPlan::Kind kind, std::span<const std::pair<BlockId, BlockId>> copies,
                      const ForwardBatch& batch, std::vector<uint8_t>* out);
// An error for bytes that are not a whole plan (the forward checks the batch's contents).
Status decode_step_plan(std::span<const uint8_t> bytes, StepPlan* plan);

}  // namespace moon
