// `--api-key`: requests must carry `Authorization: Bearer <key>`.
#pragma once

#include <string>
#include <string_view>

namespace moon::server {

// Compares in time that depends only on the lengths, so that response timing does not leak
// how many leading characters of a guess were right.
bool constant_time_equal(std::string_view a, std::string_view b);

// Whether an Authorization header value grants access when the server's key is `key`
// (an empty key: everything does).
bool authorized(std::string_view authorization_header, const std::string& key);

}  // namespace moon::server
