// Tensor parallelism in one process: ranks as threads (thread_communicator.h) run the
// sharded paged forward, and rank 0's logits must match the whole model's forward. Also the
// shard plan's arithmetic and refusals, and the step plan's wire format.
#include "dist/shard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "common/test_data.h"
#include "dist/step_plan.h"
#include "dist/thread_communicator.h"
#include "kv/kv_storage.h"
#include "model/paged_forward.h"

namespace moon {
namespace {

ModelHparams shape(int64_t heads, int64_t kv_heads, int64_t ff, int64_t vocab) {
  return {.n_vocab = vocab, .n_ff = ff, .n_head = heads, .n_head_kv = kv_heads, .head_dim = 8};
}

TEST(ShardPlan, SplitsHeadsUnitsAndVocabularyIntoContiguousRanges) {
  const ModelHparams hp = shape(8, 4, 172, 513);
  int64_t vocab = 0;
  for (int r = 0; r < 2; ++r) {
    auto plan = plan_shard(hp, {}, r, 2);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    EXPECT_EQ(plan->head_begin, 4 * r);
    EXPECT_EQ(plan->num_heads, 4);
    EXPECT_EQ(plan->kv_head_begin, 2 * r);
    EXPECT_EQ(plan->num_kv_heads, 2);
    EXPECT_EQ(plan->ff_begin, 86 * r);
    EXPECT_EQ(plan->vocab_begin, vocab);
    vocab += plan->vocab_counts[r];
  }
  EXPECT_EQ(vocab, 513);  // the odd row goes to rank 0
}

TEST(ShardPlan, ReplicatesKvHeadsWhenThereAreFewerThanRanks) {
  // 8 query heads over 4 ranks, 2 KV heads: ranks 0-1 read KV head 0, ranks 2-3 head 1.
  for (int r = 0; r < 4; ++r) {
    auto plan = plan_shard(shape(8, 2, 64, 100), {}, r, 4);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    EXPECT_EQ(plan->num_kv_heads, 1);
    EXPECT_EQ(plan->kv_head_begin, r / 2) << r;
  }
}

TEST(ShardPlan, RefusesWhatDoesNotDivide) {
  auto heads = plan_shard(shape(6, 6, 64, 100), {}, 0, 4);
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.error().message.find("6 attention heads"), std::string::npos);
  auto kv = plan_shard(shape(12, 3, 64, 100), {}, 0, 2);  // 3 KV heads over 2 ranks
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.error().message.find("3 KV heads"), std::string::npos);
  auto ff = plan_shard(shape(8, 8, 63, 100), {}, 0, 2);
  ASSERT_FALSE(ff.ok());
  EXPECT_NE(ff.error().message.find("feed-forward width 63"), std::string::npos);

  // A Q8_0 ffn_down of 96 columns splits into 48 per rank: not whole 32-value blocks.
  ModelWeights w;
  w.layers.resize(1);
  w.layers[0].wo = make_weight_view(DType::F32, nullptr, 64, 64);
  w.layers[0].w_down = make_weight_view(DType::Q8_0, nullptr, 64, 96);
  auto blocks = plan_shard(shape(8, 8, 96, 100), w, 0, 2);
  ASSERT_FALSE(blocks.ok());
  EXPECT_NE(blocks.error().message.find("ffn_down is Q8_0"), std::string::npos)
      << blocks.error().message;
}

TEST(StepPlan, RoundTripsAndRefusesEveryTruncation) {
  ForwardBatch b;
  b.clear();
  b.tokens = {1, 403, 407};
  b.positions = {0, 1, 2};
  b.slot_mapping = {32, 33, 34};
  b.query_start = {0, 3};
  b.context_len = {3};
  b.block_tables = {2, 7};
  b.block_table_stride = 2;
  b.logits_rows = {2};
  const std::vector<std::pair<BlockId, BlockId>> copies = {{5, 9}, {6, 10}};
  std::vector<uint8_t> bytes;
  encode_step_plan(StepPlan::Kind::kStep, copies, b, &bytes);
  StepPlan plan;
  ASSERT_TRUE(decode_step_plan(bytes, &plan).ok());
  EXPECT_EQ(plan.kind, StepPlan::Kind::kStep);
  EXPECT_EQ(plan.block_copies, copies);
  EXPECT_EQ(plan.batch.tokens, b.tokens);
  EXPECT_EQ(plan.batch.positions, b.positions);
  EXPECT_EQ(plan.batch.slot_mapping, b.slot_mapping);
  EXPECT_EQ(plan.batch.query_start, b.query_start);
  EXPECT_EQ(plan.batch.context_len, b.context_len);
  EXPECT_EQ(plan.batch.block_tables, b.block_tables);
  EXPECT_EQ(plan.batch.block_table_stride, 2);
  EXPECT_EQ(plan.batch.logits_rows, b.logits_rows);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_step_plan(std::span(bytes).first(n), &plan).ok()) << n;
  }
  bytes.push_back(0);
  EXPECT_FALSE(decode_step_plan(bytes, &plan).ok());
}

