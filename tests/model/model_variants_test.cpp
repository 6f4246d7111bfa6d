// The engine forward against the reference forward beyond the two stories260K files: every
// weight dtype (stories260K converted in memory, also at misaligned addresses) and small random
// models carrying the metadata of each Llama family's files (Llama 2, TinyLlama, Llama 3 with
// rope_freqs, Mistral, linear RoPE scaling, tied output with partial rotary), with the
// hyperparameters checked to be read as the family means them.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "common/test_data.h"
#include "model/llama_forward.h"
#include "model/model.h"
#include "model/model_test_util.h"
#include "tensor/convert.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

using test::RandomLlamaSpec;

constexpr const char* kSpmSpace = "\xE2\x96\x81";  // SentencePiece's word-start mark
constexpr const char* kSpmVocabFile = "models/vocab/ggml-vocab-llama-spm.gguf";

std::unique_ptr<Model> build(const RandomLlamaSpec& spec, const test::SmallVocab* vocab = nullptr) {
  gguf::GgufWriter w;
  const Status s = test::add_random_llama(w, spec);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (vocab) vocab->write(w);
  auto model = test::load_from_writer(w, spec.name);
  EXPECT_TRUE(model.ok()) << spec.name << ": " << model.error().message;
  return model.ok() ? std::move(model).value() : nullptr;
}

Error build_error(const RandomLlamaSpec& spec) {
  gguf::GgufWriter w;
  EXPECT_TRUE(test::add_random_llama(w, spec).ok());
  auto model = test::load_from_writer(w, spec.name);
  EXPECT_FALSE(model.ok()) << spec.name << " loaded but should not";
  return model.ok() ? Error{} : model.error();
}

void expect_matches_reference(const Model& model, uint32_t seed) {
  test::expect_engine_matches_reference(model, 1, seed);
  test::expect_engine_matches_reference(model, 2, seed + 1);
}

// How far two models' reference logits are apart on the same prompt.
float logits_distance(const Model& a, const Model& b) {
  const auto prompt = test::random_prompt(99, a.hparams.n_vocab, 24);
  return test::max_abs_diff(test::reference_logits(a, prompt), test::reference_logits(b, prompt));
}

// The first n tokens of the vocab file at `path` (plus `also_keep`), for a small model; the
// file stays open, as SmallVocab::write needs. Empty, with a test failure, if either fails.
struct TestVocab {
  std::unique_ptr<gguf::GgufFile> file;
  test::SmallVocab small;
};

std::optional<TestVocab> small_vocab(const std::string& path, int64_t n,
                                     const std::vector<std::string>& also_keep = {}) {
  auto file = gguf::GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << file.error().message;
  if (!file.ok()) return std::nullopt;
  auto vocab = test::SmallVocab::from(**file, n, also_keep);
  EXPECT_TRUE(vocab.ok()) << vocab.error().message;
  if (!vocab.ok()) return std::nullopt;
  return TestVocab{std::move(file).value(), std::move(vocab).value()};
}

// The tokenizer the model carries round-trips text, and what it produces runs through the
// engine as it does through the reference.
void expect_tokenizer_works(const Model& model) {
  auto tok = Tokenizer::from_gguf(*model.file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ((*tok)->vocab_size(), model.hparams.n_vocab);
  const std::string text = "Hello world, once upon a time";
  const auto ids = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);
  ASSERT_FALSE(ids.empty());
  if ((*tok)->add_bos()) {
    EXPECT_EQ(ids.front(), (*tok)->bos_id());
  }
  EXPECT_EQ((*tok)->decode(ids, /*skip_special=*/true), text);
  for (int32_t id : ids) ASSERT_LT(id, model.hparams.n_vocab);
  const auto want = test::reference_logits(model, ids);
  ThreadPool pool(2);
  LlamaForward engine(model, static_cast<int64_t>(ids.size()), &pool);
  std::vector<float> got(model.hparams.n_vocab);
  ASSERT_TRUE(engine.forward(ids, 0, got.data()).ok());
  EXPECT_LE(test::max_abs_diff({got}, {want.back()}), 1e-4f);
}

