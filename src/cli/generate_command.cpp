#include "cli/generate_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/llama_forward.h"
#include "model/llama_model.h"
#include "sampling/sampler.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"
#include "util/logging.h"
#include "util/thread_pool.h"

namespace moon {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o) {
  CLI::App* cmd = app.add_subcommand("generate", "Generate a continuation of a prompt");
  cmd->add_option(
      "-m,--model", o.model,
      "GGUF model file, or builtin:tiny (the default: random weights, meaningless text)");
  cmd->add_option("-p,--prompt", o.prompt, "Prompt text")->required();
  cmd->add_option("-n,--max-tokens", o.max_tokens, "Most tokens to generate")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", o.temperature, "0 is greedy; higher is more random")
      ->check(CLI::Range(0.0f, 100.0f));
  cmd->add_option("--seed", o.seed, "Seed for sampling (same seed, same output)");
  cmd->add_option("--output-format", o.output_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("-t,--threads", o.threads, "Worker threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
  return cmd;
}

int run_generate(const GenerateOptions& o) {
  const auto load_start = Clock::now();
  auto model = load_llama_model(o.model);
  if (!model.ok()) {
    spdlog::error("{}", model.error().message);
    return 1;
  }
  const LlamaHparams& hp = (*model)->hparams;
  auto tokenizer = Tokenizer::from_gguf(*(*model)->file);
  if (!tokenizer.ok()) {
    spdlog::error("{}", tokenizer.error().message);
    return 1;
  }
  if ((*tokenizer)->vocab_size() != hp.n_vocab) {
    spdlog::error("the tokenizer has {} tokens but the model's output has {}",
                  (*tokenizer)->vocab_size(), hp.n_vocab);
    return 1;
  }
  const std::vector<int32_t> prompt_ids =
      (*tokenizer)->encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  if (prompt_ids.empty()) {
    spdlog::error("the prompt is empty and the model adds no BOS token: nothing to condition on");
    return 1;
  }
  const int64_t max_context =
      std::min<int64_t>(hp.n_ctx_train, static_cast<int64_t>(prompt_ids.size()) + o.max_tokens);
  if (static_cast<int64_t>(prompt_ids.size()) > hp.n_ctx_train) {
    spdlog::error("the prompt has {} tokens, more than the model's context of {}",
                  prompt_ids.size(), hp.n_ctx_train);
    return 1;
  }
  ThreadPool pool(o.threads);
  LlamaForward forward(**model, max_context, &pool);
  const double load_ms = ms_since(load_start);
  spdlog::info("loaded {} ({} layers, {} dims, vocab {}) in {:.0f} ms, {} threads",
               hp.name.empty() ? (*model)->file->name() : hp.name, hp.n_layer, hp.n_embd,
               hp.n_vocab, load_ms, pool.num_threads());

  std::vector<float> logits(static_cast<size_t>(hp.n_vocab));
  const auto prefill_start = Clock::now();
  if (Status s = forward.forward(prompt_ids, 0, logits.data()); !s.ok()) {
    spdlog::error("{}", s.error().message);
    return 1;
  }
  const double prefill_ms = ms_since(prefill_start);

  Sampler sampler(o.temperature, o.seed);
  IncrementalDecoder decoder(**tokenizer, /*skip_special=*/true, /*continuation=*/true);
  std::vector<int32_t> output_ids;
  std::string text;
  std::string finish_reason = "length";
  double decode_ms = 0.0, sample_ms = 0.0;
  const bool stream = o.output_format == "text";
  int64_t pos = static_cast<int64_t>(prompt_ids.size());
  while (static_cast<int>(output_ids.size()) < o.max_tokens) {
    const auto sample_start = Clock::now();
    const int32_t next = sampler.sample(logits).id;
    sample_ms += ms_since(sample_start);
    if ((*tokenizer)->is_eog(next)) {
      finish_reason = "stop";
      break;
    }
    output_ids.push_back(next);
    const std::string piece = decoder.push(next);
    text += piece;
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (static_cast<int>(output_ids.size()) == o.max_tokens) break;
    if (pos >= hp.n_ctx_train) {
      spdlog::warn("stopped at the model's context length of {} tokens", hp.n_ctx_train);
      break;
    }
    const auto decode_start = Clock::now();
    const int32_t token[1] = {next};
    if (Status s = forward.forward(token, pos, logits.data()); !s.ok()) {
      spdlog::error("{}", s.error().message);
      return 1;
    }
    decode_ms += ms_since(decode_start);
    ++pos;
  }
  const std::string tail = decoder.flush();
  text += tail;

  if (stream) {
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputc('\n', stdout);
    const size_t n_decoded = output_ids.empty() ? 0 : output_ids.size() - 1;
    spdlog::info(
        "prompt {} tokens in {:.1f} ms ({:.1f} tok/s); generated {} tokens, decode "
        "{:.1f} tok/s; sampling {:.3f} ms",
        prompt_ids.size(), prefill_ms, prompt_ids.size() * 1000.0 / prefill_ms, output_ids.size(),
        decode_ms > 0 ? n_decoded * 1000.0 / decode_ms : 0.0, sample_ms);
    return 0;
  }
  nlohmann::json out = {
      {"prompt_token_ids", prompt_ids},
      {"output_token_ids", output_ids},
      {"text", text},
      {"finish_reason", finish_reason},
      {"timings",
       {{"load_ms", load_ms},
        {"prefill_ms", prefill_ms},
        {"decode_ms", decode_ms},
        {"sample_ms", sample_ms}}},
  };
  // Invalid UTF-8 cannot reach here (the decoder emits whole characters), but replace
  // rather than throw if it ever does.
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace moon
