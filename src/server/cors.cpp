#include "server/cors.h"

#include <algorithm>
#include <cctype>

namespace moon::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<CorsPolicy> CorsPolicy::parse(std::string_view list) {
  CorsPolicy policy;
  policy.any_ = false;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string_view entry = trim(list.substr(start, comma - start));
    start = comma + 1;
    if (entry.empty()) continue;
    if (entry == "*") {
      policy.any_ = true;
      continue;
    }
    // Browsers send the origin without a path; "https://a.example/" would never match.
    if (entry.size() > 1 && entry.back() == '/') entry.remove_suffix(1);
    const size_t scheme_end = entry.find("://");
    const bool is_origin = scheme_end != std::string_view::npos && scheme_end > 0 &&
                           scheme_end + 3 < entry.size() &&
                           entry.find('/', scheme_end + 3) == std::string_view::npos;
    // "null" is the origin of sandboxed frames and file:// pages.
    if (!is_origin && entry != "null") {
      return make_error(
          "--allowed-origins: '{}' is not an origin (scheme://host[:port], e.g. "
          "https://app.example.com), nor '*'",
          entry);
    }
    policy.origins_.push_back(lower(entry));
  }
  return policy;
}

bool CorsPolicy::allows(std::string_view origin) const {
  if (any_) return true;
  if (origin.empty()) return false;
  return std::find(origins_.begin(), origins_.end(), lower(origin)) != origins_.end();
}

HeaderList CorsPolicy::headers(std::string_view origin) const {
  if (any_) return {{"Access-Control-Allow-Origin", "*"}};
  // The answer differs by origin, so a shared cache must keep one per origin.
  HeaderList out = {{"Vary", "Origin"}};
  if (allows(origin)) out.emplace_back("Access-Control-Allow-Origin", std::string(origin));
  return out;
}

HeaderList CorsPolicy::preflight_headers(std::string_view origin,
                                         std::string_view requested_headers) const {
  if (!allows(origin)) return {};
  requested_headers = trim(requested_headers);
  return {{"Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS"},
          {"Access-Control-Allow-Headers", requested_headers.empty()
                                               ? std::string("Authorization, Content-Type")
                                               : std::string(requested_headers)},
          {"Access-Control-Max-Age", "600"}};  // Starlette's default, which vLLM serves with
}

}  // namespace moon::server
