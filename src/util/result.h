// Error values for everything that crosses a boundary (files, user input, requests).
// Failures a user can cause are never asserts or exceptions escaping to main: they travel
// as a Result carrying a message the user can act on.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace moon {

struct Error {
  std::string message;
};

template <typename... Args>
Error make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status success() { return Status(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace moon

// Propagate an error from an expression yielding Status or Result<T>.
#define MOON_CONCAT_INNER(a, b) a##b
#define MOON_CONCAT(a, b) MOON_CONCAT_INNER(a, b)

#define MOON_TRY(expr)                 \
  do {                                 \
    auto moon_try_status_ = (expr);    \
    if (!moon_try_status_.ok()) {      \
      return moon_try_status_.error(); \
    }                                  \
  } while (0)

#define MOON_ASSIGN_OR_RETURN(lhs, expr)                \
  auto MOON_CONCAT(moon_result_, __LINE__) = (expr);    \
  if (!MOON_CONCAT(moon_result_, __LINE__).ok()) {      \
    return MOON_CONCAT(moon_result_, __LINE__).error(); \
  }                                                     \
  lhs = std::move(MOON_CONCAT(moon_result_, __LINE__)).value()
