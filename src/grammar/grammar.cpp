#include "grammar/grammar.h"

#include <algorithm>
#include <functional>

namespace moon::grammar {
namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;

int utf8_length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

std::array<uint8_t, 4> encode(uint32_t cp, int n) {
  std::array<uint8_t, 4> b{};
  if (n == 1) {
    b[0] = static_cast<uint8_t>(cp);
    return b;
  }
  static constexpr uint8_t kLead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (int i = n - 1; i > 0; --i) {
    b[i] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  b[0] = static_cast<uint8_t>(kLead[n] | cp);
  return b;
}

void split(uint32_t lo, uint32_t hi, std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out) {
  if (lo > hi) return;
  // Surrogates are not characters.
  if (lo < 0xD800 && hi >= 0xD800) {
    split(lo, 0xD7FF, out);
    split(0xE000, hi, out);
    return;
  }
  if (lo >= 0xD800 && lo <= 0xDFFF) {
    if (hi <= 0xDFFF) return;
    split(0xE000, hi, out);
    return;
  }
  // One encoding length at a time.
  for (uint32_t max : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= max && hi > max) {
      split(lo, max, out);
      split(max + 1, hi, out);
      return;
    }
  }
  const int n = utf8_length(lo);
  // Each continuation byte must range fully or share its prefix: split where it does not.
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split(lo, lo | m, out);
        split((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        split(lo, (hi & ~m) - 1, out);
        split(hi & ~m, hi, out);
        return;
      }
    }
  }
  const auto a = encode(lo, n), b = encode(hi, n);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int i = 0; i < n; ++i) seq.emplace_back(a[i], b[i]);
  out.push_back(std::move(seq));
}

}  // namespace

std::vector<std::vector<std::pair<uint8_t, uint8_t>>> utf8_sequences(uint32_t lo, uint32_t hi) {
  std::vector<std::vector<std::pair<uint8_t, uint8_t>>> out;
  split(lo, std::min(hi, kMaxCodepoint), out);
  return out;
}

uint32_t GrammarBuilder::rule(std::string_view name) {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
  const auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  by_name_.emplace(std::string(name), id);
  rules_.emplace_back();
  defined_.push_back(false);
  return id;
}

uint32_t GrammarBuilder::fresh_rule(std::string_view base) {
  for (;;) {
    std::string name = fmt::format("{}-{}", base, fresh_++);
    if (!by_name_.contains(name)) return rule(name);
  }
}

Status GrammarBuilder::define(uint32_t r, std::vector<Sequence> alternatives) {
  if (defined_[r]) return make_error("rule '{}' is defined twice", names_[r]);
  rules_[r] = std::move(alternatives);
  defined_[r] = true;
  return Status::success();
}

Symbol GrammarBuilder::bytes(const ByteSet& set) {
  auto [it, fresh] = byte_set_ids_.emplace(set, static_cast<uint32_t>(byte_sets_.size()));
  if (fresh) byte_sets_.push_back(set);
  return {Symbol::Kind::kBytes, it->second};
}

Symbol GrammarBuilder::byte(uint8_t b) {
  ByteSet s;
  s.add(b);
  return bytes(s);
}

void GrammarBuilder::append_literal(Sequence& seq, std::string_view text) {
  for (char c : text) seq.push_back(byte(static_cast<uint8_t>(c)));
}

Result<Symbol> GrammarBuilder::char_class(std::vector<CodepointRange> ranges, bool negated) {
  std::sort(ranges.begin(), ranges.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.lo < b.lo; });
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (const CodepointRange& r : ranges) {
    if (r.lo > r.hi) continue;
    if (!merged.empty() && r.lo <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.hi);
    } else {
      merged.emplace_back(r.lo, std::min(r.hi, kMaxCodepoint));
    }
  }
  if (negated) {
    std::vector<std::pair<uint32_t, uint32_t>> complement;
    uint32_t next = 0;
    for (const auto& [lo, hi] : merged) {
      if (lo > next) complement.emplace_back(next, lo - 1);
      next = hi + 1;
    }
    if (next <= kMaxCodepoint) complement.emplace_back(next, kMaxCodepoint);
    merged = std::move(complement);
  }
  if (merged.empty()) return make_error("a character class matches no character");
  if (merged.back().second < 0x80) {
    ByteSet set;
    for (const auto& [lo, hi] : merged)
      set.add_range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi));
    return bytes(set);
  }
  if (auto it = class_rules_.find(merged); it != class_rules_.end()) {
    return Symbol{Symbol::Kind::kRule, it->second};
  }
  ByteSet ascii;
  bool any_ascii = false;
  std::vector<Sequence> alternatives;
  for (const auto& [lo, hi] : merged) {
    for (const auto& seq : utf8_sequences(lo, hi)) {
      if (seq.size() == 1) {
        ascii.add_range(seq[0].first, seq[0].second);
        any_ascii = true;
        continue;
      }
      Sequence s;
      for (const auto& [a, b] : seq) {
        ByteSet set;
        set.add_range(a, b);
        s.push_back(bytes(set));
      }
      alternatives.push_back(std::move(s));
    }
  }
  if (any_ascii) alternatives.insert(alternatives.begin(), Sequence{bytes(ascii)});
  const uint32_t r = fresh_rule("char");
  (void)define(r, std::move(alternatives));
  class_rules_.emplace(std::move(merged), r);
  return Symbol{Symbol::Kind::kRule, r};
}

