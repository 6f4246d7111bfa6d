#include "grammar/integer_range.h"

#include <fmt/format.h>

#include <algorithm>

#include "grammar/gbnf.h"

namespace moon::grammar {
namespace {

std::string digits_class(char lo, char hi) {
  return lo == hi ? gbnf_literal(std::string(1, lo)) : fmt::format("[{}-{}]", lo, hi);
}

// Decimal strings of one length from x to y (x <= y), as GBNF.
std::string same_length_range(const std::string& x, const std::string& y) {
  if (x.empty()) return "";
  if (x == y) return gbnf_literal(x);
  size_t i = 0;
  while (x[i] == y[i]) ++i;
  const std::string prefix = x.substr(0, i);
  const std::string xs = x.substr(i + 1), ys = y.substr(i + 1);
  const size_t n = xs.size();
  const bool low_full = std::all_of(xs.begin(), xs.end(), [](char c) { return c == '0'; });
  const bool high_full = std::all_of(ys.begin(), ys.end(), [](char c) { return c == '9'; });
  const std::string any_tail = n == 0 ? "" : fmt::format(" [0-9]{{{}}}", n);
  std::vector<std::string> alts;
  if (!low_full)
    alts.push_back(gbnf_literal(std::string(1, x[i])) + " " +
                   same_length_range(xs, std::string(n, '9')));
  const char mid_lo = static_cast<char>(x[i] + (low_full ? 0 : 1));
  const char mid_hi = static_cast<char>(y[i] - (high_full ? 0 : 1));
  if (mid_lo <= mid_hi) alts.push_back(digits_class(mid_lo, mid_hi) + any_tail);
  if (!high_full)
    alts.push_back(gbnf_literal(std::string(1, y[i])) + " " +
                   same_length_range(std::string(n, '0'), ys));
  std::string body = group(alts);
  return prefix.empty() ? body : gbnf_literal(prefix) + " " + body;
}

}  // namespace

std::string group(const std::vector<std::string>& alts) {
  return alts.size() == 1 ? alts[0] : fmt::format("({})", fmt::join(alts, " | "));
}

std::string uint_range(uint64_t a, uint64_t b) {
  std::vector<std::string> alts;
  const auto digits = [](uint64_t v) { return std::to_string(v).size(); };
  uint64_t p = 1;
  for (size_t n = 1; n <= digits(b); ++n, p *= 10) {
    const uint64_t lo = std::max(a, n == 1 ? 0 : p), hi = std::min(b, p * 10 - 1);
    if (lo > hi) continue;
    alts.push_back(same_length_range(std::to_string(lo), std::to_string(hi)));
  }
  return group(alts);
}

}  // namespace moon::grammar
