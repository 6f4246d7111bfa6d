#include "tokenizer/spm_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "util/utf8.h"

namespace moon {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

struct Symbol {
  uint32_t start;
  uint32_t len;  // 0 once merged into the left neighbour
  int32_t prev;
  int32_t next;
};

struct Candidate {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
};

// Max-heap order: the highest score on top, the leftmost among equals.
bool lower_priority(const Candidate& a, const Candidate& b) {
  return a.score < b.score || (a.score == b.score && a.left > b.left);
}

}  // namespace

SpmTokenizer::SpmTokenizer(const Vocab& vocab, TokenId unk) : vocab_(&vocab) {
  for (int b = 0; b < 256; ++b) {
    const TokenId id = vocab.find(fmt::format("<0x{:02X}>", b));
    byte_token_[b] = id != kNoToken ? id : unk;
  }
}

TokenId SpmTokenizer::find_piece(std::string_view text) const {
  const TokenId id = vocab_->find(text);
  if (id == kNoToken) return kNoToken;
  const TokenType t = vocab_->type(id);
  return t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Unused ? id
                                                                                         : kNoToken;
}

void SpmTokenizer::encode(std::string_view text, bool add_prefix, std::vector<TokenId>& out) const {
  if (text.empty()) return;

  std::string norm;
  norm.reserve(text.size() + text.size() / 2 + kSpace.size());
  std::vector<Symbol> symbols;
  symbols.reserve(text.size() + 1);
  auto add_symbol = [&](std::string_view s) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(norm.size()), static_cast<uint32_t>(s.size()),
                       index - 1, index + 1});
    norm.append(s);
  };
  if (add_prefix) add_symbol(kSpace);
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8::valid_char_length(text.substr(i));
    if (n == 0) {
      add_symbol(utf8::kReplacement);
      i += 1;
    } else {
      add_symbol(text[i] == ' ' ? kSpace : text.substr(i, n));
      i += n;
    }
  }
  symbols.back().next = -1;

  auto span = [&](int32_t left, uint32_t size) {
    return std::string_view(norm).substr(symbols[left].start, size);
  };

  // Unused pieces may be merged through but are never emitted: remember how each was made so
  // it can be split back (SentencePiece's resegmentation). Rare, so built only on demand.
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;

  std::vector<Candidate> heap;
  heap.reserve(symbols.size());
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].len + symbols[right].len;
    const std::string_view merged = span(left, size);
    const TokenId id = find_piece(merged);
    if (id == kNoToken) return;
    heap.push_back({vocab_->score(id), left, right, size});
    std::push_heap(heap.begin(), heap.end(), lower_priority);
    if (vocab_->type(id) == TokenType::Unused) {
      rev_merge[merged] = {span(left, symbols[left].len), span(right, symbols[right].len)};
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower_priority);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    // Symbols only grow, so matching lengths mean the pair is the one this candidate saw.
    if (left.len == 0 || right.len == 0 || left.next != c.right || left.len + right.len != c.size) {
      continue;
    }
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }

  auto emit = [&](auto&& self, std::string_view piece) -> void {
    const TokenId id = find_piece(piece);
    if (id == kNoToken) {
      for (char b : piece) {
        if (const TokenId t = byte_token_[static_cast<uint8_t>(b)]; t != kNoToken) out.push_back(t);
      }
      return;
    }
    if (vocab_->type(id) == TokenType::Unused) {
      if (auto it = rev_merge.find(piece); it != rev_merge.end()) {
        self(self, it->second.first);
        self(self, it->second.second);
        return;
      }
    }
    out.push_back(id);
  };
  for (int32_t i = 0; i >= 0; i = symbols[i].next) emit(emit, span(i, symbols[i].len));
}

}  // namespace moon
