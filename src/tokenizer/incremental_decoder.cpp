#include "tokenizer/incremental_decoder.h"

#include "util/utf8.h"

namespace moon {

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special,
                                       bool continuation)
    : tokenizer_(&tokenizer), skip_special_(skip_special), at_start_(!continuation) {}

std::string IncrementalDecoder::push(TokenId id) {
  if (id < 0 || id >= tokenizer_->vocab_size()) return {};
  // A special token ends any character in progress even when it is not shown, as in
  // SentencePiece: bytes on both sides of it never join.
  if (skip_special_ && tokenizer_->is_hidden_special(id)) return drain(true);
  std::string_view piece = tokenizer_->piece(id);
  if (piece.empty()) return {};
  if (at_start_) {
    at_start_ = false;
    // SentencePiece drops the dummy prefix from the first visible piece, but a byte token's
    // space is a real one.
    if (tokenizer_->strips_leading_space() && !tokenizer_->is_byte(id) && piece[0] == ' ') {
      piece.remove_prefix(1);
    }
  }
  pending_.append(piece);
  return drain(false);
}

std::string IncrementalDecoder::flush() {
  return drain(true);
}

void IncrementalDecoder::reset() {
  at_start_ = true;
  pending_.clear();
}

std::string IncrementalDecoder::drain(bool final) {
  std::string out;
  const std::string_view bytes = pending_;
  size_t i = 0;
  while (i < bytes.size()) {
    const std::string_view rest = bytes.substr(i);
    if (const size_t n = utf8::valid_char_length(rest); n > 0) {
      out.append(rest.substr(0, n));
      i += n;
    } else if (!final && utf8::is_incomplete_prefix(rest)) {
      break;  // may still complete with the next token's bytes
    } else {
      out += utf8::kReplacement;
      i += 1;
    }
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace moon
