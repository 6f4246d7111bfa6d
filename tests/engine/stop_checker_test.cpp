#include "engine/stop_checker.h"

#include <gtest/gtest.h>

#include "util/splitmix64.h"

namespace moon {
namespace {

struct Streamed {
  std::string streamed;
  FinishReason finish = FinishReason::kNone;
  int stop_string = -1;
  int32_t stop_token = -1;
  int tokens = 0;
};

// Feeds (token, piece) pairs until the checker finishes; what a client would have seen.
Streamed feed(StopChecker& checker, const std::vector<std::pair<int32_t, std::string>>& steps,
              std::vector<std::string>* chunks = nullptr) {
  Streamed run;
  for (const auto& [token, piece] : steps) {
    const StopUpdate u = checker.push(token, piece);
    run.streamed += u.text;
    if (chunks) chunks->push_back(u.text);
    ++run.tokens;
    if (u.finish != FinishReason::kNone) {
      run.finish = u.finish;
      run.stop_string = u.stop_string;
      run.stop_token = u.stop_token;
      return run;
    }
  }
  const StopUpdate last = checker.finish();
  run.streamed += last.text;
  if (last.finish != FinishReason::kNone) {
    run.finish = last.finish;
    run.stop_string = last.stop_string;
  }
  return run;
}

SamplingParams with_stops(std::vector<std::string> stops, int max_tokens = 100) {
  SamplingParams p;
  p.stop = std::move(stops);
  p.max_tokens = max_tokens;
  return p;
}

TEST(StopChecker, StopStringSplitAcrossTokensIsCaughtAndHeldBack) {
  StopChecker checker(with_stops({"lo w"}), {});
  std::vector<std::string> chunks;
  const Streamed run = feed(checker, {{1, "Hel"}, {2, "lo wo"}, {3, "rld"}}, &chunks);
  EXPECT_EQ(run.finish, FinishReason::kStop);
  EXPECT_EQ(run.stop_string, 0);
  EXPECT_EQ(run.streamed, "Hel");
  // "l" might have started "lo w": it waited for the next token.
  EXPECT_EQ(chunks, (std::vector<std::string>{"He", "l"}));
  EXPECT_EQ(run.tokens, 2);
}

TEST(StopChecker, HeldTextIsReleasedWhenItTurnsOutNotToBeAStop) {
  StopChecker checker(with_stops({"abc"}), {});
  std::vector<std::string> chunks;
  const Streamed run = feed(checker, {{1, "xa"}, {2, "b"}, {3, "d!"}}, &chunks);
  EXPECT_EQ(run.finish, FinishReason::kNone);
  EXPECT_EQ(chunks, (std::vector<std::string>{"x", "", "abd!"}));
  EXPECT_EQ(run.streamed, "xabd!");
}

TEST(StopChecker, EarliestOfSeveralStopsWinsAndCanBeKept) {
  SamplingParams p = with_stops({"world", "o w"});
  p.include_stop_str_in_output = true;
  StopChecker checker(p, {});
  const Streamed run = feed(checker, {{1, "hello"}, {2, " world"}});
  EXPECT_EQ(run.stop_string, 1);
  EXPECT_EQ(run.streamed, "hello w");
}

TEST(StopChecker, StopTokensEosAndIgnoreEos) {
  SamplingParams p;
  p.stop_token_ids = {9};
  StopChecker a(p, {2});
  Streamed run = feed(a, {{5, "a"}, {2, "</s>"}});
  EXPECT_EQ(run.finish, FinishReason::kStop);
  EXPECT_EQ(run.stop_token, 2);
  EXPECT_EQ(run.streamed, "a");
  StopChecker b(p, {2});
  run = feed(b, {{5, "a"}, {9, "x"}});
  EXPECT_EQ(run.stop_token, 9);
  EXPECT_EQ(run.streamed, "a");
  p.ignore_eos = true;
  StopChecker c(p, {2});
  run = feed(c, {{5, "a"}, {2, ""}, {6, "b"}});
  EXPECT_EQ(run.finish, FinishReason::kNone);
  EXPECT_EQ(run.streamed, "ab");
}

TEST(StopChecker, MaxTokensFlushesHeldText) {
  StopChecker checker(with_stops({"xyz"}, 2), {});
  std::vector<std::string> chunks;
  const Streamed run = feed(checker, {{1, "ab"}, {2, "cx"}, {3, "yz"}}, &chunks);
  EXPECT_EQ(run.finish, FinishReason::kLength);
  EXPECT_EQ(run.tokens, 2);
  EXPECT_EQ(run.streamed, "abcx");
  EXPECT_EQ(finish_reason_name(run.finish), "length");
}

TEST(StopChecker, MinTokensDefersEveryStop) {
  SamplingParams p = with_stops({"!"});
  p.min_tokens = 2;
  p.stop_token_ids = {9};
  StopChecker checker(p, {2});
  const Streamed run = feed(checker, {{2, "<eos>"}, {1, "hi!"}, {9, ""}});
  EXPECT_EQ(run.finish, FinishReason::kStop);
  EXPECT_EQ(run.stop_token, 9);
  EXPECT_EQ(run.streamed, "<eos>hi!");
}

TEST(StopChecker, MultibyteStopStrings) {
  StopChecker checker(with_stops({"終わり"}), {});
  const std::string s = "終わり";
  const Streamed run =
      feed(checker, {{1, "これで"}, {2, s.substr(0, 4)}, {3, s.substr(4)}, {4, "x"}});
  EXPECT_EQ(run.finish, FinishReason::kStop);
  EXPECT_EQ(run.streamed, "これで");
}

// Random texts cut into random pieces: what streams is always the text up to the first
// stop string, and never a byte that later had to be taken back.
TEST(StopChecker, MatchesPlainSearchOnRandomSplits) {
  SplitMix64 rng(17);
  const std::vector<std::string> stops = {"ab", "bca", "cc"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int len = 1 + static_cast<int>(rng.below(30));
    for (int i = 0; i < len; ++i) text += static_cast<char>('a' + rng.below(4));
    size_t first = std::string::npos;
    for (const std::string& s : stops) first = std::min(first, text.find(s));
    std::vector<std::pair<int32_t, std::string>> steps;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min<size_t>(text.size() - pos, rng.below(5));  // empty pieces too
      steps.push_back({1, text.substr(pos, n)});
      pos += n;
    }
    StopChecker checker(with_stops(stops, 1000), {});
    const Streamed run = feed(checker, steps);
    const std::string want = first == std::string::npos ? text : text.substr(0, first);
    EXPECT_EQ(run.streamed, want) << text;
    EXPECT_EQ(run.finish == FinishReason::kStop, first != std::string::npos) << text;
  }
}

}  // namespace
}  // namespace moon
