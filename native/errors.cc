#include "errors.h"

#include <c10/util/Exception.h>

namespace encodec {

Napi::Error MakeJsError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type:
      return Napi::TypeError::New(env, message);
    case ErrorKind::Range:
      return Napi::RangeError::New(env, message);
    default:
      return Napi::Error::New(env, message);
  }
}

std::string DescribeCurrentException(ErrorKind* kind) {
  *kind = ErrorKind::Generic;
  try {
    throw;
  } catch (const InputError& e) {
    *kind = e.kind();
    return e.what();
  } catch (const c10::Error& e) {
    // what() carries a long C++ backtrace; users need the message only.
    return std::string("libtorch: ") + e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    return "out of memory: the input is too large for the available memory; encode shorter pieces";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

}  // namespace encodec
