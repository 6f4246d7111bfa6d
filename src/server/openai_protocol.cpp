#include "server/openai_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include "sampling/greedy_pass.h"

namespace moon::server {
namespace {

using json = nlohmann::json;

// Reads optional fields of one JSON object, remembering the first type or range error.
// `null` counts as absent, as in OpenAI's API.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}
  const std::optional<ApiError>& error() const { return error_; }

  const json* get(const char* name) const {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void fail(std::string message, const char* param) {
    if (!error_) error_ = invalid_request(std::move(message), param);
  }
  void boolean(const char* name, bool& out) {
    if (const json* v = get(name)) {
      if (!v->is_boolean()) return fail(fmt::format("'{}' must be a boolean", name), name);
      out = v->get<bool>();
    }
  }
  void string(const char* name, std::string& out) {
    if (const json* v = get(name)) {
      if (!v->is_string()) return fail(fmt::format("'{}' must be a string", name), name);
      out = v->get<std::string>();
    }
  }
  // A finite number in [lo, hi].
  void number(const char* name, float& out, double lo, double hi) {
    if (const json* v = get(name)) {
      if (!v->is_number()) return fail(fmt::format("'{}' must be a number", name), name);
      const double d = v->get<double>();
      if (!std::isfinite(d) || d < lo || d > hi) {
        return fail(fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, d), name);
      }
      out = static_cast<float>(d);
    }
  }
  bool integer(const char* name, int64_t& out, int64_t lo, int64_t hi) {
    if (const json* v = get(name)) {
      if (!v->is_number_integer()) {
        fail(fmt::format("'{}' must be an integer", name), name);
        return false;
      }
      const int64_t i =
          v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX : v->get<int64_t>();
      if (i < lo || i > hi) {
        fail(fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, i), name);
        return false;
      }
      out = i;
      return true;
    }
    return false;
  }
  void integer(const char* name, int& out, int64_t lo, int64_t hi) {
    int64_t v = out;
    if (integer(name, v, lo, hi)) out = static_cast<int>(v);
  }

 private:
  const json& obj_;
  std::optional<ApiError> error_;
};

