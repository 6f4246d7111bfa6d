// A grammar matched against bytes by a pushdown automaton, determinized lazily: the grammar
// engine's core.
//
// A matcher position is a stack of grammar positions (the element to match next, above the
// places to return to). Stacks are hash-consed as (position, parent) nodes, so equal stacks
// are equal ids, and the set of stacks a text can have reached is a sorted list of ids: a
// state. States are interned, and each gets a 256-entry transition row filled on first use,
// so the automaton becomes a DFA over exactly the states generation visits. A state's token
// mask (which vocabulary tokens may come next) is one depth-first scan of the token trie
// along those transitions, cached per state: a state seen before costs one lookup.
//
// Shared by every sequence constrained by the same grammar and vocabulary; thread-safe (the
// sampler's rows run on a pool). A sequence's own progress is just a state id
// (GrammarMatcher).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/token_trie.h"

namespace moon::grammar {

class GrammarAutomaton {
 public:
  static constexpr int32_t kDead = -1;

  GrammarAutomaton(Grammar grammar, std::shared_ptr<const TokenTrie> vocab);

  const TokenTrie& vocab() const { return *vocab_; }
  int32_t start() const { return start_; }
  // The state after `bytes`, or kDead when the grammar rejects them.
  int32_t advance(int32_t state, std::string_view bytes);
  // The text so far is a complete sentence of the grammar.
  bool accepts(int32_t state) const;

  // Sets the logits of every token the grammar does not allow next to -inf: tokens whose
  // bytes it rejects, control tokens, and the end-of-generation tokens unless the text is
  // complete. When nothing at all is allowed (the vocabulary cannot spell what must come),
  // the end-of-generation tokens stay, so the sequence ends instead of choosing garbage.
  void mask_logits(int32_t state, std::span<float> logits);
  // The same as a bitset over the vocabulary (bit id set: allowed); for tests and benches.
  std::vector<uint64_t> allowed_tokens(int32_t state);

  struct Stats {
    int64_t states = 0;
    int64_t stack_nodes = 0;
    int64_t masks_computed = 0;
    int64_t mask_cache_hits = 0;
    int64_t closure_visits = 0;  // stack nodes close() visited, over all steps: the work
    bool gave_up = false;        // a state was past the width or memory bound (see step)
  };
  Stats stats() const;

 private:
  struct StackNode {
    uint32_t pos;    // element index
    int32_t parent;  // -1: the bottom
  };
  struct State {
    std::vector<int32_t> leaves;  // stacks whose top is a byte set, sorted
    ByteSet first;                // the union of their byte sets: what can come next
    bool accepting = false;
  };

  int32_t node(uint32_t pos, int32_t parent);
  // Expands `start` to the stacks whose tops are byte sets (into scratch_leaves_) and notes
  // whether some path returns from the bottom (accepting).
  void close(int32_t start, bool& accepting);
  int32_t intern_state(std::vector<int32_t> leaves, bool accepting);
  int32_t step(int32_t state, uint8_t byte);         // caller holds mu_
  const std::vector<uint64_t>& mask(int32_t state);  // caller holds mu_

  Grammar g_;
  std::shared_ptr<const TokenTrie> vocab_;
  mutable std::mutex mu_;
  std::vector<StackNode> nodes_;
  std::unordered_map<uint64_t, int32_t> node_ids_;
  std::vector<State> states_;
  std::unordered_map<uint64_t, std::vector<int32_t>> state_ids_;  // hash -> candidates
  std::vector<int32_t> next_;  // [state * 256 + byte]: a state, kDead, or kUnknown
  std::vector<std::unique_ptr<std::vector<uint64_t>>> masks_;  // per state, when computed
  int64_t mask_bytes_ = 0;
  int64_t stored_leaves_ = 0;  // over states_
  int32_t start_ = kDead;
  // Bytes that every byte set of the grammar treats alike step every state alike: each byte
  // maps to the first byte of its class, whose step is computed once per state for them all.
  std::array<uint8_t, 256> class_of_;
  // close()'s scratch.
  std::vector<uint32_t> visited_;
  uint32_t visit_stamp_ = 0;
  std::vector<int32_t> work_;
  std::vector<int32_t> scratch_leaves_;
  Stats stats_;
};

// One sequence's progress through its grammar.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<GrammarAutomaton> automaton)
      : automaton_(std::move(automaton)), state_(automaton_->start()) {}

  void mask_logits(std::span<float> logits) const;
  // Advances past a sampled token. An end-of-generation token (or one the grammar rejects,
  // which the mask makes impossible) ends the matching: nothing is masked after it.
  void accept(int32_t token);
  bool done() const { return state_ == GrammarAutomaton::kDead; }
  bool complete() const { return !done() && automaton_->accepts(state_); }

 private:
  std::shared_ptr<GrammarAutomaton> automaton_;
  int32_t state_;
};

}  // namespace moon::grammar
