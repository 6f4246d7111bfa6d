// Building tokenizers from GGUF metadata: what is read, and the errors for what is wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>  // header-only; used to read the golden prompts

#include "common/test_data.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

using Ids = std::vector<TokenId>;

Result<std::unique_ptr<Tokenizer>> load(const gguf::GgufWriter& w) {
  auto file = gguf::GgufFile::from_bytes(w.serialize(), "test.gguf");
  EXPECT_TRUE(file.ok()) << file.error().message;
  if (!file.ok()) return file.error();
  return Tokenizer::from_gguf(**file);
}

// A small SentencePiece vocabulary: <unk> <s> </s> <0x00>..<0xFF> ▁ a b ▁a ▁ab <|eot|>.
void add_spm_vocab(gguf::GgufWriter& w) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
  }
  for (const char* t : {"▁", "a", "b", "▁a", "▁ab"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  tokens.push_back("<|eot|>");
  types.push_back(3);
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 259; i < tokens.size(); ++i) scores[i] = -static_cast<float>(i);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_float32_array("tokenizer.ggml.scores", scores);
  w.add_int32_array("tokenizer.ggml.token_type", types);
}

constexpr TokenId kSpace = 259, kA = 260, kB = 261, kSpaceA = 262, kSpaceAb = 263, kEot = 264;

TEST(GgufLoading, SentencePieceDefaults) {
  gguf::GgufWriter w;
  add_spm_vocab(w);
  auto tok = load(w);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.kind(), TokenizerKind::Spm);
  EXPECT_EQ(t.vocab_size(), 265);
  // llama.cpp's defaults when the ids and flags are absent.
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_TRUE(t.add_bos());
  EXPECT_FALSE(t.add_eos());
  EXPECT_EQ(t.encode("ab a", true, false), (Ids{1, kSpaceAb, kSpaceA}));
  EXPECT_EQ(t.token_to_piece(kSpaceAb), " ab");
  EXPECT_EQ(t.token_to_piece(3 + 'x'), "x");
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(kEot));  // not named eot, and not a known end-of-turn text
}

TEST(GgufLoading, SentencePieceSettingsFromMetadata) {
  gguf::GgufWriter w;
  add_spm_vocab(w);
  w.add_uint32("tokenizer.ggml.bos_token_id", 2);
  w.add_uint32("tokenizer.ggml.eos_token_id", 1);
  w.add_uint32("tokenizer.ggml.eot_token_id", kEot);
  w.add_uint32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);  // "none", as converters write
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_bool("tokenizer.ggml.add_eos_token", true);
  w.add_bool("tokenizer.ggml.add_space_prefix", false);
  auto tok = load(w);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.eot_id(), kEot);
  EXPECT_EQ(t.pad_id(), kNoToken);
  EXPECT_TRUE(t.is_eog(kEot));
  EXPECT_TRUE(t.is_eog(1));
  EXPECT_EQ(t.encode("ab", true, false), (Ids{kA, kB, 1}));  // no dummy prefix, EOS only
  EXPECT_EQ(t.encode("<|eot|>", false, true), (Ids{kEot}));
  EXPECT_EQ(t.decode(Ids{kSpace, kA}, true), " a");  // no prefix to strip either
}

TEST(GgufLoading, ByteLevelVocabulary) {
  gguf::GgufWriter w;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(byte_level::byte_to_utf8(b));
  tokens.push_back("Ġa");
  tokens.push_back("<|end|>");
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "qwen2");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  w.add_int32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", {"Ġ a"});
  w.add_uint32("tokenizer.ggml.eos_token_id", 257);
  auto tok = load(w);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.kind(), TokenizerKind::Bpe);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.bos_id(), kNoToken);
  EXPECT_EQ(t.encode("a a<|end|>", true, true), (Ids{'a', 256, 257}));
  EXPECT_TRUE(t.is_eog(257));
  EXPECT_EQ(t.decode(Ids{'a', 256, 257}, true), "a a");
}

void expect_error(const gguf::GgufWriter& w, const std::string& fragment) {
  auto tok = load(w);
  ASSERT_FALSE(tok.ok()) << "expected an error mentioning " << fragment;
  EXPECT_NE(tok.error().message.find(fragment), std::string::npos) << tok.error().message;
  EXPECT_NE(tok.error().message.find("test.gguf"), std::string::npos) << tok.error().message;
}

TEST(GgufLoading, NoTokenizerMetadata) {
  gguf::GgufWriter w;
  w.add_string("general.architecture", "llama");
  expect_error(w, "tokenizer.ggml.model");
}

TEST(GgufLoading, UnsupportedModels) {
  for (const char* model : {"bert", "t5", "rwkv", "no_vocab", "mystery"}) {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", model);
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    expect_error(w, std::string("unsupported tokenizer.ggml.model '") + model + "'");
  }
}

TEST(GgufLoading, MalformedMetadata) {
  {
    gguf::GgufWriter w;
    w.add_uint32("tokenizer.ggml.model", 1);
    expect_error(w, "tokenizer.ggml.model should be a string");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    expect_error(w, "tokenizer.ggml.tokens is missing");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {});
    expect_error(w, "tokenizer.ggml.tokens is empty");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_int32_array("tokenizer.ggml.tokens", {1, 2});
    expect_error(w, "tokenizer.ggml.tokens should be an array of strings");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    w.add_float32_array("tokenizer.ggml.scores", {0.0f});
    expect_error(w, "tokenizer.ggml.scores");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    w.add_int32_array("tokenizer.ggml.token_type", {1, 1, 1});
    expect_error(w, "tokenizer.ggml.token_type");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    w.add_string("tokenizer.ggml.add_bos_token", "yes");
    expect_error(w, "tokenizer.ggml.add_bos_token should be a bool");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    expect_error(w, "tokenizer.ggml.merges is missing");
  }
  {
    gguf::GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "klingon");
    w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
    w.add_string_array("tokenizer.ggml.merges", {"a b"});
    expect_error(w, "unsupported tokenizer.ggml.pre 'klingon'");
  }
}

TEST(GgufLoading, LoadsTheVocabularyOfAModelFile) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto file = gguf::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ((*tok)->vocab_size(), 512);
  EXPECT_EQ((*tok)->pad_id(), kNoToken);  // stored as 4294967295
}

// stories260K's prompts as llama.cpp tokenized them (BOS first), from the golden file.
TEST(GgufLoading, Stories260KGoldenPrompts) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  MOON_REQUIRE_TEST_FILE(golden, "models/golden-stories260K.jsonl");
  auto file = gguf::GgufFile::open(model);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto tok = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  int n = 0;
  for (const nlohmann::json& j : test::read_jsonl(golden)) {
    const std::string prompt = j.at("prompt");
    const auto expected = j.at("prompt_token_ids").get<Ids>();
    EXPECT_EQ((*tok)->encode(prompt, true, false), expected) << prompt;
    const auto output = j.at("output_token_ids").get<Ids>();
    const std::string text = j.at("output_text");
    // llama.cpp printed the continuation piece by piece.
    std::string pieces;
    for (TokenId id : output) pieces += (*tok)->token_to_piece(id);
    EXPECT_EQ(pieces, text) << prompt;
    if (!prompt.empty()) {
      Ids all = expected;
      all.insert(all.end(), output.begin(), output.end());
      EXPECT_EQ((*tok)->decode(all, true), prompt + text);
    }
    ++n;
  }
  EXPECT_EQ(n, 9);
}

}  // namespace
}  // namespace moon
