#include "server/router.h"

#include <fmt/format.h>

#include "server/generation_job.h"
#include "server/json_body.h"
#include "server/request_gate.h"
#include "server/tgi_protocol.h"
#include "util/logging.h"
#include "util/version.h"

namespace moon::server {
namespace {

using json = nlohmann::json;
constexpr std::string_view kModelsPrefix = "/v1/models/";

// Which API's error shape a path answers in.
ApiKind api_of(std::string_view path) {
  const bool tgi = path == "/generate" || path == "/generate_stream" || path == "/";
  return tgi ? ApiKind::kTgi : ApiKind::kCompletion;
}

ApiError not_found(std::string_view path) {
  return ApiError{404, fmt::format("no route for {}", path), "not_found_error", {}, {}};
}

// Clients put a model id into the path as it is named (ids such as "org/model" keep their
// slash); some percent-encode it. A malformed escape stays as sent.
std::string percent_decoded(std::string_view s) {
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The messages as templates expect them: a tool call's arguments, which OpenAI sends as
// JSON text, become the object they hold (templates write them with `tojson` or iterate
// them), as vLLM does.
nlohmann::ordered_json template_messages(const json& messages) {
  nlohmann::ordered_json out = nlohmann::ordered_json::parse(messages.dump());
  for (auto& m : out) {
    auto calls = m.find("tool_calls");
    if (calls == m.end() || !calls->is_array()) continue;
    for (auto& call : *calls) {
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
        continue;
      auto& fn = call["function"];
      if (!fn.contains("arguments") || !fn["arguments"].is_string()) continue;
      try {
        auto parsed = nlohmann::ordered_json::parse(fn["arguments"].get<std::string>());
        if (parsed.is_object()) fn["arguments"] = std::move(parsed);
      } catch (const std::exception&) {
        // Not JSON: the template gets the text as sent.
      }
    }
  }
  return out;
}

}  // namespace

HttpResponse json_response(int status, const json& body) {
  return {
      status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

HttpResponse error_response(const ApiError& error, ApiKind kind) {
  HttpResponse r = kind == ApiKind::kTgi
                       ? json_response(tgi_error_status(error), tgi_error_body(error))
                       : json_response(error.status, error_body(error));
  if (error.status == 503) r.headers.emplace_back("Retry-After", "1");
  if (error.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Router::Router(ServerContext& ctx) : ctx_(ctx), grammars_(ctx.tokenizer), workers_(1) {
  ctx_.offload = [this](std::function<void()> fn) { boost::asio::post(workers_, std::move(fn)); };
}

Router::~Router() {
  finish_work();
}

void Router::finish_work() {
  // What is queued is dropped (a job's render holds the job, which then goes away with the
  // pool); what runs finishes. Later work runs inline.
  workers_.stop();
  workers_.join();
  ctx_.offload = [](std::function<void()> fn) { fn(); };
}

HttpResponse Router::failure_response(std::exception_ptr failure, ApiKind kind) {
  try {
    std::rethrow_exception(failure);
  } catch (const json::exception& e) {
    // A JSON type surprise that slipped past validation is still the client's request.
    spdlog::warn("request failed: {}", e.what());
    return error_response(invalid_request(e.what()), kind);
  } catch (const std::bad_alloc&) {
    spdlog::error("request failed: out of memory");
    return error_response(
        ApiError{500, "the server ran out of memory for this request", "server_error", {}, {}},
        kind);
  } catch (const std::exception& e) {
    spdlog::error("request failed: {}", e.what());
    return error_response(
        ApiError{500, fmt::format("internal error: {}", e.what()), "server_error", {}, {}}, kind);
  } catch (...) {
    spdlog::error("request failed with an unknown exception");
    return error_response(ApiError{500, "internal error", "server_error", {}, {}}, kind);
  }
}

void Router::handle(const std::shared_ptr<HttpConnection>& conn, HttpRequest request) {
  const auto target = request.target();
  const ApiKind kind = api_of(path_of(std::string_view(target.data(), target.size())));
  try {
    route(conn, request);
  } catch (...) {
    conn->respond(failure_response(std::current_exception(), kind));
  }
}

void Router::route(const std::shared_ptr<HttpConnection>& conn, const HttpRequest& request) {
  const auto target = request.target();
  const std::string_view path = path_of(std::string_view(target.data(), target.size()));
  const http::verb method = request.method();
  if (method == http::verb::options) return conn->respond(preflight(request));
  // HEAD is GET without the body (HttpConnection leaves it out); load balancers probe with it.
  const bool is_get = method == http::verb::get || method == http::verb::head;
  // The API key was checked with the header, before the body was read (request_gate.h).
  if (is_get) {
    if (path == "/health" || path == "/ping") {
      return conn->respond({200, "text/plain", "", {}});
    }
    if (path == "/version") {
      return conn->respond(json_response(200, {{"version", fmt::format("moon-{}", kVersion)}}));
    }
    if (path == "/v1/models") return conn->respond(models());
    if (path.starts_with(kModelsPrefix)) {
      return conn->respond(model(percent_decoded(path.substr(kModelsPrefix.size()))));
    }
    if (path == "/info") return conn->respond(tgi_info());
    if (path == "/metrics") {
      return conn->respond(
          {200, "text/plain; version=0.0.4", ctx_.metrics.render(ctx_.engine.snapshot()), {}});
    }
  }
  const bool known_post = path == "/v1/completions" || path == "/v1/chat/completions" ||
                          path == "/tokenize" || path == "/detokenize" ||
                          api_of(path) == ApiKind::kTgi;
  if (method != http::verb::post) {
    if (known_post) {
      return conn->respond(error_response(
          ApiError{405, fmt::format("{} takes POST", path), "invalid_request_error", {}, {}},
          api_of(path)));
    }
    return conn->respond(error_response(not_found(path)));
  }
  if (!known_post) return conn->respond(error_response(not_found(path)));
  // Parsing, validation, the chat template and tokenization can take seconds for a large
  // body: they run on the worker, so that /health and every stream go on meanwhile. What
  // touches the connection or the server's counts runs back here (launch).
  ++ctx_.active_requests;  // a shutdown waits for it too
  const ApiKind kind = api_of(path);
  ctx_.offload([this, weak = std::weak_ptr<HttpConnection>(conn), path = std::string(path),
                body = std::string(request.body()), kind] {
    Prepared prepared = [&]() -> Prepared {
      try {
        return prepare(path, body);
      } catch (...) {
        return failure_response(std::current_exception(), kind);
      }
    }();
    ctx_.events->post([this, weak, kind, prepared = std::move(prepared)]() mutable {
      --ctx_.active_requests;
      auto conn = weak.lock();
      if (!conn) return;  // the client left while its request was prepared
      try {
        launch(conn, std::move(prepared), kind);
      } catch (...) {
        conn->respond(failure_response(std::current_exception(), kind));
      }
    });
  });
}

void Router::launch(const std::shared_ptr<HttpConnection>& conn, Prepared prepared, ApiKind kind) {
  if (auto* response = std::get_if<HttpResponse>(&prepared)) return conn->respond(*response);
  JobOptions& opts = std::get<JobOptions>(prepared);
  if (auto err = check_capacity(opts.prompts.size())) {
    ctx_.metrics.request_rejected();
    return conn->respond(error_response(*err, kind));
  }
  auto job =
      std::make_shared<GenerationJob>(ctx_, conn, std::move(opts), GenerationJob::Clock::now());
  job->start();
}

Router::Prepared Router::prepare(const std::string& path, const std::string& raw) {
  auto parsed = parse_json_body(raw);
  if (auto* err = std::get_if<ApiError>(&parsed)) return error_response(*err, api_of(path));
  const json& body = std::get<json>(parsed);
  if (path == "/detokenize") return detokenize(body);
  // Schemas (response formats, tool parameters) are read again keeping key order: the
  // model writes properties, and the template shows tools, in the order the client wrote.
  std::optional<nlohmann::ordered_json> ordered;
  if (mentions_structured_output(body) || (body.is_object() && body.contains("tools"))) {
    auto o = parse_ordered_json_body(raw);  // the first parse succeeded
    if (auto* err = std::get_if<ApiError>(&o)) return error_response(*err, api_of(path));
    ordered = std::get<nlohmann::ordered_json>(std::move(o));
  }
  if (path == "/tokenize") return tokenize(body, ordered ? &*ordered : nullptr);
  auto grammar = requested_grammar(ordered ? &*ordered : nullptr, body, api_of(path));
  if (auto* err = std::get_if<ApiError>(&grammar)) return error_response(*err, api_of(path));
  GrammarPtr g = std::get<GrammarPtr>(std::move(grammar));
  if (path == "/v1/completions") return completions(body, std::move(g));
  if (path == "/v1/chat/completions") {
    return chat_completions(body, std::move(g), ordered ? &*ordered : nullptr);
  }
  if (path == "/generate") return tgi_generate(body, false, std::move(g));
  if (path == "/generate_stream") return tgi_generate(body, true, std::move(g));
  return tgi_generate(body, std::nullopt, std::move(g));
}

std::variant<Router::GrammarPtr, ApiError> Router::requested_grammar(
    const nlohmann::ordered_json* ordered, const json& body, ApiKind kind) {
  if (ordered == nullptr || !mentions_structured_output(body)) return GrammarPtr();
  const nlohmann::ordered_json& o = *ordered;
  std::optional<GrammarSpec> spec;
  std::optional<ApiError> err;
  if (kind == ApiKind::kTgi) {
    auto p = o.find("parameters");
    if (p != o.end() && p->is_object()) err = tgi_grammar_gbnf(*p, spec);
  } else {
    err = structured_output_gbnf(o, spec);
  }
  if (err) return *err;
  if (!spec) return GrammarPtr();
  if (auto b = body.find("use_beam_search"); b != body.end() && *b == true) {
    return invalid_request("structured output is not supported with beam search", spec->field);
  }
  auto compiled = grammars_.get(*spec);
  if (auto* e = std::get_if<ApiError>(&compiled)) return *e;
  return std::get<GrammarPtr>(std::move(compiled));
}

ApiError Router::model_not_found(const std::string& name) const {
  return ApiError{404,
                  fmt::format("The model '{}' does not exist; this server serves '{}'.", name,
                              ctx_.config.served_model_name),
                  "invalid_request_error", "model", "model_not_found"};
}

std::optional<ApiError> Router::check_model(const std::string& name) const {
  if (name.empty() || name == ctx_.config.served_model_name) return std::nullopt;
  return model_not_found(name);
}

HttpResponse Router::preflight(const HttpRequest& request) const {
  // Any path: a browser asks before a cross-origin POST with a JSON body or an API key.
  // Access-Control-Allow-Origin itself is added to every answer (HttpConnection).
  HttpResponse r{204, "", "", {{"Allow", "GET, HEAD, POST, OPTIONS"}}};
  if (request.count(http::field::access_control_request_method) > 0) {
    const auto origin = request[http::field::origin];
    const auto wanted = request[http::field::access_control_request_headers];
    for (auto& h :
         ctx_.config.cors.preflight_headers(std::string_view(origin.data(), origin.size()),
                                            std::string_view(wanted.data(), wanted.size()))) {
      r.headers.push_back(std::move(h));
    }
  }
  return r;
}

std::optional<ApiError> Router::check_num_sequences(size_t num_prompts, int n) const {
  const auto wanted = static_cast<int64_t>(num_prompts) * n;
  if (wanted <= ctx_.config.max_num_seqs) return std::nullopt;
  return invalid_request(fmt::format("this request asks for {} sequences ({} prompt(s) x n = {}), "
                                     "more than the {} a batch holds (--max-num-seqs)",
                                     wanted, num_prompts, n, ctx_.config.max_num_seqs),
                         "n");
}

std::optional<ApiError> Router::check_capacity(size_t num_prompts) const {
  if (ctx_.draining) {
    return ApiError{503, "the server is shutting down", "server_error", {}, {}};
  }
  if (ctx_.config.max_waiting <= 0) return std::nullopt;
  // Waiting: what the engine reports as queued, or, in a burst the engine has not seen yet,
  // the requests in flight beyond a full batch. (Counting every request the engine is not
  // yet running as waiting refused most of a burst while the batch had room.)
  const int64_t queued = ctx_.engine.snapshot().num_waiting;
  const int64_t waiting = std::max<int64_t>(
      queued, std::max<int64_t>(0, ctx_.inflight_prompts - ctx_.config.max_num_seqs));
  if (waiting + static_cast<int64_t>(num_prompts) > ctx_.config.max_waiting) {
    return ApiError{
        503,
        fmt::format("the server is overloaded ({} requests waiting); retry later", waiting),
        "server_error",
        {},
        "overloaded"};
  }
  return std::nullopt;
}

Router::Prepared Router::completions(const json& body, GrammarPtr grammar) const {
  CompletionRequest req;
  if (auto err = parse_completion_request(body, req)) return error_response(*err);
  req.sampling.params.grammar = std::move(grammar);
  if (auto err = check_model(req.model)) return error_response(*err);
  return start_completion(req, ApiKind::kCompletion, false);
}

Router::Prepared Router::tgi_generate(const json& body, std::optional<bool> stream,
                                      GrammarPtr grammar) const {
  TgiRequest req;
  if (auto err = parse_tgi_request(body, req)) {
    return error_response(*err, ApiKind::kTgi);
  }
  req.completion.sampling.params.grammar = std::move(grammar);
  req.completion.stream = stream.value_or(req.stream);
  req.completion.echo = req.return_full_text;
  // TGI always reports each token's logprob; top_n_tokens asks for the best alternatives.
  req.completion.logprobs = std::max(req.completion.logprobs, 0);
  return start_completion(req.completion, ApiKind::kTgi, req.details);
}

Router::Prepared Router::start_completion(const CompletionRequest& req, ApiKind kind,
                                          bool tgi_details) const {
  auto refuse = [&](const ApiError& error) { return Prepared(error_response(error, kind)); };
  if (auto err = check_num_sequences(req.prompts.size(), req.sampling.params.n)) {
    return refuse(*err);
  }
  const Tokenizer& tok = ctx_.tokenizer;
  JobOptions opts;
  opts.kind = kind;
  opts.model = ctx_.config.served_model_name;
  for (const PromptInput& p : req.prompts) {
    std::vector<TokenId> ids;
    if (p.is_text) {
      ids = tok.encode(p.text, /*add_special=*/true, /*parse_special=*/false);
      if (ids.empty()) {
        return refuse(invalid_request("the prompt is empty", "prompt"));
      }
    } else {
      for (int64_t id : p.ids) {
        if (id < 0 || id >= tok.vocab_size()) {
          return refuse(invalid_request(
              fmt::format("token id {} is outside the vocabulary of {}", id, tok.vocab_size()),
              "prompt"));
        }
        ids.push_back(static_cast<TokenId>(id));
      }
    }
    RequestSampling checked = req.sampling;
    if (auto err = check_against_model(checked, static_cast<int64_t>(ids.size()), tok.vocab_size(),
                                       ctx_.config.max_model_len)) {
      return refuse(*err);
    }
    // With max_tokens left out, each prompt gets the rest of the context; keep the smallest.
    if (opts.prompts.empty() || checked.params.max_tokens < opts.sampling.params.max_tokens) {
      opts.sampling = checked;
    }
    opts.echo_prefixes.push_back(!req.echo   ? std::string()
                                 : p.is_text ? p.text
                                             : tok.decode(ids, /*skip_special=*/false));
    opts.prompts.push_back(std::move(ids));
  }
  opts.stream = req.stream;
  opts.include_usage = req.include_usage;
  opts.return_token_ids = req.return_token_ids;
  opts.logprobs = req.logprobs >= 0;
  opts.top_logprobs = std::max(0, req.logprobs);
  opts.tgi_details = tgi_details;
  return opts;
}

Router::Prepared Router::chat_completions(const json& body, GrammarPtr grammar,
                                          const nlohmann::ordered_json* ordered) {
  ChatRequest req;
  if (auto err = parse_chat_request(body, req)) return error_response(*err);
  if (auto err = check_model(req.model)) return error_response(*err);
  if (auto err = check_num_sequences(1, req.sampling.params.n)) {
    return error_response(*err);
  }
  const Tokenizer& tok = ctx_.tokenizer;
  if (!ctx_.config.chat_template) return error_response(no_chat_template());
  const ChatTemplate& tmpl = *ctx_.config.chat_template;
  // Tools, in the order the client wrote them, as Hugging Face passes them to templates.
  const nlohmann::ordered_json tools = req.tools.empty() || ordered == nullptr
                                           ? nlohmann::ordered_json::array()
                                           : (*ordered)["tools"];
  const ToolCallFormat format = tool_call_format_of(tmpl.source());
  if (req.tool_choice == "required" || req.tool_choice_named) {
    if (grammar) {
      return error_response(invalid_request(
          "a tool_choice that forces a call cannot be combined with structured output",
          "tool_choice"));
    }
    auto gbnf = tool_call_gbnf(tools, req.tool_choice_named ? req.tool_choice : "",
                               req.parallel_tool_calls, format);
    if (!gbnf) return error_response(invalid_request(gbnf.error().message, "tools"));
    auto compiled = grammars_.get(GrammarSpec{*gbnf, "tools"});
    if (auto* e = std::get_if<ApiError>(&compiled)) return error_response(*e);
    grammar = std::get<GrammarPtr>(std::move(compiled));
  }
  req.sampling.params.grammar = std::move(grammar);
  auto prompt = chat_prompt(req, tools, /*add_special=*/false);
  if (auto* err = std::get_if<ApiError>(&prompt)) return error_response(*err);
  std::vector<TokenId> ids = std::get<std::vector<TokenId>>(std::move(prompt));
  JobOptions opts;
  opts.kind = ApiKind::kChat;
  opts.model = ctx_.config.served_model_name;
  opts.sampling = req.sampling;
  if (auto err = check_against_model(opts.sampling, static_cast<int64_t>(ids.size()),
                                     tok.vocab_size(), ctx_.config.max_model_len)) {
    return error_response(*err);
  }
  opts.prompts.push_back(std::move(ids));
  opts.echo_prefixes.emplace_back();
  opts.stream = req.stream;
  opts.include_usage = req.include_usage;
  opts.return_token_ids = req.return_token_ids;
  opts.logprobs = req.logprobs;
  opts.top_logprobs = req.top_logprobs;
  if (!req.tools.empty() && req.tool_choice != "none") {
    opts.tool_format = format;
    for (const json& t : req.tools)
      opts.tool_names.push_back(t["function"]["name"].get<std::string>());
  }
  return opts;
}

std::variant<std::vector<TokenId>, ApiError> Router::chat_prompt(
    const ChatRequest& req, const nlohmann::ordered_json& tools, bool add_special) const {
  const Tokenizer& tok = ctx_.tokenizer;
  const ChatTemplate& tmpl = *ctx_.config.chat_template;
  // Templates refer to the special tokens by name; the request may add its own variables.
  nlohmann::ordered_json vars = nlohmann::ordered_json::parse(req.chat_template_kwargs.dump());
  auto special = [&](TokenId id) {
    return id >= 0 ? std::string(tok.token_text(id)) : std::string();
  };
  if (!vars.contains("bos_token")) vars["bos_token"] = special(tok.bos_id());
  if (!vars.contains("eos_token")) vars["eos_token"] = special(tok.eos_id());
  if (!tools.empty() && !vars.contains("tools")) vars["tools"] = tools;
  auto text = tmpl.render_ordered(template_messages(req.messages), req.add_generation_prompt, vars);
  if (!text.ok()) {
    return invalid_request(
        fmt::format("the chat template failed on these messages: {}", text.error().message),
        "messages");
  }
  std::string rendered = std::move(*text);
  if (req.continue_final_message) {
    // The model goes on with the last (assistant) message: the render stops where that
    // message's text ends, before the template closes the turn, as transformers does.
    const json& last = req.messages.back();
    const std::string final_text = last.value("content", json("")).is_string()
                                       ? last["content"].get<std::string>()
                                       : std::string();
    const size_t at = final_text.empty() ? std::string::npos : rendered.rfind(final_text);
    if (at == std::string::npos) {
      return invalid_request(
          "continue_final_message: the template's render does not contain the final message's "
          "text",
          "continue_final_message");
    }
    rendered.resize(at + final_text.size());
  }
  // The rendered prompt already holds BOS and the turn markers as text.
  std::vector<TokenId> ids = tok.encode(rendered, add_special, /*parse_special=*/true);
  if (ids.empty()) return invalid_request("the chat prompt is empty", "messages");
  return ids;
}

ApiError Router::no_chat_template() {
  return invalid_request(
      "this model has no chat template (tokenizer.chat_template); start the server with "
      "--chat-template, or use /v1/completions");
}

HttpResponse Router::tokenize(const json& body, const nlohmann::ordered_json* ordered) {
  if (!body.is_object()) return error_response(invalid_request("the body must be an object"));
  if (body.contains("messages")) {
    // vLLM's chat form: the prompt a chat request with these messages would get.
    ChatRequest req;
    json chat = body;
    if (!chat.contains("add_special_tokens")) chat["add_special_tokens"] = false;
    if (auto err = parse_chat_request(chat, req)) return error_response(*err);
    if (auto err = check_model(req.model)) return error_response(*err);
    if (!ctx_.config.chat_template) return error_response(no_chat_template());
    if (!chat["add_special_tokens"].is_boolean()) {
      return error_response(
          invalid_request("'add_special_tokens' must be a boolean", "add_special_tokens"));
    }
    const nlohmann::ordered_json tools = req.tools.empty() || ordered == nullptr
                                             ? nlohmann::ordered_json::array()
                                             : (*ordered)["tools"];
    auto prompt = chat_prompt(req, tools, chat["add_special_tokens"].get<bool>());
    if (auto* err = std::get_if<ApiError>(&prompt)) return error_response(*err);
    const auto& ids = std::get<std::vector<TokenId>>(prompt);
    return json_response(
        200,
        {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx_.config.max_model_len}});
  }
  auto it = body.find("prompt");
  if (it == body.end() || !it->is_string()) {
    return error_response(invalid_request("'prompt' must be a string", "prompt"));
  }
  bool add_special = true;
  if (auto a = body.find("add_special_tokens"); a != body.end() && !a->is_null()) {
    if (!a->is_boolean()) {
      return error_response(
          invalid_request("'add_special_tokens' must be a boolean", "add_special_tokens"));
    }
    add_special = a->get<bool>();
  }
  if (auto m = body.find("model"); m != body.end() && m->is_string()) {
    if (auto err = check_model(m->get<std::string>())) return error_response(*err);
  }
  const auto ids = ctx_.tokenizer.encode(it->get<std::string>(), add_special, false);
  return json_response(
      200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx_.config.max_model_len}});
}

HttpResponse Router::detokenize(const json& body) {
  if (!body.is_object()) return error_response(invalid_request("the body must be an object"));
  auto it = body.find("tokens");
  if (it == body.end() || !it->is_array()) {
    return error_response(invalid_request("'tokens' must be a list of token ids", "tokens"));
  }
  std::vector<TokenId> ids;
  for (const json& e : *it) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
        e.get<int64_t>() >= ctx_.tokenizer.vocab_size()) {
      return error_response(invalid_request(
          fmt::format("'tokens' must hold ids in [0, {})", ctx_.tokenizer.vocab_size()), "tokens"));
    }
    ids.push_back(e.get<TokenId>());
  }
  return json_response(200, {{"prompt", ctx_.tokenizer.decode(ids, /*skip_special=*/false)}});
}

json Router::model_card() const {
  const std::string& name = ctx_.config.served_model_name;
  return {{"id", name},
          {"object", "model"},
          {"created", ctx_.created},
          {"owned_by", "moon"},
          {"root", name},
          {"parent", nullptr},
          {"max_model_len", ctx_.config.max_model_len}};
}

HttpResponse Router::tgi_info() const {
  const ServerConfig& c = ctx_.config;
  // TGI's Info; each limit is the one moon applies to a /generate request.
  return json_response(200, {{"model_id", c.served_model_name},
                             {"model_sha", nullptr},
                             {"model_pipeline_tag", "text-generation"},
                             {"max_concurrent_requests", c.max_num_seqs},  // run at once; more wait
                             {"max_best_of", 1},
                             {"max_stop_sequences", kMaxStopStrings},
                             {"max_input_tokens", std::max<int64_t>(0, c.max_model_len - 1)},
                             {"max_total_tokens", c.max_model_len},
                             {"validation_workers", 1},  // the I/O thread
                             {"max_client_batch_size", 1},
                             {"router", "moon"},
                             {"version", kVersion},
                             {"sha", nullptr},
                             {"docker_label", nullptr}});
}

HttpResponse Router::models() const {
  return json_response(200, {{"object", "list"}, {"data", json::array({model_card()})}});
}

HttpResponse Router::model(const std::string& id) const {
  if (id != ctx_.config.served_model_name) return error_response(model_not_found(id));
  return json_response(200, model_card());
}

}  // namespace moon::server
