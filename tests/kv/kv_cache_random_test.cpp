// Thousands of random scheduler-like operations on a tiny pool (so allocation often fails)
// against an independent shadow model. After every operation the manager's own invariants
// must hold; after every step a fake KV storage, where each slot holds a fingerprint of the
// token prefix that produced it, proves copy-on-write and prefix hits give every sequence
// exactly its own history.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <vector>

#include "kv/kv_cache_manager.h"
#include "util/splitmix64.h"

namespace moon {
namespace {

struct Config {
  const char* name;
  int64_t num_blocks;
  int64_t block_size;
  bool prefix_caching;
  bool weak_hash;  // collisions everywhere: confirmation must carry correctness alone
  uint64_t seed;
  bool partial = false;  // cache_partial_blocks: freed sequences offer their last block
};

class Simulation {
 public:
  explicit Simulation(const Config& config)
      : config_(config),
        bs_(config.block_size),
        rng_(config.seed),
        kv_(config.num_blocks, config.block_size, config.prefix_caching, options(config)),
        storage_(static_cast<size_t>(config.num_blocks * config.block_size), 0) {
    for (int p = 0; p < 3; ++p) {
      std::vector<int32_t> prefix(40);
      for (auto& t : prefix) t = static_cast<int32_t>(rng_.below(6));
      prefixes_.push_back(prefix);
    }
  }

  void run(int num_ops) {
    for (int op = 0; op < num_ops && !::testing::Test::HasFailure(); ++op) {
      const uint64_t r = rng_.below(100);
      if (r < 25 || seqs_.empty()) {
        add_sequence();
      } else if (r < 75) {
        step();
      } else if (r < 83) {
        fork();
      } else if (r < 95) {
        free_random();
      } else {
        preempt();
      }
    }
    for (const auto& [id, seq] : seqs_) kv_.free(id);
    seqs_.clear();
    check();
    EXPECT_EQ(kv_.num_free_blocks(), config_.num_blocks);
    const KvStats stats = kv_.stats();
    EXPECT_EQ(stats.num_blocks_used, 0);
    EXPECT_EQ(stats.num_blocks_cached, stats.num_blocks_cached_free);
    if (config_.prefix_caching) {
      EXPECT_GT(stats.num_prefix_hit_tokens, 0) << config_.name;
    }
    if (bs_ > 1) {
      EXPECT_GT(num_copies_, 0) << config_.name;  // block size 1 never shares a partial block
    }
    if (config_.partial) {
      EXPECT_GT(num_partial_hits_, 0) << config_.name;
    }
    EXPECT_GT(num_failed_allocations_, 0) << config_.name;
  }

 private:
  struct Shadow {
    std::vector<int32_t> tokens;  // prompt then sampled; the last may not have a slot yet
    int64_t num_tokens = 0;       // with a slot
    int64_t num_prompt = 0;
    uint64_t extra_key = 0;
  };

  static KvCacheManager::Options options(const Config& config) {
    KvCacheManager::Options o;
    o.cache_partial_blocks = config.partial;
    if (config.weak_hash) {
      o.hash_fn = [](BlockHash parent, std::span<const int32_t> tokens, uint64_t) {
        return (parent * 3 + static_cast<BlockHash>(tokens[0])) % 5;
      };
    }
    return o;
  }

  // What the K/V of token p of `seq` depend on: every token up to p, and the extra key.
  static uint64_t fingerprint(const Shadow& seq, int64_t p) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ seq.extra_key;
    for (int64_t i = 0; i <= p; ++i) {
      h = (h ^ static_cast<uint64_t>(seq.tokens[static_cast<size_t>(i)])) * 0x100000001B3ull;
      h ^= h >> 29;
    }
    return h | 1;  // never 0, the value of unwritten slots
  }

  uint64_t pick() {
    auto it = seqs_.begin();
    std::advance(it, static_cast<long>(rng_.below(seqs_.size())));
    return it->first;
  }

