// Parses a request body into JSON without trusting it. nlohmann::json's DOM parser throws
// out_of_range for a number that overflows a double (which nothing caught: one request took
// the server down), and builds arbitrarily deep values that later recursive copies overflow
// the stack on. This parser builds the DOM from SAX events instead, so both become a 400
// that names where in the body the problem is, found before any value is built past the
// depth limit.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <variant>

#include "server/api_error.h"

namespace moon::server {

// How deeply objects and arrays may nest in a request body. OpenAI's chat messages need
// about 5 levels; tool schemas a few more.
inline constexpr int kMaxJsonDepth = 64;

std::variant<nlohmann::json, ApiError> parse_json_body(std::string_view body,
                                                       int max_depth = kMaxJsonDepth);
// The same keeping each object's keys in the order the body wrote them: JSON schemas, whose
// property order is the order the model writes them in.
std::variant<nlohmann::ordered_json, ApiError> parse_ordered_json_body(
    std::string_view body, int max_depth = kMaxJsonDepth);

}  // namespace moon::server
