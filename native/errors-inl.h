#pragma once

namespace encodec {

template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (...) {
    ErrorKind kind = ErrorKind::Generic;
    std::string message = DescribeCurrentException(&kind);
    MakeJsError(env, kind, message).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace encodec
