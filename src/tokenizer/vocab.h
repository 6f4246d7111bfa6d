// A tokenizer's vocabulary: token texts, types and scores, with text -> id lookup, plus the
// plain description (VocabSpec) that tokenizers are built from, whatever file it came from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/result.h"

namespace moon {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Token types, numbered as GGUF's tokenizer.ggml.token_type stores them.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class TokenizerKind {
  Spm,  // tokenizer.ggml.model "llama": SentencePiece-style BPE with scores and byte fallback
  Bpe,  // tokenizer.ggml.model "gpt2": byte-level BPE with ranked merges
};

// The tokenizer.ggml.* metadata decoded into plain values. Optional settings stay unset when
// the file has no value, so that the defaults for the tokenizer kind apply.
struct VocabSpec {
  TokenizerKind kind = TokenizerKind::Spm;
  std::string pre;         // tokenizer.ggml.pre; empty when absent
  std::string model_name;  // general.name; a few models need per-name fixes (as in llama.cpp)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty, or one per token
  std::vector<TokenType> types;     // empty (all Normal), or one per token
  std::vector<std::string> merges;  // Bpe only: "left right", rank = index
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId unk = kNoToken;
  TokenId eot = kNoToken;
  TokenId eom = kNoToken;
  TokenId pad = kNoToken;
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;
  std::optional<bool> add_space_prefix;
};

class Vocab {
 public:
  // Indexes the tokens of `spec`. Fails on an empty vocabulary or on score/type arrays whose
  // length differs from the token count.
  static Result<Vocab> build(const VocabSpec& spec);

  int32_t size() const { return static_cast<int32_t>(types_.size()); }
  bool contains(TokenId id) const { return id >= 0 && id < size(); }
  std::string_view text(TokenId id) const {
    return {storage_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]};
  }
  TokenType type(TokenId id) const { return types_[id]; }
  float score(TokenId id) const { return scores_.empty() ? 0.0f : scores_[id]; }
  // The token whose text is exactly `text` (the lowest id if the file repeats a text).
  TokenId find(std::string_view text) const {
    auto it = index_.find(text);
    return it == index_.end() ? kNoToken : it->second;
  }

 private:
  std::vector<char> storage_;  // every token text back to back; index_ views into it
  std::vector<size_t> offsets_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, TokenId> index_;
};

}  // namespace moon
