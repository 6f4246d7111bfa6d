// Decode attention over the paged KV cache: every sequence in the batch has one new query
// token and reads its whole context's K and V, so the step is bound by memory and the
// figure of merit is GB/s of K and V read (bytes_per_second). Llama 3 8B shapes: 32 query
// heads over 8 KV heads of 128. The attention_ref entries are the naive baseline (one
// thread, double precision, over a contiguous fp32 cache). MOON_CPU=scalar|avx2 forces a
// lower level.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/paged_attention.h"
#include "kernels/ref/attention_ref.h"
#include "tensor/half.h"
#include "util/thread_pool.h"

namespace {

using moon::BlockId;
using moon::DType;

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockSize = 16;
constexpr int64_t kQDim = kHeads * kHeadDim, kKvDim = kKvHeads * kHeadDim;

// Values in [-1, 1) from the index alone: filling a gigabyte with a real RNG takes seconds.
float pattern(uint64_t i) {
  i *= 0x9E3779B97F4A7C15ull;
  return static_cast<float>(static_cast<int64_t>(i >> 40) - (int64_t{1} << 23)) * 0x1p-23f;
}

// One decode step's inputs: `batch` sequences of `ctx` cached tokens in shuffled blocks.
struct DecodeSetup {
  DType dtype;
  int64_t batch = 0, ctx = 0;
  moon::KvLayout layout;
  std::vector<uint8_t> k, v;    // [num_blocks][kKvHeads][kBlockSize][kHeadDim]
  std::vector<BlockId> tables;  // [batch, blocks per sequence]
  std::vector<int64_t> query_start, context_len;
  std::vector<float> q, out;  // [batch, kQDim]
};

// Only the latest setup is kept: the largest is a gigabyte.
DecodeSetup& decode_setup(DType dtype, int64_t batch, int64_t ctx) {
  static std::unique_ptr<DecodeSetup> s;
  if (s && s->dtype == dtype && s->batch == batch && s->ctx == ctx) return *s;
  s.reset();
  s = std::make_unique<DecodeSetup>();
  s->dtype = dtype, s->batch = batch, s->ctx = ctx;
  const int64_t blocks_per_seq = (ctx + kBlockSize - 1) / kBlockSize;
  moon::KvLayout& l = s->layout;
  l.num_layers = 1, l.num_kv_heads = kKvHeads, l.head_dim = kHeadDim;
  l.block_size = kBlockSize, l.num_blocks = batch * blocks_per_seq, l.dtype = dtype;
  s->k.resize(l.layer_bytes());
  s->v.resize(l.layer_bytes());
  const size_t elements = l.layer_bytes() / l.element_bytes();
  for (size_t i = 0; i < elements; ++i) {
    const float kf = pattern(2 * i), vf = pattern(2 * i + 1);
    if (dtype == DType::F32) {
      std::memcpy(&s->k[4 * i], &kf, 4);
      std::memcpy(&s->v[4 * i], &vf, 4);
    } else {
      const uint16_t kh = moon::fp32_to_fp16(kf), vh = moon::fp32_to_fp16(vf);
      std::memcpy(&s->k[2 * i], &kh, 2);
      std::memcpy(&s->v[2 * i], &vh, 2);
    }
  }
  s->tables.resize(static_cast<size_t>(l.num_blocks));
  std::iota(s->tables.begin(), s->tables.end(), 0);
  std::shuffle(s->tables.begin(), s->tables.end(), std::mt19937(1));
  for (int64_t b = 0; b <= batch; ++b) s->query_start.push_back(b);
  s->context_len.assign(static_cast<size_t>(batch), ctx);
  s->q.resize(static_cast<size_t>(batch * kQDim));
  for (size_t i = 0; i < s->q.size(); ++i) s->q[i] = pattern(i + 12345);
  s->out.resize(s->q.size());
  return *s;
}

moon::ThreadPool& pool(int threads) {
  static moon::ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

int64_t kv_bytes_read(int64_t batch, int64_t ctx, size_t element_bytes) {
  return 2 * batch * ctx * kKvDim * static_cast<int64_t>(element_bytes);
}

// Args: batch, context, cache dtype (1 = F16, 0 = F32), threads.
void BM_PagedAttentionDecode(benchmark::State& state) {
  const int64_t batch = state.range(0), ctx = state.range(1);
  const DType dtype = state.range(2) == 1 ? DType::F16 : DType::F32;
  DecodeSetup& s = decode_setup(dtype, batch, ctx);
  moon::kernels::PagedAttentionBatch b;
  b.q = s.q.data();
  b.out = s.out.data();
  b.num_heads = kHeads;
  b.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  b.num_seqs = batch;
  b.query_start = s.query_start.data();
  b.context_len = s.context_len.data();
  b.block_tables = s.tables.data();
  b.block_table_stride = (ctx + kBlockSize - 1) / kBlockSize;
  b.layout = s.layout;
  b.k_cache = s.k.data();
  b.v_cache = s.v.data();
  moon::ThreadPool& p = pool(static_cast<int>(state.range(3)));
  for (auto _ : state) {
    moon::kernels::paged_attention(b, &p);
    benchmark::DoNotOptimize(s.out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kv_bytes_read(batch, ctx, s.layout.element_bytes()));
}

// Args: batch, context. Each sequence has its own contiguous fp32 K and V.
void BM_AttentionRefDecode(benchmark::State& state) {
  const int64_t batch = state.range(0), ctx = state.range(1);
  const size_t seq_elements = static_cast<size_t>(ctx * kKvDim);
  std::vector<float> k(seq_elements * batch), v(k.size()), q(static_cast<size_t>(kQDim));
  std::vector<float> out(q.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = pattern(2 * i), v[i] = pattern(2 * i + 1);
  for (size_t i = 0; i < q.size(); ++i) q[i] = pattern(i + 12345);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  for (auto _ : state) {
    for (int64_t s = 0; s < batch; ++s) {
      moon::kernels::ref::attention_ref(q.data(), &k[s * seq_elements], &v[s * seq_elements],
                                        out.data(), 1, ctx, kHeads, kKvHeads, kHeadDim, scale);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kv_bytes_read(batch, ctx, 4));
}

void paged_args(benchmark::internal::Benchmark* b) {
  for (int64_t dtype : {1, 0}) {
    for (int64_t batch : {1, 16, 64}) {
      for (int64_t ctx : {512, 2048}) {
        for (int64_t threads : {1, 2}) b->Args({batch, ctx, dtype, threads});
      }
    }
  }
}

}  // namespace

BENCHMARK(BM_PagedAttentionDecode)
    ->ArgNames({"batch", "ctx", "f16", "threads"})
    ->Apply(paged_args)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionRefDecode)
    ->ArgNames({"batch", "ctx"})
    ->ArgsProduct({{1, 16, 64}, {512, 2048}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

BENCHMARK_MAIN();
