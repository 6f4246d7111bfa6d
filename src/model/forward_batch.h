// The flat description of one step's work that the paged forward runs: every scheduled
// token of every sequence, in one list. This is the whole PagedAttention contract between
// the engine and the model: where each new token's K/V goes (slot_mapping) and which cached
// blocks each sequence's queries read (block_tables, context_len).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/kv_layout.h"

namespace moon {

struct ForwardBatch {
  std::vector<int32_t> tokens;        // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens]
  std::vector<int64_t> slot_mapping;  // [num_tokens] block * block_size + offset
  // Sequence s owns token rows query_start[s] .. query_start[s+1]-1.
  std::vector<int64_t> query_start;   // [num_seqs + 1]
  std::vector<int64_t> context_len;   // [num_seqs] positions cached after this step
  std::vector<BlockId> block_tables;  // [num_seqs, block_table_stride]
  int64_t block_table_stride = 0;
  // Token rows whose logits are wanted, in output order (usually each sampling sequence's
  // last row).
  std::vector<int64_t> logits_rows;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_len.size()); }
  void clear() {
    tokens.clear();
    positions.clear();
    slot_mapping.clear();
    query_start.assign(1, 0);
    context_len.clear();
    block_tables.clear();
    block_table_stride = 0;
    logits_rows.clear();
  }
};

}  // namespace moon
