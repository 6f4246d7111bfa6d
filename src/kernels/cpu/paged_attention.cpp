#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/cpu/paged_attention_impl.h"
#include "util/check.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"

namespace moon::kernels {
namespace {

using detail::AttendTask;
using detail::kMaxItemQueries;
using detail::PagedAttentionImpl;

const PagedAttentionImpl& level_impl() {
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      return detail::paged_attention_avx512();
    case SimdLevel::kAvx2:
      return detail::paged_attention_avx2();
    case SimdLevel::kScalar:
      break;
  }
  return detail::paged_attention_scalar();
}

void check_layout(const char* function, const KvLayout& layout) {
  MOON_CHECK(
      layout.dtype == DType::F32 || layout.dtype == DType::F16 || layout.dtype == DType::BF16,
      "{}: unsupported KV cache dtype {}", function, dtype_name(layout.dtype));
  MOON_CHECK(layout.num_kv_heads > 0 && layout.head_dim > 0 && layout.block_size > 0,
             "{}: empty KV layout", function);
}

// Queries of tokens [token_begin, token_end) of one sequence (counted from its first
// query row), query heads [head_begin, head_end) of the group reading KV head kv_head.
struct WorkItem {
  int64_t cost;  // query-key pairs, for scheduling the largest first
  int64_t seq, kv_head, head_begin, head_end, token_begin, token_end;
};

void check_batch(const PagedAttentionBatch& b) {
  static constexpr const char* kName = "paged_attention";
  check_layout(kName, b.layout);
  MOON_CHECK(b.window >= 0 && b.softcap >= 0.0f, "{}: negative window or soft cap", kName);
  MOON_CHECK(b.num_heads > 0 && b.num_heads % b.layout.num_kv_heads == 0,
             "{}: num_heads {} is not a positive multiple of num_kv_heads", kName, b.num_heads);
  for (int64_t s = 0; s < b.num_seqs; ++s) {
    const int64_t queries = b.query_start[s + 1] - b.query_start[s];
    MOON_CHECK(queries >= 0, "{}: query_start decreases at sequence {}", kName, s);
    MOON_CHECK(queries <= b.context_len[s], "{}: more queries than context in sequence {}", kName,
               s);
    const int64_t blocks = (b.context_len[s] + b.layout.block_size - 1) / b.layout.block_size;
    MOON_CHECK(queries == 0 || blocks <= b.block_table_stride,
               "{}: block table too short for sequence {}", kName, s);
  }
}

// Splits the batch into items of at most kMaxItemQueries queries that share one KV head,
// largest first so that the last items to finish are small.
void plan(const PagedAttentionBatch& b, std::vector<WorkItem>& items) {
  items.clear();
  const int64_t group = b.num_heads / b.layout.num_kv_heads;
  const int64_t heads_per_item = std::min(group, kMaxItemQueries);
  const int64_t tokens_per_item = kMaxItemQueries / heads_per_item;
  for (int64_t s = 0; s < b.num_seqs; ++s) {
    const int64_t queries = b.query_start[s + 1] - b.query_start[s];
    const int64_t first_keys = b.context_len[s] - queries + 1;  // keys of its first query
    for (int64_t t0 = 0; t0 < queries; t0 += tokens_per_item) {
      const int64_t t1 = std::min(queries, t0 + tokens_per_item);
      // sum over t in [t0, t1) of first_keys + t, or of the window where it is shorter
      int64_t keys = (t1 - t0) * first_keys + (t0 + t1 - 1) * (t1 - t0) / 2;
      if (b.window > 0) {
        keys = 0;
        for (int64_t t = t0; t < t1; ++t) keys += std::min(first_keys + t, b.window);
      }
      for (int64_t g = 0; g < b.layout.num_kv_heads; ++g) {
        for (int64_t h0 = 0; h0 < group; h0 += heads_per_item) {
          const int64_t h1 = std::min(group, h0 + heads_per_item);
          items.push_back({keys * (h1 - h0), s, g, h0, h1, t0, t1});
        }
      }
    }
  }
  std::sort(items.begin(), items.end(),
            [](const WorkItem& x, const WorkItem& y) { return x.cost > y.cost; });
}

void run_item(const PagedAttentionBatch& b, const PagedAttentionImpl& impl, const WorkItem& item) {
  const KvLayout& layout = b.layout;
  const int64_t hd = layout.head_dim, q_dim = b.num_heads * hd;
  const int64_t group = b.num_heads / layout.num_kv_heads;
  const int64_t row0 = b.query_start[item.seq];
  const int64_t queries = b.query_start[item.seq + 1] - row0;
  const int64_t ctx = b.context_len[item.seq];

  AttendTask task;
  task.dtype = layout.dtype;
  task.head_dim = hd;
  task.block_size = layout.block_size;
  task.scale = b.scale;
  task.softcap = b.softcap;
  task.k_cache = static_cast<const uint8_t*>(b.k_cache);
  task.v_cache = static_cast<const uint8_t*>(b.v_cache);
  task.block_table = b.block_tables + item.seq * b.block_table_stride;
  task.block_bytes = layout.block_bytes();
  task.row_bytes = static_cast<size_t>(hd) * layout.element_bytes();
  task.head_bytes = static_cast<size_t>(item.kv_head * layout.block_size) * task.row_bytes;
  task.num_queries = 0;
  for (int64_t t = item.token_begin; t < item.token_end; ++t) {
    for (int64_t h = item.head_begin; h < item.head_end; ++h) {
      const int64_t offset = (row0 + t) * q_dim + (item.kv_head * group + h) * hd;
      task.q[task.num_queries] = b.q + offset;
      task.out[task.num_queries] = b.out + offset;
      const int64_t keys = ctx - queries + t + 1;
      task.num_keys[task.num_queries] = keys;
      task.first_key[task.num_queries] = b.window > 0 ? std::max<int64_t>(0, keys - b.window) : 0;
      ++task.num_queries;
    }
  }
  impl.attend(task);
}

}  // namespace