Symbol GrammarBuilder::repeat(Symbol x, int min, int max) {
  const auto key = std::make_tuple(static_cast<uint32_t>(x.kind), x.id, min, max);
  if (auto it = repeat_rules_.find(key); it != repeat_rules_.end()) {
    return {Symbol::Kind::kRule, it->second};
  }
  Sequence seq(static_cast<size_t>(min), x);
  if (max < 0) {
    const uint32_t star = fresh_rule("star");
    (void)define(star, {Sequence{x, Symbol{Symbol::Kind::kRule, star}}, Sequence{}});
    seq.push_back({Symbol::Kind::kRule, star});
  } else if (max > min) {
    // O_k ::= x O_{k-1} | (empty), built from the innermost out.
    uint32_t inner = fresh_rule("opt");
    (void)define(inner, {Sequence{x}, Sequence{}});
    for (int k = 2; k <= max - min; ++k) {
      const uint32_t outer = fresh_rule("opt");
      (void)define(outer, {Sequence{x, Symbol{Symbol::Kind::kRule, inner}}, Sequence{}});
      inner = outer;
    }
    seq.push_back({Symbol::Kind::kRule, inner});
  }
  const uint32_t r = fresh_rule("rep");
  (void)define(r, {std::move(seq)});
  repeat_rules_.emplace(key, r);
  return {Symbol::Kind::kRule, r};
}