// One sequence's prompt as a single batch, every row's logits wanted.
ForwardBatch prompt_batch(const std::vector<int32_t>& tokens, int64_t block_size) {
  ForwardBatch b;
  b.clear();
  const auto n = static_cast<int64_t>(tokens.size());
  b.tokens = tokens;
  for (int64_t i = 0; i < n; ++i) {
    b.positions.push_back(static_cast<int32_t>(i));
    b.slot_mapping.push_back(i);
    b.logits_rows.push_back(i);
  }
  b.query_start.push_back(n);
  b.context_len.push_back(n);
  for (int64_t k = 0; k * block_size < n; ++k) b.block_tables.push_back(static_cast<BlockId>(k));
  b.block_table_stride = static_cast<int64_t>(b.block_tables.size());
  return b;
}

// Logits of `tokens` from `size` thread ranks over `file` (rank 0's), or from the whole
// model when size is 1.
std::vector<float> forward_logits(const std::string& file, const std::vector<int32_t>& tokens,
                                  int size) {
  constexpr int64_t kBlock = 16;
  test::ThreadRanks shared(size);
  std::vector<float> logits;
  auto run = [&](int r) {
    auto model = load_model(file);
    ASSERT_TRUE(model.ok()) << model.error().message;
    ForwardRanks ranks;
    std::unique_ptr<Communicator> comm = shared.rank(r);
    if (size > 1) {
      auto plan = plan_shard((*model)->hparams, (*model)->weights, r, size);
      ASSERT_TRUE(plan.ok()) << plan.error().message;
      ASSERT_TRUE(shard_model(model->get(), *plan).ok());
      ranks = {comm.get(), plan->vocab_counts, plan->vocab_begin};
    }
    const ModelHparams& hp = (*model)->hparams;
    KvLayout layout{hp.n_layer, hp.n_head_kv, hp.head_dim, kBlock, 8, DType::F32};
    auto kv = KvStorage::create(layout);
    ASSERT_TRUE(kv.ok());
    ThreadPool pool(1);
    PagedForward forward(**model, &*kv, 64, &pool, ranks);
    std::vector<float> out(tokens.size() * hp.n_vocab);
    ASSERT_TRUE(forward.forward(prompt_batch(tokens, kBlock), out.data()).ok());
    if (r == 0) logits = std::move(out);
  };
  std::vector<std::thread> threads;
  for (int r = 1; r < size; ++r) threads.emplace_back(run, r);
  run(0);
  for (std::thread& t : threads) t.join();
  return logits;
}

void expect_split_matches_whole(const char* file, int size, float tolerance) {
  MOON_REQUIRE_TEST_FILE(path, file);
  const std::vector<int32_t> tokens = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376,
                                       298, 315, 421, 395, 317, 426, 338, 401, 396, 267};
  const std::vector<float> whole = forward_logits(path, tokens, 1);
  const std::vector<float> split = forward_logits(path, tokens, size);
  ASSERT_EQ(whole.size(), split.size());
  ASSERT_FALSE(whole.empty());
  float worst = 0.0f;
  for (size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, std::abs(whole[i] - split[i]));
  EXPECT_LE(worst, tolerance) << size << " ranks";
  EXPECT_NE(whole, std::vector<float>(whole.size(), 0.0f));
}

TEST(ShardedForward, TwoRanksGiveTheWholeModelsLogits) {
  // F32: only the rounding of the two partial sums differs.
  expect_split_matches_whole("models/stories260K-f32.gguf", 2, 1e-4f);
}

TEST(ShardedForward, FourRanksGiveTheWholeModelsLogits) {
  expect_split_matches_whole("models/stories260K-f32.gguf", 4, 1e-4f);
}

// Every family's switches through the split: Qwen2's Q/K/V biases and tied output, Qwen3's
// per-head norms, Phi-3's fused QKV, Gemma's post norms, soft caps and embedding scale, and
// KV heads kept by several ranks (Llama 3 and Gemma 3 have 1 KV head; Gemma 2 has 2).
TEST(ShardedForward, EveryFamilyGivesTheWholeModelsLogits) {
  for (const char* arch : {"qwen2", "qwen3", "phi3", "gemma2", "gemma3", "llama3"}) {
    SCOPED_TRACE(arch);
    expect_split_matches_whole(("models/arch/tiny-" + std::string(arch) + "-f32.gguf").c_str(), 2,
                               1e-4f);
  }
  expect_split_matches_whole("models/arch/tiny-llama3-f32.gguf", 4, 1e-4f);  // 1 query head each
}

TEST(ShardedForward, TwoRanksOnTheInt8PathStayClose) {
  // Q8_0: the same, except that an activation on an 8-bit rounding boundary may round the
  // other way (a step of its block's scale); logits span about 25.
  expect_split_matches_whole("models/stories260K-q8_0.gguf", 2, 0.1f);
}

}  // namespace
}  // namespace moon
