#include "server/chat_format.h"

#include <random>

namespace moon::server {
namespace {

using json = nlohmann::json;

// The calls in OpenAI's shape (streamed chunks also carry each call's index).
json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    // Nine letters and digits: the ids Mistral's templates insist on when the calls come back.
    std::string id(9, 'a');
    for (char& ch : id) ch = kAlnum[rng() % (sizeof(kAlnum) - 1)];
    json call = {{"id", id},
                 {"type", "function"},
                 {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (with_index) call["index"] = i;
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

ChatFormat::ChatFormat(const JobOptions& opts, const Tokenizer& tok, uint64_t serial)
    : OpenAiFormat(opts, tok, serial,
                   {"chatcmpl", "chat.completion", "chat.completion.chunk", &chat_logprobs}),
      replies_(opts.prompts.size() * opts.sampling.params.n) {}

std::string ChatFormat::on_finish(size_t i, const Choice& c, std::string reason) {
  if (!opts_.tool_format) return reason;
  ParsedOutput parsed = parse_tool_calls(c.out.text(), *opts_.tool_format, opts_.tool_names);
  replies_[i].calls = std::move(parsed.calls);
  replies_[i].content = std::move(parsed.content);
  if (!replies_[i].calls.empty() && reason == "stop") reason = "tool_calls";
  return reason;
}

std::string ChatFormat::stream(size_t i, Choice& c, const PromptLogprobs&) {
  Reply& r = replies_[i];
  size_t end = c.out.text().size();
  json calls = nullptr;
  if (opts_.tool_format) {
    // Text that may still be a call waits; once the answer is read, calls go out whole
    // and what is text flushes.
    if (!c.finished) {
      end = streamable_prefix(c.out.text(), *opts_.tool_format);
    } else if (!r.calls.empty()) {
      end = c.sent;
      if (!c.finish_sent) calls = tool_calls_json(r.calls, true);
    }
  }
  const bool with_role = !r.role_sent;
  auto news = take_news(c, end, with_role);
  if (!news) return {};
  r.role_sent = true;
  json delta = json::object();
  if (with_role) delta["role"] = "assistant";
  if (!news->text.empty() || with_role) delta["content"] = news->text;
  if (!calls.is_null()) delta["tool_calls"] = std::move(calls);
  return chunk(i, json::object({{"delta", delta}}), std::move(news->logprobs), news->finish_reason);
}

json ChatFormat::answer_choice(size_t i, const Choice& c, const PromptLogprobs&) const {
  const Reply& r = replies_[i];
  json message = {{"role", "assistant"}, {"content", c.out.text()}};
  if (!r.calls.empty()) {
    message["content"] = r.content.empty() ? json(nullptr) : json(r.content);
    message["tool_calls"] = tool_calls_json(r.calls, false);
  }
  return json::object({{"message", message}, {"logprobs", logprobs(c, 0, c.out.ids().size())}});
}

}  // namespace moon::server
