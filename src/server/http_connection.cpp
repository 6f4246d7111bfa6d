#include "server/http_connection.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <cerrno>

#include "util/logging.h"

namespace moon::server {
namespace {

// How long a refused connection keeps draining input after its answer before it is closed.
constexpr std::chrono::seconds kLingerTime{1};
constexpr size_t kDiscardBytes = 16 << 10;

HttpResponse header_too_large(const std::string& what) {
  return {431,
          "application/json",
          fmt::format(R"({{"error":{{"message":"request header too large: {}","type":)"
                      R"("invalid_request_error","param":null,"code":null}}}})",
                      what),
          {}};
}

}  // namespace

HttpConnection::HttpConnection(tcp::socket socket, Handler handler, HeaderCheck header_check,
                               ResponseHeaders response_headers, size_t body_limit,
                               std::chrono::milliseconds idle_timeout)
    : socket_(std::move(socket)),
      handler_(std::move(handler)),
      header_check_(std::move(header_check)),
      response_headers_(std::move(response_headers)),
      body_limit_(body_limit),
      idle_timeout_(idle_timeout),
      idle_timer_(socket_.get_executor()) {}

HttpConnection::~HttpConnection() {
  if (on_close_) on_close_();
}

void HttpConnection::start() {
  beast::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // SSE chunks are small and latency matters
  read_request();
}

void HttpConnection::read_request() {
  if (closed_) return;
  parser_.emplace();
  head_ = false;
  request_headers_.clear();
  // Also judges Content-Length while parsing the header, so an oversized body is refused
  // (413, on_read) before any of it is read.
  parser_->body_limit(body_limit_);
  parser_->header_limit(kMaxHeaderBytes);
  // A client that trickles (or never sends) its request must not hold the socket forever.
  arm_idle_timer();
  http::async_read_header(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void HttpConnection::on_header(beast::error_code ec) {
  // Even a refusal of this request (413, 401) is one its client must be able to read.
  if (!closed_ && response_headers_ && parser_->is_header_done()) {
    request_headers_ = response_headers_(parser_->get());
  }
  if (ec || closed_) return on_read(ec);
  const auto& header = parser_->get();
  head_ = header.method() == http::verb::head;
  if (static_cast<size_t>(std::distance(header.begin(), header.end())) > kMaxHeaderFields) {
    return refuse(header_too_large(fmt::format("more than {} header fields", kMaxHeaderFields)));
  }
  if (header_check_) {
    if (auto refusal = header_check_(header)) return refuse(*refusal);
  }
  // curl asks first for bodies over 1 KiB; an oversized one was refused with the header.
  if (beast::iequals(header[http::field::expect], "100-continue")) {
    write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  http::async_read(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void HttpConnection::on_read(beast::error_code ec) {
  idle_timer_.cancel();
  if (closed_) return;
  if (ec == http::error::body_limit) {
    return refuse({413,
                   "application/json",
                   fmt::format(R"({{"error":{{"message":"request body exceeds {} bytes","type":)"
                               R"("invalid_request_error","param":null,"code":null}}}})",
                               body_limit_),
                   {}});
  }
  if (ec == http::error::header_limit) {
    return refuse(header_too_large(fmt::format("a header over {} bytes", kMaxHeaderBytes)));
  }
  if (ec == http::error::end_of_stream || ec == asio::error::eof) {
    // The client sends no more requests. It may still be reading the last answer (a half-close
    // after its request), which must not be cut short.
    if (!has_pending_output()) return close();
    close_after_write_ = true;
    arm_idle_timer();
    return;
  }
  if (ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    close();
    return;
  }
  if (ec) {
    return refuse({400,
                   "application/json",
                   R"({"error":{"message":"malformed HTTP request","type":"invalid_request_error",)"
                   R"("param":null,"code":null}})",
                   {}});
  }
  in_request_ = true;
  HttpRequest request = parser_->release();
  keep_alive_ = request.keep_alive();
  watch();
  handler_(shared_from_this(), std::move(request));
}

void HttpConnection::watch() {
  if (watching_ || closed_) return;
  watching_ = true;
  // Waiting for readability consumes nothing, so the parser still sees pipelined requests.
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](beast::error_code ec) { self->on_watch(ec); });
}

void HttpConnection::on_watch(beast::error_code ec) {
  watching_ = false;
  if (closed_ || ec == asio::error::operation_aborted) return;
  if (ec) return close();
  if (!in_request_) return;  // the next request's read takes over
  char byte;
  const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    return close();  // the connection broke (a reset) mid-request
  }
  // End of input: the client has either closed its socket or only shut down its sending side
  // (a half-close, as `nc -N` and some proxies do) and waits for the answer. TCP cannot tell
  // the two apart until something is written: then a closed client answers with a reset and
  // the next write fails, which closes the connection and aborts the request. So the request
  // goes on, and the socket is not watched again (it would stay readable for ever). Nothing
  // else may hold the connection meanwhile (a request being prepared holds it weakly), so it
  // holds itself until it has answered.
  if (n == 0) {
    self_ = shared_from_this();
    return;
  }
  // A pipelined request is waiting; it stays in the socket until this answer is done. Hangups
  // behind it go unnoticed until then, which is the price of pipelining.
  if (n < 0) watch();
}

std::string HttpConnection::status_line_and_headers(int status, const std::string& content_type,
                                                    const HeaderList& headers) const {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: moon\r\n", status,
                                std::string(http::obsolete_reason(http::int_to_status(status))));
  if (!content_type.empty()) out += "Content-Type: " + content_type + "\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  for (const auto& [k, v] : request_headers_) out += k + ": " + v + "\r\n";
  out += keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return out;
}

void HttpConnection::refuse(const HttpResponse& response) {
  if (closed_) return;
  keep_alive_ = false;
  linger_ = true;
  in_request_ = true;
  respond(response);
}

void HttpConnection::respond(const HttpResponse& r) {
  if (closed_ || !in_request_) return;
  std::string out = status_line_and_headers(r.status, r.content_type, r.headers);
  // 204 has no body and, by RFC 9110 8.6, no Content-Length either.
  out += r.status == 204 ? "\r\n" : fmt::format("Content-Length: {}\r\n\r\n", r.body.size());
  // A HEAD answer announces the body a GET would get, and leaves it out (RFC 9110 9.3.2).
  if (!head_) out += r.body;
  write(std::move(out));
  finish_response();
}

void HttpConnection::begin_stream(int status, const std::string& content_type,
                                  const HeaderList& headers) {
  if (closed_ || !in_request_) return;
  std::string out = status_line_and_headers(status, content_type, headers);
  out += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
  write(std::move(out));
}

void HttpConnection::send_chunk(std::string_view data) {
  if (closed_ || !in_request_ || data.empty()) return;
  if (output_limit_ > 0 && queued_bytes_ + data.size() > output_limit_) {
    // A stream's reader this far behind holds memory and KV blocks for nothing. (A whole
    // answer written at once is not held to the limit: it is as big as it is.)
    spdlog::warn("closing a connection whose client does not read: {} bytes of answer waiting",
                 queued_bytes_ + data.size());
    close();
    return;
  }
  std::string out = fmt::format("{:x}\r\n", data.size());
  out += data;
  out += "\r\n";
  write(std::move(out));
}

void HttpConnection::end_stream() {
  if (closed_ || !in_request_) return;
  write("0\r\n\r\n");
  finish_response();
}

void HttpConnection::finish_response() {
  const auto keep = std::move(self_);
  in_request_ = false;
  on_disconnect_ = nullptr;
  if (!keep_alive_) {
    close_after_write_ = true;
    if (!writing_) return end_after_write();
    // A client that never takes its answer would hold the connection, and the answer, for
    // ever. It gets as long as a keep-alive client has to send its next request (whose
    // read_request arms the same timer while the answer is still being written), counted from
    // the last time it had taken kMinAnswerBytesPerIdleTimeout more of the answer.
    arm_idle_timer();
    return;
  }
  read_request();
}

void HttpConnection::arm_idle_timer() {
  taken_since_armed_ = 0;
  idle_timer_.expires_after(idle_timeout_);
  idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
    auto self = weak.lock();
    if (!ec && self && !self->in_request_) self->close();
  });
}

