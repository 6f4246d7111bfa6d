#include "loadgen/http_stream_client.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <memory>

namespace moon::loadgen {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Result<ServerUrl> parse_base_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    return make_error("--base-url '{}' must start with http:// (https is not supported)", url);
  }
  std::string rest = url.substr(scheme.size());
  ServerUrl out;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    out.path_prefix = rest.substr(slash);
    rest.resize(slash);
    while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
    out.port = "80";
  }
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error("--base-url '{}' is not http://HOST[:PORT][/PATH]", url);
  }
  return out;
}

void SseParser::feed(std::string_view bytes,
                     const std::function<void(const std::string&)>& on_data) {
  for (const char c : bytes) {
    if (c == '\n') {
      end_line(on_data);
    } else {
      line_ += c;
    }
  }
}

void SseParser::end_line(const std::function<void(const std::string&)>& on_data) {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.empty()) {  // a blank line ends the event
    if (has_data_) on_data(data_);
    data_.clear();
    has_data_ = false;
  } else if (line_.rfind("data:", 0) == 0) {
    std::string_view value(line_);
    value.remove_prefix(5);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  }
  line_.clear();
}

bool apply_completion_chunk(const std::string& data, double t, StreamResult& result) {
  if (data == "[DONE]") return true;
  const auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    result.error = "a stream event is not JSON: " + data.substr(0, 200);
    return false;
  }
  if (j.contains("error")) {
    result.error = "the stream reported an error: " + j["error"].dump();
    return false;
  }
  if (const auto it = j.find("choices"); it != j.end() && it->is_array() && !it->empty()) {
    result.chunk_times.push_back(t);
    const auto& choice = it->front();
    if (const auto text = choice.find("text"); text != choice.end() && text->is_string()) {
      result.text += text->get<std::string>();
    } else if (const auto delta = choice.find("delta"); delta != choice.end()) {
      if (const auto content = delta->find("content");
          content != delta->end() && content->is_string()) {
        result.text += content->get<std::string>();
      }
    }
  }
  if (const auto usage = j.find("usage"); usage != j.end() && usage->is_object()) {
    if (const auto n = usage->find("completion_tokens"); n != usage->end() && n->is_number()) {
      result.completion_tokens = n->get<int64_t>();
    }
    if (const auto n = usage->find("prompt_tokens"); n != usage->end() && n->is_number()) {
      result.prompt_tokens = n->get<int64_t>();
    }
  }
  return true;
}

namespace {

void set_common_fields(http::request<http::string_body>& req, const ServerUrl& url,
                       const std::string& api_key) {
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "moon-bench");
  req.set(http::field::connection, "close");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
}

// One request's connection, from connect to the end of the response.
class StreamCall : public std::enable_shared_from_this<StreamCall> {
 public:
  StreamCall(asio::io_context& io, std::function<void(StreamResult)> done)
      : stream_(io), done_(std::move(done)) {}

  void start(const Endpoints& endpoints, http::request<http::string_body> req) {
    req_ = std::move(req);
    start_ = Clock::now();
    // Not boost::none: Boost 1.74 compares a Content-Length against an empty limit as
    // "exceeded".
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.async_connect(
        endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return self->fail("connect: " + ec.message());
          http::async_write(self->stream_, self->req_,
                            [self](beast::error_code ec, size_t) { self->on_write(ec); });
        });
  }

 private:
  void on_write(beast::error_code ec) {
    if (ec) return fail("send: " + ec.message());
    http::async_read_header(stream_, buffer_, parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->fail("response: " + ec.message());
                              self->status_ = self->parser_.get().result_int();
                              self->read_body();
                            });
  }

  void read_body() {
    if (parser_.is_done()) return finish();
    parser_.get().body().data = body_;
    parser_.get().body().size = sizeof body_;
    http::async_read_some(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = sizeof body_ - parser_.get().body().size;
    const std::string_view bytes(body_, n);
    if (status_ != 200) {
      error_body_.append(bytes);
    } else if (result_.error.empty()) {
      const double t = seconds_since_start();
      sse_.feed(bytes, [&](const std::string& data) {
        if (result_.error.empty()) apply_completion_chunk(data, t, result_);
      });
    }
    if (ec) return fail("response body: " + ec.message());
    read_body();
  }

  void finish() {
    if (status_ != 200) {
      return fail(fmt::format("HTTP {}: {}", status_, error_body_.substr(0, 500)));
    }
    if (!result_.error.empty()) return fail(result_.error);
    if (result_.chunk_times.empty()) return fail("the stream ended without a completion chunk");
    result_.success = true;
    end();
  }

  void fail(std::string why) {
    result_.success = false;
    result_.error = std::move(why);
    end();
  }

  void end() {
    if (!done_) return;
    result_.latency = seconds_since_start();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(result_));
  }

  double seconds_since_start() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

  beast::tcp_stream stream_;
  std::function<void(StreamResult)> done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  char body_[16384];
  int status_ = 0;
  std::string error_body_;
  SseParser sse_;
  StreamResult result_;
  Clock::time_point start_;
};

}  // namespace

void start_stream_request(asio::io_context& io, const Endpoints& endpoints, const ServerUrl& url,
                          const std::string& target, std::string body, const std::string& api_key,
                          std::function<void(StreamResult)> done) {
  http::request<http::string_body> req{http::verb::post, url.path_prefix + target, 11};
  set_common_fields(req, url, api_key);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.body() = std::move(body);
  req.prepare_payload();
  std::make_shared<StreamCall>(io, std::move(done))->start(endpoints, std::move(req));
}

Result<Endpoints> resolve(asio::io_context& io, const ServerUrl& url) {
  tcp::resolver resolver(io);
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return make_error("cannot resolve {}:{}: {}", url.host, url.port, ec.message());
  return endpoints;
}

Result<nlohmann::json> get_json(const ServerUrl& url, const std::string& target,
                                const std::string& api_key, std::chrono::seconds timeout) {
  asio::io_context io;
  MOON_ASSIGN_OR_RETURN(Endpoints endpoints, resolve(io, url));
  beast::tcp_stream stream(io);
  http::request<http::string_body> req{http::verb::get, url.path_prefix + target, 11};
  set_common_fields(req, url, api_key);
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  beast::error_code error;
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) {
      error = ec;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) {
        error = ec;
        return;
      }
      http::async_read(stream, buffer, res, [&](beast::error_code ec, size_t) { error = ec; });
    });
  });
  io.run();
  const std::string where = "http://" + url.host + ":" + url.port + url.path_prefix + target;
  if (error) return make_error("GET {}: {}", where, error.message());
  if (res.result_int() != 200) {
    return make_error("GET {}: HTTP {}: {}", where, res.result_int(), res.body().substr(0, 500));
  }
  auto j = nlohmann::json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("GET {}: the answer is not JSON", where);
  return j;
}

}  // namespace moon::loadgen
