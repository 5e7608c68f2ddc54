#pragma once

namespace encodec {

template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (...) {
    MakeJsError(env, DescribeCurrentException()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace encodec
