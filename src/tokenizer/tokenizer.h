// Text <-> token ids for the vocabularies GGUF files carry (tokenizer.ggml.*):
//   - "llama": SentencePiece-style BPE with scores, byte fallback and a dummy-prefix space
//     (Llama 1/2, Mistral, Phi-3, TinyLlama, ...);
//   - "gpt2": byte-level BPE with ranked merges, split into words first by the regexes that
//     tokenizer.ggml.pre names (GPT-2, Llama 3, Qwen2, DeepSeek-Coder, ...).
//
// Special tokens: user-defined tokens (type 4) written in the text are always cut out and
// emitted as their ids, as llama.cpp, Hugging Face and SentencePiece all do. Control and
// unknown tokens (types 3 and 2) are cut out only with parse_special; otherwise their text is
// tokenized like any other text.
//
// A Tokenizer is immutable once built: every const method may be called from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_file.h"
#include "tokenizer/vocab.h"
#include "util/result.h"

namespace moon {

class SpmTokenizer;
class BpeTokenizer;
class SpecialTokenMatcher;

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* (and general.name); a clear Error when metadata is missing,
  // malformed or names a tokenizer this engine does not implement.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::GgufFile& file);
  static Result<std::unique_ptr<Tokenizer>> from_spec(const VocabSpec& spec);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: BOS first and/or EOS last, as the model's add_bos/add_eos say.
  // parse_special: control and unknown tokens written in `text` become their ids.
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The text of `ids`, always valid UTF-8: bytes that do not form a character become U+FFFD
  // (one per byte, as SentencePiece does). skip_special leaves out control and unknown
  // tokens; without it they appear as their text. For SentencePiece-style vocabularies the
  // space the dummy prefix added before the first piece is removed. Ids out of range are
  // ignored. Equal to feeding `ids` through an IncrementalDecoder and flushing.
  std::string decode(std::span<const TokenId> ids, bool skip_special) const;

  std::string_view token_text(TokenId id) const;  // the raw vocabulary string; "" if out of range
  // The bytes token `id` stands for (▁ as space, <0xNN> as that byte, byte-level characters as
  // their bytes; special tokens as their text). May be an incomplete UTF-8 sequence.
  std::string token_to_piece(TokenId id) const { return std::string(piece(id)); }
  std::string_view piece(TokenId id) const;  // the same, without a copy

  int32_t vocab_size() const { return vocab_.size(); }
  TokenizerKind kind() const { return kind_; }
  TokenId bos_id() const { return bos_; }  // kNoToken when the vocabulary has none
  TokenId eos_id() const { return eos_; }
  TokenId eot_id() const { return eot_; }
  TokenId unk_id() const { return unk_; }
  TokenId pad_id() const { return pad_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // Whether decoding drops the space that the dummy prefix put before the first piece.
  bool strips_leading_space() const { return add_space_prefix_; }

  TokenType token_type(TokenId id) const;
  // Tokens that stand for something other than text: control, user-defined and unknown.
  bool is_special(TokenId id) const;
  // Tokens that decode(skip_special = true) leaves out: control and unknown.
  bool is_hidden_special(TokenId id) const;
  bool is_byte(TokenId id) const { return token_type(id) == TokenType::Byte; }
  // End of generation: EOS, EOT, EOM, and the control tokens models use to end a turn
  // (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, <EOT>).
  bool is_eog(TokenId id) const;
  const std::vector<TokenId>& eog_ids() const { return eog_; }

 private:
  Tokenizer();
  Status init(const VocabSpec& spec);
  void build_pieces();
  void build_special_matchers(const VocabSpec& spec);

  TokenizerKind kind_ = TokenizerKind::Spm;
  Vocab vocab_;
  std::unique_ptr<SpmTokenizer> spm_;
  std::unique_ptr<BpeTokenizer> bpe_;
  std::unique_ptr<SpecialTokenMatcher> user_defined_;  // always applied
  std::unique_ptr<SpecialTokenMatcher> all_special_;   // with parse_special
  std::vector<char> piece_bytes_;
  std::vector<size_t> piece_offsets_;
  std::vector<TokenId> eog_;  // sorted
  TokenId bos_ = kNoToken;
  TokenId eos_ = kNoToken;
  TokenId eot_ = kNoToken;
  TokenId eom_ = kNoToken;
  TokenId unk_ = kNoToken;
  TokenId pad_ = kNoToken;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
};

}  // namespace moon
