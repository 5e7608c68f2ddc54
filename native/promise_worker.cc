#include "promise_worker.h"

#include "call_threads.h"

namespace encodec {

PromiseWorker::PromiseWorker(Napi::Env env, const char* name)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

void PromiseWorker::Execute() {
  try {
    RunOnCallThread([this] { Run(); });
  } catch (...) {
    failed_ = true;
    error_ = DescribeCurrentException();
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (failed_) {
    deferred_.Reject(MakeJsError(env, error_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(MakeJsError(env, DescribeCurrentException()).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace encodec
