#include "cli/bench_offline_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/bench_offline_support.h"
#include "util/cpu_features.h"
#include "util/format_bytes.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultNPrompt = 512;
constexpr int64_t kDefaultNGen = 128;
constexpr int64_t kMaxLen = int64_t{1} << 24;
constexpr int64_t kMaxCount = int64_t{1} << 20;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the table and the JSON say about the model and the machine.
struct BenchSetting {
  ModelSummary model;
  int threads = 0;
  std::string simd;
};

BenchSetting describe(const EngineOptions& o, const LoadedEngine& e) {
  BenchSetting s;
  s.model = summarize_model(o.model, *e.model->file);
  s.threads = e.config.num_threads > 0 ? e.config.num_threads : ThreadPool::default_num_threads();
  s.simd = std::string(simd_level_name(simd_level()));
  return s;
}

nlohmann::json settings_json(const BenchSetting& s, const LoadedEngine& e) {
  const EngineConfig& c = e.config;
  return {
      {"model", s.model.name},
      {"model_path", s.model.path},
      {"model_size", s.model.size},
      {"model_n_params", s.model.n_params},
      {"model_type", s.model.type},
      {"threads", s.threads},
      {"simd", s.simd},
      {"kv_cache_dtype", std::string(dtype_name(e.engine->kv_layout().dtype))},
      {"kv_cache_blocks", e.engine->kv_layout().num_blocks},
      {"block_size", c.block_size},
      {"max_model_len", c.scheduler.max_model_len},
      {"max_num_seqs", c.scheduler.max_num_seqs},
      {"max_num_batched_tokens", c.scheduler.max_num_batched_tokens},
      {"enable_prefix_caching", c.enable_prefix_caching},
      {"enable_chunked_prefill", c.scheduler.enable_chunked_prefill},
  };
}

// The first columns of both tables.
std::vector<TableColumn> setting_columns() {
  return {{"model", false}, {"size", true},    {"params", true},
          {"type", false},  {"threads", true}, {"simd", false}};
}
std::vector<std::string> setting_cells(const BenchSetting& s) {
  return {s.model.name, format_bytes(s.model.size, 2), format_count(s.model.n_params),
          s.model.type, fmt::format("{}", s.threads),  s.simd};
}

// Greedy, exactly max_tokens: nothing stops a benchmark sequence early.
SamplingParams bench_params(int64_t max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.ignore_eos = true;
  p.max_tokens = static_cast<int>(max_tokens);
  return p;
}

// One request alone through the engine: when it started, got its first token and its last.
struct SingleRun {
  Clock::time_point start, first, last;
  int64_t tokens = 0;
};

Result<SingleRun> run_single(Engine& engine, RequestId id, const std::vector<TokenId>& prompt,
                             int64_t max_tokens) {
  SingleRun r;
  r.start = Clock::now();
  MOON_TRY(engine.add_request(id, prompt, bench_params(max_tokens)));
  while (engine.has_work()) {
    MOON_ASSIGN_OR_RETURN(std::vector<SequenceUpdate> updates, engine.step());
    const Clock::time_point now = Clock::now();
    for (const SequenceUpdate& u : updates) {
      if (u.token < 0) continue;
      if (r.tokens++ == 0) r.first = now;
      r.last = now;
    }
  }
  if (r.tokens != max_tokens) {
    return make_error("the engine produced {} of the {} tokens asked for", r.tokens, max_tokens);
  }
  return r;
}

// One repetition of the throughput benchmark.
struct BatchRun {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t decode_tokens = 0;  // generated in the steps after every sequence had its first
  double t_pp = 0.0;          // start -> the step that gave the last sequence its first token
  double t_tg = 0.0;          // that step -> the last token
  double t_total = 0.0;
  int64_t preemptions = 0;
};

