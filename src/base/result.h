#pragma once
// Result<T>: a value or an Error, for every expected failure (bad input,
// unknown function, environment trouble). Our own bugs use NIMBUS_CHECK.

#include <utility>
#include <variant>

#include "base/check.h"
#include "base/error.h"

namespace nimbus::base {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    NIMBUS_CHECK(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    NIMBUS_CHECK(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    NIMBUS_CHECK(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    NIMBUS_CHECK(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    NIMBUS_CHECK(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that yields nothing but can fail.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace nimbus::base

// Propagates the error of a Result expression, else yields nothing.
#define NIMBUS_TRY(expr)                                     \
  do {                                                       \
    auto&& nimbus_try_r_ = (expr);                           \
    if (!nimbus_try_r_.ok()) return std::move(nimbus_try_r_).error(); \
  } while (0)

// Propagates the error of a Result expression, else moves its value into
// `lhs` (an existing lvalue).
#define NIMBUS_TRY_ASSIGN(lhs, expr)                                  \
  do {                                                                \
    auto&& nimbus_try_r_ = (expr);                                    \
    if (!nimbus_try_r_.ok()) return std::move(nimbus_try_r_).error(); \
    (lhs) = std::move(*nimbus_try_r_);                                \
  } while (0)