  void check() {
    const Status status = kv_.check_invariants();
    ASSERT_TRUE(status.ok()) << status.error().message;
    int64_t num_sequence_tokens = 0;
    for (const auto& [id, seq] : seqs_) {
      ASSERT_EQ(kv_.num_tokens(id), seq.num_tokens) << id;
      ASSERT_EQ(static_cast<int64_t>(kv_.block_table(id).size()), (seq.num_tokens + bs_ - 1) / bs_);
      num_sequence_tokens += seq.num_tokens;
    }
    const KvStats stats = kv_.stats();
    ASSERT_EQ(stats.num_sequences, static_cast<int64_t>(seqs_.size()));
    ASSERT_LE(stats.num_tokens_stored, num_sequence_tokens);
    // Only a sequence's last block can be partly empty: less than one block wasted each.
    ASSERT_LE(stats.num_slots_used - stats.num_tokens_stored,
              static_cast<int64_t>(seqs_.size()) * (bs_ - 1));
    ASSERT_EQ(stats.num_blocks_used + stats.num_blocks_free, config_.num_blocks);
  }

  // Every slot a sequence has holds exactly what its own tokens would have produced.
  void check_contents() {
    for (const auto& [id, seq] : seqs_) {
      for (int64_t p = 0; p < seq.num_tokens; ++p) {
        ASSERT_EQ(storage_[static_cast<size_t>(kv_.slot(id, p))], fingerprint(seq, p))
            << config_.name << ": sequence " << id << " position " << p;
      }
    }
  }

  void add_sequence() {
    Shadow seq;
    const auto& prefix = prefixes_[rng_.below(prefixes_.size())];
    seq.tokens.assign(prefix.begin(), prefix.begin() + static_cast<long>(rng_.below(41)));
    for (uint64_t n = 1 + rng_.below(24); n > 0; --n) {
      seq.tokens.push_back(static_cast<int32_t>(rng_.below(6)));
    }
    seq.num_prompt = static_cast<int64_t>(seq.tokens.size());
    seq.extra_key = rng_.below(8) == 0 ? 1 : 0;
    start(next_id_++, std::move(seq));
  }

  void start(uint64_t id, Shadow seq) {
    seq.num_tokens = kv_.match_prefix(id, seq.tokens, seq.extra_key);
    if (!config_.partial) {
      ASSERT_EQ(seq.num_tokens % bs_, 0);
    } else if (seq.num_tokens % bs_ != 0) {
      ++num_partial_hits_;
    }
    ASSERT_LE(seq.num_tokens, std::max<int64_t>(0, static_cast<int64_t>(seq.tokens.size()) - 1));
    if (!config_.prefix_caching) {
      ASSERT_EQ(seq.num_tokens, 0);
    }
    seqs_.emplace(id, std::move(seq));
    check();
    check_contents();  // the attached blocks hold this prompt's prefix
    // Admission: a sequence that cannot get its first chunk with the watermark kept waits
    // (here: is dropped).
    const int64_t chunk =
        std::min<int64_t>(8, static_cast<int64_t>(seqs_[id].tokens.size()) - seqs_[id].num_tokens);
    if (!kv_.can_allocate(kv_.num_blocks_needed_for(id, chunk))) {
      kv_.free(id);
      seqs_.erase(id);
      check();
    }
  }

