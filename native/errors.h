// Errors that cross from libtorch/C++ into JavaScript.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace encodec {

// Which JavaScript error class a failure becomes.
enum class ErrorKind { Generic, Type, Range };

// A problem with the caller's input (not a bug, not a libtorch failure).
class InputError : public std::runtime_error {
 public:
  InputError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Builds the JS error object for a kind and message.
Napi::Error MakeJsError(Napi::Env env, ErrorKind kind, const std::string& message);

// Runs `fn`, turning any C++ exception into a JS exception (for synchronous entry points).
// Returns an empty value when an exception was thrown into JS.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn);

// The message of the exception in flight, without libtorch's C++ backtrace. Call inside catch.
std::string DescribeCurrentException(ErrorKind* kind);

}  // namespace encodec

#include "errors-inl.h"
