// Grammar masks over real vocabularies (Llama 2's SentencePiece and Llama 3's byte-level
// BPE): at every step of a JSON document, as the real tokenizer splits it, the mask allows
// exactly the tokens whose bytes the grammar accepts next, found by walking every token of
// the vocabulary on its own. Tokens there straddle JSON's structure ("\":", "},{"), start
// with the SentencePiece space, and carry bytes of UTF-8 characters.
#include "grammar/tokenizer_vocab.h"

#include <gtest/gtest.h>

#include <unordered_map>

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "grammar/grammar_test_util.h"
#include "grammar/json_schema.h"

namespace moon::grammar::test {
namespace {

void check_masks_along(const std::string& vocab_file) {
  MOON_REQUIRE_TEST_FILE(path, vocab_file);
  auto file = gguf::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const Tokenizer& t = **tok;
  auto trie = token_trie_for(t);
  ASSERT_EQ(trie->vocab_size(), t.vocab_size());
  for (TokenId id : t.eog_ids()) EXPECT_FALSE(trie->in_trie(id)) << "an end token is not text";

  auto a = automaton(json_object_gbnf(), trie);
  ASSERT_TRUE(a);
  const std::string doc = R"({"name": "Zoë \"Z\" 日本", "n": [1, -2.5e3, true, null], "o": {}})";
  std::vector<TokenId> ids = t.encode(doc, /*add_special=*/false, /*parse_special=*/false);
  std::string text;
  for (TokenId id : ids) text += trie->piece(id);
  if (text != doc) {
    // SentencePiece's dummy prefix puts a space before the first piece, which a completion's
    // output does not get: spell the document by longest pieces instead.
    std::unordered_map<std::string_view, TokenId> by_piece;
    for (TokenId id = 0; id < t.vocab_size(); ++id) {
      if (trie->in_trie(id)) by_piece.emplace(trie->piece(id), id);
    }
    ids.clear();
    for (size_t pos = 0; pos < doc.size();) {
      size_t len = std::min<size_t>(16, doc.size() - pos);
      for (; len > 0 && !by_piece.contains(std::string_view(doc).substr(pos, len)); --len) {
      }
      ASSERT_GT(len, 0u) << "no token spells byte " << pos;
      ids.push_back(by_piece[std::string_view(doc).substr(pos, len)]);
      pos += len;
    }
    text.clear();
    for (TokenId id : ids) text += trie->piece(id);
  }
  ASSERT_EQ(text, doc) << "the tokens must spell the document";

  int32_t s = a->start();
  int allowed_sum = 0;
  for (size_t step = 0; step <= ids.size(); ++step) {
    const std::vector<uint64_t> bits = a->allowed_tokens(s);
    int allowed = 0;
    for (int32_t id = 0; id < t.vocab_size(); ++id) {
      const bool got = (bits[id >> 6] >> (id & 63)) & 1;
      bool want;
      if (trie->is_end_of_generation(id)) {
        want = a->accepts(s);
      } else {
        want = trie->in_trie(id) && a->advance(s, trie->piece(id)) != GrammarAutomaton::kDead;
      }
      ASSERT_EQ(got, want) << "token " << id << " '" << trie->piece(id) << "' after '"
                           << doc.substr(0, text.size()) << "' (step " << step << ")";
      allowed += got;
    }
    allowed_sum += allowed;
    if (step == ids.size()) {
      EXPECT_TRUE(a->accepts(s));
      break;
    }
    s = a->advance(s, trie->piece(ids[step]));
    ASSERT_NE(s, GrammarAutomaton::kDead) << "the document's own token " << ids[step];
  }
  EXPECT_GT(allowed_sum, t.vocab_size()) << "inside strings most of the vocabulary is allowed";
}

TEST(TokenizerVocab, MasksMatchEveryTokenOfLlama2Vocabulary) {
  check_masks_along("models/vocab/ggml-vocab-llama-spm.gguf");
}

TEST(TokenizerVocab, MasksMatchEveryTokenOfLlama3Vocabulary) {
  check_masks_along("models/vocab/ggml-vocab-llama-bpe.gguf");
}

}  // namespace
}  // namespace moon::grammar::test