  // One engine step: slots for a random batch, copies, the forward's writes, commits.
  void step() {
    std::vector<std::pair<uint64_t, int64_t>> batch;
    for (const auto& [id, seq] : seqs_) {
      if (rng_.below(2) == 0) continue;
      const int64_t remaining = static_cast<int64_t>(seq.tokens.size()) - seq.num_tokens;
      const int64_t n = 1 + static_cast<int64_t>(rng_.below(static_cast<uint64_t>(remaining)));
      const int64_t needed = kv_.num_blocks_needed_for(id, n);
      const int64_t free_before = kv_.num_free_blocks();
      const std::vector<BlockId> table_before = kv_.block_table(id);
      if (kv_.allocate_slots(id, seq.tokens, n)) {
        ASSERT_LE(needed, free_before);
        ASSERT_EQ(kv_.num_free_blocks(), free_before - needed);
        seqs_[id].num_tokens += n;
        batch.emplace_back(id, n);
      } else {
        ASSERT_GT(needed, free_before);
        ASSERT_EQ(kv_.block_table(id), table_before);
        ++num_failed_allocations_;
      }
      check();
    }
    // Sometimes a request is aborted after scheduling, before the forward runs.
    if (!batch.empty() && rng_.below(10) == 0) {
      const uint64_t id = batch[rng_.below(batch.size())].first;
      kv_.free(id);
      seqs_.erase(id);
      std::erase_if(batch, [id](const auto& b) { return b.first == id; });
      check();
    }
    for (const auto& [src, dst] : kv_.take_pending_copies()) {
      ++num_copies_;
      std::copy_n(storage_.begin() + src * bs_, bs_, storage_.begin() + dst * bs_);
    }
    for (const auto& [id, n] : batch) {
      const Shadow& seq = seqs_[id];
      for (int64_t p = seq.num_tokens - n; p < seq.num_tokens; ++p) {
        storage_[static_cast<size_t>(kv_.slot(id, p))] = fingerprint(seq, p);
      }
    }
    for (const auto& [id, n] : batch) {
      kv_.commit_full_blocks(id, seqs_[id].tokens);
      check();
    }
    check_contents();
    // Sample: every sequence whose tokens all have K/V gets one more (or finishes).
    for (auto it = seqs_.begin(); it != seqs_.end();) {
      Shadow& seq = it->second;
      if (seq.num_tokens < static_cast<int64_t>(seq.tokens.size())) {
        ++it;
      } else if (seq.tokens.size() >= 100) {
        kv_.free(it->first, seq.tokens);
        it = seqs_.erase(it);
        check();
      } else {
        seq.tokens.push_back(static_cast<int32_t>(rng_.below(6)));
        ++it;
      }
    }
  }

  // Parallel sampling / beam search: the child shares everything and samples its own token.
  void fork() {
    const uint64_t parent = pick();
    const uint64_t child = next_id_++;
    kv_.fork(parent, child);
    Shadow seq = seqs_[parent];
    if (static_cast<int64_t>(seq.tokens.size()) > std::max(seq.num_tokens, seq.num_prompt)) {
      seq.tokens.back() = static_cast<int32_t>(rng_.below(6));
    }
    seqs_.emplace(child, std::move(seq));
    check();
    check_contents();
  }

  void free_random() {
    const uint64_t id = pick();
    kv_.free(id, seqs_[id].tokens);
    seqs_.erase(id);
    check();
  }

  // Preempted for recompute: everything is dropped and the sequence starts over with its
  // prompt and generated tokens as the new prompt (prefix hits make that cheap).
  void preempt() {
    const uint64_t id = pick();
    Shadow seq = std::move(seqs_[id]);
    kv_.free(id, seq.tokens);
    seqs_.erase(id);
    check();
    seq.num_prompt = static_cast<int64_t>(seq.tokens.size());
    start(next_id_++, std::move(seq));
  }

  Config config_;
  int64_t bs_;
  SplitMix64 rng_;
  KvCacheManager kv_;
  std::vector<uint64_t> storage_;  // [num_blocks * block_size] fingerprint per slot
  std::vector<std::vector<int32_t>> prefixes_;
  std::map<uint64_t, Shadow> seqs_;
  uint64_t next_id_ = 1;
  int64_t num_copies_ = 0;
  int64_t num_failed_allocations_ = 0;
  int64_t num_partial_hits_ = 0;
};

void PrintTo(const Config& config, std::ostream* os) {
  *os << config.name;
}

class KvCacheRandomTest : public ::testing::TestWithParam<Config> {};

TEST_P(KvCacheRandomTest, InvariantsAndContentsHoldUnderRandomOperations) {
  Simulation(GetParam()).run(10000);
}

INSTANTIATE_TEST_SUITE_P(Configs, KvCacheRandomTest,
                         ::testing::Values(Config{"cache_bs4", 24, 4, true, false, 1},
                                           Config{"cache_bs1", 64, 1, true, false, 2},
                                           Config{"cache_bs16", 10, 16, true, false, 3},
                                           Config{"no_cache_bs4", 24, 4, false, false, 4},
                                           Config{"weak_hash_bs2", 32, 2, true, true, 5},
                                           Config{"weak_hash_bs4", 24, 4, true, true, 6},
                                           Config{"partial_bs4", 24, 4, true, false, 7, true},
                                           Config{"partial_bs16", 10, 16, true, false, 8, true},
                                           Config{"partial_weak_hash_bs4", 24, 4, true, true, 9,
                                                  true}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace moon
