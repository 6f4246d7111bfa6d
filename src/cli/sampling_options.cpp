#include "cli/sampling_options.h"

#include <charconv>

#include "sampling/greedy_pass.h"

namespace moon {

void add_sampling_options(CLI::App& cmd, SamplingOptions& o) {
  SamplingParams& p = o.params;
  cmd.add_option("-n,--max-tokens", p.max_tokens, "Most tokens to generate per sequence")
      ->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--min-tokens", p.min_tokens, "Tokens to generate before EOS or a stop may end")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--temperature", p.temperature, "0 is greedy; higher is more random")
      ->check(CLI::Range(0.0f, 100.0f));
  cmd.add_option("--top-k", p.top_k, "Sample among the k most likely tokens (0 or -1: all)")
      ->check(CLI::Range(-1, 1 << 30));
  cmd.add_option("--top-p", p.top_p, "Sample from the smallest set holding this probability")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", p.min_p, "Drop tokens below min-p times the most likely's probability")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repetition-penalty", p.repetition_penalty,
                 "Penalize tokens already in the prompt or output (1: off)");
  cmd.add_option("--presence-penalty", p.presence_penalty,
                 "Subtract from tokens present in the output, [-2, 2]");
  cmd.add_option("--frequency-penalty", p.frequency_penalty,
                 "Subtract per occurrence in the output, [-2, 2]");
  cmd.add_option("--logit-bias", o.logit_bias, "TOKEN=BIAS added to a logit (repeatable)");
  o.seed_option = cmd.add_option("--seed", o.seed, "Seed for sampling (same seed, same output)");
  cmd.add_option("--n", p.n, "Sequences per prompt (parallel sampling, sharing the prompt's KV)")
      ->check(CLI::Range(1, 256));
  cmd.add_option("--stop", p.stop, "Stop when the text contains this string (repeatable)");
  cmd.add_option("--stop-token-ids", p.stop_token_ids, "Stop at these token ids");
  cmd.add_flag("--include-stop-str-in-output", p.include_stop_str_in_output,
               "Keep the stop string at the end of the text");
  cmd.add_flag("--ignore-eos", p.ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd.add_option("--logprobs", o.logprobs,
                 "Report each token's log-probability and the k most likely alternatives (JSON)")
      ->check(CLI::Range(0, kMaxTopLogprobs));
  cmd.add_option("--prompt-logprobs", p.prompt_logprobs,
                 "Report each prompt token's log-probability and the k most likely (JSON)")
      ->check(CLI::Range(0, kMaxTopLogprobs));
  cmd.add_flag("--use-beam-search", p.use_beam_search,
               "Beam search of width --n instead of sampling (results come at the end)");
  cmd.add_option("--length-penalty", p.length_penalty,
                 "Beam search: rank by cum_logprob / length^penalty")
      ->check(CLI::Range(-10.0f, 10.0f));
}

Result<SamplingParams> make_sampling_params(const SamplingOptions& o) {
  SamplingParams p = o.params;
  if (o.seed_option != nullptr && o.seed_option->count() > 0) p.seed = o.seed;
  for (const std::string& entry : o.logit_bias) {
    const size_t eq = entry.find('=');
    int32_t token = -1;
    float bias = 0.0f;
    const char* end = entry.data() + entry.size();
    if (eq == std::string::npos ||
        std::from_chars(entry.data(), entry.data() + eq, token).ptr != entry.data() + eq ||
        std::from_chars(entry.data() + eq + 1, end, bias).ptr != end) {
      return make_error("--logit-bias '{}': expected TOKEN=BIAS, e.g. 13=-100", entry);
    }
    p.logit_bias.emplace_back(token, bias);
  }
  p.logprobs = o.logprobs >= 0;
  p.top_logprobs = std::max(o.logprobs, 0);
  MOON_TRY(p.validate());
  return p;
}

}  // namespace moon
