#include "cli/generate_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/output_processor.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/logging.h"

namespace moon {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

Result<std::vector<std::string>> read_prompts_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("cannot open prompts file '{}'", path);
  std::vector<std::string> prompts;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (!j.is_string()) throw std::runtime_error("not a string");
      prompts.push_back(j.get<std::string>());
    } catch (const std::exception&) {
      return make_error("{}:{}: each line must be one JSON string, e.g. \"Once upon a time\"", path,
                        line_no);
    }
  }
  return prompts;
}

struct PromptResult {
  std::vector<TokenId> prompt_ids;
  std::vector<PromptLogprob> prompt_logprobs;
  std::vector<SequenceOutput> sequences;
  Clock::time_point first_token{};
  Clock::time_point done{};
  double sample_ms = 0.0;
  int num_unfinished = 0;
};

}  // namespace

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o) {
  CLI::App* cmd = app.add_subcommand("generate", "Generate continuations of prompts");
  cmd->add_option("-p,--prompt", o.prompts, "Prompt text (repeat for several prompts)");
  cmd->add_option("--prompts-file", o.prompts_file, "File with one JSON string prompt per line");
  add_sampling_options(*cmd, o.sampling);
  cmd->add_option("--output-format", o.output_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  add_engine_options(*cmd, o.engine);
  return cmd;
}

int run_generate(const GenerateOptions& o) {
  auto fail = [](const Error& e) {
    spdlog::error("{}", e.message);
    return 1;
  };
  std::vector<std::string> prompts = o.prompts;
  if (!o.prompts_file.empty()) {
    auto more = read_prompts_file(o.prompts_file);
    if (!more.ok()) return fail(more.error());
    prompts.insert(prompts.end(), more->begin(), more->end());
  }
  if (prompts.empty()) return fail(make_error("no prompt given: use --prompt or --prompts-file"));

  auto loaded = load_engine(o.engine);
  if (!loaded.ok()) return fail(loaded.error());
  Engine* engine = loaded->engine.get();
  const Tokenizer& tok = *loaded->tokenizer;
  const double load_ms = loaded->load_ms;

  auto sampling = make_sampling_params(o.sampling);
  if (!sampling.ok()) return fail(sampling.error());
  const SamplingParams& params = *sampling;

  std::vector<PromptResult> results(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    PromptResult& r = results[i];
    r.prompt_ids = tok.encode(prompts[i], /*add_special=*/true, /*parse_special=*/false);
    if (r.prompt_ids.empty()) {
      return fail(make_error("prompt {} is empty and the model adds no BOS token", i + 1));
    }
    for (int k = 0; k < params.n; ++k) r.sequences.emplace_back(tok, params);
    r.num_unfinished = params.n;
    if (Status s = engine->add_request(i, r.prompt_ids, params); !s.ok()) {
      return fail(make_error("prompt {}: {}", i + 1, s.error().message));
    }
  }

  // Stream as text only where one sequence's output can go straight to the terminal.
  const bool stream =
      o.output_format == "text" && prompts.size() == 1 && params.n == 1 && !params.use_beam_search;
  const auto start = Clock::now();
  int64_t num_generated = 0;
  while (engine->has_work()) {
    auto updates = engine->step();
    if (!updates.ok()) return fail(updates.error());
    const auto now = Clock::now();
    std::vector<bool> touched(results.size(), false);
    for (SequenceUpdate& u : *updates) {
      PromptResult& r = results[u.request_id];
      if (r.first_token == Clock::time_point{}) r.first_token = now;
      touched[u.request_id] = true;
      r.prompt_logprobs.insert(r.prompt_logprobs.end(), u.prompt_logprobs.begin(),
                               u.prompt_logprobs.end());
      SequenceOutput& out = r.sequences[u.index];
      if (u.token >= 0 && !out.finished()) ++num_generated;
      const SequenceOutput::Delta delta = out.apply(u);
      if (stream) std::fwrite(delta.text.data(), 1, delta.text.size(), stdout);
      if (delta.stop_engine) engine->stop_sequence(u.request_id, u.index);
      if (delta.finished && --r.num_unfinished == 0) r.done = now;
    }
    for (size_t i = 0; i < results.size(); ++i) {
      if (touched[i]) results[i].sample_ms += engine->last_step_sample_ms();
    }
    if (stream) std::fflush(stdout);
  }
  const double total_ms = ms_between(start, Clock::now());
  spdlog::info(
      "{} prompt(s), {} tokens generated in {:.1f} ms ({:.1f} tok/s); {} preemptions, "
      "prefix cache hit rate {:.1f}%",
      prompts.size(), num_generated, total_ms, num_generated * 1000.0 / total_ms,
      engine->num_preemptions(), 100.0 * engine->kv_stats().prefix_hit_rate);

  if (o.output_format == "text") {
    if (stream) {
      std::fputc('\n', stdout);
      return 0;
    }
    for (size_t i = 0; i < results.size(); ++i) {
      for (size_t k = 0; k < results[i].sequences.size(); ++k) {
        std::cout << "--- prompt " << i + 1
                  << (params.n > 1 ? ", sequence " + std::to_string(k + 1) : "") << "\n"
                  << prompts[i] << results[i].sequences[k].text() << "\n";
      }
    }
    return 0;
  }
  // vLLM's shape: per token, the chosen token's and the k most likely tokens' logprobs.
  auto logprobs_json = [&](const SequenceOutput& s) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t t = 0; t < s.ids().size(); ++t) {
      nlohmann::json top = nlohmann::json::array();
      for (const TokenLogprob& e : s.top_logprobs()[t]) {
        top.push_back({{"id", e.id}, {"logprob", e.logprob}});
      }
      out.push_back({{"id", s.ids()[t]}, {"logprob", s.logprobs()[t]}, {"top_logprobs", top}});
    }
    return out;
  };
  auto reason = [](const SequenceOutput& s) {
    return std::string(finish_reason_name(s.finish_reason()));
  };
  nlohmann::json all = nlohmann::json::array();
  for (const PromptResult& r : results) {
    const SequenceOutput& first = r.sequences[0];
    nlohmann::json obj = {
        {"prompt_token_ids", r.prompt_ids},
        {"output_token_ids", first.ids()},
        {"text", first.text()},
        {"finish_reason", reason(first)},
        {"timings",
         {{"load_ms", load_ms},
          {"prefill_ms", ms_between(start, r.first_token)},
          {"decode_ms", ms_between(r.first_token, r.done)},
          {"sample_ms", r.sample_ms}}},
    };
    if (params.logprobs) obj["logprobs"] = logprobs_json(first);
    if (params.prompt_logprobs >= 0) {
      // vLLM's shape: nothing predicts the first prompt token.
      nlohmann::json prompt = nlohmann::json::array({nullptr});
      for (const PromptLogprob& e : r.prompt_logprobs) {
        nlohmann::json top = nlohmann::json::array();
        for (const TokenLogprob& t : e.top) top.push_back({{"id", t.id}, {"logprob", t.logprob}});
        prompt.push_back({{"id", e.token.id}, {"logprob", e.token.logprob}, {"top_logprobs", top}});
      }
      obj["prompt_logprobs"] = std::move(prompt);
    }
    if (params.n > 1) {
      obj["outputs"] = nlohmann::json::array();
      for (const SequenceOutput& s : r.sequences) {
        nlohmann::json one = {
            {"output_token_ids", s.ids()}, {"text", s.text()}, {"finish_reason", reason(s)}};
        if (params.logprobs) one["logprobs"] = logprobs_json(s);
        obj["outputs"].push_back(std::move(one));
      }
    }
    all.push_back(std::move(obj));
  }
  const nlohmann::json& out = all.size() == 1 ? all[0] : all;
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace moon