Result<BatchRun> run_batch(Engine& engine, RequestId& next_id, RandomPrompts& maker, int64_t batch,
                           int64_t input_len, int64_t output_len) {
  std::vector<std::vector<TokenId>> prompts;
  for (int64_t i = 0; i < batch; ++i) prompts.push_back(maker.make(input_len));
  const RequestId base = next_id;
  next_id += static_cast<RequestId>(batch);
  BatchRun r;
  const int64_t preemptions_before = engine.num_preemptions();
  std::vector<int64_t> counts(static_cast<size_t>(batch), 0);
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < batch; ++i) {
    r.prompt_tokens += static_cast<int64_t>(prompts[i].size());
    if (Status s = engine.add_request(base + i, prompts[i], bench_params(output_len)); !s.ok()) {
      return make_error("sequence {}: {}", i + 1, s.error().message);
    }
  }
  int64_t without_first = batch;
  std::optional<Clock::time_point> all_first;
  Clock::time_point end = start;
  while (engine.has_work()) {
    MOON_ASSIGN_OR_RETURN(std::vector<SequenceUpdate> updates, engine.step());
    const Clock::time_point now = Clock::now();
    for (const SequenceUpdate& u : updates) {
      if (u.token < 0) continue;
      int64_t& count = counts[static_cast<size_t>(u.request_id - base)];
      if (count++ == 0) --without_first;
      ++r.generated_tokens;
      if (all_first) ++r.decode_tokens;
      end = now;
    }
    if (!all_first && without_first == 0) all_first = now;
  }
  for (int64_t i = 0; i < batch; ++i) {
    if (counts[i] != output_len) {
      return make_error("sequence {} produced {} of the {} tokens asked for", i + 1, counts[i],
                        output_len);
    }
  }
  r.t_pp = seconds_between(start, *all_first);
  r.t_tg = seconds_between(*all_first, end);
  r.t_total = seconds_between(start, end);
  r.preemptions = engine.num_preemptions() - preemptions_before;
  return r;
}

int fail(const char* command, const Error& e) {
  std::fprintf(stderr, "moon bench %s: %s\n", command, e.message.c_str());
  return 1;
}

void add_common_options(CLI::App* cmd, int64_t& repetitions, int64_t& warmup,
                        std::string& output_format, uint64_t& seed) {
  cmd->add_option("-r,--repetitions", repetitions, "Measured runs (of each test)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, kMaxCount));
  cmd->add_option("--warmup", warmup, "Unmeasured runs first (of each test)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, kMaxCount));
  cmd->add_option("-o,--output-format", output_format, "text (a table) or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--seed", seed, "Seed of the random prompts")->capture_default_str();
}

}  // namespace

CLI::App* add_bench_latency_command(CLI::App& bench, LatencyBenchOptions& o) {
  CLI::App* cmd = bench.add_subcommand(
      "latency", "Offline: one sequence's prefill and decode speed in this process (llama-bench)");
  cmd->footer(
      "pp: a random prompt of --n-prompt tokens (a new one every run), pp t/s = n_prompt / time "
      "from adding it to its first token.\n"
      "tg: one prompt token, then --n-gen decode steps, tg t/s = n_gen / time from the first "
      "token to the last.\n"
      "Greedy with ignore_eos, so every run computes exactly these tokens. t/s is the mean ± "
      "sample sd over --repetitions runs after --warmup unmeasured ones.");
  cmd->add_option("-p,--n-prompt", o.n_prompt,
                  "Prompt tokens of the pp test, 0 to skip it (default 512, lowered to "
                  "--max-model-len - 1 for a shorter context)")
      ->check(CLI::Range(int64_t{0}, kMaxLen));
  cmd->add_option("-n,--n-gen", o.n_gen,
                  "Decode steps of the tg test, 0 to skip it (default 128, lowered to "
                  "--max-model-len - 2 for a shorter context)")
      ->check(CLI::Range(int64_t{0}, kMaxLen));
  add_common_options(cmd, o.repetitions, o.warmup, o.output_format, o.seed);
  add_engine_options(*cmd, o.engine);
  return cmd;
}

CLI::App* add_bench_throughput_command(CLI::App& bench, ThroughputBenchOptions& o) {
  CLI::App* cmd = bench.add_subcommand(
      "throughput",
      "Offline: B sequences added at once, prefill and decode rates (llama-batched-bench)");
  cmd->footer(
      "--batch-size (B) sequences of --input-len (PP) random prompt tokens and --output-len (TG) "
      "generated tokens (greedy, ignore_eos), all added before the first step.\n"
      "S_PP = B*PP / time until every sequence has its first token.\n"
      "S_TG = tokens generated in the steps after the one that gave the last sequence its first "
      "token / time from that step to the last token. That is B*(TG-1) tokens when every prefill "
      "ends in the same step (--max-num-batched-tokens >= B*PP); with fewer, the first "
      "sequences decode while later ones prefill, and S_TG leaves those tokens out (their time "
      "is part of S_PP's).\n"
      "S = B*(PP+TG) / total time. Each is the mean ± sample sd over --repetitions runs after "
      "--warmup unmeasured ones. Every sequence must fit at once: B <= --max-num-seqs and a KV "
      "cache of B*(PP+TG) tokens (the error says what --kv-cache-memory to give).");
  cmd->add_option("-b,--batch-size", o.batch_size, "Sequences (B), all added at once")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--input-len", o.input_len, "Prompt tokens per sequence")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, kMaxLen));
  cmd->add_option("--output-len", o.output_len, "Generated tokens per sequence")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, kMaxLen));
  add_common_options(cmd, o.repetitions, o.warmup, o.output_format, o.seed);
  add_engine_options(*cmd, o.engine);
  return cmd;
}

