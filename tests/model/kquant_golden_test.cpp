// The kquants/ model in every block type against llama.cpp (../shared/models/kquants/): on
// each quantized file moon's int8 path quantizes activations as ggml does (Q8_0, Q8_1 or
// Q8_K blocks by weight type), so its logits must follow llama.cpp's on that file closely;
// on each dequantized F32 twin the fp32 path must follow llama.cpp's F32 run to 1e-4. The
// checks are golden_check.h's.
//
// On quantized files the tolerance cannot be uniformly tight: moon's norms, attention and
// SiLU round differently from ggml's in the last bit, and an activation that sits on a
// rounding boundary of its 8-bit block then takes the other step (measured: on Q2_K,
// Q5_K_M and Q5_1, up to 0.07 at some SIMD levels). So each file is held to 0.1 (the README's bound
// for a different activation rounding is 0.3), and separately nearly every file must agree
// to rounding error, which only a kernel that multiplies exactly what ggml multiplies does.
#include <gtest/gtest.h>

#include <string>

#include "common/test_data.h"
#include "golden_check.h"

namespace moon {
namespace {

// The largest |logit difference| seen; each file has the README's 4 prompts.
double expect_follows_golden(const std::string& model_file, const std::string& golden_file,
                             float tolerance) {
  const test::GoldenResult r =
      test::expect_engine_follows_golden(model_file, golden_file, tolerance);
  EXPECT_EQ(r.lines, 4);
  return r.worst;
}

const char* const kTags[] = {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k",
                             "iq4_xs", "q8_0",   "q4_0",   "q4_1", "q5_0",   "q5_1"};

std::string quantized_file(const std::string& tag) {
  return "models/kquants/kq-llama-" + tag + ".gguf";
}
std::string quantized_golden(const std::string& tag) {
  return "models/kquants/golden-kq-llama-" + tag + ".jsonl";
}

class KQuantGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(KQuantGolden, QuantizedFileFollowsLlamaCpp) {
  const std::string tag = GetParam();
  MOON_REQUIRE_TEST_FILE(model, quantized_file(tag));
  MOON_REQUIRE_TEST_FILE(golden, quantized_golden(tag));
  expect_follows_golden(quantized_file(tag), quantized_golden(tag), 0.1f);
}

TEST_P(KQuantGolden, DequantizedTwinMatchesLlamaCppF32) {
  const std::string tag = GetParam();
  const std::string file = "models/kquants/kq-llama-" + tag + "-dequant-f32.gguf";
  const std::string golden = "models/kquants/golden-kq-llama-" + tag + "-dequant-f32.jsonl";
  MOON_REQUIRE_TEST_FILE(model_path, file);
  MOON_REQUIRE_TEST_FILE(golden_path, golden);
  expect_follows_golden(file, golden, 1e-4f);
}

// The reference forward keeps fp32 activations before the Q8_1 and Q8_K formats' matrices
// (it rounds only where the int8 path takes Q8_0 blocks), so on these files it is the
// fp32-activation path over the quantized weights: llama.cpp's run on the dequantized twin is
// its oracle, at 1e-4.
TEST(KQuantGolden, ReferenceForwardOnQuantizedWeightsMatchesTheDequantizedRun) {
  for (const char* tag :
       {"q4_k_m", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k", "iq4_xs", "q4_1", "q5_1"}) {
    SCOPED_TRACE(tag);
    MOON_REQUIRE_TEST_FILE(model_path, quantized_file(tag));
    MOON_REQUIRE_TEST_FILE(
        golden_path, "models/kquants/golden-kq-llama-" + std::string(tag) + "-dequant-f32.jsonl");
    auto model = load_model(model_path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    const double worst =
        test::expect_reference_follows_golden(
            **model, "models/kquants/golden-kq-llama-" + std::string(tag) + "-dequant-f32.jsonl",
            1e-4f)
            .worst;
    std::printf("[ measured ] reference on %s: max |logit - llama.cpp dequantized| %.3g\n", tag,
                worst);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KQuantGolden, ::testing::ValuesIn(kTags),
                         [](const auto& info) { return std::string(info.param); });

// Measured: the others within 6e-6 of llama.cpp, and 9 of the 12 files so at the scalar
// level (Q2_K, Q5_K_M, Q5_1 a boundary step off), 10 at AVX-512, 11 at AVX2.
TEST(KQuantGolden, NearlyEveryQuantizedFileAgreesToRoundingError) {
  int tight = 0;
  for (const char* tag : kTags) {
    MOON_REQUIRE_TEST_FILE(model, quantized_file(tag));
    MOON_REQUIRE_TEST_FILE(golden, quantized_golden(tag));
    tight += expect_follows_golden(quantized_file(tag), quantized_golden(tag), 0.1f) <= 1e-4;
  }
  EXPECT_GE(tight, 9) << "files agreeing with llama.cpp to 1e-4";
}

}  // namespace
}  // namespace moon
