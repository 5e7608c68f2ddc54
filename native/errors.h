// Errors that cross from libtorch/C++ into JavaScript: each becomes a JS error of a class (Error, TypeError,
// RangeError) with a message and a stable `code` (lib/common/errors.ts lists the codes; docs/errors.md).
#pragma once

#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace encodec {

// Which JavaScript error class a failure becomes.
enum class ErrorKind { Generic, Type, Range };

// The error's `code` in JavaScript.
enum class ErrorCode { BadInput, ModelFile, CudaUnavailable, OutOfMemory, Disposed, Torch, Internal };

// "ENCODEC_BAD_INPUT", ...
const char* ErrorCodeName(ErrorCode code);

// A failure this addon detected itself (bad input, a bad model file, ...), with its JS class and code.
class NativeError : public std::runtime_error {
 public:
  NativeError(ErrorKind kind, const std::string& message, ErrorCode code = ErrorCode::BadInput)
      : std::runtime_error(message), kind_(kind), code_(code) {}
  ErrorKind kind() const { return kind_; }
  ErrorCode code() const { return code_; }

 private:
  ErrorKind kind_;
  ErrorCode code_;
};

// What a C++ exception becomes in JavaScript.
struct ErrorInfo {
  ErrorKind kind = ErrorKind::Generic;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

// Builds the JS error object (class, message, code).
Napi::Error MakeJsError(Napi::Env env, const ErrorInfo& info);

// Runs `fn`, turning any C++ exception into a JS exception (for synchronous entry points).
// Returns an empty value when an exception was thrown into JS.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn);

// The exception in flight as a JS error's class, code and message (without libtorch's C++ backtrace).
// Call inside catch.
ErrorInfo DescribeCurrentException();

// Allocation failures seen by the addon's CPU allocator so far (allocator.cc). The TorchScript interpreter
// rethrows an operator's exception as a plain std::runtime_error, so a call that failed while this count grew
// ran out of memory, whatever the type of what arrives.
uint64_t AllocationFailures();
void CountAllocationFailure();

}  // namespace encodec

#include "errors-inl.h"
