// The model families beyond Llama 2 against llama.cpp (../shared/models/arch/, see its
// README): tiny random-weight Qwen2, Qwen3, Phi-3, Gemma 2, Gemma 3 and Llama-3 files, each
// with the family's own tensors and keys. The engine's paged forward and the reference
// forward must both follow llama.cpp's logits to 1e-4 (golden_check.h's rules), and the
// chat prompts must render from each file's own template to the text llama.cpp was given.
//
// Gemma: llama.cpp's CPU GELU reads an fp16 table, up to 6.6e-3 from the tanh formula, so
// the 1e-4 oracle is the README's float64 forward with exact GELU; llama.cpp's own Gemma
// logits must still hold to 1e-2.
#include <gtest/gtest.h>

#include <string>

#include "chat/chat_template.h"
#include "common/test_data.h"
#include "golden_check.h"
#include "model_test_util.h"
#include "tokenizer/tokenizer.h"

namespace moon {
namespace {

struct ArchCase {
  const char* arch;
  Arch family;
  bool gemma;  // has an exact-GELU golden beside llama.cpp's
};

const ArchCase kCases[] = {
    {"qwen2", Arch::kQwen2, false},  {"qwen3", Arch::kQwen3, false},
    {"phi3", Arch::kPhi3, false},    {"gemma2", Arch::kGemma2, true},
    {"gemma3", Arch::kGemma3, true}, {"llama3", Arch::kLlama, false},
};

std::string model_file(const ArchCase& c) {
  return "models/arch/tiny-" + std::string(c.arch) + "-f32.gguf";
}
std::string llama_cpp_golden(const ArchCase& c) {
  return "models/arch/golden-tiny-" + std::string(c.arch) + ".jsonl";
}
// The golden held to 1e-4.
std::string tight_golden(const ArchCase& c) {
  return "models/arch/golden-tiny-" + std::string(c.arch) + (c.gemma ? "-exact-gelu" : "") +
         ".jsonl";
}

class ArchGolden : public ::testing::TestWithParam<ArchCase> {};

TEST_P(ArchGolden, LoadsAsItsFamily) {
  MOON_REQUIRE_TEST_FILE(path, model_file(GetParam()));
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_EQ((*model)->hparams.arch, GetParam().family);
}

TEST_P(ArchGolden, EngineFollowsLlamaCpp) {
  MOON_REQUIRE_TEST_FILE(model, model_file(GetParam()));
  MOON_REQUIRE_TEST_FILE(golden, tight_golden(GetParam()));
  const test::GoldenResult r =
      test::expect_engine_follows_golden(model_file(GetParam()), tight_golden(GetParam()), 1e-4f);
  EXPECT_GE(r.lines, 5);
}

TEST(ArchGolden, GemmaFollowsLlamaCppsOwnGeluWithin1e2) {
  for (const ArchCase& c : kCases) {
    if (!c.gemma) continue;
    MOON_REQUIRE_TEST_FILE(model, model_file(c));
    MOON_REQUIRE_TEST_FILE(golden, llama_cpp_golden(c));
    EXPECT_GE(test::expect_engine_follows_golden(model_file(c), llama_cpp_golden(c), 1e-2f).lines,
              5);
  }
}

TEST_P(ArchGolden, ReferenceFollowsLlamaCpp) {
  MOON_REQUIRE_TEST_FILE(path, model_file(GetParam()));
  MOON_REQUIRE_TEST_FILE(golden, tight_golden(GetParam()));
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const test::GoldenResult r =
      test::expect_reference_follows_golden(**model, tight_golden(GetParam()), 1e-4f);
  EXPECT_GE(r.lines, 5);
  std::printf("[ measured ] reference on %s: max |logit - golden| %.3g\n", GetParam().arch,
              r.worst);
}

// Random prompts long enough to cross every sliding window, prefilled in random chunks.
TEST_P(ArchGolden, EngineMatchesTheReferenceInRandomChunks) {
  MOON_REQUIRE_TEST_FILE(path, model_file(GetParam()));
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  test::expect_engine_matches_reference(**model, 2, 17, /*trials=*/3, /*max_len=*/120);
}

// The family's layers on the int8 path: every matrix in Q8_0 (fused ones split into row
// ranges), the reference rounding activations as the kernels do. Prompts stay at 40 tokens
// (past Gemma 3's window of 32): a last-bit rounding flip moves a position's K and V, and so
// every later position's logits by a little, which longer prompts accumulate beyond the
// comparison's rule (model_test_util.h).
TEST_P(ArchGolden, Q8_0EngineMatchesTheReference) {
  MOON_REQUIRE_TEST_FILE(path, model_file(GetParam()));
  auto src = gguf::GgufFile::open(path);
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto bytes = test::convert_gguf(**src, {.type = DType::Q8_0, .fallback = DType::F16});
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto file = gguf::GgufFile::from_bytes(std::move(bytes).value(), "q8_0 twin");
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto model = make_model(std::move(file).value());
  ASSERT_TRUE(model.ok()) << model.error().message;
  ASSERT_EQ((*model)->weights.layers[0].wq.type, DType::Q8_0);
  test::expect_engine_matches_reference(**model, 2, 23, /*trials=*/3, /*max_len=*/40);
}

// The `chat` prompts are the file's own tokenizer.chat_template rendered with
// add_generation_prompt; moon's Jinja interpreter must produce the same text (whose tokens
// EngineFollowsLlamaCpp then checks).
TEST_P(ArchGolden, ChatPromptRendersFromTheFilesTemplate) {
  MOON_REQUIRE_TEST_FILE(path, model_file(GetParam()));
  MOON_REQUIRE_TEST_FILE(golden_path, llama_cpp_golden(GetParam()));
  auto model = load_model(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto tokenizer = Tokenizer::from_gguf(*(*model)->file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  int chats = 0;
  for (const nlohmann::json& golden : test::read_jsonl(golden_path)) {
    if (!golden.contains("messages")) continue;
    const gguf::Value* source = (*model)->file->find("tokenizer.chat_template");
    ASSERT_TRUE(source && source->as_string()) << "a chat prompt but no template";
    auto tmpl = ChatTemplate::parse(*source->as_string());
    ASSERT_TRUE(tmpl.ok()) << tmpl.error().message;
    const nlohmann::json vars = {
        {"bos_token", std::string((*tokenizer)->token_text((*tokenizer)->bos_id()))},
        {"eos_token", std::string((*tokenizer)->token_text((*tokenizer)->eos_id()))}};
    auto text = tmpl->render(golden["messages"], /*add_generation_prompt=*/true, vars);
    ASSERT_TRUE(text.ok()) << text.error().message;
    EXPECT_EQ(*text, golden["prompt"].get<std::string>());
    ++chats;
  }
  const bool has_chat = GetParam().family == Arch::kQwen2 || GetParam().family == Arch::kQwen3 ||
                        GetParam().family == Arch::kPhi3;
  EXPECT_EQ(chats, has_chat ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Families, ArchGolden, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.arch); });

}  // namespace
}  // namespace moon
