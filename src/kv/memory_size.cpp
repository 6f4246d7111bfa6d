#include "kv/memory_size.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <limits>
#include <sstream>

namespace moon {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Unit {
  std::string_view name;  // lower case
  uint64_t multiplier;
};

constexpr uint64_t kKi = 1024, kK = 1000;
constexpr std::array<Unit, 14> kUnits = {{
    {"", 1},
    {"b", 1},
    {"k", kKi},
    {"kib", kKi},
    {"m", kKi* kKi},
    {"mib", kKi* kKi},
    {"g", kKi* kKi* kKi},
    {"gib", kKi* kKi* kKi},
    {"t", kKi* kKi* kKi* kKi},
    {"tib", kKi* kKi* kKi* kKi},
    {"kb", kK},
    {"mb", kK* kK},
    {"gb", kK* kK* kK},
    {"tb", kK* kK* kK* kK},
}};

}  // namespace

Result<uint64_t> parse_memory_size(std::string_view text) {
  const std::string_view s = trim(text);
  if (s.empty()) return make_error("empty memory size: expected e.g. 4GiB, 512MiB or 123 (bytes)");
  if (s.front() == '-') return make_error("memory size '{}' is negative", text);
  if (s.front() == '+') return make_error("memory size '{}': write it without a sign", text);

  // Exact arithmetic in 128 bits: int_part * unit + frac_digits * unit / 10^num_frac_digits.
  using u128 = unsigned __int128;
  constexpr u128 kMax = std::numeric_limits<uint64_t>::max();
  size_t i = 0;
  u128 int_part = 0, frac_part = 0, frac_scale = 1;
  size_t num_digits = 0;
  for (; i < s.size() && is_digit(s[i]); ++i, ++num_digits) {
    int_part = int_part * 10 + static_cast<u128>(s[i] - '0');
    if (int_part > kMax) return make_error("memory size '{}' is too large", text);
  }
  bool has_fraction = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (; i < s.size() && is_digit(s[i]); ++i, ++num_digits) {
      // Digits past the 18th cannot change the rounded-down byte count of any valid size.
      if (frac_scale < u128{1'000'000'000'000'000'000ull}) {
        frac_part = frac_part * 10 + static_cast<u128>(s[i] - '0');
        frac_scale *= 10;
      }
      has_fraction |= s[i] != '0';
    }
  }
  if (num_digits == 0) {
    return make_error("memory size '{}' does not start with a number (e.g. 4GiB, 512MiB)", text);
  }
  const std::string unit_text = lower(trim(s.substr(i)));
  const auto unit = std::find_if(kUnits.begin(), kUnits.end(),
                                 [&](const Unit& u) { return u.name == unit_text; });
  uint64_t multiplier;
  if (unit != kUnits.end()) {
    multiplier = unit->multiplier;
  } else if (!unit_text.empty() && (is_digit(unit_text[0]) || unit_text[0] == '.')) {
    return make_error("memory size '{}' is not a number", text);
  } else {
    return make_error(
        "memory size '{}' has unknown unit '{}': use B, KiB, MiB, GiB, TiB (powers of 1024) or "
        "KB, MB, GB, TB (powers of 1000)",
        text, trim(s.substr(i)));
  }
  if (multiplier == 1 && has_fraction) {
    return make_error("memory size '{}' is a fraction of a byte: give a unit (e.g. {}GiB)", text,
                      trim(s.substr(0, i)));
  }
  const u128 bytes = int_part * multiplier + frac_part * multiplier / frac_scale;
  if (bytes > kMax) return make_error("memory size '{}' is too large", text);
  return static_cast<uint64_t>(bytes);
}

Result<uint64_t> parse_mem_available(std::string_view meminfo) {
  std::istringstream lines{std::string(meminfo)};
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("MemAvailable:")) continue;
    std::istringstream fields(line.substr(13));
    uint64_t value = 0;
    std::string unit;
    if (!(fields >> value >> unit) || unit != "kB") {
      return make_error("unreadable MemAvailable line in /proc/meminfo: '{}'", line);
    }
    if (value > std::numeric_limits<uint64_t>::max() / 1024) {
      return make_error("MemAvailable in /proc/meminfo is out of range: '{}'", line);
    }
    return value * 1024;  // the kernel's "kB" is KiB
  }
  return make_error(
      "/proc/meminfo has no MemAvailable line (Linux older than 3.14?): give the KV cache size "
      "explicitly");
}

uint64_t default_kv_budget_for(uint64_t mem_available) {
  return std::min(mem_available / 5 * 2, kMaxDefaultKvBudget);
}

Result<uint64_t> mem_available() {
  std::ifstream file("/proc/meminfo");
  if (!file) return make_error("cannot read /proc/meminfo");
  std::stringstream text;
  text << file.rdbuf();
  return parse_mem_available(text.str());
}

Result<uint64_t> default_kv_budget() {
  auto available = mem_available();
  if (!available.ok()) {
    return make_error("{} to size the KV cache: give its size explicitly",
                      available.error().message);
  }
  return default_kv_budget_for(*available);
}

}  // namespace moon
