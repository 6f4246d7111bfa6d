// Tokenizer speed: building the Llama-3 vocabulary (128k tokens, 280k merges) and encoding
// long texts, whose time per byte should stay flat as the text grows (a quadratic merge
// loop would show 4x the text taking 16x the time). Data from $MOON_TEST_DATA (default
// ../shared, relative to the working directory).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string vocab_path(const std::string& name) {
  const char* env = std::getenv("MOON_TEST_DATA");
  return std::string(env && *env ? env : "../shared") + "/models/vocab/ggml-vocab-" + name +
         ".gguf";
}

std::unique_ptr<moon::gguf::GgufFile> open_vocab(const std::string& name, benchmark::State& state) {
  auto file = moon::gguf::GgufFile::open(vocab_path(name));
  if (!file.ok()) {
    state.SkipWithError(file.error().message.c_str());
    return nullptr;
  }
  return std::move(file).value();
}

void BM_LoadLlama3Vocabulary(benchmark::State& state) {
  auto file = open_vocab("llama-bpe", state);
  if (!file) return;
  for (auto _ : state) {
    auto tok = moon::Tokenizer::from_gguf(*file);
    benchmark::DoNotOptimize(tok);
  }
}
BENCHMARK(BM_LoadLlama3Vocabulary)->Unit(benchmark::kMillisecond);

void BM_Encode(benchmark::State& state, const std::string& vocab, const std::string& unit) {
  auto file = open_vocab(vocab, state);
  if (!file) return;
  auto tok = moon::Tokenizer::from_gguf(*file);
  if (!tok.ok()) return state.SkipWithError(tok.error().message.c_str());
  std::string text;
  while (static_cast<int64_t>(text.size()) < state.range(0)) text += unit;
  for (auto _ : state) benchmark::DoNotOptimize((*tok)->encode(text, false, false));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}

const std::string kProse =
    "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
BENCHMARK_CAPTURE(BM_Encode, llama_spm_prose, "llama-spm", kProse)->Arg(64 << 10)->Arg(256 << 10);
BENCHMARK_CAPTURE(BM_Encode, llama_spm_one_letter, "llama-spm", "a")->Arg(64 << 10)->Arg(256 << 10);
BENCHMARK_CAPTURE(BM_Encode, llama3_prose, "llama-bpe", kProse)->Arg(64 << 10)->Arg(256 << 10);
BENCHMARK_CAPTURE(BM_Encode, llama3_spaces, "llama-bpe", " ")->Arg(64 << 10)->Arg(256 << 10);

}  // namespace

BENCHMARK_MAIN();
