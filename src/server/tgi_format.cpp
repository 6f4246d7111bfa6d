#include "server/tgi_format.h"

#include <algorithm>

#include "server/router.h"
#include "server/sse.h"
#include "server/tgi_protocol.h"

namespace moon::server {

using json = nlohmann::json;

// TGI has no ids of its own; this one names the request in the log.
TgiFormat::TgiFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial)
    : AnswerFormat(opts, tok, "cmpl", serial) {}

HttpResponse TgiFormat::refusal(const ApiError& error) const {
  return error_response(error, ApiKind::kTgi);
}

json TgiFormat::details(const Choice& c, const PromptLogprobs& prompt_logprobs) const {
  const json prefill = opts_.wants_prompt_logprobs()
                           ? tgi_prefill(tok_, opts_.prompts[0], prompt_logprobs)
                           : json::array();
  return tgi_details(tok_, c.out, c.finish_reason, opts_.sampling.params.seed, prefill,
                     opts_.top_logprobs > 0);
}

// A TGI request has one prompt and one sequence: this is choice 0.
std::string TgiFormat::stream(size_t, Choice& c, const PromptLogprobs& prompt_logprobs) {
  const std::string& text = c.out.text();
  const std::vector<size_t>& offsets = c.out.offsets();
  const bool finishing = c.finished && !c.finish_sent;
  const size_t last = c.out.ids().size();
  // A finish without a new token still needs a final event; it repeats the last token.
  if (finishing && c.tokens_sent == last && last > 0) c.tokens_sent = last - 1;
  std::string out;
  for (size_t i = c.tokens_sent; i < last; ++i) {
    const bool final_event = finishing && i + 1 == last;
    // Each token carries its own text: up to where the next token's starts, or all that is
    // out for the newest one (text a stop string or a split character holds back goes
    // with the token that releases it).
    const size_t end = std::min(text.size(), i + 1 < last ? offsets[i + 1] : text.size());
    const std::string own = end > c.sent ? text.substr(c.sent, end - c.sent) : std::string();
    c.sent = std::max(c.sent, end);
    json event = {{"index", i + 1},
                  {"token", tgi_token(tok_, c.out.ids()[i], c.out.logprobs()[i], own)},
                  {"generated_text", nullptr},
                  {"details", nullptr}};
    if (opts_.top_logprobs > 0) event["top_tokens"] = tgi_top_tokens(tok_, c.out, i);
    if (final_event) {
      event["generated_text"] = opts_.echo_prefixes[0] + c.out.text();
      json final_details = details(c, prompt_logprobs);
      final_details.erase("tokens");
      final_details.erase("prefill");
      final_details.erase("top_tokens");
      event["details"] = final_details;
    }
    out += sse_event(event);
  }
  c.tokens_sent = last;
  c.finish_sent = c.finish_sent || finishing;
  return out;
}

std::string TgiFormat::stream_end(const json&) const {
  return {};  // the last token's event carried the text and details
}

json TgiFormat::answer(std::span<const Choice> choices,
                       std::span<const PromptLogprobs> prompt_logprobs, const json&) const {
  json body = {{"generated_text", opts_.echo_prefixes[0] + choices[0].out.text()}};
  if (opts_.tgi_details) body["details"] = details(choices[0], prompt_logprobs[0]);
  return body;
}

}  // namespace moon::server
