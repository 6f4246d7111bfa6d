// What is decided about a request from its header alone. HttpConnection asks before it reads
// the body, so that a client the server would refuse anyway cannot first make it buffer (up to
// --max-body-bytes of) body per connection.
//
// The announced size is judged at the same stage by Beast's parser, which fails the header
// with error::body_limit when Content-Length exceeds the connection's body limit.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/api_error.h"
#include "server/asio.h"

namespace moon::server {

// The request target without its query string.
std::string_view path_of(std::string_view target);

// Routes that answer without an API key: health probes and metric scrapers carry none.
bool is_open_route(std::string_view path);

// The refusal for a request whose header already disqualifies it (no valid API key on a route
// that needs one); nullopt lets the body be read and the request routed. CORS preflights
// (OPTIONS) pass: browsers send them without credentials.
std::optional<ApiError> check_request_header(const boost::beast::http::request_header<>& header,
                                             const std::string& api_key);

}  // namespace moon::server
