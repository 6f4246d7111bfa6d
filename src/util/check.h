// Internal invariants. A violated one is a bug in moon, never bad input (input errors are
// Status results and HTTP 4xx): going on would corrupt state, such as a KV block handed out
// twice or a slot past the cache, so the process stops with the condition, where it failed
// and why. The message is formatted only on failure, so checks cost a compare on hot paths.
#pragma once

#include <fmt/format.h>

#include <string>

namespace moon::detail {
[[noreturn]] void check_failed(const char* condition, const char* file, int line,
                               const std::string& message);
}  // namespace moon::detail

// MOON_CHECK(cond, "fmt", args...): stops the process unless `cond` holds.
#define MOON_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) [[unlikely]] {                                                            \
      ::moon::detail::check_failed(#cond, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__)); \
    }                                                                                      \
  } while (0)

// MOON_FAIL("fmt", args...): a place that must not be reached (an unhandled enum value).
#define MOON_FAIL(...) \
  ::moon::detail::check_failed(nullptr, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__))
