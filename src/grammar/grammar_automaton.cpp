#include "grammar/grammar_automaton.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <limits>

namespace moon::grammar {
namespace {

constexpr int32_t kUnknown = -2;
// Token masks kept per automaton; past this the cache starts over (masks are recomputable).
constexpr int64_t kMaxMaskBytes = int64_t{128} << 20;
// Stack tops kept over all states. GrammarBuilder::build bounds how wide one state can be from
// the rules, but not a stack that grows with the text: a rule that recurses before something
// that can be empty (`a ::= [a-z] a [0-9]? | ""`) widens every state by one position per
// letter, so n letters cost n^2 work and memory. Past either bound the text is treated as
// rejected, which ends the sequence (its mask then allows only the end of generation). Past
// the memory bound, which states are kept depends on what every sequence sharing the automaton
// explored first; a grammar that gets there has no batch-invariant output.
constexpr int64_t kMaxStoredLeaves = int64_t{1} << 24;

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

}  // namespace

GrammarAutomaton::GrammarAutomaton(Grammar grammar, std::shared_ptr<const TokenTrie> vocab)
    : g_(std::move(grammar)), vocab_(std::move(vocab)) {
  // Partition refinement: two bytes stay in one class while no byte set tells them apart.
  std::array<int32_t, 256> cls{};
  for (const ByteSet& set : g_.byte_sets) {
    std::array<int32_t, 512> renumber;
    renumber.fill(-1);
    int32_t classes = 0;
    for (int b = 0; b < 256; ++b) {
      int32_t& id = renumber[cls[b] * 2 + set.has(static_cast<uint8_t>(b))];
      if (id < 0) id = classes++;
      cls[b] = id;
    }
  }
  std::array<int32_t, 256> first_byte;
  first_byte.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (first_byte[cls[b]] < 0) first_byte[cls[b]] = b;
    class_of_[b] = static_cast<uint8_t>(first_byte[cls[b]]);
  }
  // The start: every alternative of the root, returning to the bottom.
  ++visit_stamp_;
  scratch_leaves_.clear();
  bool accepting = false;
  for (uint32_t alt : g_.alternatives[g_.root]) close(node(alt, -1), accepting);
  start_ = scratch_leaves_.empty() && !accepting ? kDead : intern_state(scratch_leaves_, accepting);
}

int32_t GrammarAutomaton::node(uint32_t pos, int32_t parent) {
  const uint64_t key = (uint64_t{pos} << 32) | static_cast<uint32_t>(parent + 1);
  // try_emplace: most calls find the node, and emplace would allocate and free one each time.
  auto [it, fresh] = node_ids_.try_emplace(key, static_cast<int32_t>(nodes_.size()));
  if (fresh) nodes_.push_back({pos, parent});
  return it->second;
}

void GrammarAutomaton::close(int32_t start, bool& accepting) {
  work_.push_back(start);
  while (!work_.empty()) {
    const int32_t n = work_.back();
    work_.pop_back();
    if (static_cast<size_t>(n) >= visited_.size()) visited_.resize(nodes_.size() * 2 + 64, 0);
    if (visited_[n] == visit_stamp_) continue;
    visited_[n] = visit_stamp_;
    ++stats_.closure_visits;
    const StackNode sn = nodes_[n];
    const Element el = g_.elements[sn.pos];
    switch (el.kind) {
      case ElementKind::kBytes:
        scratch_leaves_.push_back(n);
        break;
      case ElementKind::kRule: {
        // A rule in tail position returns straight to our parent: without this, every
        // round of a right-recursive repetition would grow the stack by one frame.
        const int32_t ret = g_.elements[sn.pos + 1].kind == ElementKind::kEnd
                                ? sn.parent
                                : node(sn.pos + 1, sn.parent);
        for (uint32_t alt : g_.alternatives[el.arg]) work_.push_back(node(alt, ret));
        break;
      }
      case ElementKind::kEnd:
        if (sn.parent < 0) {
          accepting = true;
        } else {
          work_.push_back(sn.parent);
        }
        break;
    }
  }
}

int32_t GrammarAutomaton::intern_state(std::vector<int32_t> leaves, bool accepting) {
  std::sort(leaves.begin(), leaves.end());
  leaves.erase(std::unique(leaves.begin(), leaves.end()), leaves.end());
  uint64_t h = accepting ? 1 : 2;
  for (int32_t l : leaves) h = mix(h, static_cast<uint64_t>(l));
  std::vector<int32_t>& candidates = state_ids_[h];
  for (int32_t id : candidates) {
    if (states_[id].accepting == accepting && states_[id].leaves == leaves) return id;
  }
  const auto id = static_cast<int32_t>(states_.size());
  candidates.push_back(id);
  stored_leaves_ += static_cast<int64_t>(leaves.size());
  ByteSet first;
  for (int32_t l : leaves) first.add(g_.byte_sets[g_.elements[nodes_[l].pos].arg]);
  states_.push_back({std::move(leaves), first, accepting});
  next_.resize(next_.size() + 256, kUnknown);
  masks_.emplace_back();
  return id;
}

