// The one shape every failed request takes on the wire, OpenAI's:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "n", "code": null}}
// Handlers build an ApiError instead of writing bodies themselves, so a client library's
// error parsing works the same for every endpoint and status code.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace moon::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending request field; "" when none
  std::string code;   // a machine-readable code; "" when none
};

inline ApiError invalid_request(std::string message, std::string param = {}) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), {}};
}

inline nlohmann::json error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  err["code"] = e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code);
  return {{"error", err}};
}

}  // namespace moon::server
