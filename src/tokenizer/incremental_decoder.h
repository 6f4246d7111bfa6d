// Streaming detokenization: text comes out as tokens arrive, in whole UTF-8 characters only.
//
// A character whose bytes are spread over several tokens (byte-fallback <0xNN> tokens, or
// byte-level BPE pieces that end mid-character) is held back until its last byte arrives and
// then comes out once, whole. Bytes that can no longer become a valid character come out as
// U+FFFD, one per byte; flush() does the same for whatever is still incomplete at the end, and
// so does a special token (shown or not), since a character never spans one.
// The concatenation of every push() and the final flush() equals Tokenizer::decode.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace moon {

class IncrementalDecoder {
 public:
  // `tokenizer` must outlive the decoder. skip_special as in Tokenizer::decode.
  // `continuation`: the tokens continue a text decoded elsewhere (a generated completion
  // after its prompt), so the first piece keeps its leading space: only the very start of a
  // text carries SentencePiece's dummy-prefix space.
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special = true,
                              bool continuation = false);

  // The text that token `id` completes; often empty while a character is unfinished.
  std::string push(TokenId id);
  // Everything still held back, with U+FFFD for bytes of characters that never completed.
  std::string flush();
  // Starts a new text: also re-arms the removal of the dummy-prefix space.
  void reset();
  // Bytes held back, waiting for the rest of their character (at most 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string drain(bool final);

  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool at_start_ = true;  // nothing emitted yet: the dummy-prefix space may still be due
  std::string pending_;
};

}  // namespace moon
