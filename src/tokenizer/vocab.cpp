#include "tokenizer/vocab.h"

#include <spdlog/spdlog.h>

namespace moon {

Result<Vocab> Vocab::build(const VocabSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) return make_error("tokenizer vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX))
    return make_error("tokenizer vocabulary too large: {}", n);
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return make_error("tokenizer.ggml.scores has {} entries for {} tokens", spec.scores.size(), n);
  }
  if (!spec.types.empty() && spec.types.size() != n) {
    return make_error("tokenizer.ggml.token_type has {} entries for {} tokens", spec.types.size(),
                      n);
  }

  Vocab vocab;
  size_t total = 0;
  for (const std::string& t : spec.tokens) total += t.size();
  vocab.storage_.reserve(total);
  vocab.offsets_.reserve(n + 1);
  vocab.offsets_.push_back(0);
  for (const std::string& t : spec.tokens) {
    vocab.storage_.insert(vocab.storage_.end(), t.begin(), t.end());
    vocab.offsets_.push_back(vocab.storage_.size());
  }
  vocab.types_ = spec.types.empty() ? std::vector<TokenType>(n, TokenType::Normal) : spec.types;
  vocab.scores_ = spec.scores;

  vocab.index_.reserve(n);
  size_t duplicates = 0;
  for (TokenId id = 0; id < static_cast<TokenId>(n); ++id) {
    if (!vocab.index_.emplace(vocab.text(id), id).second) ++duplicates;
  }
  if (duplicates > 0) {
    spdlog::warn("tokenizer vocabulary repeats {} token texts; the lowest id wins", duplicates);
  }
  return vocab;
}

}  // namespace moon
