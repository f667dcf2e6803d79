#pragma once
/// parley::result<T>: a value or an error, for failures that come from outside the
/// process (Redis, Postgres, a peer, a channel, user input). Broken internal
/// invariants abort instead. Header-only; no CAF, so every src/ library may use it.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace parley {

/// What went wrong, for a log line, a metric label and an HTTP error body.
/// `code` is a short stable identifier (`redis_unavailable`, `bad_config`);
/// `message` is one human sentence that names the thing at fault.
struct error {
  std::string code;
  std::string message;
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error err) : v_(std::move(err)) {}  // NOLINT: implicit by design
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const error& err() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, error> v_;
};

/// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)) {}  // NOLINT: implicit by design
  bool ok() const noexcept { return !err_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const {
    assert(!ok());
    return *err_;
  }

 private:
  std::optional<error> err_;
};

inline error make_error(std::string code, std::string message) {
  return error{std::move(code), std::move(message)};
}

}  // namespace parley
