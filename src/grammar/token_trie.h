// The vocabulary as the grammar engine sees it: every token's bytes, and a trie of them laid
// out in depth-first order, so that computing which tokens a grammar state allows is one
// forward scan that skips whole subtrees the grammar rejects at their first byte.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moon::grammar {

class TokenTrie {
 public:
  struct Node {
    uint8_t byte;
    uint16_t depth;         // 1 for the children of the root
    uint32_t subtree_end;   // index of the first node after this one's subtree
    uint32_t tokens_begin;  // into token_ids(): the tokens whose bytes end here
    uint32_t tokens_end;
  };

  // `pieces[id]` is token id's bytes; `matchable[id]` false keeps a token out of the trie
  // (control tokens, which a grammar never produces; empty pieces are left out too).
  // `end_of_generation` are the tokens that may end the text once the grammar is complete.
  TokenTrie(std::vector<std::string> pieces, const std::vector<bool>& matchable,
            std::vector<int32_t> end_of_generation);

  int64_t vocab_size() const { return static_cast<int64_t>(pieces_.size()); }
  std::string_view piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool in_trie(int32_t id) const { return in_trie_[static_cast<size_t>(id)]; }
  bool is_end_of_generation(int32_t id) const;
  std::span<const int32_t> end_of_generation() const { return eog_; }
  // nodes()[0] is the root.
  std::span<const Node> nodes() const { return nodes_; }
  std::span<const int32_t> token_ids() const { return token_ids_; }
  int max_depth() const { return max_depth_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<bool> in_trie_;
  std::vector<int32_t> eog_;
  std::vector<Node> nodes_;
  std::vector<int32_t> token_ids_;
  int max_depth_ = 0;
};

}  // namespace moon::grammar
