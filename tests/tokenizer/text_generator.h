// Deterministic random text for property tests: mixtures of scripts, emoji, whitespace runs,
// code, digits and punctuation, random code points (many of them absent from any vocabulary,
// so byte fallback runs), and optionally byte sequences that are not valid UTF-8.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace moon::test {

class TextGenerator {
 public:
  explicit TextGenerator(uint32_t seed) : rng_(seed) {}

  // A text of roughly `max_parts` random pieces. With `allow_invalid`, some pieces are
  // malformed UTF-8 (stray continuation bytes, truncated or overlong sequences, surrogates,
  // bytes F5..FF, values past U+10FFFF).
  std::string text(int max_parts, bool allow_invalid);

  // A random valid code point from the whole Unicode range (no surrogates).
  uint32_t any_codepoint();
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }

 private:
  void add_part(std::string& out, bool allow_invalid);
  void add_invalid(std::string& out);

  // mt19937's output sequence is fixed by the standard; distributions are not, so values are
  // derived from raw outputs by hand to keep the texts identical across standard libraries.
  std::mt19937 rng_;
};

}  // namespace moon::test
