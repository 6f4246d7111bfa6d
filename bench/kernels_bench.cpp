// matmul throughput per weight dtype, against the reference kernel.
//
// Decode (M = 1) reads every weight once per token and is memory-bound, so the figure of
// merit is GB/s of weights read (bytes_per_second); prefill (M = 32) reuses each weight
// row across activation rows, so GFLOP/s shows its compute. Run the matmul_ref entries to
// get the naive baseline for the speedup ratio. MOON_CPU=scalar|avx2 forces a lower level.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/ref/ref_kernels.h"
#include "tensor/convert.h"
#include "util/cpu_features.h"
#include "util/simd/target.h"
#include "util/thread_pool.h"

namespace {

using moon::DType;

constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

struct Weights {
  std::vector<uint8_t> bytes;
  moon::WeightView view;
};

// Weights are made once per (dtype, N, K) and kept: quantizing 45M floats is slow.
const Weights& weights(DType type, int64_t n_dim, int64_t k_dim) {
  static std::map<std::tuple<DType, int64_t, int64_t>, std::unique_ptr<Weights>> cache;
  auto& slot = cache[{type, n_dim, k_dim}];
  if (!slot) {
    slot = std::make_unique<Weights>();
    const size_t row_bytes = moon::dtype_row_bytes(type, static_cast<size_t>(k_dim));
    slot->bytes.resize(row_bytes * static_cast<size_t>(n_dim));
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(k_dim));
    for (int64_t r = 0; r < n_dim; ++r) {
      for (float& f : row) f = dist(rng);
      moon::quantize_row(type, row.data(), slot->bytes.data() + r * row_bytes, k_dim);
    }
    slot->view = moon::make_weight_view(type, slot->bytes.data(), n_dim, k_dim);
  }
  return *slot;
}

std::vector<float> activations(int64_t m, int64_t k_dim) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k_dim));
  for (float& f : x) f = dist(rng);
  return x;
}

void report(benchmark::State& state, const Weights& w, int64_t m, bool reference) {
  const double bytes = static_cast<double>(w.bytes.size());
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(
      2.0 * static_cast<double>(m * w.view.rows * w.view.cols) * state.iterations() * 1e-9,
      benchmark::Counter::kIsRate);
  state.SetLabel(
      std::string(moon::dtype_name(w.view.type)) + " " +
      (reference ? std::string("ref") : std::string(moon::simd_level_name(moon::simd_level()))));
}

// Args: dtype index, M, N, K, threads.
void BM_matmul(benchmark::State& state) {
  const DType type = kTypes[state.range(0)];
  const int64_t m = state.range(1), n_dim = state.range(2), k_dim = state.range(3);
  moon::ThreadPool pool(static_cast<int>(state.range(4)));
  const Weights& w = weights(type, n_dim, k_dim);
  const std::vector<float> x = activations(m, k_dim);
  std::vector<float> y(static_cast<size_t>(m * n_dim));
  for (auto _ : state) {
    moon::kernels::matmul(x.data(), m, w.view, y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  report(state, w, m, false);
}

// Args: dtype index, M, N, K. Single-threaded by design: it is the naive baseline.
void BM_matmul_ref(benchmark::State& state) {
  const DType type = kTypes[state.range(0)];
  const int64_t m = state.range(1), n_dim = state.range(2), k_dim = state.range(3);
  const Weights& w = weights(type, n_dim, k_dim);
  const std::vector<float> x = activations(m, k_dim);
  std::vector<float> y(static_cast<size_t>(m * n_dim));
  for (auto _ : state) {
    moon::kernels::ref::matmul_ref(x.data(), m, w.view, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  report(state, w, m, true);
}

void matmul_args(benchmark::internal::Benchmark* b) {
  const int threads = moon::ThreadPool::default_num_threads();
  for (int t = 0; t < 5; ++t) {
    for (int64_t m : {1, 32}) {
      for (auto [n_dim, k_dim] : {std::pair<int64_t, int64_t>{4096, 4096}, {11008, 4096}}) {
        b->Args({t, m, n_dim, k_dim, 1});
        if (threads > 1) b->Args({t, m, n_dim, k_dim, threads});
      }
    }
  }
}

void matmul_ref_args(benchmark::internal::Benchmark* b) {
  for (int t = 0; t < 5; ++t) {
    for (int64_t m : {1, 32}) b->Args({t, m, 4096, 4096});
  }
}

BENCHMARK(BM_matmul)
    ->Apply(matmul_args)
    ->ArgNames({"type", "M", "N", "K", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_ref)
    ->Apply(matmul_ref_args)
    ->ArgNames({"type", "M", "N", "K"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

// The per-token element-wise kernels, for scale: they should be noise next to matmul.
void BM_rmsnorm(benchmark::State& state) {
  const int64_t dim = state.range(0);
  const std::vector<float> x = activations(1, dim), w = activations(1, dim);
  std::vector<float> out(static_cast<size_t>(dim));
  for (auto _ : state) {
    moon::kernels::rmsnorm(x.data(), w.data(), out.data(), 1, dim, 1e-5f, nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * dim * 12);
}
BENCHMARK(BM_rmsnorm)->Arg(4096);

void BM_silu_mul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> g = activations(1, n), u = activations(1, n);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    moon::kernels::silu_mul(g.data(), u.data(), out.data(), n, nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
}
BENCHMARK(BM_silu_mul)->Arg(11008);

}  // namespace

BENCHMARK_MAIN();
