#include "server/request_gate.h"

#include "server/api_key.h"

namespace moon::server {

namespace http = boost::beast::http;

std::string_view path_of(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

bool is_open_route(std::string_view path) {
  return path == "/health" || path == "/ping" || path == "/metrics" || path == "/version";
}

std::optional<ApiError> check_request_header(const http::request_header<>& header,
                                             const std::string& api_key) {
  if (header.method() == http::verb::options) return std::nullopt;
  const auto target = header.target();
  if (is_open_route(path_of(std::string_view(target.data(), target.size())))) return std::nullopt;
  const auto authorization = header[http::field::authorization];
  if (authorized(std::string_view(authorization.data(), authorization.size()), api_key)) {
    return std::nullopt;
  }
  return ApiError{401,
                  "missing or invalid API key: send 'Authorization: Bearer <key>'",
                  "authentication_error",
                  {},
                  "invalid_api_key"};
}

}  // namespace moon::server
