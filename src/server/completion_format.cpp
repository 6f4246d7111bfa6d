#include "server/completion_format.h"

namespace moon::server {

using json = nlohmann::json;

CompletionFormat::CompletionFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial)
    : OpenAiFormat(opts, tok, serial,
                   {"cmpl", "text_completion", "text_completion", &completion_logprobs}),
      echo_sent_(opts.prompts.size() * opts.sampling.params.n, false) {}

std::string CompletionFormat::stream_opening(size_t i) {
  // With logprobs the echo waits for the prompt's logprobs (stream).
  if (opts_.wants_prompt_logprobs()) return {};
  echo_sent_[i] = true;
  const std::string& prefix = opts_.echo_prefixes[i / opts_.sampling.params.n];
  if (prefix.empty()) return {};
  return chunk(i, json::object({{"text", prefix}}), nullptr, "");
}

std::string CompletionFormat::stream(size_t i, Choice& c, const PromptLogprobs& prompt_logprobs) {
  std::string out;
  if (!echo_sent_[i]) {
    // The echoed prompt goes first, with its logprobs once they are all in (nothing
    // predicts the first token).
    const size_t p = i / opts_.sampling.params.n;
    if (opts_.wants_prompt_logprobs() && prompt_logprobs.size() + 1 < opts_.prompts[p].size()) {
      return out;
    }
    size_t offset = 0;
    out += chunk(i, json::object({{"text", opts_.echo_prefixes[p]}}),
                 completion_prompt_logprobs(tok_, opts_.prompts[p], prompt_logprobs, offset), "");
    echo_sent_[i] = true;
  }
  if (auto news = take_news(c, c.out.text().size(), false)) {
    out += chunk(i, json::object({{"text", news->text}}), std::move(news->logprobs),
                 news->finish_reason);
  }
  return out;
}

json CompletionFormat::answer_choice(size_t i, const Choice& c,
                                     const PromptLogprobs& prompt_logprobs) const {
  const size_t p = i / opts_.sampling.params.n;
  json choice = json::object({{"text", opts_.echo_prefixes[p] + c.out.text()},
                              {"logprobs", logprobs(c, 0, c.out.ids().size())}});
  if (opts_.wants_prompt_logprobs()) {
    // echo + logprobs: the prompt's tokens first, then the completion's, offsets running
    // on through both (as vLLM reports them).
    size_t offset = 0;
    json all = completion_prompt_logprobs(tok_, opts_.prompts[p], prompt_logprobs, offset);
    const json& gen = choice["logprobs"];
    for (const char* key : {"tokens", "token_logprobs", "top_logprobs"}) {
      for (const json& v : gen[key]) all[key].push_back(v);
    }
    for (const json& token : gen["tokens"]) {
      all["text_offset"].push_back(offset);
      offset += token.get<std::string>().size();
    }
    choice["logprobs"] = std::move(all);
  }
  return choice;
}

}  // namespace moon::server