void parse_sampling(Fields& f, RequestSampling& request, const char* max_tokens_name) {
  SamplingParams& s = request.params;
  f.integer("n", s.n, 1, kMaxN);
  f.number("temperature", s.temperature, 0.0, 100.0);
  f.number("top_p", s.top_p, 0.0, 1.0);
  if (f.get("top_p") && s.top_p <= 0.0f) f.fail("'top_p' must be in (0, 1]", "top_p");
  f.integer("top_k", s.top_k, -1, 1 << 20);
  f.number("min_p", s.min_p, 0.0, 1.0);
  f.number("presence_penalty", s.presence_penalty, -2.0, 2.0);
  f.number("frequency_penalty", s.frequency_penalty, -2.0, 2.0);
  f.number("repetition_penalty", s.repetition_penalty, 0.0, 100.0);
  if (f.get("repetition_penalty") && s.repetition_penalty <= 0.0f) {
    f.fail("'repetition_penalty' must be > 0", "repetition_penalty");
  }
  f.number("length_penalty", s.length_penalty, -10.0, 10.0);
  f.boolean("use_beam_search", s.use_beam_search);
  f.boolean("ignore_eos", s.ignore_eos);
  f.boolean("include_stop_str_in_output", s.include_stop_str_in_output);
  f.integer("min_tokens", s.min_tokens, 0, 1 << 24);
  int64_t seed = 0;
  if (f.integer("seed", seed, INT64_MIN, INT64_MAX)) s.seed = static_cast<uint64_t>(seed);
  int64_t max_tokens = 0;
  if (f.integer("max_tokens", max_tokens, 1, INT64_MAX)) request.max_tokens = max_tokens;
  // OpenAI's chat API renamed max_tokens to max_completion_tokens and deprecated the old
  // name; when both are sent the new one wins, as in vLLM. Read last, so it overwrites.
  if (std::string_view(max_tokens_name) != "max_tokens" &&
      f.integer(max_tokens_name, max_tokens, 1, INT64_MAX)) {
    request.max_tokens = max_tokens;
  }
  if (request.max_tokens && s.min_tokens > *request.max_tokens) {
    f.fail("'min_tokens' must not exceed 'max_tokens'", "min_tokens");
  }
  if (const json* stop = f.get("stop")) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= kMaxStopStrings) {
      for (const json& e : *stop) {
        if (!e.is_string()) return f.fail("'stop' must be a string or a list of strings", "stop");
        s.stop.push_back(e.get<std::string>());
      }
    } else {
      return f.fail(
          fmt::format("'stop' must be a string or a list of at most {} strings", kMaxStopStrings),
          "stop");
    }
    for (const std::string& str : s.stop) {
      if (str.empty()) return f.fail("'stop' strings must not be empty", "stop");
      if (str.size() > kMaxStopStringBytes) {
        return f.fail(fmt::format("'stop' strings may be at most {} bytes", kMaxStopStringBytes),
                      "stop");
      }
    }
  }
  if (const json* ids = f.get("stop_token_ids")) {
    if (!ids->is_array())
      return f.fail("'stop_token_ids' must be a list of integers", "stop_token_ids");
    if (ids->size() > kMaxStopTokenIds) {
      return f.fail(fmt::format("'stop_token_ids' may hold at most {} ids", kMaxStopTokenIds),
                    "stop_token_ids");
    }
    for (const json& e : *ids) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX) {
        return f.fail("'stop_token_ids' must be a list of token ids", "stop_token_ids");
      }
      s.stop_token_ids.push_back(e.get<int32_t>());
    }
  }
  if (const json* bias = f.get("logit_bias")) {
    if (!bias->is_object()) return f.fail("'logit_bias' must be an object", "logit_bias");
    if (bias->size() > kMaxLogitBias) {
      return f.fail(fmt::format("'logit_bias' may hold at most {} tokens", kMaxLogitBias),
                    "logit_bias");
    }
    for (const auto& [key, value] : bias->items()) {
      char* end = nullptr;
      const long token = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || token < 0 || token > INT32_MAX) {
        return f.fail(fmt::format("'logit_bias' key '{}' is not a token id", key), "logit_bias");
      }
      if (!value.is_number() || !std::isfinite(value.get<double>()) ||
          std::fabs(value.get<double>()) > 100.0) {
        return f.fail("'logit_bias' values must be numbers in [-100, 100]", "logit_bias");
      }
      s.logit_bias.emplace_back(static_cast<int32_t>(token), value.get<float>());
    }
  }
  if (s.use_beam_search && 2 * s.n > kMaxTopLogprobs) {
    f.fail(fmt::format("beam search takes at most {} beams ('n')", kMaxTopLogprobs / 2), "n");
  }
  if (s.use_beam_search && !s.stop.empty()) {
    f.fail("'stop' strings are not supported with beam search", "stop");
  }
}

void parse_stream_options(Fields& f, bool stream, bool& include_usage) {
  if (const json* opts = f.get("stream_options")) {
    if (!opts->is_object()) return f.fail("'stream_options' must be an object", "stream_options");
    if (!stream) return f.fail("'stream_options' is only allowed with stream", "stream_options");
    Fields o(*opts);
    o.boolean("include_usage", include_usage);
    if (o.error()) f.fail(o.error()->message, "stream_options");
  }
}

bool is_token_list(const json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const json& e : v) {
    if (!e.is_number_integer()) return false;
  }
  return true;
}

// A message's content as the chat template sees it. A list of parts (OpenAI's shape) becomes
// its text parts joined with "\n", as vLLM joins them for templates that take a string; any
// other part (image_url, input_audio, ...) is refused by name: this server reads text only.
std::optional<ApiError> flatten_content(json& content) {
  if (!content.is_array()) return std::nullopt;
  std::string text;
  bool first = true;
  for (const json& part : content) {
    const json* type = part.is_object() && part.contains("type") ? &part["type"] : nullptr;
    if (!type || !type->is_string()) {
      return invalid_request(
          "each part of a message's 'content' must be an object with a "
          "string 'type'",
          "messages");
    }
    const std::string& kind = type->get_ref<const std::string&>();
    // "input_text" is the Responses API's name for a text part; "refusal" is an assistant's.
    const char* field = kind == "text" || kind == "input_text" ? "text"
                        : kind == "refusal"                    ? "refusal"
                                                               : nullptr;
    if (!field) {
      return invalid_request(
          fmt::format("content parts of type '{}' are not supported: this model reads text only",
                      kind),
          "messages");
    }
    auto value = part.find(field);
    if (value == part.end() || !value->is_string()) {
      return invalid_request(
          fmt::format("a content part of type '{}' needs a string '{}'", kind, field), "messages");
    }
    if (!first) text += '\n';
    text += value->get_ref<const std::string&>();
    first = false;
  }
  content = std::move(text);
  return std::nullopt;
}

