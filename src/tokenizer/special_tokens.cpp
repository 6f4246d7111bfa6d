#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace moon {
namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

void SpecialTokenMatcher::add(TokenId id, std::string_view text, bool strip_right) {
  if (text.empty()) return;
  auto& bucket = by_first_byte_[static_cast<uint8_t>(text[0])];
  const Entry entry{text, id, strip_right};
  // Stable for equal lengths, so a repeated text keeps its first (lowest) id.
  auto pos = std::upper_bound(
      bucket.begin(), bucket.end(), entry,
      [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  bucket.insert(pos, entry);
  ++count_;
}

void SpecialTokenMatcher::split(std::string_view text, std::vector<Fragment>& out) const {
  size_t start = 0;  // beginning of the pending text fragment
  size_t i = 0;
  while (i < text.size()) {
    const Entry* match = nullptr;
    for (const Entry& e : by_first_byte_[static_cast<uint8_t>(text[i])]) {
      if (text.compare(i, e.text.size(), e.text) == 0) {
        match = &e;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), kNoToken});
    out.push_back({match->text, match->id});
    i += match->text.size();
    if (match->strip_right) {
      while (i < text.size() && is_ascii_space(text[i])) ++i;
    }
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), kNoToken});
}

}  // namespace moon
