#include "server/tgi_protocol.h"

#include <cctype>
#include <string_view>
#include <utility>

namespace moon::server {

using json = nlohmann::json;

std::optional<ApiError> parse_tgi_request(const json& body, TgiRequest& out) {
  if (!body.is_object()) return invalid_request("the request body must be a JSON object");
  auto inputs = body.find("inputs");
  if (inputs == body.end() || !inputs->is_string()) {
    return invalid_request("'inputs' must be a string", "inputs");
  }
  if (auto stream = body.find("stream"); stream != body.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return invalid_request("'stream' must be a boolean", "stream");
    out.stream = stream->get<bool>();
  }
  json params = json::object();
  if (auto p = body.find("parameters"); p != body.end() && !p->is_null()) {
    if (!p->is_object()) return invalid_request("'parameters' must be an object", "parameters");
    params = *p;
  }
  json mapped = {{"prompt", *inputs}, {"max_tokens", 100}};  // TGI's default max_new_tokens
  bool do_sample = false;
  for (const auto& [key, value] : params.items()) {
    if (value.is_null()) continue;
    if (key == "max_new_tokens") {
      mapped["max_tokens"] = value;
    } else if (key == "temperature" || key == "top_p" || key == "top_k" || key == "seed" ||
               key == "stop" || key == "repetition_penalty") {
      mapped[key] = value;
      if (key == "temperature" || key == "top_p" || key == "top_k") do_sample = true;
      if (key == "temperature" && value.is_number() && value.get<double>() <= 0.0) {
        return invalid_request("'temperature' must be strictly positive", "temperature");
      }
    } else if (key == "top_n_tokens") {
      mapped["logprobs"] = value;  // checked by the completion parser, [0, 20]
    } else if (key == "best_of") {
      // /info announces max_best_of 1: one sequence per request.
      if (!value.is_number_integer() || value.get<int64_t>() != 1) {
        return invalid_request("'best_of' must be 1 (max_best_of in /info)", key);
      }
    } else if (key == "do_sample") {
      if (!value.is_boolean()) return invalid_request("'do_sample' must be a boolean", key);
      do_sample = do_sample || value.get<bool>();
    } else if (key == "details" || key == "return_full_text" || key == "decoder_input_details") {
      if (!value.is_boolean()) return invalid_request("'" + key + "' must be a boolean", key);
      if (key == "details") out.details = value.get<bool>();
      if (key == "return_full_text") out.return_full_text = value.get<bool>();
      if (key == "decoder_input_details") out.decoder_input_details = value.get<bool>();
    }
    // Other TGI parameters (watermark, truncate, typical_p, ...) are accepted and ignored.
  }
  // TGI is greedy unless asked to sample.
  if (!do_sample) mapped["temperature"] = 0;
  if (!mapped.contains("temperature")) mapped["temperature"] = 1.0;
  if (auto err = parse_completion_request(mapped, out.completion)) return err;
  if (out.decoder_input_details) out.completion.sampling.params.prompt_logprobs = 0;
  return std::nullopt;
}

int tgi_error_status(const ApiError& error) {
  return error.status == 400 ? 422 : error.status;
}

namespace {

// `text` with every whole-word `from` (not part of a longer identifier) replaced by `to`.
std::string replace_word(std::string text, std::string_view from, std::string_view to) {
  auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    const size_t end = at + from.size();
    if ((at > 0 && ident(text[at - 1])) || (end < text.size() && ident(text[end]))) {
      at = end;
      continue;
    }
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

}  // namespace

json tgi_error_body(const ApiError& error) {
  // The checks are the completion API's (parse_tgi_request); name the field as a TGI client
  // sent it.
  std::string message = error.message;
  for (const auto& [ours, theirs] :
       {std::pair{"max_tokens", "max_new_tokens"}, std::pair{"logprobs", "top_n_tokens"}}) {
    if (error.param == ours) message = replace_word(std::move(message), ours, theirs);
  }
  const char* type = error.status == 400                                 ? "validation"
                     : error.code == "overloaded" || error.status == 503 ? "overloaded"
                                                                         : nullptr;
  return {{"error", message}, {"error_type", type ? json(type) : json(error.type)}};
}

const char* tgi_finish_reason(const std::string& reason, bool stopped_by_string) {
  if (reason == "length") return "length";
  if (stopped_by_string) return "stop_sequence";
  return reason == "stop" ? "eos_token" : "length";
}

json tgi_token(const Tokenizer& tok, TokenId id, float logprob, const std::string& text) {
  return {{"id", id}, {"text", text}, {"logprob", logprob}, {"special", tok.is_special(id)}};
}

json tgi_top_tokens(const Tokenizer& tok, const SequenceOutput& out, size_t i) {
  json top = json::array();
  if (i >= out.top_logprobs().size()) return top;
  for (const TokenLogprob& t : out.top_logprobs()[i]) {
    top.push_back(tgi_token(tok, t.id, t.logprob, tok.token_to_piece(t.id)));
  }
  return top;
}

json tgi_prefill(const Tokenizer& tok, std::span<const TokenId> prompt,
                 std::span<const PromptLogprob> logprobs) {
  json prefill = json::array();
  for (size_t i = 0; i < prompt.size(); ++i) {
    prefill.push_back(
        {{"id", prompt[i]},
         {"text", tok.token_to_piece(prompt[i])},
         {"logprob",
          i > 0 && i - 1 < logprobs.size() ? json(logprobs[i - 1].token.logprob) : json(nullptr)}});
  }
  return prefill;
}

json tgi_details(const Tokenizer& tok, const SequenceOutput& out, const std::string& finish_reason,
                 std::optional<uint64_t> seed, json prefill, bool top_tokens) {
  json tokens = json::array(), tops = json::array();
  for (size_t i = 0; i < out.ids().size(); ++i) {
    tokens.push_back(
        tgi_token(tok, out.ids()[i], out.logprobs()[i], tok.token_to_piece(out.ids()[i])));
    if (top_tokens) tops.push_back(tgi_top_tokens(tok, out, i));
  }
  json details = {{"finish_reason", tgi_finish_reason(finish_reason, out.stopped_by_string())},
                  {"generated_tokens", out.ids().size()},
                  {"seed", seed ? json(*seed) : json(nullptr)},
                  {"prefill", std::move(prefill)},
                  {"tokens", tokens}};
  if (top_tokens) details["top_tokens"] = std::move(tops);
  return details;
}

}  // namespace moon::server