// ---- Every weight dtype, on stories260K ---------------------------------------------------

// Worst |converted - original| over a tensor's elements, and the largest |original|.
std::pair<float, float> conversion_error(const gguf::TensorInfo& original,
                                         const gguf::TensorInfo& converted) {
  const auto n = static_cast<int64_t>(original.ne[0]);
  std::vector<float> a(n), b(n);
  float err = 0.0f, max_abs = 0.0f;
  for (uint64_t r = 0; r < original.n_rows(); ++r) {
    dequantize_row(original.type, original.data + r * (original.n_bytes / original.n_rows()),
                   a.data(), n);
    dequantize_row(converted.type, converted.data + r * (converted.n_bytes / converted.n_rows()),
                   b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      err = std::max(err, std::fabs(a[i] - b[i]));
      max_abs = std::max(max_abs, std::fabs(a[i]));
    }
  }
  return {err, max_abs};
}

class StoriesDtype : public testing::TestWithParam<DType> {};

TEST_P(StoriesDtype, EngineMatchesReference) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto f32 = gguf::GgufFile::open(path);
  ASSERT_TRUE(f32.ok()) << f32.error().message;
  const DType type = GetParam();
  auto bytes = test::convert_gguf(**f32, {.type = type});
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto file = gguf::GgufFile::from_bytes(std::move(bytes).value(), "stories260K-converted");
  ASSERT_TRUE(file.ok()) << file.error().message;

  // The conversion happened, to the requested type, within that type's rounding.
  const float rel_bound = type == DType::Q4_0   ? 0.13f
                          : type == DType::Q8_0 ? 0.0079f
                          : type == DType::BF16 ? 0.004f
                                                : 0.0005f;
  int converted = 0;
  for (const gguf::TensorInfo& t : (*file)->tensors()) {
    const gguf::TensorInfo* original = (*f32)->find_tensor(t.name);
    ASSERT_NE(original, nullptr);
    if (t.n_dims == 1) {
      EXPECT_EQ(t.type, DType::F32) << t.name;
      continue;
    }
    const bool fits = t.ne[0] % dtype_traits(type).block_size == 0;
    EXPECT_EQ(dtype_name(t.type), dtype_name(fits ? type : DType::F16)) << t.name;
    const auto [err, max_abs] = conversion_error(*original, t);
    EXPECT_LE(err, (fits ? rel_bound : 0.0005f) * max_abs) << t.name;
    if (type != DType::F32) {
      EXPECT_GT(err, 0.0f) << t.name << " came through unchanged";
    }
    converted += fits;
  }
  // Block types convert all but the five 172-wide ffn_down.
  EXPECT_EQ(converted, dtype_traits(type).block_size > 1 ? 32 : 37);

  auto model = make_model(std::move(file).value());
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_EQ((*model)->weights.layers[0].wq.type, type);
  expect_matches_reference(**model, 10 + static_cast<uint32_t>(type));
}

