#include "server/http_server.h"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <ctime>

#include "server/request_gate.h"
#include "util/logging.h"

namespace moon::server {

HttpServer::HttpServer(const ServerConfig& config, const Tokenizer& tokenizer, EngineClient& engine)
    : ctx_{config, tokenizer, engine, Metrics(config.served_model_name),
           std::make_shared<EventPoster>(ioc_)},
      stats_(ioc_, ctx_, config.log_stats_interval_s) {
  ctx_.created = static_cast<int64_t>(std::time(nullptr));
}

HttpServer::~HttpServer() {
  ctx_.engine.set_on_failure(nullptr);
  // What the worker is doing posts its result back; poll() below runs it, so that jobs and
  // connections are let go on this thread.
  router_.finish_work();
  // The engine may still notify streams of requests that outlive the loop.
  ctx_.events->close();
  // Run what is left (completions of cancelled operations) so that every connection and
  // job lets go of ctx_ before the members are destroyed.
  beast::error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  drain_timer_.cancel();
  accept_retry_.cancel();
  stats_.stop();
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->close();
  }
  ioc_.restart();
  ioc_.poll();
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(const ServerConfig& config,
                                                       const Tokenizer& tokenizer,
                                                       EngineClient& engine) {
  std::unique_ptr<HttpServer> server(new HttpServer(config, tokenizer, engine));
  beast::error_code ec;
  const auto address = asio::ip::make_address(config.host, ec);
  if (ec) return make_error("--host '{}' is not an IP address: {}", config.host, ec.message());
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(config.port));
  tcp::acceptor& a = server->acceptor_;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("cannot listen on {}:{}: {}", config.host, config.port, ec.message());
  }
  server->port_ = a.local_endpoint().port();
  return server;
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: back off briefly rather than spin.
      spdlog::warn("accept failed: {}", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(50));
      accept_retry_.async_wait([this](beast::error_code) { accept(); });
      return;
    }
    beast::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) {  // the client is already gone
      socket.close(peer_ec);
      return accept();
    }
    auto conn = std::make_shared<HttpConnection>(
        std::move(socket),
        [this](std::shared_ptr<HttpConnection> c, HttpRequest r) {
          router_.handle(c, std::move(r));
        },
        [this](const http::request_header<>& header) -> std::optional<HttpResponse> {
          if (auto refusal = check_request_header(header, ctx_.config.api_key)) {
            return error_response(*refusal);
          }
          return std::nullopt;
        },
        [this](const http::request_header<>& header) {
          const auto origin = header[http::field::origin];
          return ctx_.config.cors.headers(std::string_view(origin.data(), origin.size()));
        },
        ctx_.config.max_body_bytes,
        std::chrono::milliseconds(static_cast<int64_t>(ctx_.config.idle_timeout_s * 1000)));
    conn->set_output_limit(ctx_.config.max_queued_output_bytes);
    // Forget connections that are gone, now and then, so the list stays small.
    if (connections_.size() > 256 && (connections_.size() & 255) == 0) {
      std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    }
    connections_.push_back(conn);
    if (auto reason = over_connection_limit(peer.address())) {
      spdlog::debug("refused a connection from {}: {}", peer.address().to_string(), *reason);
      conn->refuse(
          error_response(ApiError{503, *reason, "server_error", {}, "too_many_connections"}));
    } else {
      ++open_connections_;
      ++connections_per_address_[peer.address()];
      conn->on_close([this, address = peer.address()] { release_connection(address); });
      conn->start();
    }
    accept();
  });
}

std::optional<std::string> HttpServer::over_connection_limit(
    const asio::ip::address& address) const {
  const int64_t max_total = ctx_.config.max_connections;
  if (max_total > 0 && open_connections_ >= max_total) {
    return fmt::format(
        "the server has {} open connections, its limit (--max-connections); retry later",
        max_total);
  }
  const int64_t max_per_address = ctx_.config.max_connections_per_ip;
  const auto it = connections_per_address_.find(address);
  if (max_per_address > 0 && it != connections_per_address_.end() &&
      it->second >= max_per_address) {
    return fmt::format(
        "this client address has {} open connections, the limit (--max-connections-per-ip); "
        "close some or retry later",
        max_per_address);
  }
  return std::nullopt;
}

void HttpServer::release_connection(const asio::ip::address& address) {
  --open_connections_;
  const auto it = connections_per_address_.find(address);
  if (it != connections_per_address_.end() && --it->second <= 0) connections_per_address_.erase(it);
}

void HttpServer::on_signal(int signal) {
  spdlog::info("received {}; finishing {} running request(s), then exiting",
               signal == SIGINT ? "SIGINT" : "SIGTERM", ctx_.active_requests);
  begin_shutdown();
}

void HttpServer::on_engine_failure(const std::string& why) {
  // The engine closed every request, so their answers (errors) are all that is left to send.
  spdlog::error("stopping: the engine failed ({})", why);
  engine_failed_ = true;
  if (!ctx_.draining) begin_shutdown();
}

void HttpServer::begin_shutdown() {
  ctx_.draining = true;
  beast::error_code ec;
  acceptor_.close(ec);
  drain_deadline_ =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(ctx_.config.shutdown_timeout_s * 1000));
  // A second signal means "now".
  signals_.async_wait([this](beast::error_code ec, int) {
    if (!ec) drain_deadline_ = std::chrono::steady_clock::now();
  });
  wait_for_drain();
}

void HttpServer::wait_for_drain() {
  // A finished job has only queued its last chunks; they go out before the sockets close.
  const bool output_pending = std::any_of(connections_.begin(), connections_.end(), [](auto& w) {
    auto c = w.lock();
    return c && c->has_pending_output();
  });
  const bool drained = ctx_.active_requests == 0 && !output_pending;
  if (drained || std::chrono::steady_clock::now() >= drain_deadline_) {
    if (ctx_.active_requests > 0) {
      spdlog::warn("shutdown timeout: abandoning {} request(s)", ctx_.active_requests);
      abandoned_ = ctx_.active_requests;
    }
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) c->close();
    }
    ioc_.stop();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(20));
  drain_timer_.async_wait([this](beast::error_code) { wait_for_drain(); });
}

int HttpServer::run() {
  ctx_.engine.set_on_failure([this, events = ctx_.events](const std::string& why) {
    events->post([this, why] { on_engine_failure(why); });
  });
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](beast::error_code ec, int signal) {
    if (!ec) on_signal(signal);
  });
  accept();
  stats_.start();
  spdlog::info("listening on http://{}:{} (model '{}')", ctx_.config.host, port_,
               ctx_.config.served_model_name);
  // Router::handle answers whatever a request throws; this is the last line for a handler
  // outside it (a completion callback): one failure is logged, the loop goes on serving.
  for (;;) {
    try {
      ioc_.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("an I/O handler failed: {}; serving on", e.what());
    }
  }
  router_.finish_work();  // before events close: what the worker hands back must arrive
  ctx_.events->close();
  spdlog::info("server stopped");
  // Requests cut off by the shutdown timeout, or an engine that failed, make it a failure,
  // for supervisors to see.
  return abandoned_ > 0 || engine_failed_ ? 1 : 0;
}

}  // namespace moon::server
