// A value or the reason there is none. Decoders of saved state return it, so
// a caller can never mistake an unreadable entry for an absent or default one.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace cdr {

struct failure {
  std::string reason;
};

template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor): a value is a success
  result(failure f) : v_(std::move(f)) {}    // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  // The value; throws std::logic_error on a failure (a caller that did not check).
  const T& value() const& { return std::get<0>(checked()); }
  T& value() & { return std::get<0>(checked()); }
  T&& value() && { return std::move(std::get<0>(checked())); }
  const T* operator->() const { return &value(); }
  const T& operator*() const& { return value(); }
  // The reason; empty on success.
  const std::string& error() const {
    static const std::string none;
    return ok() ? none : std::get<1>(v_).reason;
  }

 private:
  std::variant<T, failure>& checked() {
    if (!ok()) throw std::logic_error("result: value() of a failure: " + std::get<1>(v_).reason);
    return v_;
  }
  const std::variant<T, failure>& checked() const {
    if (!ok()) throw std::logic_error("result: value() of a failure: " + std::get<1>(v_).reason);
    return v_;
  }
  std::variant<T, failure> v_;
};

}  // namespace cdr