// Weights at addresses misaligned for their elements (GGUF alignment 1 or 2 and a small
// tensor first), which the format allows: the loader must hand the kernels views aligned for
// their element type (copying those matrices once), and the results must not change. UBSan
// catches any read left through a misaligned uint16_t or float pointer.
TEST_P(StoriesDtype, EngineMatchesReferenceAtMisalignedAddresses) {
  MOON_REQUIRE_TEST_FILE(path, "models/stories260K-f32.gguf");
  auto f32 = gguf::GgufFile::open(path);
  ASSERT_TRUE(f32.ok()) << f32.error().message;
  for (uint32_t misalign : {1u, 2u}) {
    SCOPED_TRACE("misaligned by " + std::to_string(misalign));
    auto bytes = test::convert_gguf(**f32, {.type = GetParam(), .misalign = misalign});
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    auto file = gguf::GgufFile::from_bytes(std::move(bytes).value(), "stories260K-misaligned");
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto model = make_model(std::move(file).value());
    ASSERT_TRUE(model.ok()) << model.error().message;
    for (const WeightView* w : {&(*model)->weights.layers[0].wq, &(*model)->weights.output,
                                &(*model)->weights.layers[4].w_down}) {
      const uintptr_t need = GetParam() == DType::F32 ? 4 : 2;
      ASSERT_EQ(reinterpret_cast<uintptr_t>(w->data) % need, 0u);
    }
    expect_matches_reference(**model, 30 + 2 * static_cast<uint32_t>(GetParam()) + misalign);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, StoriesDtype,
                         testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                         DType::Q4_0),
                         [](const testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

// ---- Model families -----------------------------------------------------------------------

TEST(ModelFamilies, Llama2StyleMultiHeadDefaultRopeBase) {
  MOON_REQUIRE_TEST_FILE(spm_path, kSpmVocabFile);
  auto vocab = small_vocab(spm_path, 320, {kSpmSpace});
  ASSERT_TRUE(vocab);
  RandomLlamaSpec spec;
  spec.name = "llama-2 style";
  spec.n_vocab = vocab->small.size();
  spec.n_embd = 64;
  spec.n_head = 4;
  spec.n_head_kv = 4;  // Llama 2 7B/13B: no grouping, but the key is written
  spec.rope_dims = 16;
  spec.write_vocab_size = false;  // older converters leave it to the token list
  spec.seed = 2;
  auto model = build(spec, &vocab->small);
  ASSERT_TRUE(model);
  const ModelHparams& hp = model->hparams;
  EXPECT_EQ(hp.layers[0].rope_freq_base, 10000.0f);
  EXPECT_EQ(hp.layers[0].rope_freq_scale, 1.0f);
  EXPECT_EQ(hp.n_gqa(), 1);
  EXPECT_EQ(hp.n_vocab, 321);
  EXPECT_FALSE(model->weights.output_tied);
  EXPECT_TRUE(model->weights.rope_freqs.empty());
  expect_matches_reference(*model, 100);
  expect_tokenizer_works(*model);

  // Without head_count_kv, as in llama2.c conversions of MHA models, it defaults to head_count.
  spec.write_head_count_kv = false;
  auto implicit = build(spec, &vocab->small);
  ASSERT_TRUE(implicit);
  EXPECT_EQ(implicit->hparams.n_head_kv, 4);
  EXPECT_EQ(logits_distance(*model, *implicit), 0.0f);
}

TEST(ModelFamilies, TinyLlamaStyleGqa32Over4) {
  MOON_REQUIRE_TEST_FILE(spm_path, kSpmVocabFile);
  auto vocab = small_vocab(spm_path, 300, {kSpmSpace});
  ASSERT_TRUE(vocab);
  RandomLlamaSpec spec;
  spec.name = "tinyllama style";
  spec.n_vocab = vocab->small.size();
  spec.n_embd = 128;
  spec.n_ff = 352;
  spec.n_head = 32;
  spec.n_head_kv = 4;
  spec.n_ctx = 2048;
  spec.rope_dims = 4;
  spec.freq_base = 10000.0f;
  spec.seed = 3;
  auto model = build(spec, &vocab->small);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->hparams.n_gqa(), 8);
  EXPECT_EQ(model->hparams.head_dim, 4);
  expect_matches_reference(*model, 110);
  expect_tokenizer_works(*model);
}

RandomLlamaSpec llama3_spec() {
  RandomLlamaSpec spec;
  spec.name = "llama-3 style";
  spec.n_embd = 128;
  spec.n_ff = 224;
  spec.n_head = 8;
  spec.n_head_kv = 2;
  spec.n_ctx = 8192;
  spec.rope_dims = 16;
  spec.freq_base = 500000.0f;
  spec.rope_freqs = {1, 2, 3, 4, 5, 6, 7, 8};  // [n_rot / 2]
  spec.seed = 4;
  return spec;
}

TEST(ModelFamilies, Llama3StyleRopeFreqsAndHighBase) {
  MOON_REQUIRE_TEST_FILE(bpe_path, "models/vocab/ggml-vocab-llama-bpe.gguf");
  // Llama 3's 128256 tokens would dwarf a tiny model: its first 1000 (bytes and early merges)
  // and its special tokens keep the real tokenizer metadata at a small embedding.
  auto vocab = small_vocab(bpe_path, 1000);
  ASSERT_TRUE(vocab);
  RandomLlamaSpec spec = llama3_spec();
  spec.n_vocab = vocab->small.size();
  auto model = build(spec, &vocab->small);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->hparams.layers[0].rope_freq_base, 500000.0f);
  EXPECT_EQ(model->hparams.n_gqa(), 4);
  EXPECT_EQ(model->weights.rope_freqs, spec.rope_freqs);
  expect_matches_reference(*model, 120);
  expect_tokenizer_works(*model);
  auto tok = Tokenizer::from_gguf(*model->file);
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->token_text((*tok)->bos_id()), "<|begin_of_text|>");

  // rope_freqs matters...
  RandomLlamaSpec plain = spec;
  plain.rope_freqs.clear();
  auto without = build(plain, &vocab->small);
  ASSERT_TRUE(without);
  EXPECT_GT(logits_distance(*model, *without), 1e-3f);
  // ...and means what Llama 3.1 means: it divides each pair's frequency, so factors of all 2
  // are linear scaling by 2, and factors of all 1 are no factors.
  RandomLlamaSpec twos = plain;
  twos.rope_freqs.assign(8, 2.0f);
  RandomLlamaSpec linear2 = plain;
  linear2.rope_scaling_type = "linear";
  linear2.rope_scaling_factor = 2.0f;
  RandomLlamaSpec ones = plain;
  ones.rope_freqs.assign(8, 1.0f);
  auto m_twos = build(twos), m_linear2 = build(linear2), m_ones = build(ones);
  auto m_plain = build(plain);
  ASSERT_TRUE(m_twos && m_linear2 && m_ones && m_plain);
  EXPECT_LE(logits_distance(*m_twos, *m_linear2), 1e-5f);
  EXPECT_LE(logits_distance(*m_ones, *m_plain), 1e-5f);
  EXPECT_GT(logits_distance(*m_twos, *m_plain), 1e-3f);
  test::expect_engine_matches_reference(*m_twos, 2, 121);
}

