// Turning errno values into the addon's typed JS error (its src/errors.ts class, registered by
// @wirecage/napi-glue's loadAddon), and TypeErrors for bad arguments. Header-only, as
// node-addon-api is: an addon needs only this directory among its include_dirs.
#pragma once
#include <napi.h>
#include <string>

namespace wcglue {

namespace detail {

struct InstanceData {
  Napi::FunctionReference errorFactory;
};

inline InstanceData* Data(Napi::Env env) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data == nullptr) {
    data = new InstanceData();
    env.SetInstanceData(data);
  }
  return data;
}

// node-addon-api's ThrowAsJavaScriptException aborts the process when napi_throw fails, as it
// does with an exception already pending or in a worker being terminated (a shard stopped while
// it starts): then the pending exception or the termination wins, and this one is dropped.
inline Napi::Value Throw(Napi::Env env, Napi::Value error) {
  if (!env.IsExceptionPending()) napi_throw(env, error);
  return env.Undefined();
}

}  // namespace detail

// Throws a TypeError for a bad argument from JS; returns undefined so callers can `return ThrowType(...)`.
inline Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  return detail::Throw(env, Napi::TypeError::New(env, message).Value());
}

// Registers the JS factory (errno, syscall, context, kernelMessage) => Error; loadAddon calls it once per addon.
inline Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) return ThrowType(info.Env(), "setErrorFactory expects a function");
  detail::Data(info.Env())->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// Builds the typed error for `err` (a positive errno). `context` says what was being done;
// `kernelMessage` is the kernel's own explanation (rtnetlink's extended ack), if any.
inline Napi::Value MakeErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context = "",
                             const std::string& kernelMessage = "") {
  auto& factory = detail::Data(env)->errorFactory;
  if (factory.IsEmpty()) {
    // Only reachable when the addon is loaded without loadAddon; still give a usable error.
    Napi::Error e = Napi::Error::New(env, (context.empty() ? "" : context + ": ") + syscall + " failed: errno " +
                                              std::to_string(err) + (kernelMessage.empty() ? "" : ": " + kernelMessage));
    e.Set("errno", Napi::Number::New(env, err));
    e.Set("syscall", Napi::String::New(env, syscall));
    return e.Value();
  }
  return factory.Call({Napi::Number::New(env, err), Napi::String::New(env, syscall), Napi::String::New(env, context),
                       Napi::String::New(env, kernelMessage)});
}

// Throws MakeErrno(...); returns undefined so callers can `return ThrowErrno(...)`.
inline Napi::Value ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context = "",
                              const std::string& kernelMessage = "") {
  return detail::Throw(env, MakeErrno(env, err, syscall, context, kernelMessage));
}

}  // namespace wcglue