void kv_write(const KvLayout& layout, void* k_layer, void* v_layer, const float* k_new,
              const float* v_new, const int64_t* slot_mapping, int64_t num_tokens) {
  check_layout("kv_write", layout);
  const PagedAttentionImpl& impl = level_impl();
  const int64_t hd = layout.head_dim, kv_dim = layout.num_kv_heads * hd;
  const int64_t num_slots = layout.num_blocks * layout.block_size;
  const size_t element_bytes = layout.element_bytes();
  auto* k_bytes = static_cast<uint8_t*>(k_layer);
  auto* v_bytes = static_cast<uint8_t*>(v_layer);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;  // padding
    MOON_CHECK(slot < num_slots, "kv_write: slot {} past the end of the cache", slot);
    for (int64_t h = 0; h < layout.num_kv_heads; ++h) {
      const size_t at = static_cast<size_t>(layout.element_offset(slot, h)) * element_bytes;
      impl.store_row(layout.dtype, k_new + t * kv_dim + h * hd, k_bytes + at, hd);
      impl.store_row(layout.dtype, v_new + t * kv_dim + h * hd, v_bytes + at, hd);
    }
  }
}

void paged_attention(const PagedAttentionBatch& batch, ThreadPool* pool) {
  check_batch(batch);
  const PagedAttentionImpl& impl = level_impl();
  // Reused across calls (one per layer per step) so that planning allocates nothing once
  // warm. Being thread_local, it must reach the workers through `list`, not by name.
  thread_local std::vector<WorkItem> items;
  plan(batch, items);
  const WorkItem* list = items.data();
  const int64_t n = static_cast<int64_t>(items.size());
  if (pool == nullptr || pool->num_threads() == 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) run_item(batch, impl, list[i]);
    return;
  }
  // Items differ widely in cost (a long prefill chunk next to short decodes), so each
  // thread claims the next item as it frees up rather than taking a fixed share. Which
  // thread computes an item never changes its result.
  std::atomic<int64_t> next{0};
  pool->parallel_for(std::min<int64_t>(n, pool->num_threads()), [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      run_item(batch, impl, list[i]);
    }
  });
}

}  // namespace moon::kernels
