// Helpers for the grammar tests: an automaton over a byte vocabulary (token i is byte i), so
// a string is accepted exactly when its bytes walk the automaton to an accepting state.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "grammar/gbnf.h"
#include "grammar/grammar_automaton.h"

namespace moon::grammar::test {

inline std::shared_ptr<const TokenTrie> byte_vocab() {
  static const auto vocab = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
    pieces.emplace_back("");  // 256: end of generation
    return std::make_shared<const TokenTrie>(pieces, std::vector<bool>{},
                                             std::vector<int32_t>{256});
  }();
  return vocab;
}

inline std::shared_ptr<GrammarAutomaton> automaton(
    std::string_view gbnf, std::shared_ptr<const TokenTrie> vocab = byte_vocab()) {
  auto g = parse_gbnf(gbnf);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message) << "\n" << gbnf;
  if (!g.ok()) return nullptr;
  return std::make_shared<GrammarAutomaton>(std::move(*g), std::move(vocab));
}

enum class Match { kRejected, kPrefix, kComplete };

inline Match match(GrammarAutomaton& a, std::string_view text) {
  const int32_t s = a.advance(a.start(), text);
  if (s == GrammarAutomaton::kDead) return Match::kRejected;
  return a.accepts(s) ? Match::kComplete : Match::kPrefix;
}

}  // namespace moon::grammar::test
