#include "tokenizer/bpe_tokenizer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "tokenizer/byte_level.h"

namespace moon {

// Per-call working memory, reused across the words of one encode().
struct BpeTokenizer::Scratch {
  struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t left;  // index of the left symbol; symbols merge into their left neighbour
    TokenId left_id;
    TokenId right_id;
    TokenId result;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::vector<std::string_view> words;
  std::string encoded;
};

Result<BpeTokenizer> BpeTokenizer::create(const Vocab& vocab,
                                          const std::vector<std::string>& merges,
                                          const BpePreset& preset, TokenId unk) {
  MOON_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::create(preset.patterns));
  BpeTokenizer bpe(vocab, std::move(pre));
  bpe.ignore_merges_ = preset.ignore_merges;
  bpe.unk_ = unk;

  size_t missing_bytes = 0;
  for (int b = 0; b < 256; ++b) {
    bpe.byte_token_[b] = vocab.find(byte_level::byte_to_utf8(static_cast<uint8_t>(b)));
    if (bpe.byte_token_[b] == kNoToken) ++missing_bytes;
  }
  if (missing_bytes > 0) {
    spdlog::warn(
        "byte-level vocabulary lacks {} of the 256 byte tokens; text with those bytes "
        "will lose them",
        missing_bytes);
  }

  // Merges act on token ids: a merge whose halves or result are not tokens could never
  // produce a token, so it is left out (Hugging Face refuses such files outright).
  bpe.merges_.reserve(merges.size());
  size_t skipped = 0;
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    std::string_view m = merges[rank];
    // Byte-level text has no literal spaces, so the first one (after the first character, in
    // case a vocabulary does use one) separates the halves.
    const size_t space = m.find(' ', 1);
    if (space == std::string_view::npos) {
      return make_error("tokenizer.ggml.merges[{}] '{}' is not of the form 'left right'", rank, m);
    }
    const std::string_view left = m.substr(0, space);
    const std::string_view right = m.substr(space + 1);
    joined.assign(left);
    joined.append(right);
    const TokenId l = vocab.find(left);
    const TokenId r = vocab.find(right);
    const TokenId result = vocab.find(joined);
    if (l == kNoToken || r == kNoToken || result == kNoToken) {
      ++skipped;
      continue;
    }
    // The first (lowest-ranked) listing of a pair wins, as with Hugging Face's merge map.
    bpe.merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
  }
  if (skipped > 0) spdlog::warn("ignored {} BPE merges whose parts are not tokens", skipped);
  return bpe;
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(TokenId left, TokenId right) const {
  if (left == kNoToken || right == kNoToken) return nullptr;
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeTokenizer::encode(std::string_view text, std::vector<TokenId>& out) const {
  Scratch scratch;
  pre_.split(text, scratch.words);
  for (std::string_view word : scratch.words) encode_word(word, scratch, out);
}

void BpeTokenizer::encode_word(std::string_view word, Scratch& s, std::vector<TokenId>& out) const {
  if (ignore_merges_ && word.size() > 1) {
    s.encoded.clear();
    for (char c : word) s.encoded += byte_level::byte_to_utf8(static_cast<uint8_t>(c));
    if (TokenId whole = vocab_->find(s.encoded); whole != kNoToken) {
      out.push_back(whole);
      return;
    }
  }

  const auto n = static_cast<int32_t>(word.size());
  s.symbols.clear();
  for (int32_t i = 0; i < n; ++i) {
    s.symbols.push_back(
        {byte_token_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});
  }

  // Min-heap on (rank, position): the lowest rank merges first, the leftmost among equals.
  auto later = [](const Scratch::Candidate& a, const Scratch::Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  s.heap.clear();
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = s.symbols[left].next;
    if (right < 0) return;
    const Merge* m = find_merge(s.symbols[left].id, s.symbols[right].id);
    if (m == nullptr) return;
    s.heap.push_back({m->rank, left, s.symbols[left].id, s.symbols[right].id, m->result});
    std::push_heap(s.heap.begin(), s.heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), later);
    const Scratch::Candidate c = s.heap.back();
    s.heap.pop_back();
    Scratch::Symbol& left = s.symbols[c.left];
    // A symbol's text only ever grows, so an unchanged id on both sides means the pair is
    // still exactly the one this candidate was made for.
    if (left.id != c.left_id || left.next < 0 || s.symbols[left.next].id != c.right_id) continue;
    const int32_t right = left.next;
    left.id = c.result;
    left.next = s.symbols[right].next;
    if (left.next >= 0) s.symbols[left.next].prev = c.left;
    s.symbols[right].id = kNoToken;  // dead; never reachable through the links again
    consider(left.prev);
    consider(c.left);
  }

  for (int32_t i = 0; i >= 0 && i < n; i = s.symbols[i].next) {
    const TokenId id = s.symbols[i].id;
    if (id != kNoToken) {
      out.push_back(id);
    } else if (unk_ != kNoToken) {
      out.push_back(unk_);
    }
  }
}

}  // namespace moon