Result<Grammar> GrammarBuilder::build(std::string_view root_name) {
  auto root = by_name_.find(root_name);
  if (root == by_name_.end() || !defined_[root->second]) {
    return make_error("the grammar has no '{}' rule", root_name);
  }
  const size_t n = rules_.size();
  for (size_t r = 0; r < n; ++r) {
    if (!defined_[r]) continue;
    for (const Sequence& alt : rules_[r]) {
      for (const Symbol& s : alt) {
        if (s.kind == Symbol::Kind::kRule && !defined_[s.id]) {
          return make_error("rule '{}' refers to undefined rule '{}'", names_[r], names_[s.id]);
        }
      }
    }
  }
  // Which rules can match the empty string, by a worklist over the alternatives: each
  // waits for its rule symbols to be known nullable. (A fixpoint of whole passes takes one
  // pass per link of a chain of rules: quadratic in a hostile grammar's size.)
  std::vector<bool> nullable(n, false);
  std::vector<uint32_t> waiting;                                     // per alternative
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> users(n);  // rule -> (rule, alt)
  std::vector<uint32_t> ready;
  for (uint32_t r = 0; r < n; ++r) {
    for (const Sequence& alt : rules_[r]) {
      const auto a = static_cast<uint32_t>(waiting.size());
      const bool has_bytes = std::any_of(
          alt.begin(), alt.end(), [](const Symbol& s) { return s.kind != Symbol::Kind::kRule; });
      waiting.push_back(has_bytes ? UINT32_MAX : static_cast<uint32_t>(alt.size()));
      if (has_bytes) continue;
      for (const Symbol& s : alt) users[s.id].emplace_back(r, a);
      if (alt.empty() && !nullable[r]) {
        nullable[r] = true;
        ready.push_back(r);
      }
    }
  }
  while (!ready.empty()) {
    const uint32_t x = ready.back();
    ready.pop_back();
    for (const auto& [r, a] : users[x]) {
      if (--waiting[a] == 0 && !nullable[r]) {
        nullable[r] = true;
        ready.push_back(r);
      }
    }
  }
  // Left recursion: a rule reachable from itself through left edges (symbols preceded only by
  // nullable ones) that would grow the matcher's stack without consuming input. An edge to
  // the last symbol of an alternative is a tail call, which the automaton makes without a
  // new stack entry, so a cycle of tail calls alone only revisits a position (X* over a
  // nullable X, as `(a|){3,}` makes). A cycle is refused when it holds a non-tail edge: when
  // such an edge joins two rules of one strongly connected component.
  struct Edge {
    uint32_t to;
    bool tail;
  };
  std::vector<std::vector<Edge>> left(n);
  for (size_t r = 0; r < n; ++r) {
    for (const Sequence& alt : rules_[r]) {
      for (size_t k = 0; k < alt.size(); ++k) {
        const Symbol& s = alt[k];
        if (s.kind != Symbol::Kind::kRule) break;
        left[r].push_back({s.id, k + 1 == alt.size()});
        if (!nullable[s.id]) break;
      }
    }
  }
  // Tarjan's components, iteratively.
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<uint32_t> index(n, kNone), low(n, 0), component(n, kNone);
  std::vector<uint32_t> stack;
  std::vector<bool> on_stack(n, false);
  std::vector<std::pair<uint32_t, size_t>> path;
  uint32_t next_index = 0, components = 0;
  for (uint32_t start = 0; start < n; ++start) {
    if (index[start] != kNone) continue;
    path.emplace_back(start, 0);
    index[start] = low[start] = next_index++;
    stack.push_back(start);
    on_stack[start] = true;
    while (!path.empty()) {
      auto& [r, i] = path.back();
      if (i < left[r].size()) {
        const uint32_t to = left[r][i++].to;
        if (index[to] == kNone) {
          index[to] = low[to] = next_index++;
          stack.push_back(to);
          on_stack[to] = true;
          path.emplace_back(to, 0);
        } else if (on_stack[to]) {
          low[r] = std::min(low[r], index[to]);
        }
        continue;
      }
      const uint32_t done = r;
      path.pop_back();
      if (!path.empty()) low[path.back().first] = std::min(low[path.back().first], low[done]);
      if (low[done] == index[done]) {
        for (uint32_t m = kNone; m != done;) {
          m = stack.back();
          stack.pop_back();
          on_stack[m] = false;
          component[m] = components;
        }
        ++components;
      }
    }
  }
  for (uint32_t r = 0; r < n; ++r) {
    for (const Edge& e : left[r]) {
      if (!e.tail && component[e.to] == component[r]) {
        return make_error(
            "rule '{}' is left-recursive (it can reach itself without consuming input)",
            names_[e.to]);
      }
    }
  }
  // How many byte positions can be live at once: the automaton's states hold every stack
  // whose top is a byte set, and each step and token mask walks them all. Something that can
  // be empty, repeated, leaves every copy live at once: `(a|){9090}` makes states of about
  // 9,090 positions, and seconds of work per token. Bounded here, from the rules up (Tarjan
  // numbers a component after every component it reaches; a rule's own component adds
  // nothing, as those cycles are tail calls that revisit a position): first[r] counts the
  // positions a closure entering r can reach, and the widest suffix of any alternative is what
  // a state can hold after a step into it.
  constexpr uint64_t kSaturate = uint64_t{1} << 40;
  std::vector<std::vector<uint32_t>> by_component(components);
  for (uint32_t r = 0; r < n; ++r) by_component[component[r]].push_back(r);
  std::vector<uint64_t> first(n, 0);
  auto width = [&](const Symbol& sym, uint32_t from) -> uint64_t {
    if (sym.kind != Symbol::Kind::kRule) return 1;
    return component[sym.id] == component[from] ? 0 : first[sym.id];
  };
  uint64_t widest = 0;
  for (const auto& rules : by_component) {
    for (uint32_t r : rules) {
      uint64_t total = 0;
      for (const Sequence& alt : rules_[r]) {
        uint64_t suffix = 0;  // of alt from k on
        for (size_t k = alt.size(); k-- > 0;) {
          const Symbol& sym = alt[k];
          const bool skippable = sym.kind == Symbol::Kind::kRule && nullable[sym.id];
          suffix = std::min(kSaturate, width(sym, r) + (skippable ? suffix : 0));
          widest = std::max(widest, suffix);
        }
        total = std::min(kSaturate, total + suffix);
      }
      first[r] = total;
      widest = std::max(widest, total);
    }
  }
  if (widest > kMaxLivePositions) {
    return make_error(
        "the grammar is too ambiguous: up to {} positions of it can be live at once, and at most "
        "{} are allowed (a repetition of something that can be empty, like (a|){{9090}}, keeps "
        "every copy live; write a{{0,9090}} instead)",
        widest >= kSaturate ? std::string("2^40") : std::to_string(widest), kMaxLivePositions);
  }
  Grammar g;
  g.byte_sets = byte_sets_;
  g.rule_names = names_;
  g.root = root->second;
  g.alternatives.resize(n);
  for (size_t r = 0; r < n; ++r) {
    for (const Sequence& alt : rules_[r]) {
      g.alternatives[r].push_back(static_cast<uint32_t>(g.elements.size()));
      for (const Symbol& s : alt) {
        g.elements.push_back(
            {s.kind == Symbol::Kind::kBytes ? ElementKind::kBytes : ElementKind::kRule, s.id});
      }
      g.elements.push_back({ElementKind::kEnd, 0});
    }
  }
  return g;
}

}  // namespace moon::grammar
