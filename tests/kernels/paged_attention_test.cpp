// kv_write and paged_attention against the contiguous reference, per level and cache
// dtype, plus the batch-invariance contract: a query's output bits never depend on what
// else is in the batch, the thread count, the prompt's chunking or the block placement.
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/ref/attention_ref.h"
#include "tensor/half.h"

namespace moon::test {
namespace {

constexpr DType kCacheTypes[] = {DType::F32, DType::F16, DType::BF16};

// One sequence's full history: K and V of every position, and a query for every position
// (a step picks the rows of its new tokens).
struct SeqData {
  int64_t n_ctx = 0;
  std::vector<float> k, v;  // [n_ctx, num_kv_heads * head_dim]
  std::vector<float> q;     // [n_ctx, num_heads * head_dim]
};

SeqData make_seq(std::mt19937& rng, int64_t n_ctx, int64_t kv_dim, int64_t q_dim,
                 float q_range = 2.0f) {
  SeqData s;
  s.n_ctx = n_ctx;
  s.k = random_floats(rng, n_ctx * kv_dim);
  s.v = random_floats(rng, n_ctx * kv_dim);
  s.q = random_floats(rng, n_ctx * q_dim, -q_range, q_range);
  return s;
}

// One layer's paged cache holding every sequence's K and V in randomly scattered blocks.
struct PagedCache {
  KvLayout layout;
  std::vector<uint8_t> k, v;                 // [num_blocks][num_kv_heads][block_size][head_dim]
  std::vector<std::vector<BlockId>> tables;  // per sequence, in position order
};

// Writes the sequences through kv_write, tokens in a random order with padding rows
// (slot -1) mixed in. Unwritten bytes hold NaN in every dtype, so reading one shows.
PagedCache make_cache(std::mt19937& rng, KvLayout layout, const std::vector<SeqData>& seqs) {
  PagedCache c;
  int64_t needed = 0;
  for (const SeqData& s : seqs) needed += (s.n_ctx + layout.block_size - 1) / layout.block_size;
  layout.num_layers = 1;
  layout.num_blocks = needed + 3;
  c.layout = layout;
  c.k.assign(layout.layer_bytes(), 0xFF);
  c.v.assign(layout.layer_bytes(), 0xFF);
  std::vector<BlockId> ids(static_cast<size_t>(layout.num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  size_t next = 0;
  const int64_t kv_dim = layout.num_kv_heads * layout.head_dim;
  std::vector<float> k_rows, v_rows;  // [tokens, kv_dim]
  std::vector<int64_t> slots;         // [tokens]
  for (const SeqData& s : seqs) {
    std::vector<BlockId>& table = c.tables.emplace_back();
    for (int64_t b = 0; b * layout.block_size < s.n_ctx; ++b) table.push_back(ids[next++]);
    std::vector<int64_t> order(static_cast<size_t>(s.n_ctx));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    k_rows.clear(), v_rows.clear(), slots.clear();
    for (int64_t t : order) {
      if (rng() % 4 == 0) {  // padding: garbage that must not land anywhere
        slots.push_back(-1);
        k_rows.insert(k_rows.end(), static_cast<size_t>(kv_dim), NAN);
        v_rows.insert(v_rows.end(), static_cast<size_t>(kv_dim), NAN);
      }
      slots.push_back(table[t / layout.block_size] * layout.block_size + t % layout.block_size);
      k_rows.insert(k_rows.end(), s.k.begin() + t * kv_dim, s.k.begin() + (t + 1) * kv_dim);
      v_rows.insert(v_rows.end(), s.v.begin() + t * kv_dim, s.v.begin() + (t + 1) * kv_dim);
    }
    kernels::kv_write(layout, c.k.data(), c.v.data(), k_rows.data(), v_rows.data(), slots.data(),
                      static_cast<int64_t>(slots.size()));
  }
  return c;
}

float load_cached(const KvLayout& layout, const uint8_t* bytes, int64_t element) {
  if (layout.dtype == DType::F32) {
    float f;
    std::memcpy(&f, bytes + 4 * element, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, bytes + 2 * element, 2);
  return layout.dtype == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

// Sequence `seq`'s cached K (or V) as the reference wants it: [n_ctx, kv_dim] fp32.
std::vector<float> read_back(const PagedCache& c, const std::vector<uint8_t>& bytes, size_t seq,
                             int64_t n_ctx) {
  const KvLayout& l = c.layout;
  std::vector<float> out(static_cast<size_t>(n_ctx * l.num_kv_heads * l.head_dim));
  for (int64_t t = 0; t < n_ctx; ++t) {
    const int64_t slot = c.tables[seq][t / l.block_size] * l.block_size + t % l.block_size;
    for (int64_t h = 0; h < l.num_kv_heads; ++h) {
      for (int64_t d = 0; d < l.head_dim; ++d) {
        out[(t * l.num_kv_heads + h) * l.head_dim + d] =
            load_cached(l, bytes.data(), l.element_offset(slot, h) + d);
      }
    }
  }
  return out;
}

// One sequence's part of a step: its first `context_len` positions are cached and the
// last `num_queries` of them are this step's queries.
struct Step {
  size_t seq;
  int64_t context_len, num_queries;
};

// Gemma's extras: a sliding window and soft-capped scores.
struct Masking {
  int64_t window = 0;
  float softcap = 0.0f;
};

// Runs one paged_attention call over `steps`; returns out, [total queries, q_dim].
std::vector<float> run_batch(const PagedCache& c, const std::vector<SeqData>& seqs,
                             const std::vector<Step>& steps, int64_t num_heads, ThreadPool* pool,
                             Masking masking = {}) {
  const int64_t q_dim = num_heads * c.layout.head_dim;
  int64_t stride = 1;
  for (const Step& s : steps) stride = std::max<int64_t>(stride, c.tables[s.seq].size());
  std::vector<int64_t> query_start{0}, context_len;
  std::vector<BlockId> tables;  // [steps, stride], padded with -1 (never read)
  std::vector<float> q;
  for (const Step& s : steps) {
    query_start.push_back(query_start.back() + s.num_queries);
    context_len.push_back(s.context_len);
    const std::vector<BlockId>& table = c.tables[s.seq];
    tables.insert(tables.end(), table.begin(), table.end());
    tables.resize(tables.size() + stride - table.size(), -1);
    const std::vector<float>& src = seqs[s.seq].q;
    q.insert(q.end(), src.begin() + (s.context_len - s.num_queries) * q_dim,
             src.begin() + s.context_len * q_dim);
  }
  std::vector<float> out(q.size(), NAN);
  kernels::PagedAttentionBatch b;
  b.q = q.data();
  b.out = out.data();
  b.num_heads = num_heads;
  b.scale = 1.0f / std::sqrt(static_cast<float>(c.layout.head_dim));
  b.window = masking.window;
  b.softcap = masking.softcap;
  b.num_seqs = static_cast<int64_t>(steps.size());
  b.query_start = query_start.data();
  b.context_len = context_len.data();
  b.block_tables = tables.data();
  b.block_table_stride = stride;
  b.layout = c.layout;
  b.k_cache = c.k.data();
  b.v_cache = c.v.data();
  kernels::paged_attention(b, pool);
  return out;
}

// The reference's answer for every step's queries, on the cache's dequantized contents.
std::vector<float> run_reference(const PagedCache& c, const std::vector<SeqData>& seqs,
                                 const std::vector<Step>& steps, int64_t num_heads,
                                 Masking masking = {}) {
  const KvLayout& l = c.layout;
  const int64_t q_dim = num_heads * l.head_dim;
  std::vector<float> out;
  for (const Step& s : steps) {
    const std::vector<float> k = read_back(c, c.k, s.seq, s.context_len);
    const std::vector<float> v = read_back(c, c.v, s.seq, s.context_len);
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(s.num_queries * q_dim));
    kernels::ref::attention_ref(
        &seqs[s.seq].q[(s.context_len - s.num_queries) * q_dim], k.data(), v.data(),
        out.data() + at, s.num_queries, s.context_len, num_heads, l.num_kv_heads, l.head_dim,
        1.0f / std::sqrt(static_cast<float>(l.head_dim)), masking.softcap, masking.window);
  }
  return out;
}

KvLayout make_layout(int64_t num_kv_heads, int64_t head_dim, int64_t block_size, DType dtype) {
  KvLayout l;
  l.num_kv_heads = num_kv_heads;
  l.head_dim = head_dim;
  l.block_size = block_size;
  l.dtype = dtype;
  return l;
}

template <typename T>
T pick(std::mt19937& rng, std::initializer_list<T> values) {
  return values.begin()[rng() % values.size()];
}

void expect_bits_equal(const float* a, const float* b, size_t n, const std::string& what) {
  ASSERT_EQ(0, std::memcmp(a, b, n * sizeof(float))) << what;
}

TEST(PagedAttention, MatchesReference) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (int iteration = 0; iteration < 40; ++iteration) {
    const int64_t head_dim = pick<int64_t>(rng, {8, 20, 64, 128});
    const int64_t num_kv_heads = pick<int64_t>(rng, {1, 2});
    const int64_t num_heads = num_kv_heads * pick<int64_t>(rng, {1, 2, 4});
    const int64_t block_size = pick<int64_t>(rng, {1, 8, 16, 32});
    const int64_t num_seqs = 1 + static_cast<int64_t>(rng() % 16);
    const float q_range = pick<float>(rng, {1.0f, 2.0f, 8.0f});  // 8: a peaked softmax
    // Windows that cut inside a tile, at its edge, past every context, and a single key.
    const Masking masking{pick<int64_t>(rng, {0, 0, 0, 1, 37, 64, 100, 1000}),
                          pick<float>(rng, {0.0f, 0.0f, 0.5f, 10.0f})};
    // Keeps the double-precision reference affordable.
    const int64_t max_queries = head_dim >= 64 ? 48 : 300;
    const int64_t q_dim = num_heads * head_dim, kv_dim = num_kv_heads * head_dim;
    std::vector<SeqData> seqs;
    std::vector<Step> steps;
    for (int64_t s = 0; s < num_seqs; ++s) {
      const int64_t n_ctx = 1 + static_cast<int64_t>(rng() % 300);
      const unsigned kind = rng() % 8;
      int64_t queries = 1;  // decode
      if (kind >= 5) queries = 1 + static_cast<int64_t>(rng() % std::min(n_ctx, max_queries));
      if (kind == 7) queries = std::min(n_ctx, max_queries);  // a whole (or final) chunk
      if (kind == 0 && s > 0) queries = 0;  // a sequence with nothing to do this step
      seqs.push_back(make_seq(rng, n_ctx, kv_dim, q_dim, q_range));
      steps.push_back({static_cast<size_t>(s), n_ctx, queries});
    }
    std::shuffle(steps.begin(), steps.end(), rng);
    for (DType dtype : kCacheTypes) {
      const PagedCache cache =
          make_cache(rng, make_layout(num_kv_heads, head_dim, block_size, dtype), seqs);
      const std::vector<float> expected = run_reference(cache, seqs, steps, num_heads, masking);
      for (SimdLevel level : supported_levels()) {
        ScopedLevel scoped(level);
        SCOPED_TRACE("iteration " + std::to_string(iteration) + " " + dtype_str(dtype) +
                     " head_dim=" + std::to_string(head_dim) +
                     " heads=" + std::to_string(num_heads) + "/" + std::to_string(num_kv_heads) +
                     " block_size=" + std::to_string(block_size) +
                     " window=" + std::to_string(masking.window) +
                     " softcap=" + std::to_string(masking.softcap));
        const std::vector<float> out = run_batch(cache, seqs, steps, num_heads, &pool, masking);
        ASSERT_EQ(out.size(), expected.size());
        for (size_t i = 0; i < out.size(); ++i) {
          // Outputs are averages of values in [-1, 1], summed in fp32 over up to 300 keys:
          // rounding leaves about 1e-6 absolute error where the output is near zero.
          ASSERT_NEAR(out[i], expected[i], 1e-5 * std::fabs(expected[i]) + 4e-6) << "i=" << i;
        }
      }
    }
  }
}

TEST(PagedAttention, LargeGroupsSplitAcrossItems) {
  // 40 query heads on one KV head: more than one work item's worth of heads.
  std::mt19937 rng(8);
  ThreadPool pool(3);
  const int64_t num_heads = 40, head_dim = 24;
  std::vector<SeqData> seqs = {make_seq(rng, 70, head_dim, num_heads * head_dim),
                               make_seq(rng, 5, head_dim, num_heads * head_dim)};
  const std::vector<Step> steps = {{0, 70, 9}, {1, 5, 1}};
  const PagedCache cache = make_cache(rng, make_layout(1, head_dim, 16, DType::F16), seqs);
  const std::vector<float> expected = run_reference(cache, seqs, steps, num_heads);
  for (SimdLevel level : supported_levels()) {
    ScopedLevel scoped(level);
    const std::vector<float> out = run_batch(cache, seqs, steps, num_heads, &pool);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], expected[i], 1e-5 * std::fabs(expected[i]) + 4e-6) << "i=" << i;
    }
  }
}

struct InvarianceCase {
  int64_t num_kv_heads, num_heads, head_dim;
  Masking masking;
};

TEST(PagedAttention, BatchInvariant) {
  std::mt19937 rng(9);
  const int64_t prompt = 150;
  ThreadPool pool1(1), pool2(2), pool3(3), pool5(5);
  // Groups of 4 fill the kernels' 4-query register blocks evenly; groups of 3 move every
  // query through blocks of each size depending on what is computed alongside it.
  for (const InvarianceCase& shape :
       {InvarianceCase{2, 8, 64}, InvarianceCase{1, 3, 20}, InvarianceCase{1, 3, 20, {37, 10.0f}},
        InvarianceCase{2, 8, 64, {64, 0.0f}}}) {
    const Masking masking = shape.masking;
    const int64_t q_dim = shape.num_heads * shape.head_dim;
    const int64_t kv_dim = shape.num_kv_heads * shape.head_dim;
    // Sequence 0 is the one watched; the others keep it company.
    std::vector<SeqData> seqs;
    for (int64_t n_ctx : {prompt, int64_t{90}, int64_t{1}, int64_t{257}, int64_t{40}}) {
      seqs.push_back(make_seq(rng, n_ctx, kv_dim, q_dim));
    }
    for (DType dtype : {DType::F32, DType::F16}) {
      const PagedCache cache =
          make_cache(rng, make_layout(shape.num_kv_heads, shape.head_dim, 16, dtype), seqs);
      // The same contents in smaller blocks, placed elsewhere.
      const PagedCache other =
          make_cache(rng, make_layout(shape.num_kv_heads, shape.head_dim, 8, dtype), seqs);
      for (SimdLevel level : supported_levels()) {
        ScopedLevel scoped(level);
        SCOPED_TRACE(dtype_str(dtype) + " heads=" + std::to_string(shape.num_heads));
        // The whole prompt at once, alone, on one thread: the bits everything must match.
        const std::vector<float> alone =
            run_batch(cache, seqs, {{0, prompt, prompt}}, shape.num_heads, &pool1, masking);
        // Token by token, as decode steps.
        for (int64_t i = 0; i < prompt; ++i) {
          const std::vector<float> out =
              run_batch(cache, seqs, {{0, i + 1, 1}}, shape.num_heads, &pool2, masking);
          expect_bits_equal(out.data(), &alone[i * q_dim], q_dim, "decode at " + std::to_string(i));
        }
        // In uneven chunks, each in a batch with other sequences' work, on various pools.
        const int64_t chunks[] = {7, 64, 1, 33, 45};
        ThreadPool* pools[] = {&pool2, &pool3, &pool5, &pool1, &pool2};
        int64_t done = 0;
        for (int c = 0; c < 5; ++c) {
          const int64_t end = done + chunks[c];
          const std::vector<Step> steps = {{1, 90, c == 0 ? 90 : 1},
                                           {3, 257, 1 + 20 * c},
                                           {0, end, chunks[c]},
                                           {2, 1, 1},
                                           {4, 40, 3}};
          const std::vector<float> out =
              run_batch(cache, seqs, steps, shape.num_heads, pools[c], masking);
          const int64_t first = steps[0].num_queries + steps[1].num_queries;  // its first row
          expect_bits_equal(&out[first * q_dim], &alone[done * q_dim], chunks[c] * q_dim,
                            "chunk " + std::to_string(c));
          done = end;
        }
        // Other block placement and block size, with the sequence last in a mixed batch.
        const std::vector<float> moved =
            run_batch(other, seqs, {{3, 200, 50}, {1, 90, 1}, {0, prompt, prompt}}, shape.num_heads,
                      &pool3, masking);
        expect_bits_equal(&moved[51 * q_dim], alone.data(), prompt * q_dim, "other placement");
      }
    }
  }
}

TEST(KvWrite, RoundsLikeHalfConversionsAndSkipsPadding) {
  std::mt19937 rng(10);
  // Ties (to even, both ways), subnormals, overflow, infinities and NaNs (quiet, signaling,
  // with payload) next to ordinary values.
  const float specials[] = {
      0.0f,
      -0.0f,
      1.0f + 0x1p-11f,
      1.0f + 3 * 0x1p-11f,
      1.0f + 0x1p-8f,
      1.0f + 3 * 0x1p-8f,
      0x1p-20f,
      -0x1p-24f,
      0x1p-25f,
      3e-5f,
      1e-40f,
      65504.0f,
      65520.0f,
      -70000.0f,
      3e38f,
      INFINITY,
      -INFINITY,
      std::bit_cast<float>(0x7FC00000u),
      std::bit_cast<float>(0xFF812345u),
      std::bit_cast<float>(0x7F800001u),
  };
  for (SimdLevel level : supported_levels()) {
    ScopedLevel scoped(level);
    for (DType dtype : kCacheTypes) {
      for (int64_t head_dim : {8, 13, 64, 128}) {
        SCOPED_TRACE(dtype_str(dtype) + " head_dim=" + std::to_string(head_dim));
        KvLayout layout = make_layout(3, head_dim, 4, dtype);
        layout.num_blocks = 5;
        const int64_t kv_dim = layout.num_kv_heads * head_dim, tokens = 9;
        std::vector<float> k = random_floats(rng, tokens * kv_dim, -100.0f, 100.0f);
        std::vector<float> v = random_floats(rng, tokens * kv_dim, -1e-3f, 1e-3f);
        for (size_t i = 0; i < k.size(); i += 3) k[i] = specials[(i / 3) % std::size(specials)];
        const std::vector<int64_t> slots = {7, -1, 0, 19, 3, -1, 12, 13, 5};
        std::vector<uint8_t> k_cache(layout.layer_bytes(), 0xA5),
            v_cache(layout.layer_bytes(), 0xA5);
        kernels::kv_write(layout, k_cache.data(), v_cache.data(), k.data(), v.data(), slots.data(),
                          tokens);
        std::vector<uint8_t> k_expected(layout.layer_bytes(), 0xA5), v_expected = k_expected;
        const size_t bytes = layout.element_bytes();
        for (int64_t t = 0; t < tokens; ++t) {
          if (slots[t] < 0) continue;
          for (int64_t h = 0; h < layout.num_kv_heads; ++h) {
            for (int64_t d = 0; d < head_dim; ++d) {
              const size_t at = static_cast<size_t>(layout.element_offset(slots[t], h) + d) * bytes;
              for (auto [src, dst] : {std::pair{&k, &k_expected}, std::pair{&v, &v_expected}}) {
                const float f = (*src)[t * kv_dim + h * head_dim + d];
                if (dtype == DType::F32) {
                  std::memcpy(dst->data() + at, &f, 4);
                } else {
                  const uint16_t h16 = dtype == DType::F16 ? fp32_to_fp16(f) : fp32_to_bf16(f);
                  std::memcpy(dst->data() + at, &h16, 2);
                }
              }
            }
          }
        }
        ASSERT_EQ(k_cache, k_expected);
        ASSERT_EQ(v_cache, v_expected);
      }
    }
  }
}

}  // namespace
}  // namespace moon::test
