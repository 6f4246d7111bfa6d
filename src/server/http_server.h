// The serving loop: one I/O thread runs an io_context with the listening socket, every
// connection and the signal handler. The engine runs on its own thread (EngineClient) and
// reaches this one only by posting through EventPoster.
//
// SIGINT/SIGTERM: stop accepting, refuse new generation requests, wait (bounded) for running
// requests to finish, then return so the process can exit 0. An engine that fails for good
// (EngineClient::set_on_failure) starts the same shutdown, and the exit code is 1.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "server/http_connection.h"
#include "server/router.h"
#include "server/server_context.h"
#include "server/stats_logger.h"
#include "util/result.h"

namespace moon::server {

class HttpServer {
 public:
  // Binds the listening socket (so a busy port fails here, before anything else starts).
  static Result<std::unique_ptr<HttpServer>> create(const ServerConfig& config,
                                                    const Tokenizer& tokenizer,
                                                    EngineClient& engine);
  ~HttpServer();

  int port() const { return port_; }
  // Serves until a signal drained the server; returns the process exit code.
  int run();

 private:
  HttpServer(const ServerConfig& config, const Tokenizer& tokenizer, EngineClient& engine);
  void accept();
  // Why a new connection from `address` would exceed --max-connections(-per-ip); nullopt if it
  // fits.
  std::optional<std::string> over_connection_limit(const asio::ip::address& address) const;
  void release_connection(const asio::ip::address& address);
  void on_signal(int signal);
  void on_engine_failure(const std::string& why);
  // Stop accepting, refuse new generation requests, and exit once the running ones are done
  // (or the shutdown timeout passed).
  void begin_shutdown();
  void wait_for_drain();

  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  asio::signal_set signals_{ioc_};
  asio::steady_timer drain_timer_{ioc_};
  asio::steady_timer accept_retry_{ioc_};
  ServerContext ctx_;
  int64_t abandoned_ = 0;  // requests the shutdown timeout cut off
  bool engine_failed_ = false;
  StatsLogger stats_;
  Router router_{ctx_};
  std::vector<std::weak_ptr<HttpConnection>> connections_;  // to close idle ones at exit
  // Open connections that count against the limits (refused ones do not).
  int64_t open_connections_ = 0;
  std::map<asio::ip::address, int64_t> connections_per_address_;
  std::chrono::steady_clock::time_point drain_deadline_{};
  int port_ = 0;
};

}  // namespace moon::server