TEST(ModelFamilies, MistralStyleGqaWithExplicitHeadSizes) {
  MOON_REQUIRE_TEST_FILE(spm_path, kSpmVocabFile);
  auto vocab = small_vocab(spm_path, 320, {kSpmSpace});
  ASSERT_TRUE(vocab);
  RandomLlamaSpec spec;
  spec.name = "mistral style";
  spec.n_vocab = vocab->small.size();
  spec.n_embd = 64;
  spec.n_ff = 224;
  spec.n_head = 8;
  spec.n_head_kv = 2;
  spec.n_ctx = 32768;
  spec.key_length = 8;
  spec.value_length = 8;
  spec.rope_dims = 8;
  spec.freq_base = 1000000.0f;  // Mistral 7B v0.2 and later
  spec.seed = 5;
  auto model = build(spec, &vocab->small);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->hparams.head_dim, 8);
  EXPECT_EQ(model->hparams.n_gqa(), 4);
  EXPECT_EQ(model->hparams.layers[0].rope_freq_base, 1000000.0f);
  expect_matches_reference(*model, 130);
  expect_tokenizer_works(*model);
}

TEST(ModelFamilies, HeadSizeIndependentOfEmbedding) {
  // key_length need not be n_embd / n_head: Q and the attention output are then wider than the
  // residual stream (n_head * head_dim = 128 against n_embd 64).
  RandomLlamaSpec spec;
  spec.name = "wide heads";
  spec.n_embd = 64;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.key_length = 32;
  spec.value_length = 32;
  spec.seed = 6;
  auto model = build(spec);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->hparams.n_embd_q(), 128);
  EXPECT_EQ(model->hparams.n_rot, 32);
  expect_matches_reference(*model, 140);
}