void HttpConnection::write(std::string data) {
  if (closed_) return;
  queued_bytes_ += data.size();
  queue_.push_back(std::move(data));
  if (!writing_) flush();
}

void HttpConnection::flush() {
  if (sent_ == sending_.size()) {
    sending_.clear();
    sent_ = 0;
    while (!queue_.empty()) {
      sending_ += queue_.front();
      queue_.pop_front();
    }
  }
  writing_ = true;
  // Piece by piece rather than one async_write, so that each piece the client takes counts as
  // progress against the idle timeout.
  socket_.async_write_some(
      asio::buffer(sending_.data() + sent_, sending_.size() - sent_),
      [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_write(ec, n); });
}

void HttpConnection::on_write(beast::error_code ec, size_t written) {
  writing_ = false;
  sent_ += written;
  queued_bytes_ -= std::min(queued_bytes_, written);
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  taken_since_armed_ += written;
  if (sent_ < sending_.size()) {
    if (!in_request_ && taken_since_armed_ >= kMinAnswerBytesPerIdleTimeout) arm_idle_timer();
    flush();
  } else if (!queue_.empty()) {
    flush();
  } else if (close_after_write_) {
    end_after_write();
  }
}

void HttpConnection::end_after_write() {
  if (linger_) return linger();
  close();
}

void HttpConnection::linger() {
  // Closing a socket with unread input makes the kernel answer with a reset, which can destroy
  // the answer before the client has read it. So say "no more" (FIN) and throw away what the
  // client still sends, for a bounded time and in a fixed buffer, then close.
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return close();
  discard_ = std::make_unique<char[]>(kDiscardBytes);
  buffer_.clear();  // what the parser read beyond the header is unread input too
  idle_timer_.expires_after(kLingerTime);
  idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
    auto self = weak.lock();
    if (!ec && self) self->close();
  });
  discard_input();
}

void HttpConnection::discard_input() {
  socket_.async_read_some(asio::buffer(discard_.get(), kDiscardBytes),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (self->closed_) return;
                            if (ec) return self->close();  // end of input, or the client is gone
                            self->discard_input();
                          });
}

void HttpConnection::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  idle_timer_.cancel();
  queue_.clear();
  queued_bytes_ = 0;
  auto fn = std::move(on_disconnect_);
  on_disconnect_ = nullptr;
  if (fn && in_request_) fn();
  if (auto released = std::exchange(on_close_, nullptr)) released();
  const auto keep = std::move(self_);
}

}  // namespace moon::server
