// Test helpers for the server and CLI tests: run the real `moon serve` as a child process on a free
// loopback port, and talk raw HTTP/1.1 to it over plain sockets (every wait bounded).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moon::test {

struct HttpResult {
  int status = 0;                              // 0: no response (connection failed or timed out)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
};

// One request on a fresh connection (Connection: close); reads the whole response.
HttpResult http_request(int port, const std::string& method, const std::string& path,
                        const std::string& body = "",
                        const std::vector<std::string>& extra_headers = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Connects to 127.0.0.1:port, with a receive buffer of `rcvbuf` bytes when positive; -1 on
// failure.
int connect_loopback(int port, int rcvbuf = 0);
// Sends all of `data`; false on error.
bool send_all(int fd, const std::string& data);
// POSTs `body` to `path` on a new connection and reads until the first server-sent event
// has arrived (the request is running), waiting at most `timeout` per read. Returns the
// socket, -1 on failure; `raw` holds what was read so far.
int start_stream(int port, const std::string& path, const std::string& body,
                 std::chrono::seconds timeout, std::string& raw);
// Appends everything until the peer closes (or a read times out) to `raw`.
void read_to_end(int fd, std::string& raw);
// Parses a complete raw response (status line, headers, chunked or plain body).
HttpResult parse_response(const std::string& raw);
// The `data:` payloads of a server-sent-event body, in order.
std::vector<std::string> sse_payloads(const std::string& body);

class ServerProcess {
 public:
  // Starts `moon serve --host 127.0.0.1 --port 0 <args>` and waits until /health answers.
  explicit ServerProcess(const std::vector<std::string>& args);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;

  bool ready() const { return port_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;  // what the server wrote to stderr
  // Sends `signal` (0: none, just wait for an exit already under way) and waits (bounded)
  // for exit; the exit status, or nullopt on timeout.
  std::optional<int> stop(int signal, std::chrono::milliseconds timeout);
  // Threads of the server process (from /proc/<pid>/status).
  int thread_count() const;
  // Resident memory of the server process in bytes (VmRSS in /proc/<pid>/status); -1 if unknown.
  int64_t resident_bytes() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace moon::test
