// Decimal integers in a range as GBNF: the digit grammar behind JSON Schema's integer
// bounds, with no leading zeros, up to 16 digits (as json-uint).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moon::grammar {

inline constexpr uint64_t kMaxUint = 9999999999999999ull;  // 16 digits, as json-uint

// Alternatives as one GBNF expression.
std::string group(const std::vector<std::string>& alts);

// Non-negative integers in [a, b] (a <= b <= kMaxUint) without leading zeros.
std::string uint_range(uint64_t a, uint64_t b);

}  // namespace moon::grammar
