// One tokenizer shared by several threads gives every thread the single-threaded result.
// (Load and encode speed are measured by bench/tokenizer_bench.cpp, not here.)
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "common/test_data.h"
#include "text_generator.h"
#include "tokenizer_test_util.h"

namespace moon {
namespace {

TEST(TokenizerConcurrency, ConcurrentUseGivesSameResults) {
  std::vector<const Tokenizer*> toks;
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2"}) {
    if (const Tokenizer* t = test::vocab_tokenizer(name)) toks.push_back(t);
  }
  if (toks.empty()) MOON_MISSING_TEST_DATA("models/vocab");
  test::TextGenerator gen(11);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(gen.text(12, i % 5 == 0));
  std::vector<std::vector<std::vector<TokenId>>> expected(toks.size());
  for (size_t t = 0; t < toks.size(); ++t) {
    for (const auto& text : texts) expected[t].push_back(toks[t]->encode(text, true, true));
  }
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        for (size_t t = 0; t < toks.size(); ++t) {
          for (size_t i = w; i < texts.size(); i += 2) {
            const auto ids = toks[t]->encode(texts[i], true, true);
            if (ids != expected[t][i]) ++failures[w];
            if (toks[t]->decode(ids, true) != toks[t]->decode(expected[t][i], true)) ++failures[w];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w = 0; w < 4; ++w) EXPECT_EQ(failures[w], 0) << "thread " << w;
}

}  // namespace
}  // namespace moon
