#include "server/openai_format.h"

#include <algorithm>

#include "server/router.h"
#include "server/sse.h"

namespace moon::server {

using json = nlohmann::json;

OpenAiFormat::OpenAiFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial, Api api)
    : AnswerFormat(opts, tok, api.id_prefix, serial), api_(api) {}

HttpResponse OpenAiFormat::refusal(const ApiError& error) const {
  return error_response(error);
}

json OpenAiFormat::envelope(const char* object, json choices) const {
  return {{"id", id_},
          {"object", object},
          {"created", created_},
          {"model", opts_.model},
          {"choices", std::move(choices)}};
}

json OpenAiFormat::logprobs(const Choice& c, size_t from, size_t to) const {
  if (!opts_.logprobs) return nullptr;
  return api_.logprobs(tok_, c.out, from, to);
}

std::optional<OpenAiFormat::News> OpenAiFormat::take_news(Choice& c, size_t end, bool force) const {
  const size_t token_end = c.out.ids().size();
  const bool has_text = end > c.sent;
  const bool has_logprobs = opts_.logprobs && token_end > c.tokens_sent;
  const bool finishing = c.finished && !c.finish_sent;
  if (!has_text && !has_logprobs && !finishing && !force) return std::nullopt;
  News news{has_text ? c.out.text().substr(c.sent, end - c.sent) : std::string(),
            logprobs(c, c.tokens_sent, token_end), finishing ? c.finish_reason : std::string()};
  c.sent = std::max(c.sent, end);
  c.tokens_sent = token_end;
  c.finish_sent = c.finish_sent || finishing;
  return news;
}

std::string OpenAiFormat::chunk(size_t i, json fields, json logprobs,
                                const std::string& finish_reason) const {
  fields["index"] = i;
  fields["logprobs"] = std::move(logprobs);
  fields["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  return sse_event(envelope(api_.chunk_object, json::array({fields})));
}

std::string OpenAiFormat::stream_end(const json& usage) const {
  std::string out;
  if (opts_.include_usage) {
    json last = envelope(api_.chunk_object, json::array());
    last["usage"] = usage;
    out += sse_event(last);
  }
  out += sse_done();
  return out;
}

json OpenAiFormat::answer(std::span<const Choice> choices,
                          std::span<const PromptLogprobs> prompt_logprobs,
                          const json& usage) const {
  json all = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const Choice& c = choices[i];
    const size_t p = i / opts_.sampling.params.n;
    json choice = answer_choice(i, c, prompt_logprobs[p]);
    choice["index"] = i;
    choice["finish_reason"] = c.finish_reason;
    if (opts_.return_token_ids) {
      choice["prompt_token_ids"] = opts_.prompts[p];
      choice["token_ids"] = c.out.ids();
    }
    all.push_back(std::move(choice));
  }
  json body = envelope(api_.answer_object, std::move(all));
  body["usage"] = usage;
  return body;
}

}  // namespace moon::server
