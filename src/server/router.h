// Maps each HTTP request to its handler. GETs are answered on the I/O thread; a POST's JSON
// parsing, validation, chat template and tokenization run on a worker thread, and the result
// comes back to the I/O thread, where generation is handed to a GenerationJob. The API key
// was already checked with the request's header, before its body was read (request_gate.h).
//
//   GET  /health /ping /version /v1/models /v1/models/{id} /metrics (and HEAD of each)
//   POST /v1/completions /v1/chat/completions /tokenize /detokenize
//   POST /generate /generate_stream /, GET /info (TGI; errors in TGI's shape)
//   OPTIONS on any path: a CORS preflight, answered 204 without the API key
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "server/api_error.h"
#include "server/generation_job.h"
#include "server/http_connection.h"
#include "server/openai_protocol.h"
#include "server/server_context.h"
#include "server/structured_output.h"

namespace moon::server {

class Router {
 public:
  explicit Router(ServerContext& ctx);
  ~Router();  // finish_work()
  // Lets the worker finish what it is doing, drops what waits for it, and runs later work
  // inline. The server calls it before it stops taking events from other threads.
  void finish_work();
  // Answers every request, whatever it holds: nothing a request makes a handler throw
  // escapes (a client error is a 4xx, anything else a 500), so no request ends the server.
  void handle(const std::shared_ptr<HttpConnection>& conn, HttpRequest request);

 private:
  void route(const std::shared_ptr<HttpConnection>& conn, const HttpRequest& request);
  // `grammar`: the structured output the body asks for (null: none).
  using GrammarPtr = std::shared_ptr<grammar::GrammarAutomaton>;
  // What a POST handler makes on the worker: the answer, or the job to start.
  using Prepared = std::variant<HttpResponse, JobOptions>;
  // On the worker: the body parsed, validated, rendered and tokenized (the POST routes).
  Prepared prepare(const std::string& path, const std::string& body);
  // Back on the I/O thread: answers, or checks the queue and starts the job.
  void launch(const std::shared_ptr<HttpConnection>& conn, Prepared prepared, ApiKind kind);
  // The answer to whatever a handler threw (a client's JSON type error is a 400, the rest
  // 500s): nothing a request makes a handler throw ends the server.
  static HttpResponse failure_response(std::exception_ptr failure, ApiKind kind);
  Prepared completions(const nlohmann::json& body, GrammarPtr grammar) const;
  // `ordered`: the body with its keys in order, when it has tools or structured output.
  Prepared chat_completions(const nlohmann::json& body, GrammarPtr grammar,
                            const nlohmann::ordered_json* ordered);
  // `stream`: the route's; nullopt (POST /) takes the body's "stream".
  Prepared tgi_generate(const nlohmann::json& body, std::optional<bool> stream,
                        GrammarPtr grammar) const;
  // The grammar a generation request's body asks for, compiled (or from the cache).
  std::variant<GrammarPtr, ApiError> requested_grammar(const nlohmann::ordered_json* ordered,
                                                       const nlohmann::json& body, ApiKind kind);
  // Tokenizes and checks against the model (launch checks the queue).
  Prepared start_completion(const CompletionRequest& req, ApiKind kind, bool tgi_details) const;
  HttpResponse preflight(const HttpRequest& request) const;
  // A chat request's prompt: its messages (and tools) through the chat template, cut after
  // the last message with continue_final_message, tokenized. The server has a template.
  std::variant<std::vector<TokenId>, ApiError> chat_prompt(const ChatRequest& req,
                                                           const nlohmann::ordered_json& tools,
                                                           bool add_special) const;
  static ApiError no_chat_template();
  HttpResponse tokenize(const nlohmann::json& body, const nlohmann::ordered_json* ordered);
  HttpResponse detokenize(const nlohmann::json& body);
  // The served model in OpenAI's shape; /v1/models lists it, /v1/models/{id} returns it.
  nlohmann::json model_card() const;
  HttpResponse models() const;
  HttpResponse tgi_info() const;
  HttpResponse model(const std::string& id) const;
  // The model a request names must be ours (an empty name means ours).
  std::optional<ApiError> check_model(const std::string& name) const;
  ApiError model_not_found(const std::string& name) const;
  // Refuses new work when the waiting queue is full or the server is shutting down.
  // One request's prompts x n against the batch size.
  std::optional<ApiError> check_num_sequences(size_t num_prompts, int n) const;
  std::optional<ApiError> check_capacity(size_t num_prompts) const;

  ServerContext& ctx_;
  GrammarCache grammars_;  // used by the worker only
  // One worker prepares POST requests in arrival order (so the grammar cache needs no lock).
  boost::asio::thread_pool workers_;  // behind ctx_.offload
};

HttpResponse json_response(int status, const nlohmann::json& body);
// In OpenAI's shape (api_error.h), or TGI's for a TGI request.
HttpResponse error_response(const ApiError& error, ApiKind kind = ApiKind::kCompletion);

}  // namespace moon::server
