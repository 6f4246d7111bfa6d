// The HTTP side of the load generator: an asynchronous streaming POST over Boost.Beast (many
// in flight on one io_context thread, no thread each), the server-sent-event parser it feeds,
// and a blocking GET for small JSON answers such as /v1/models.
#pragma once

// clang-format off
// First: Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
#include <boost/asio.hpp>
// clang-format on
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace moon::loadgen {

// "http://host:port/prefix" split up; only plain http.
struct ServerUrl {
  std::string host;
  std::string port;
  std::string path_prefix;  // "" or "/prefix", prepended to every endpoint
};
Result<ServerUrl> parse_base_url(const std::string& url);

// Server-sent events: bytes in, in any split; every complete event's `data` out (several
// `data:` lines of one event joined by '\n'; comments, other fields and CRs dropped).
class SseParser {
 public:
  void feed(std::string_view bytes, const std::function<void(const std::string&)>& on_data);

 private:
  void end_line(const std::function<void(const std::string&)>& on_data);

  std::string line_;
  std::string data_;
  bool has_data_ = false;
};

// What one streaming completion request saw. Times are seconds since the request started.
struct StreamResult {
  bool success = false;
  std::string error;                         // why it failed (HTTP status and body, or the cause)
  std::vector<double> chunk_times;           // arrival of every chunk that carried choices
  std::string text;                          // the choices' text, concatenated
  std::optional<int64_t> completion_tokens;  // from the usage chunk, when the server sends one
  std::optional<int64_t> prompt_tokens;
  double latency = 0.0;  // until the response ended
};

using Endpoints = boost::asio::ip::tcp::resolver::results_type;

// Parses one SSE data payload of an OpenAI completion stream into `result`; `t` is its arrival.
// Returns false on a payload that is not JSON or reports an error (then `result.error` says).
bool apply_completion_chunk(const std::string& data, double t, StreamResult& result);

// Starts a POST of `body` (JSON) to `target` on a new connection; `done` runs on the
// io_context's thread once the response has ended or failed.
void start_stream_request(boost::asio::io_context& io, const Endpoints& endpoints,
                          const ServerUrl& url, const std::string& target, std::string body,
                          const std::string& api_key, std::function<void(StreamResult)> done);

// Resolves the server's host once (every request reuses the answer).
Result<Endpoints> resolve(boost::asio::io_context& io, const ServerUrl& url);

// Blocking GET of a JSON document (e.g. "/v1/models"), at most `timeout`.
Result<nlohmann::json> get_json(const ServerUrl& url, const std::string& target,
                                const std::string& api_key,
                                std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace moon::loadgen
