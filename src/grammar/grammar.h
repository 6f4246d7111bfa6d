// A context-free grammar over bytes: what the grammar engine matches generated text against.
//
// Rules are lists of alternatives, each a sequence of byte sets and references to rules.
// Characters are code points in the grammars people write (GBNF, JSON Schema, regular
// expressions); GrammarBuilder turns every character class into the UTF-8 byte sequences
// that spell its members, so matching needs nothing but bytes, a token that ends inside a
// multi-byte character is handled like any other prefix, and no sequence the grammar accepts
// is invalid UTF-8.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace moon::grammar {

struct ByteSet {
  std::array<uint64_t, 4> bits{};
  bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  void add(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
  void add(const ByteSet& o) {
    for (size_t w = 0; w < bits.size(); ++w) bits[w] |= o.bits[w];
  }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
  }
  bool operator<(const ByteSet& o) const { return bits < o.bits; }
  bool operator==(const ByteSet& o) const { return bits == o.bits; }
};

enum class ElementKind : uint8_t {
  kBytes,  // one byte from byte_sets[arg]
  kRule,   // rule `arg`
  kEnd,    // the end of an alternative
};

struct Element {
  ElementKind kind;
  uint32_t arg;
};

// The most grammar positions that may be live at once in a compiled grammar (GrammarBuilder::
// build refuses more): room for a choice among 4,096 strings and for JSON schemas' unions,
// not for a nullable item repeated thousands of times.
inline constexpr uint64_t kMaxLivePositions = 8192;

// The compiled form: every alternative's elements back to back, each alternative closed by
// kEnd, so a position in the grammar is one index.
struct Grammar {
  std::vector<Element> elements;
  std::vector<ByteSet> byte_sets;
  std::vector<std::vector<uint32_t>> alternatives;  // per rule: where each alternative starts
  std::vector<std::string> rule_names;
  uint32_t root = 0;
};

// An inclusive range of code points.
struct CodepointRange {
  uint32_t lo;
  uint32_t hi;
};

// A symbol of a rule being built: a byte set, a rule, or a character class (code points).
struct Symbol {
  enum class Kind : uint8_t { kBytes, kRule } kind;
  uint32_t id;
};

// Builds a Grammar rule by rule. Rules may be referenced before they are defined; build()
// names any that never were, and refuses left recursion (which a top-down matcher would
// expand forever) by the rule where it starts.
class GrammarBuilder {
 public:
  using Sequence = std::vector<Symbol>;

  // The rule called `name`, created (undefined) on first mention.
  uint32_t rule(std::string_view name);
  // A fresh rule named after `base` (for repetitions and groups).
  uint32_t fresh_rule(std::string_view base);
  bool is_defined(uint32_t rule) const { return defined_[rule]; }
  // Sets a rule's alternatives; an error if it already has them.
  Status define(uint32_t rule, std::vector<Sequence> alternatives);

  Symbol byte(uint8_t b);
  Symbol bytes(const ByteSet& set);
  // The bytes of `text`, one symbol each, appended to `seq`.
  void append_literal(Sequence& seq, std::string_view text);
  // A character class: the code points in `ranges` (or, negated, every valid code point
  // outside them). One byte-set symbol when every member is ASCII, else a rule whose
  // alternatives are the UTF-8 spellings. An empty class is an error.
  Result<Symbol> char_class(std::vector<CodepointRange> ranges, bool negated);

  // x{min,max} as rules; max < 0 is unbounded. `x` must not match the empty string
  // (build() reports it as left recursion otherwise).
  Symbol repeat(Symbol x, int min, int max);

  Result<Grammar> build(std::string_view root_name);

 private:
  std::vector<std::string> names_;
  std::map<std::string, uint32_t, std::less<>> by_name_;
  std::vector<std::vector<Sequence>> rules_;
  std::vector<bool> defined_;
  std::vector<ByteSet> byte_sets_;
  std::map<ByteSet, uint32_t> byte_set_ids_;
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, uint32_t> class_rules_;
  std::map<std::tuple<uint32_t, uint32_t, int, int>, uint32_t> repeat_rules_;
  int fresh_ = 0;
};

// Code point ranges as UTF-8: each entry a sequence of byte ranges, one per byte, such that
// the byte strings matching some entry are exactly the UTF-8 encodings of the code points in
// [lo, hi] (surrogates excluded).
std::vector<std::vector<std::pair<uint8_t, uint8_t>>> utf8_sequences(uint32_t lo, uint32_t hi);

}  // namespace moon::grammar