// obj[key] is the string `want` (json::value would throw on another type: found by fuzzing).
bool has_string(const json& obj, const char* key, std::string_view want) {
  if (!obj.is_object()) return false;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() && it->get_ref<const std::string&>() == want;
}

bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::optional<ApiError> parse_tools(Fields& f, ChatRequest& out) {
  if (const json* tools = f.get("tools")) {
    if (!tools->is_array()) return invalid_request("'tools' must be a list", "tools");
    for (const json& t : *tools) {
      if (!has_string(t, "type", "function") || !t.contains("function") ||
          !t["function"].is_object()) {
        return invalid_request(
            "each of 'tools' must be {\"type\": \"function\", \"function\": {...}}", "tools");
      }
      const json& fn = t["function"];
      if (!fn.contains("name") || !fn["name"].is_string() ||
          !valid_function_name(fn["name"].get<std::string>())) {
        return invalid_request(
            "each tool's 'function.name' must be 1 to 64 letters, digits, '_' or '-'", "tools");
      }
      if (fn.contains("parameters") && !fn["parameters"].is_null() &&
          !fn["parameters"].is_object()) {
        return invalid_request("a tool's 'function.parameters' must be a JSON schema object",
                               "tools");
      }
    }
    out.tools = *tools;
  }
  if (const json* choice = f.get("tool_choice")) {
    if (choice->is_string()) {
      out.tool_choice = choice->get<std::string>();
      if (out.tool_choice != "auto" && out.tool_choice != "none" && out.tool_choice != "required") {
        return invalid_request(
            "'tool_choice' must be \"none\", \"auto\", \"required\" or a function", "tool_choice");
      }
    } else if (has_string(*choice, "type", "function") && choice->contains("function") &&
               (*choice)["function"].is_object() && (*choice)["function"].contains("name") &&
               (*choice)["function"]["name"].is_string()) {
      out.tool_choice = (*choice)["function"]["name"].get<std::string>();
      out.tool_choice_named = true;
      const bool known = std::any_of(out.tools.begin(), out.tools.end(), [&](const json& t) {
        return t["function"]["name"] == out.tool_choice;
      });
      if (!known) {
        return invalid_request(
            fmt::format("'tool_choice' names '{}', which is not in 'tools'", out.tool_choice),
            "tool_choice");
      }
    } else {
      return invalid_request(
          "'tool_choice' must be \"none\", \"auto\", \"required\" or "
          "{\"type\": \"function\", \"function\": {\"name\": ...}}",
          "tool_choice");
    }
    if (out.tools.empty() && out.tool_choice != "none" && out.tool_choice != "auto") {
      return invalid_request("'tool_choice' asks for a call but 'tools' is empty", "tool_choice");
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion_request(const json& body, CompletionRequest& out) {
  if (!body.is_object()) return invalid_request("the request body must be a JSON object");
  Fields f(body);
  f.string("model", out.model);
  const json* prompt = f.get("prompt");
  if (!prompt) return invalid_request("'prompt' is required", "prompt");
  auto bad_prompt = [] {
    return invalid_request(
        "'prompt' must be a string, a list of strings, a list of token ids or a list of lists "
        "of token ids",
        "prompt");
  };
  if (prompt->is_string()) {
    out.prompts.push_back({true, prompt->get<std::string>(), {}});
  } else if (is_token_list(*prompt)) {
    out.prompts.push_back({false, {}, prompt->get<std::vector<int64_t>>()});
  } else if (prompt->is_array() && !prompt->empty()) {
    if (prompt->size() > kMaxPrompts) {
      return invalid_request(fmt::format("at most {} prompts per request", kMaxPrompts), "prompt");
    }
    for (const json& p : *prompt) {
      if (p.is_string()) {
        out.prompts.push_back({true, p.get<std::string>(), {}});
      } else if (is_token_list(p)) {
        out.prompts.push_back({false, {}, p.get<std::vector<int64_t>>()});
      } else {
        return bad_prompt();
      }
    }
  } else {
    return bad_prompt();
  }
  parse_sampling(f, out.sampling, "max_tokens");
  if (!f.get("max_tokens") && !f.error()) out.sampling.max_tokens = 16;  // OpenAI's default
  f.integer("logprobs", out.logprobs, 0, kMaxLogprobs);
  f.boolean("echo", out.echo);
  f.boolean("stream", out.stream);
  f.boolean("return_token_ids", out.return_token_ids);
  parse_stream_options(f, out.stream, out.include_usage);
  int best_of = out.sampling.params.n;
  f.integer("best_of", best_of, 1, kMaxN);
  if (!f.error() && best_of != out.sampling.params.n) {
    f.fail("'best_of' other than 'n' is not supported", "best_of");
  }
  if (f.error()) return f.error();
  // echo with logprobs also reports the prompt's tokens, as OpenAI's legacy API does.
  if (out.echo && out.logprobs >= 0) out.sampling.params.prompt_logprobs = out.logprobs;
  return std::nullopt;
}

std::optional<ApiError> parse_chat_request(const json& body, ChatRequest& out) {
  if (!body.is_object()) return invalid_request("the request body must be a JSON object");
  Fields f(body);
  f.string("model", out.model);
  const json* messages = f.get("messages");
  if (!messages || !messages->is_array() || messages->empty()) {
    return invalid_request("'messages' must be a non-empty list", "messages");
  }
  out.messages = *messages;
  for (json& m : out.messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return invalid_request("each message must be an object with a string 'role'", "messages");
    }
    // null stays allowed: an assistant turn that only calls tools has no content.
    auto content = m.find("content");
    if (content != m.end() && !content->is_string() && !content->is_array() &&
        !content->is_null()) {
      return invalid_request("message 'content' must be a string or a list of parts", "messages");
    }
    if (content != m.end()) {
      if (auto err = flatten_content(*content)) return err;
    }
  }
  parse_sampling(f, out.sampling, "max_completion_tokens");
  f.boolean("logprobs", out.logprobs);
  f.integer("top_logprobs", out.top_logprobs, 0, kMaxLogprobs);
  f.boolean("stream", out.stream);
  f.boolean("continue_final_message", out.continue_final_message);
  if (out.continue_final_message) {
    // vLLM refuses both; left out, add_generation_prompt gives way.
    if (f.get("add_generation_prompt") && f.get("add_generation_prompt")->is_boolean() &&
        f.get("add_generation_prompt")->get<bool>()) {
      f.fail("'continue_final_message' and 'add_generation_prompt' cannot both be true",
             "continue_final_message");
    }
    out.add_generation_prompt = false;
    if (!has_string(out.messages.back(), "role", "assistant")) {
      f.fail("'continue_final_message' needs the last message to be the assistant's",
             "continue_final_message");
    }
  }
  f.boolean("add_generation_prompt", out.add_generation_prompt);
  f.boolean("return_token_ids", out.return_token_ids);
  parse_stream_options(f, out.stream, out.include_usage);
  if (const json* kw = f.get("chat_template_kwargs")) {
    if (!kw->is_object()) {
      f.fail("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    } else {
      out.chat_template_kwargs = *kw;
    }
  }
  f.boolean("parallel_tool_calls", out.parallel_tool_calls);
  if (f.error()) return f.error();
  if (auto err = parse_tools(f, out)) return err;
  if (out.top_logprobs > 0 && !out.logprobs) {
    return invalid_request("'top_logprobs' requires 'logprobs': true", "top_logprobs");
  }
  return std::nullopt;
}

std::optional<ApiError> check_against_model(RequestSampling& request, int64_t prompt_len,
                                            int64_t vocab_size, int64_t max_model_len) {
  SamplingParams& s = request.params;
  for (int32_t id : s.stop_token_ids) {
    if (id >= vocab_size) {
      return invalid_request(
          fmt::format("stop_token_ids: token {} is outside the vocabulary of {}", id, vocab_size),
          "stop_token_ids");
    }
  }
  for (const auto& [id, bias] : s.logit_bias) {
    if (id >= vocab_size) {
      return invalid_request(
          fmt::format("logit_bias: token {} is outside the vocabulary of {}", id, vocab_size),
          "logit_bias");
    }
  }
  if (prompt_len >= max_model_len) {
    return invalid_request(
        fmt::format("This model's maximum context length is {} tokens, but the prompt has {} "
                    "tokens; at least one token must be left for the completion.",
                    max_model_len, prompt_len),
        "prompt");
  }
  const int64_t max_tokens = request.max_tokens.value_or(max_model_len - prompt_len);
  if (prompt_len + max_tokens > max_model_len) {
    return invalid_request(
        fmt::format("This model's maximum context length is {} tokens. However, you requested "
                    "{} tokens ({} in the prompt, {} for the completion). Please reduce the "
                    "prompt or max_tokens.",
                    max_model_len, prompt_len + max_tokens, prompt_len, max_tokens),
        "max_tokens");
  }
  s.max_tokens = static_cast<int>(std::min<int64_t>(max_tokens, INT32_MAX));
  // Anything the field checks above let through (they mirror these ranges).
  if (Status valid = s.validate(vocab_size); !valid.ok()) {
    return invalid_request(valid.error().message);
  }
  return std::nullopt;
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(c);
  return b;
}

// The top logprobs recorded for generated token i (none when they were not asked for).
std::span<const TokenLogprob> top_of(const SequenceOutput& out, size_t i) {
  return i < out.top_logprobs().size() ? std::span<const TokenLogprob>(out.top_logprobs()[i])
                                       : std::span<const TokenLogprob>();
}

}  // namespace

json chat_logprobs(const Tokenizer& tok, const SequenceOutput& out, size_t from, size_t to) {
  json content = json::array();
  for (size_t i = from; i < to; ++i) {
    const std::string piece = tok.token_to_piece(out.ids()[i]);
    json entry = {{"token", piece}, {"logprob", out.logprobs()[i]}, {"bytes", bytes_of(piece)}};
    entry["top_logprobs"] = json::array();
    for (const TokenLogprob& t : top_of(out, i)) {
      const std::string top_piece = tok.token_to_piece(t.id);
      entry["top_logprobs"].push_back(
          {{"token", top_piece}, {"logprob", t.logprob}, {"bytes", bytes_of(top_piece)}});
    }
    content.push_back(std::move(entry));
  }
  return {{"content", content}};
}

json completion_logprobs(const Tokenizer& tok, const SequenceOutput& out, size_t from, size_t to) {
  // Completions: per token a map from text to logprob of the k most likely tokens and,
  // always, the chosen one (so up to k + 1 entries, as OpenAI documents).
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = from; i < to; ++i) {
    const std::string piece = tok.token_to_piece(out.ids()[i]);
    tokens.push_back(piece);
    lps.push_back(out.logprobs()[i]);
    json top = json::object();
    for (const TokenLogprob& t : top_of(out, i)) top[tok.token_to_piece(t.id)] = t.logprob;
    top[piece] = out.logprobs()[i];
    tops.push_back(std::move(top));
    offsets.push_back(out.offsets()[i]);
  }
  return {{"tokens", tokens},
          {"token_logprobs", lps},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

json completion_prompt_logprobs(const Tokenizer& tok, std::span<const TokenId> ids,
                                std::span<const PromptLogprob> lps, size_t& offset) {
  json tokens = json::array(), lp = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = tok.token_to_piece(ids[i]);
    tokens.push_back(piece);
    offsets.push_back(offset);
    offset += piece.size();
    if (i == 0 || i - 1 >= lps.size()) {  // nothing predicts the first token
      lp.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    const PromptLogprob& e = lps[i - 1];
    lp.push_back(e.token.logprob);
    json top = json::object();
    for (const TokenLogprob& t : e.top) top[tok.token_to_piece(t.id)] = t.logprob;
    top[piece] = e.token.logprob;
    tops.push_back(std::move(top));
  }
  return {
      {"tokens", tokens}, {"token_logprobs", lp}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace moon::server