TEST(ModelFamilies, LinearRopeScaling) {
  RandomLlamaSpec spec;
  spec.name = "linear rope scaling";
  spec.n_head_kv = 2;
  spec.rope_scaling_type = "linear";
  spec.rope_scaling_factor = 4.0f;
  spec.seed = 7;
  auto model = build(spec);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->hparams.layers[0].rope_freq_scale, 0.25f);
  expect_matches_reference(*model, 150);

  RandomLlamaSpec unscaled = spec;
  unscaled.rope_scaling_type.reset();
  unscaled.rope_scaling_factor.reset();
  auto plain = build(unscaled);
  ASSERT_TRUE(plain);
  EXPECT_GT(logits_distance(*model, *plain), 1e-3f);
  // The older key for the same thing.
  gguf::GgufWriter w;
  ASSERT_TRUE(test::add_random_llama(w, unscaled).ok());
  w.add_float32("llama.rope.scale_linear", 4.0f);
  auto legacy = test::load_from_writer(w, "scale_linear");
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_EQ(logits_distance(**legacy, *model), 0.0f);
}

TEST(ModelFamilies, TiedOutputAndPartialRotary) {
  RandomLlamaSpec spec;
  spec.name = "tied, partial rotary";
  spec.n_embd = 64;
  spec.n_head = 4;  // head_dim 16
  spec.n_head_kv = 2;
  spec.rope_dims = 8;
  spec.tied_output = true;
  spec.seed = 8;
  auto model = build(spec);
  ASSERT_TRUE(model);
  EXPECT_TRUE(model->weights.output_tied);
  EXPECT_EQ(model->weights.output.data, model->weights.token_embd.data);
  EXPECT_EQ(model->hparams.n_rot, 8);
  EXPECT_EQ(model->hparams.head_dim, 16);
  expect_matches_reference(*model, 160);

  RandomLlamaSpec full = spec;
  full.rope_dims = 16;
  auto full_rotary = build(full);
  ASSERT_TRUE(full_rotary);
  EXPECT_GT(logits_distance(*model, *full_rotary), 1e-3f);
  // Tied output in a quantized file: the embedding, read as Q8_0, is also the output matrix.
  RandomLlamaSpec q8 = spec;
  q8.matrix_type = DType::Q8_0;
  auto tied_q8 = build(q8);
  ASSERT_TRUE(tied_q8);
  EXPECT_EQ(tied_q8->weights.output.type, DType::Q8_0);
  test::expect_engine_matches_reference(*tied_q8, 2, 161);
}

TEST(ModelFamilies, MalformedRopeMetadataIsAClearError) {
  RandomLlamaSpec spec = llama3_spec();
  spec.rope_freqs = {1, 2, 3, 4, 5};  // n_rot / 2 is 8
  Error e = build_error(spec);
  EXPECT_NE(e.message.find("rope_freqs.weight"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("[5]"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("[8]"), std::string::npos) << e.message;

  spec = llama3_spec();
  spec.rope_scaling_type = "yarn";
  spec.rope_scaling_factor = 8.0f;
  e = build_error(spec);
  EXPECT_NE(e.message.find("'yarn'"), std::string::npos) << e.message;

  spec = llama3_spec();
  spec.rope_dims = 7;
  e = build_error(spec);
  EXPECT_NE(e.message.find("rope.dimension_count 7"), std::string::npos) << e.message;

  spec = llama3_spec();
  spec.key_length = 16;
  spec.value_length = 32;
  e = build_error(spec);
  EXPECT_NE(e.message.find("value head size 32"), std::string::npos) << e.message;

  spec = llama3_spec();
  spec.n_head_kv = 3;  // 8 query heads do not group over 3
  e = build_error(spec);
  EXPECT_NE(e.message.find("cannot be grouped"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace moon