int run_bench_latency(LatencyBenchOptions o) {
  constexpr const char* kName = "latency";
  if (o.n_prompt == 0 && o.n_gen == 0) {
    return fail(kName, make_error("--n-prompt and --n-gen are both 0: nothing to measure"));
  }
  auto loaded = load_engine(o.engine);
  if (!loaded.ok()) return fail(kName, loaded.error());
  Engine& engine = *loaded->engine;
  const int64_t max_len = loaded->config.scheduler.max_model_len;
  // pp needs the prompt and its first token; tg one prompt token and n_gen + 1 generated.
  if (o.n_prompt < 0) {
    o.n_prompt = std::min(kDefaultNPrompt, max_len - 1);
    if (o.n_prompt < kDefaultNPrompt) {
      fmt::print(stderr,
                 "--n-prompt: {} (the default {} and its first token exceed --max-model-len {})\n",
                 o.n_prompt, kDefaultNPrompt, max_len);
    }
  } else if (o.n_prompt + 1 > max_len) {
    return fail(kName, make_error("--n-prompt {} and its first token need {} tokens of context, "
                                  "more than --max-model-len {} (the model's context when not "
                                  "given): lower --n-prompt",
                                  o.n_prompt, o.n_prompt + 1, max_len));
  }
  if (o.n_gen < 0) {
    o.n_gen = std::max<int64_t>(0, std::min(kDefaultNGen, max_len - 2));
    if (o.n_gen < kDefaultNGen) {
      fmt::print(stderr, "--n-gen: {} (the default {} exceeds --max-model-len {})\n", o.n_gen,
                 kDefaultNGen, max_len);
    }
  } else if (o.n_gen + 2 > max_len) {
    return fail(kName, make_error("--n-gen {} needs {} tokens of context (one prompt token, its "
                                  "first token and {} decode steps), more than --max-model-len {}: "
                                  "lower --n-gen",
                                  o.n_gen, o.n_gen + 2, o.n_gen, max_len));
  }
  RandomPrompts prompts(*loaded->tokenizer, o.seed);
  if (!prompts.usable()) return fail(kName, make_error("the vocabulary has no ordinary tokens"));
  const BenchSetting setting = describe(o.engine, *loaded);

  struct Test {
    std::string name;
    int64_t n_prompt = 0, n_gen = 0;
    std::vector<double> ts, ns;
  };
  std::vector<Test> tests;
  if (o.n_prompt > 0) tests.push_back({fmt::format("pp{}", o.n_prompt), o.n_prompt, 0, {}, {}});
  if (o.n_gen > 0) tests.push_back({fmt::format("tg{}", o.n_gen), 0, o.n_gen, {}, {}});
  RequestId next_id = 0;
  for (Test& t : tests) {
    for (int64_t rep = -o.warmup; rep < o.repetitions; ++rep) {
      const bool pp = t.n_prompt > 0;
      auto run = pp ? run_single(engine, next_id++, prompts.make(t.n_prompt), 1)
                    : run_single(engine, next_id++, prompts.make(1), t.n_gen + 1);
      if (!run.ok()) return fail(kName, make_error("{}: {}", t.name, run.error().message));
      const double secs =
          pp ? seconds_between(run->start, run->first) : seconds_between(run->first, run->last);
      if (!(secs > 0.0)) return fail(kName, make_error("{}: the clock did not advance", t.name));
      const double ts = static_cast<double>(pp ? t.n_prompt : t.n_gen) / secs;
      if (rep < 0) {
        fmt::print(stderr, "{}: warmup {}/{}: {:.2f} t/s\n", t.name, rep + o.warmup + 1, o.warmup,
                   ts);
        continue;
      }
      fmt::print(stderr, "{}: repetition {}/{}: {:.2f} t/s ({:.3f} ms)\n", t.name, rep + 1,
                 o.repetitions, ts, secs * 1e3);
      t.ts.push_back(ts);
      t.ns.push_back(secs * 1e9);
    }
  }

  if (o.output_format == "json") {
    nlohmann::json j = settings_json(setting, *loaded);
    j["benchmark"] = "latency";
    j["n_prompt"] = o.n_prompt;
    j["n_gen"] = o.n_gen;
    j["repetitions"] = o.repetitions;
    j["warmup"] = o.warmup;
    j["seed"] = o.seed;
    j["results"] = nlohmann::json::array();
    for (const Test& t : tests) {
      const MeanSd m = mean_sd(t.ts);
      j["results"].push_back({{"test", t.name},
                              {"n_prompt", t.n_prompt},
                              {"n_gen", t.n_gen},
                              {"repetitions", t.ts.size()},
                              {"avg_ts", m.mean},
                              {"stddev_ts", m.sd},
                              {"avg_ns", mean_sd(t.ns).mean},
                              {"samples_ts", t.ts},
                              {"samples_ns", t.ns}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::vector<TableColumn> columns = setting_columns();
  columns.push_back({"test", true});
  columns.push_back({"t/s", true});
  std::vector<std::vector<std::string>> rows;
  for (const Test& t : tests) {
    std::vector<std::string> row = setting_cells(setting);
    row.push_back(t.name);
    row.push_back(format_mean_sd(mean_sd(t.ts)));
    rows.push_back(std::move(row));
  }
  std::cout << format_table(columns, rows) << "\n"
            << "pp = prompt tokens / time to the first token; tg = decode steps / time from the "
               "first token to the last\n"
            << fmt::format("t/s: mean ± sd of {} repetitions after {} warmup\n", o.repetitions,
                           o.warmup);
  return 0;
}

int run_bench_throughput(const ThroughputBenchOptions& o) {
  constexpr const char* kName = "throughput";
  const int64_t B = o.batch_size, P = o.input_len, G = o.output_len;
  if (B > o.engine.max_num_seqs) {
    return fail(kName,
                make_error("--batch-size {} is more than --max-num-seqs {}: raise "
                           "--max-num-seqs to at least {} so that every sequence runs at once",
                           B, o.engine.max_num_seqs, B));
  }
  auto loaded = load_engine(o.engine);
  if (!loaded.ok()) return fail(kName, loaded.error());
  Engine& engine = *loaded->engine;
  const int64_t max_len = loaded->config.scheduler.max_model_len;
  if (P + G > max_len) {
    return fail(kName,
                make_error("--input-len {} + --output-len {} is more than --max-model-len {} "
                           "(the model's context when not given)",
                           P, G, max_len));
  }
  if (Status fits = check_batch_fits(engine.kv_layout(), B, P + G); !fits.ok()) {
    return fail(kName, fits.error());
  }
  RandomPrompts prompts(*loaded->tokenizer, o.seed);
  if (!prompts.usable()) return fail(kName, make_error("the vocabulary has no ordinary tokens"));
  const BenchSetting setting = describe(o.engine, *loaded);

  RequestId next_id = 0;
  std::vector<BatchRun> runs;
  std::vector<double> s_pp, s_tg, s_total;
  for (int64_t rep = -o.warmup; rep < o.repetitions; ++rep) {
    auto run = run_batch(engine, next_id, prompts, B, P, G);
    if (!run.ok()) return fail(kName, run.error());
    const double pp = static_cast<double>(run->prompt_tokens) / run->t_pp;
    const double tg = G > 1 ? static_cast<double>(run->decode_tokens) / run->t_tg : 0.0;
    const double total =
        static_cast<double>(run->prompt_tokens + run->generated_tokens) / run->t_total;
    if (!(run->t_pp > 0.0 && run->t_total > 0.0 && (G == 1 || run->t_tg > 0.0))) {
      return fail(kName, make_error("the clock did not advance"));
    }
    const std::string label = rep < 0 ? fmt::format("warmup {}/{}", rep + o.warmup + 1, o.warmup)
                                      : fmt::format("repetition {}/{}", rep + 1, o.repetitions);
    fmt::print(stderr,
               "throughput: {}: S_PP {:.2f} t/s, S_TG {:.2f} t/s, S {:.2f} t/s ({} prompt + {} "
               "generated tokens in {:.3f} s{})\n",
               label, pp, tg, total, run->prompt_tokens, run->generated_tokens, run->t_total,
               run->preemptions > 0 ? fmt::format(", {} preemptions", run->preemptions) : "");
    if (rep < 0) continue;
    runs.push_back(*run);
    s_pp.push_back(pp);
    if (G > 1) s_tg.push_back(tg);
    s_total.push_back(total);
  }
  int64_t preemptions = 0;
  for (const BatchRun& r : runs) preemptions += r.preemptions;
  if (preemptions > 0) {
    fmt::print(
        stderr,
        "warning: {} preemptions: sequences were recomputed, so the rates include that work\n",
        preemptions);
  }

  if (o.output_format == "json") {
    nlohmann::json j = settings_json(setting, *loaded);
    j["benchmark"] = "throughput";
    j["batch_size"] = B;
    j["input_len"] = P;
    j["output_len"] = G;
    j["repetitions"] = o.repetitions;
    j["warmup"] = o.warmup;
    j["seed"] = o.seed;
    auto stat = [](const std::vector<double>& samples) {
      const MeanSd m = mean_sd(samples);
      return nlohmann::json{{"mean", m.mean}, {"sd", m.sd}, {"samples", samples}};
    };
    j["results"] = {{"S_PP", stat(s_pp)}, {"total", stat(s_total)}};
    if (G > 1) j["results"]["S_TG"] = stat(s_tg);
    j["runs"] = nlohmann::json::array();
    for (const BatchRun& r : runs) {
      j["runs"].push_back({{"n_prompt_tokens", r.prompt_tokens},
                           {"n_generated_tokens", r.generated_tokens},
                           {"n_decode_tokens", r.decode_tokens},
                           {"t_pp_s", r.t_pp},
                           {"t_tg_s", r.t_tg},
                           {"t_s", r.t_total},
                           {"preemptions", r.preemptions}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::vector<TableColumn> columns = setting_columns();
  for (const char* h : {"B", "PP", "TG"}) columns.push_back({h, true});
  for (const char* h : {"S_PP t/s", "S_TG t/s", "S t/s"}) columns.push_back({h, true});
  std::vector<std::string> row = setting_cells(setting);
  for (int64_t v : {B, P, G}) row.push_back(fmt::format("{}", v));
  row.push_back(format_mean_sd(mean_sd(s_pp)));
  row.push_back(G > 1 ? format_mean_sd(mean_sd(s_tg)) : "-");
  row.push_back(format_mean_sd(mean_sd(s_total)));
  std::cout << format_table(columns, {row}) << "\n"
            << "S_PP = B*PP / time until every sequence had its first token\n"
            << "S_TG = tokens generated after the step that gave the last sequence its first "
               "token / time from that step to the last token\n"
            << "S    = B*(PP+TG) / total time\n"
            << fmt::format("t/s: mean ± sd of {} repetitions after {} warmup\n", o.repetitions,
                           o.warmup);
  // When prefills span several steps, the first sequences decode while later ones prefill.
  const int64_t full_window = B * (G - 1);
  for (const BatchRun& r : runs) {
    if (G > 1 && r.decode_tokens != full_window) {
      std::cout << fmt::format(
          "S_TG counted {} of the B*(TG-1) = {} decode tokens: the prompts took several steps, "
          "and S_TG leaves out the tokens generated before the last prefill ended "
          "(--max-num-batched-tokens {}; B*PP = {} gives one step)\n",
          r.decode_tokens, full_window, loaded->config.scheduler.max_num_batched_tokens, B * P);
      break;
    }
  }
  return 0;
}

}  // namespace moon
