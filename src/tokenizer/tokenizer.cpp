#include "tokenizer/tokenizer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_tokenizer.h"

namespace moon {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581

// Texts of the control tokens models use to end a turn; llama.cpp stops on them too, since
// converters rarely record them as eot/eom ids.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
};

// "<0x0A>" -> 0x0A; -1 when `text` is not of that form.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(text[3]);
  const int lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Appends `text` with every U+2581 turned back into a space.
void append_unescaped(std::string& out, std::string_view text) {
  for (size_t pos = 0;;) {
    const size_t hit = text.find(kSpaceSymbol, pos);
    out.append(
        text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos));
    if (hit == std::string_view::npos) return;
    out += ' ';
    pos = hit + kSpaceSymbol.size();
  }
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::GgufFile& file) {
  MOON_ASSIGN_OR_RETURN(VocabSpec spec, read_vocab_spec(file));
  auto tokenizer = from_spec(spec);
  if (!tokenizer.ok()) return make_error("{}: {}", file.name(), tokenizer.error().message);
  return tokenizer;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_spec(const VocabSpec& spec) {
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  MOON_TRY(tokenizer->init(spec));
  return tokenizer;
}

Status Tokenizer::init(const VocabSpec& spec) {
  kind_ = spec.kind;
  MOON_ASSIGN_OR_RETURN(vocab_, Vocab::build(spec));
  auto checked = [&](TokenId id, const char* what) {
    if (id == kNoToken || vocab_.contains(id)) return id;
    spdlog::warn("tokenizer: {} id {} is outside the vocabulary of {}; ignoring it", what, id,
                 vocab_.size());
    return kNoToken;
  };
  bos_ = checked(spec.bos, "BOS");
  eos_ = checked(spec.eos, "EOS");
  eot_ = checked(spec.eot, "EOT");
  eom_ = checked(spec.eom, "EOM");
  unk_ = checked(spec.unk, "UNK");
  pad_ = checked(spec.pad, "PAD");

  if (kind_ == TokenizerKind::Spm) {
    add_bos_ = spec.add_bos.value_or(true);
    add_space_prefix_ = spec.add_space_prefix.value_or(true);
    spm_ = std::make_unique<SpmTokenizer>(vocab_, unk_);
  } else {
    MOON_ASSIGN_OR_RETURN(BpePreset preset, bpe_preset_for(spec.pre));
    if (spec.merges.empty()) return make_error("byte-level BPE vocabulary has no merges");
    MOON_ASSIGN_OR_RETURN(BpeTokenizer bpe,
                          BpeTokenizer::create(vocab_, spec.merges, preset, unk_));
    bpe_ = std::make_unique<BpeTokenizer>(std::move(bpe));
    add_bos_ = spec.add_bos.value_or(preset.add_bos_default);
    // Byte-level BPE encodes spaces itself; a dummy prefix would add text that is not there.
    add_space_prefix_ = false;
  }
  add_eos_ = spec.add_eos.value_or(false);
  if (add_bos_ && bos_ == kNoToken) {
    spdlog::warn("tokenizer: model asks for BOS but has no BOS token; not adding one");
    add_bos_ = false;
  }
  if (add_eos_ && eos_ == kNoToken) {
    spdlog::warn("tokenizer: model asks for EOS but has no EOS token; not adding one");
    add_eos_ = false;
  }

  build_pieces();
  build_special_matchers(spec);

  for (TokenId id : {eos_, eot_, eom_}) {
    if (id != kNoToken) eog_.push_back(id);
  }
  for (std::string_view text : kEndOfTurnTexts) {
    if (const TokenId id = vocab_.find(text); id != kNoToken) eog_.push_back(id);
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
  return Status::success();
}

void Tokenizer::build_pieces() {
  const int32_t n = vocab_.size();
  piece_offsets_.reserve(n + 1);
  piece_offsets_.push_back(0);
  std::string piece;
  for (TokenId id = 0; id < n; ++id) {
    const std::string_view text = vocab_.text(id);
    const TokenType type = vocab_.type(id);
    piece.clear();
    if (type == TokenType::Control || type == TokenType::Unknown ||
        type == TokenType::UserDefined) {
      piece = text;  // special tokens read as what they are called
    } else if (kind_ == TokenizerKind::Spm) {
      const int byte = type == TokenType::Byte ? parse_byte_token(text) : -1;
      if (byte >= 0) {
        piece = static_cast<char>(byte);
      } else {
        append_unescaped(piece, text);
      }
    } else if (!byte_level::decode(text, piece)) {
      spdlog::debug("tokenizer: token {} has characters outside the byte-level alphabet", id);
    }
    piece_bytes_.insert(piece_bytes_.end(), piece.begin(), piece.end());
    piece_offsets_.push_back(piece_bytes_.size());
  }
}

void Tokenizer::build_special_matchers(const VocabSpec& spec) {
  user_defined_ = std::make_unique<SpecialTokenMatcher>();
  all_special_ = std::make_unique<SpecialTokenMatcher>();
  // Phi-3's added tokens swallow the whitespace after them (rstrip in its tokenizer.json);
  // GGUF does not record that, so llama.cpp recognises the model by name, and so do we.
  const std::string name = to_lower(spec.model_name);
  const bool phi3 =
      name.find("phi3") != std::string::npos || name.find("phi-3") != std::string::npos;
  for (TokenId id = 0; id < vocab_.size(); ++id) {
    const TokenType type = vocab_.type(id);
    if (type != TokenType::Control && type != TokenType::UserDefined &&
        type != TokenType::Unknown) {
      continue;
    }
    const std::string_view text = vocab_.text(id);
    const bool strip_right = phi3 && text != "<unk>" && text != "<s>" && text != "<|endoftext|>";
    all_special_->add(id, text, strip_right);
    if (type == TokenType::UserDefined) user_defined_->add(id, text, strip_right);
  }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_) out.push_back(bos_);

  const SpecialTokenMatcher& matcher = parse_special ? *all_special_ : *user_defined_;
  std::vector<SpecialTokenMatcher::Fragment> fragments;
  if (matcher.empty()) {
    if (!text.empty()) fragments.push_back({text, kNoToken});
  } else {
    matcher.split(text, fragments);
  }
  // Like llama.cpp (and Hugging Face's legacy Llama tokenizer), SentencePiece text that follows
  // a special token gets its own dummy-prefix space.
  bool after_special = true;
  for (const auto& fragment : fragments) {
    if (fragment.token != kNoToken) {
      out.push_back(fragment.token);
      after_special = true;
      continue;
    }
    if (spm_) {
      spm_->encode(fragment.text, add_space_prefix_ && after_special, out);
    } else {
      bpe_->encode(fragment.text, out);
    }
    after_special = false;
  }

  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  IncrementalDecoder decoder(*this, skip_special);
  std::string out;
  for (TokenId id : ids) out += decoder.push(id);
  out += decoder.flush();
  return out;
}

std::string_view Tokenizer::token_text(TokenId id) const {
  return vocab_.contains(id) ? vocab_.text(id) : std::string_view();
}

std::string_view Tokenizer::piece(TokenId id) const {
  if (!vocab_.contains(id)) return {};
  return {piece_bytes_.data() + piece_offsets_[id], piece_offsets_[id + 1] - piece_offsets_[id]};
}

TokenType Tokenizer::token_type(TokenId id) const {
  return vocab_.contains(id) ? vocab_.type(id) : TokenType::Undefined;
}

bool Tokenizer::is_special(TokenId id) const {
  const TokenType t = token_type(id);
  return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
}

bool Tokenizer::is_hidden_special(TokenId id) const {
  const TokenType t = token_type(id);
  return t == TokenType::Control || t == TokenType::Unknown;
}

bool Tokenizer::is_eog(TokenId id) const {
  return id != kNoToken && std::binary_search(eog_.begin(), eog_.end(), id);
}

}  // namespace moon
