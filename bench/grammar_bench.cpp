// What constrained decoding adds to a decode step, per sequence: the grammar's mask applied
// to one logits row, the argmax over what is left, and the automaton advanced by the chosen
// token, for the Llama 2 (32000 tokens) and Llama 3 (128256 tokens) vocabularies and a JSON
// schema grammar. Each iteration decodes one 64-token document from rows of random logits.
//   cold: a fresh automaton per document, so every state's mask is computed by the trie
//         walk (the first request with a new schema);
//   warm: the same automaton throughout, so states recur and masks come from the cache
//         (every later request with that schema, and most steps of a long one).
// BM_SamplerRow is the sampler's own fused pass over the same row, for scale.
//
// Counter: us_per_step. Needs $MOON_TEST_DATA/models/vocab/ (default ../shared).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "gguf/gguf_file.h"
#include "grammar/gbnf.h"
#include "grammar/grammar_automaton.h"
#include "grammar/json_schema.h"
#include "grammar/tokenizer_vocab.h"
#include "sampling/greedy_pass.h"
#include "tokenizer/tokenizer.h"

namespace {

constexpr int kSteps = 64;

const char* kVocabs[] = {"llama-spm", "llama-bpe"};

const char* kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 24},
  "age": {"type": "integer", "minimum": 0, "maximum": 150},
  "email": {"type": "string", "format": "email"},
  "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 4},
  "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
              "required": ["city", "zip"]}},
  "required": ["name", "age", "address"]})";

struct Vocab {
  std::unique_ptr<moon::Tokenizer> tokenizer;
  std::shared_ptr<const moon::grammar::TokenTrie> trie;
  moon::grammar::Grammar grammar;
  std::vector<std::vector<float>> rows;  // kSteps rows of random logits
};

const Vocab* vocab(int which, benchmark::State& state) {
  static std::map<int, std::unique_ptr<Vocab>> cache;
  auto& slot = cache[which];
  if (slot) return slot.get();
  const char* env = std::getenv("MOON_TEST_DATA");
  const std::string path =
      std::string(env ? env : "../shared") + "/models/vocab/ggml-vocab-" + kVocabs[which] + ".gguf";
  auto file = moon::gguf::GgufFile::open(path);
  if (!file.ok()) {
    state.SkipWithError(("cannot open " + path).c_str());
    return nullptr;
  }
  auto tok = moon::Tokenizer::from_gguf(**file);
  if (!tok.ok()) {
    state.SkipWithError(tok.error().message.c_str());
    return nullptr;
  }
  auto v = std::make_unique<Vocab>();
  v->tokenizer = std::move(*tok);
  v->trie = moon::grammar::token_trie_for(*v->tokenizer);
  auto gbnf = moon::grammar::json_schema_to_gbnf(nlohmann::ordered_json::parse(kSchema));
  auto g = moon::grammar::parse_gbnf(*gbnf);
  v->grammar = std::move(*g);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int s = 0; s < kSteps; ++s) {
    std::vector<float> row(static_cast<size_t>(v->tokenizer->vocab_size()));
    for (float& x : row) x = dist(rng);
    v->rows.push_back(std::move(row));
  }
  slot = std::move(v);
  return slot.get();
}

// One document of kSteps tokens (restarting whenever the grammar ends it).
void decode_document(const Vocab& v, moon::grammar::GrammarAutomaton& a, std::vector<float>& row) {
  moon::grammar::GrammarMatcher m(
      std::shared_ptr<moon::grammar::GrammarAutomaton>(&a, [](auto*) {}));
  for (int s = 0; s < kSteps; ++s) {
    row = v.rows[static_cast<size_t>(s)];
    m.mask_logits(row);
    const moon::GreedyResult g = moon::greedy_pass(row);
    m.accept(g.id);
    if (m.done())
      m = moon::grammar::GrammarMatcher(
          std::shared_ptr<moon::grammar::GrammarAutomaton>(&a, [](auto*) {}));
  }
  benchmark::DoNotOptimize(row.data());
}

void per_step(benchmark::State& state) {
  state.counters["us_per_step"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kSteps) * 1e-6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_MaskCold(benchmark::State& state) {
  const Vocab* v = vocab(static_cast<int>(state.range(0)), state);
  if (!v) return;
  std::vector<float> row;
  for (auto _ : state) {
    moon::grammar::GrammarAutomaton a(v->grammar, v->trie);
    decode_document(*v, a, row);
  }
  per_step(state);
  state.SetLabel(kVocabs[state.range(0)]);
}

void BM_MaskWarm(benchmark::State& state) {
  const Vocab* v = vocab(static_cast<int>(state.range(0)), state);
  if (!v) return;
  std::vector<float> row;
  moon::grammar::GrammarAutomaton a(v->grammar, v->trie);
  decode_document(*v, a, row);  // fill the caches
  for (auto _ : state) decode_document(*v, a, row);
  per_step(state);
  state.SetLabel(kVocabs[state.range(0)]);
}

void BM_SamplerRow(benchmark::State& state) {
  const Vocab* v = vocab(static_cast<int>(state.range(0)), state);
  if (!v) return;
  for (auto _ : state) {
    for (int s = 0; s < kSteps; ++s)
      benchmark::DoNotOptimize(moon::greedy_pass(v->rows[static_cast<size_t>(s)]));
  }
  per_step(state);
  state.SetLabel(kVocabs[state.range(0)]);
}

BENCHMARK(BM_MaskCold)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaskWarm)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SamplerRow)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
