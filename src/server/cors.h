// Cross-origin access for browser clients: --allowed-origins (vLLM's flag, and its default "*").
// Every answer tells the browser whether the calling page's origin may read it
// (Access-Control-Allow-Origin); a preflight (OPTIONS) also says which methods and request
// headers the real request may use. Preflights carry no credentials (the Fetch standard), so
// they pass without the API key (request_gate.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http_connection.h"
#include "util/result.h"

namespace moon::server {

class CorsPolicy {
 public:
  CorsPolicy() = default;  // any origin
  // A comma-separated list of origins ("https://app.example.com:8443"), or "*" for any; ""
  // allows none. Scheme and host compare case-insensitively; a trailing "/" is dropped.
  static Result<CorsPolicy> parse(std::string_view list);

  bool allows(std::string_view origin) const;
  // What every answer to a request with this Origin header ("" when it has none) carries:
  // Access-Control-Allow-Origin when the origin may read it, and Vary: Origin when the answer
  // depends on the origin.
  HeaderList headers(std::string_view origin) const;
  // What a preflight answer adds for an allowed origin: the methods, the request headers
  // (those asked for in Access-Control-Request-Headers, else the ones clients send), how long
  // the browser may cache this. Nothing for an origin that is not allowed.
  HeaderList preflight_headers(std::string_view origin, std::string_view requested_headers) const;

 private:
  bool any_ = true;
  std::vector<std::string> origins_;  // lower-cased
};

}  // namespace moon::server
