// SentencePiece-style BPE (tokenizer.ggml.model "llama"), as SentencePiece's bpe_model encodes:
// spaces become U+2581, the text starts as one symbol per UTF-8 character, and the adjacent
// pair whose concatenation is a vocabulary piece with the highest score merges first (the
// leftmost among equal scores) until no pair is a piece. Symbols that are not pieces fall
// back to their bytes' <0xNN> tokens.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace moon {

class SpmTokenizer {
 public:
  // `vocab` must outlive the tokenizer.
  SpmTokenizer(const Vocab& vocab, TokenId unk);

  // Appends the tokens of one stretch of text (no special-token handling) to `out`.
  // `add_prefix` prepends the dummy-prefix space (SentencePiece's add_dummy_prefix).
  // Bytes that are not valid UTF-8 become U+FFFD first, as SentencePiece's normalizer does.
  void encode(std::string_view text, bool add_prefix, std::vector<TokenId>& out) const;

  // The token of one byte (<0xNN>); unk, or kNoToken, when the vocabulary has none.
  TokenId byte_token(uint8_t b) const { return byte_token_[b]; }

 private:
  // The id of `text` if it is a piece merges may produce (normal, user-defined or unused,
  // as in SentencePiece; never control, unknown or byte tokens), else kNoToken.
  TokenId find_piece(std::string_view text) const;

  const Vocab* vocab_;
  std::array<TokenId, 256> byte_token_{};
};

}  // namespace moon
