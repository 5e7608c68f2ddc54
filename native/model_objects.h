// The JavaScript-facing model objects: EncodecModel around a codec Session (model.cc) and EncodecLm around an
// LmSession (lm_model.cc), both one template. An object is made only by NewInstance from a loaded session; it
// shares the session with its in-flight workers, so dispose() during a call frees it once that call ends. Every
// method or getter reads the live session (or throws ENCODEC_DISPOSED), checks its arguments and queues a worker
// (promise_worker.h); failures become JS errors with a code.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "lm_session.h"
#include "session.h"

namespace encodec {

template <typename SessionT>
class ModelObject : public Napi::ObjectWrap<ModelObject<SessionT>> {
 public:
  using SessionType = SessionT;
  using Wrap = Napi::ObjectWrap<ModelObject<SessionT>>;

  // A method or getter beside the common ones: `call(info, live session)`.
  struct Member {
    const char* name;
    Napi::Value (*call)(const Napi::CallbackInfo& info, std::shared_ptr<SessionT> session);
    bool getter;
  };
  // What differs between the codec's object and the LM's (defined in model.cc / lm_model.cc).
  struct Traits {
    const char* class_name;  // "EncodecModel"
    const char* noun;        // "model", in the disposed error
    const char* loader;      // "load", the JS function that makes one
    Napi::FunctionReference Addon::*constructor;
    std::vector<Member> members;
  };
  static const Traits kTraits;

  // A getter of the session's value `Get` (a const member function returning a string, bool or number).
  template <auto Get>
  static Member Getter(const char* name) {
    return {name, [](const Napi::CallbackInfo& info, std::shared_ptr<SessionT> s) { return ToJs(info.Env(), ((*s).*Get)()); },
            true};
  }

  // The JS class: kTraits.members, then dispose(), metadata, threads and disposed.
  static Napi::Function DefineClass(Napi::Env env) {
    std::vector<typename Wrap::PropertyDescriptor> properties;
    for (const Member& m : kTraits.members) {
      void* data = const_cast<Member*>(&m);  // kTraits is static: the address stays valid
      properties.push_back(m.getter ? Wrap::InstanceAccessor(m.name, &ModelObject::Dispatch, nullptr, napi_default, data)
                                    : Wrap::InstanceMethod(m.name, &ModelObject::Dispatch, napi_default, data));
    }
    properties.push_back(Wrap::InstanceMethod("dispose", &ModelObject::Dispose));
    properties.push_back(Wrap::InstanceAccessor("metadata", &ModelObject::Dispatch, nullptr, napi_default, &metadata_));
    properties.push_back(Wrap::InstanceAccessor("threads", &ModelObject::Dispatch, nullptr, napi_default, &threads_));
    properties.push_back(Wrap::InstanceAccessor("disposed", &ModelObject::Disposed, nullptr));
    return Wrap::DefineClass(env, kTraits.class_name, properties);
  }

  // Creates the JS object for a loaded session (the only way to make one).
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<SessionT> session) {
    Napi::FunctionReference& constructor = env.GetInstanceData<Addon>()->*kTraits.constructor;
    return constructor.New({Napi::External<std::shared_ptr<SessionT>>::New(env, &session)});
  }

  explicit ModelObject(const Napi::CallbackInfo& info) : Wrap(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      MakeJsError(info.Env(), {ErrorKind::Type, ErrorCode::BadInput,
                               std::string(kTraits.class_name) + " cannot be constructed directly; use " +
                                   kTraits.loader + "(path, options)"})
          .ThrowAsJavaScriptException();
      return;
    }
    session_ = *info[0].As<Napi::External<std::shared_ptr<SessionT>>>().Data();
  }

 private:
  // Every member but dispose and disposed: the live session, or ENCODEC_DISPOSED naming the member.
  Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    const auto* member = static_cast<const Member*>(info.Data());
    return Guard(info.Env(), [&]() -> Napi::Value {
      if (!session_) {
        throw NativeError(ErrorKind::Generic,
                          std::string("cannot call ") + member->name + "(): the " + kTraits.noun +
                              " was disposed; load it again with " + kTraits.loader + "()",
                          ErrorCode::Disposed);
      }
      return member->call(info, session_);
    });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    session_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !session_); }

  static Napi::Value ToJs(Napi::Env env, const std::string& value) { return Napi::String::New(env, value); }
  static Napi::Value ToJs(Napi::Env env, bool value) { return Napi::Boolean::New(env, value); }
  static Napi::Value ToJs(Napi::Env env, int64_t value) { return Napi::Number::New(env, static_cast<double>(value)); }
  static Napi::Value ToJs(Napi::Env env, int value) { return Napi::Number::New(env, value); }

  static inline Member metadata_ = Getter<&SessionT::metadata>("metadata");
  static inline Member threads_ = Getter<&SessionT::threads>("threads");

  std::shared_ptr<SessionT> session_;
};

using EncodecModel = ModelObject<Session>;
using EncodecLm = ModelObject<LmSession>;
template <>
const EncodecModel::Traits EncodecModel::kTraits;
template <>
const EncodecLm::Traits EncodecLm::kTraits;

// load(path, { device, threads }) -> Promise<EncodecModel> (model.cc)
Napi::Value LoadModelJs(const Napi::CallbackInfo& info);
// loadLm(path, { threads?, jobs? }) -> Promise<EncodecLm>; threads: intra-op threads of the LM's steps, default 1;
// jobs: segments compressed at once, default 1 (lm_model.cc)
Napi::Value LoadLmJs(const Napi::CallbackInfo& info);

}  // namespace encodec
