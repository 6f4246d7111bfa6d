// Finds special tokens written literally in text, so that they are emitted as their own ids
// instead of being tokenized as characters.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace moon {

class SpecialTokenMatcher {
 public:
  // A stretch of text to tokenize normally (token == kNoToken), or one matched token.
  struct Fragment {
    std::string_view text;
    TokenId token = kNoToken;
  };

  // `strip_right`: whitespace right after the token is dropped (the "rstrip" some models'
  // added tokens have).
  void add(TokenId id, std::string_view text, bool strip_right = false);
  bool empty() const { return count_ == 0; }

  // Splits `text` at every match, leftmost first and the longest token at a position (as
  // Hugging Face's added-token matching does). Text fragments are never empty.
  void split(std::string_view text, std::vector<Fragment>& out) const;

 private:
  struct Entry {
    std::string_view text;  // views into the vocabulary
    TokenId id;
    bool strip_right;
  };
  // Candidates bucketed by first byte, longest first.
  std::array<std::vector<Entry>, 256> by_first_byte_;
  size_t count_ = 0;
};

}  // namespace moon
