// A tokenizer's vocabulary as the grammar engine matches it: each token's bytes; control and
// unknown tokens never match (they are not text); the end-of-generation tokens end the text.
#pragma once

#include <memory>

#include "grammar/token_trie.h"
#include "tokenizer/tokenizer.h"

namespace moon::grammar {

std::shared_ptr<const TokenTrie> token_trie_for(const Tokenizer& tokenizer);

}  // namespace moon::grammar
