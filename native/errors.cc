#include "errors.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace encodec {

namespace {
std::atomic<uint64_t> allocation_failures{0};
}  // namespace

uint64_t AllocationFailures() { return allocation_failures.load(); }
void CountAllocationFailure() { allocation_failures.fetch_add(1); }

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::BadInput: return "ENCODEC_BAD_INPUT";
    case ErrorCode::ModelFile: return "ENCODEC_MODEL_FILE";
    case ErrorCode::CudaUnavailable: return "ENCODEC_CUDA_UNAVAILABLE";
    case ErrorCode::OutOfMemory: return "ENCODEC_OOM";
    case ErrorCode::Disposed: return "ENCODEC_DISPOSED";
    case ErrorCode::Torch: return "ENCODEC_TORCH";
    case ErrorCode::Internal: return "ENCODEC_INTERNAL";
  }
  return "ENCODEC_INTERNAL";
}

Napi::Error MakeJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = info.kind == ErrorKind::Type    ? Napi::TypeError::New(env, info.message)
                      : info.kind == ErrorKind::Range ? Napi::RangeError::New(env, info.message)
                                                      : Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, ErrorCodeName(info.code)));
  return error;
}

ErrorInfo DescribeCurrentException() {
  ErrorInfo info;
  try {
    throw;
  } catch (const NativeError& e) {
    info.kind = e.kind();
    info.code = e.code();
    info.message = e.what();
  } catch (const c10::OutOfMemoryError& e) {
    info.code = ErrorCode::OutOfMemory;
    info.message = std::string("out of memory: ") + e.what_without_backtrace();
  } catch (const c10::Error& e) {
    // what() carries a long C++ backtrace; users need the message only.
    info.code = ErrorCode::Torch;
    info.message = std::string("libtorch: ") + e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    info.code = ErrorCode::OutOfMemory;
    info.message = "out of memory: the input is too large for the available memory; encode shorter pieces";
  } catch (const std::exception& e) {
    // libtorch's other exceptions (the TorchScript interpreter rethrows an operator's as std::runtime_error)
    info.code = ErrorCode::Torch;
    info.message = e.what();
  } catch (...) {
    info.code = ErrorCode::Internal;
    info.message = "unknown native error";
  }
  return info;
}

}  // namespace encodec