int32_t GrammarAutomaton::step(int32_t state, uint8_t byte) {
  const size_t slot = static_cast<size_t>(state) * 256 + byte;
  if (next_[slot] != kUnknown) return next_[slot];
  // A byte no live position takes is dead without a walk over them: a mask steps by every
  // byte that starts a token, and in a wide state (thousands of positions, as a long
  // repetition of something optional makes) that walk was nearly all of its time.
  if (!states_[state].first.has(byte)) return next_[slot] = kDead;
  if (class_of_[byte] != byte) return next_[slot] = step(state, class_of_[byte]);
  ++visit_stamp_;
  scratch_leaves_.clear();
  bool accepting = false;
  const std::vector<int32_t> leaves = states_[state].leaves;  // close() may grow nodes_
  for (int32_t leaf : leaves) {
    const StackNode sn = nodes_[leaf];
    if (g_.byte_sets[g_.elements[sn.pos].arg].has(byte))
      close(node(sn.pos + 1, sn.parent), accepting);
  }
  const bool too_wide =
      scratch_leaves_.size() > kMaxLivePositions ||
      stored_leaves_ + static_cast<int64_t>(scratch_leaves_.size()) > kMaxStoredLeaves;
  if (too_wide && !stats_.gave_up) {
    stats_.gave_up = true;
    spdlog::warn(
        "grammar: a state of {} live positions ({} kept in all) is past the bound of {} ({}); "
        "the constrained text ends here. A rule that recurses before an optional item grows "
        "by one position per repetition; write the repetition with * or {{m,n}} instead",
        scratch_leaves_.size(), stored_leaves_, kMaxLivePositions, kMaxStoredLeaves);
  }
  const int32_t result = (scratch_leaves_.empty() && !accepting) || too_wide
                             ? kDead
                             : intern_state(scratch_leaves_, accepting);
  next_[slot] = result;
  return result;
}

int32_t GrammarAutomaton::advance(int32_t state, std::string_view bytes) {
  std::lock_guard lock(mu_);
  for (char c : bytes) {
    if (state == kDead) break;
    state = step(state, static_cast<uint8_t>(c));
  }
  return state;
}

bool GrammarAutomaton::accepts(int32_t state) const {
  std::lock_guard lock(mu_);
  return state >= 0 && states_[state].accepting;
}

const std::vector<uint64_t>& GrammarAutomaton::mask(int32_t state) {
  if (masks_[state]) {
    ++stats_.mask_cache_hits;
    return *masks_[state];
  }
  const int64_t vocab = vocab_->vocab_size();
  const size_t words = static_cast<size_t>((vocab + 63) / 64);
  if (mask_bytes_ + static_cast<int64_t>(words * 8) > kMaxMaskBytes) {
    for (auto& m : masks_) m.reset();
    mask_bytes_ = 0;
  }
  auto bits = std::make_unique<std::vector<uint64_t>>(words, 0);
  const auto nodes = vocab_->nodes();
  const auto ids = vocab_->token_ids();
  std::vector<int32_t> at_depth(static_cast<size_t>(vocab_->max_depth()) + 1);
  at_depth[0] = state;
  bool any = false;
  for (size_t i = 1; i < nodes.size();) {
    const TokenTrie::Node& nd = nodes[i];
    const int32_t from = at_depth[nd.depth - 1];
    int32_t to = next_[static_cast<size_t>(from) * 256 + nd.byte];
    if (to == kUnknown) to = step(from, nd.byte);
    if (to == kDead) {
      i = nd.subtree_end;
      continue;
    }
    at_depth[nd.depth] = to;
    for (uint32_t t = nd.tokens_begin; t < nd.tokens_end; ++t) {
      (*bits)[static_cast<size_t>(ids[t]) >> 6] |= uint64_t{1} << (ids[t] & 63);
      any = true;
    }
    ++i;
  }
  if (states_[state].accepting || !any) {
    for (int32_t id : vocab_->end_of_generation()) {
      if (id >= 0 && id < vocab) (*bits)[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63);
    }
  }
  ++stats_.masks_computed;
  mask_bytes_ += static_cast<int64_t>(words * 8);
  masks_[state] = std::move(bits);
  return *masks_[state];
}

void GrammarAutomaton::mask_logits(int32_t state, std::span<float> logits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::lock_guard lock(mu_);
  const std::vector<uint64_t>& m = mask(state);
  const size_t n = logits.size();
  for (size_t w = 0; w * 64 < n; ++w) {
    const uint64_t allowed = w < m.size() ? m[w] : 0;
    if (allowed == ~uint64_t{0}) continue;
    const size_t end = std::min(n, w * 64 + 64);
    if (allowed == 0) {
      std::fill(logits.begin() + static_cast<ptrdiff_t>(w * 64),
                logits.begin() + static_cast<ptrdiff_t>(end), kNegInf);
      continue;
    }
    // Only the forbidden tokens are written: inside a string that is a handful per word.
    uint64_t forbid = ~allowed;
    if (end - w * 64 < 64) forbid &= (uint64_t{1} << (end - w * 64)) - 1;
    for (; forbid != 0; forbid &= forbid - 1) logits[w * 64 + std::countr_zero(forbid)] = kNegInf;
  }
}

std::vector<uint64_t> GrammarAutomaton::allowed_tokens(int32_t state) {
  std::lock_guard lock(mu_);
  return mask(state);
}

GrammarAutomaton::Stats GrammarAutomaton::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.states = static_cast<int64_t>(states_.size());
  s.stack_nodes = static_cast<int64_t>(nodes_.size());
  return s;
}

void GrammarMatcher::mask_logits(std::span<float> logits) const {
  if (!done()) automaton_->mask_logits(state_, logits);
}

void GrammarMatcher::accept(int32_t token) {
  if (done()) return;
  const TokenTrie& v = automaton_->vocab();
  if (token < 0 || token >= v.vocab_size() || !v.in_trie(token)) {
    state_ = GrammarAutomaton::kDead;  // end of generation (or a token the mask excluded)
    return;
  }
  state_ = automaton_->advance(state_, v.piece(token));
}

}  // namespace moon::grammar
