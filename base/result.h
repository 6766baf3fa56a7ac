// Errors as values. An Error carries one readable line with its context
// ("reading disk.qcow2: L1 table at 0x... lies past the end of the file");
// callers prepend their own context with Error::wrap. Impossible states abort
// instead (CH_CHECK); expected failures never throw.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ch {

struct Error {
  std::string message;
  // For remote failures: the service's error code ("NoSuchUpload",
  // "InvalidAMIName.Duplicate") and HTTP status, so callers can branch on
  // them; empty/0 otherwise. The message already quotes both.
  std::string code = {};
  long http_status = 0;
  // "context: message"
  Error wrap(const std::string& context) const {
    return Error{context + ": " + message, code, http_status};
  }
};

class Status {
 public:
  Status() = default;
  Status(Error e) : error_(std::move(e)) {}  // NOLINT: implicit by design
  bool ok() const { return !error_; }
  const Error& error() const { return *error_; }
  const std::string& message() const { return error_->message; }

 private:
  std::optional<Error> error_;
};

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT
  Result(Error e) : v_(std::move(e)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }
  const std::string& message() const { return error().message; }

 private:
  std::variant<T, Error> v_;
};

inline Status ok_status() { return Status(); }

}  // namespace ch

// Returns the error of a Status/Result expression from the enclosing function.
#define CH_TRY(expr)                                  \
  do {                                                \
    auto&& ch_try_r_ = (expr);                        \
    if (!ch_try_r_.ok()) return ch_try_r_.error();    \
  } while (0)

// Declares `var` from a Result expression or returns its error.
#define CH_ASSIGN(var, expr)                          \
  auto var##_result_ = (expr);                        \
  if (!var##_result_.ok()) return var##_result_.error(); \
  auto var = std::move(var##_result_).value()

// For states the program cannot reach unless it has a bug.
#define CH_CHECK(cond)                                                      \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "cloud_helper: internal error: %s at %s:%d\n",   \
                   #cond, __FILE__, __LINE__);                              \
      std::abort();                                                         \
    }                                                                       \
  } while (0)
