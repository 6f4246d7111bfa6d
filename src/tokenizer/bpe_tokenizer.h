// Byte-level BPE (tokenizer.ggml.model "gpt2"): text is cut into words by the pre-tokenizer,
// each word's bytes start as one symbol apiece, and the adjacent pair with the lowest merge
// rank is merged until no listed merge applies.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"
#include "util/result.h"

namespace moon {

class BpeTokenizer {
 public:
  // `merges` are "left right" strings in byte-level text; rank = index. `vocab` must outlive
  // the tokenizer.
  static Result<BpeTokenizer> create(const Vocab& vocab, const std::vector<std::string>& merges,
                                     const BpePreset& preset, TokenId unk);

  // Appends the tokens of `text` (no special-token handling) to `out`.
  void encode(std::string_view text, std::vector<TokenId>& out) const;

 private:
  struct Merge {
    int32_t rank;
    TokenId result;
  };
  struct Scratch;

  BpeTokenizer(const Vocab& vocab, PreTokenizer pre) : vocab_(&vocab), pre_(std::move(pre)) {}
  static uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const Merge* find_merge(TokenId left, TokenId right) const;
  void encode_word(std::string_view word, Scratch& scratch, std::vector<TokenId>& out) const;

  const Vocab* vocab_;
  PreTokenizer pre_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<TokenId, 256> byte_token_{};  // the token of each byte's one-character text
  bool ignore_merges_ = false;
  TokenId unk_ = kNoToken;
};

}  // namespace moon
