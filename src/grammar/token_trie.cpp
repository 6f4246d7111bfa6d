#include "grammar/token_trie.h"

#include <algorithm>
#include <numeric>

namespace moon::grammar {

TokenTrie::TokenTrie(std::vector<std::string> pieces, const std::vector<bool>& matchable,
                     std::vector<int32_t> end_of_generation)
    : pieces_(std::move(pieces)),
      in_trie_(pieces_.size(), false),
      eog_(std::move(end_of_generation)) {
  std::vector<int32_t> order;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (!pieces_[id].empty() && (id >= matchable.size() || matchable[id]) &&
        !is_end_of_generation(static_cast<int32_t>(id))) {
      order.push_back(static_cast<int32_t>(id));
      in_trie_[id] = true;
    }
  }
  // Sorted bytes put every prefix before its extensions: the depth-first order falls out.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return pieces_[a] != pieces_[b] ? pieces_[a] < pieces_[b] : a < b;
  });
  nodes_.push_back({0, 0, 0, 0, 0});
  std::vector<uint32_t> path{0};  // node indices of the current prefix (path[d] at depth d)
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view p = pieces_[id];
    size_t common = 0;
    while (common < prev.size() && common < p.size() && common + 1 < path.size() &&
           prev[common] == p[common]) {
      ++common;
    }
    // Close the nodes below the shared prefix.
    while (path.size() > common + 1) {
      nodes_[path.back()].subtree_end = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < p.size(); ++d) {
      const auto t = static_cast<uint32_t>(token_ids_.size());
      nodes_.push_back({static_cast<uint8_t>(p[d]), static_cast<uint16_t>(d + 1), 0, t, t});
      path.push_back(static_cast<uint32_t>(nodes_.size() - 1));
    }
    max_depth_ = std::max(max_depth_, static_cast<int>(p.size()));
    token_ids_.push_back(id);
    nodes_[path.back()].tokens_end = static_cast<uint32_t>(token_ids_.size());
    prev = p;
  }
  while (!path.empty()) {
    nodes_[path.back()].subtree_end = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
}

bool TokenTrie::is_end_of_generation(int32_t id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

}  // namespace moon::grammar
