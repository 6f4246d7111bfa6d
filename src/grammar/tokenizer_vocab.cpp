#include "grammar/tokenizer_vocab.h"

namespace moon::grammar {

std::shared_ptr<const TokenTrie> token_trie_for(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.vocab_size();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<bool> matchable(static_cast<size_t>(n));
  for (TokenId id = 0; id < n; ++id) {
    pieces[id] = tokenizer.piece(id);
    matchable[id] = !tokenizer.is_hidden_special(id) && !tokenizer.is_eog(id);
  }
  return std::make_shared<const TokenTrie>(std::move(pieces), matchable, tokenizer.eog_ids());
}

}  // namespace moon::grammar
