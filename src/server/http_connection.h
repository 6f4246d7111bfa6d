// One client connection of the HTTP/1.1 server, driven entirely by asynchronous operations on
// the I/O thread (no thread per connection). It parses requests with Beast, hands each to the
// router, and writes what the handler sends back: a whole response, or a chunked stream
// (server-sent events) fed as the engine produces tokens.
//
// Each request's header is screened before its body is read (see request_gate.h); a refused
// request is answered at once and the connection closed without reading the body.
//
// While a request is being answered the connection waits for the socket to become readable,
// so a client whose connection breaks is noticed at once and its request's on_disconnect
// callback can abort the generation. A client's end of input is not taken for leaving: it may
// have only half-closed and still read; a client that closed is noticed at the next write.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/asio.h"

namespace moon::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using HttpRequest = http::request<http::string_body>;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HeaderList headers;
};

// A request's header may hold at most this many bytes and fields (nginx allows 32 KiB too);
// past either it is refused with 431 before its body is read.
inline constexpr uint32_t kMaxHeaderBytes = 32 << 10;
inline constexpr size_t kMaxHeaderFields = 100;
// A client taking an answer already written must take at least this much of it per idle
// timeout, or lose the connection: otherwise a reader that takes a byte just before each
// timeout would hold its slot and its queued answer (up to --max-queued-output) for days.
// At the default 60 s it is about 1 KiB/s, far below any real link.
inline constexpr size_t kMinAnswerBytesPerIdleTimeout = 64 << 10;

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  using Handler = std::function<void(std::shared_ptr<HttpConnection>, HttpRequest)>;
  // A response refuses the request before its body is read; nullopt lets it through.
  using HeaderCheck = std::function<std::optional<HttpResponse>(const http::request_header<>&)>;
  // Headers every answer to a request carries, whoever writes it (CORS), from its header.
  using ResponseHeaders = std::function<HeaderList(const http::request_header<>&)>;

  // `idle_timeout`: how long a connection may take to send a whole request, sit idle between
  // keep-alive requests, or go without taking any of an answer that is all written, before it
  // is closed. Generating the answer has no limit.
  HttpConnection(tcp::socket socket, Handler handler, HeaderCheck header_check,
                 ResponseHeaders response_headers, size_t body_limit,
                 std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));
  ~HttpConnection();
  void start();
  // Answers `response` with Connection: close and closes, leaving the rest of the request
  // unread. Also called instead of start(), for a connection over the server's limits.
  void refuse(const HttpResponse& response);

  // Answers the current request in one piece.
  void respond(const HttpResponse& response);
  // Answers it as a chunked stream: begin once, any number of chunks, then end.
  void begin_stream(int status, const std::string& content_type, const HeaderList& headers = {});
  void send_chunk(std::string_view data);
  void end_stream();

  // Most bytes of a streamed answer that may wait for a client that does not read; past it
  // the connection is closed, which aborts its request (0: no limit).
  void set_output_limit(size_t bytes) { output_limit_ = bytes; }

  // Called once if the client goes away before the current request was answered.
  void on_disconnect(std::function<void()> fn) { on_disconnect_ = std::move(fn); }
  bool is_open() const { return !closed_; }
  // Bytes queued or being written: a drain must not close the socket under them.
  bool has_pending_output() const { return !closed_ && (writing_ || !queue_.empty()); }
  // Closes the connection now (shutdown of idle keep-alive connections).
  void close();
  // Called once when the connection closes, or when it is destroyed without having been closed,
  // so that a count of open connections cannot leak.
  void on_close(std::function<void()> fn) { on_close_ = std::move(fn); }

 private:
  void read_request();
  void on_header(beast::error_code ec);
  void on_read(beast::error_code ec);
  void watch();
  void on_watch(beast::error_code ec);
  void write(std::string data);
  void flush();
  void on_write(beast::error_code ec, size_t written);
  void arm_idle_timer();  // closes the connection at the idle timeout unless a request runs
  void finish_response();
  void end_after_write();
  void linger();
  void discard_input();
  std::string status_line_and_headers(int status, const std::string& content_type,
                                      const HeaderList& headers) const;

  tcp::socket socket_;
  Handler handler_;
  HeaderCheck header_check_;
  ResponseHeaders response_headers_;
  HeaderList request_headers_;  // response_headers_ of the current request
  size_t body_limit_;
  std::chrono::milliseconds idle_timeout_;
  asio::steady_timer idle_timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> queue_;  // bytes waiting for the write in flight
  size_t queued_bytes_ = 0;        // in queue_ and in the write in flight
  size_t output_limit_ = 0;
  std::string sending_;           // bytes of the write in flight
  size_t sent_ = 0;               // of sending_, already written
  size_t taken_since_armed_ = 0;  // answer bytes written since the idle timer was armed
  bool writing_ = false;
  bool watching_ = false;
  bool in_request_ = false;
  bool keep_alive_ = true;
  bool head_ = false;  // the current request is a HEAD: answers carry no body
  bool close_after_write_ = false;
  bool linger_ = false;  // the client may still be sending what was not read
  bool closed_ = false;
  std::unique_ptr<char[]> discard_;  // lingering only: where unread input goes
  std::function<void()> on_disconnect_;
  std::function<void()> on_close_;
  // Set while a half-closed client waits for its answer (on_watch).
  std::shared_ptr<HttpConnection> self_;
};

}  // namespace moon::server
