#include "errors.h"

namespace wc {
namespace {

struct InstanceData {
  Napi::FunctionReference errorFactory;
};

InstanceData* Data(Napi::Env env) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data == nullptr) {
    data = new InstanceData();
    env.SetInstanceData(data);
  }
  return data;
}

}  // namespace

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) return ThrowType(info.Env(), "setErrorFactory expects a function");
  Data(info.Env())->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context,
                       const std::string& kernelMessage) {
  auto& factory = Data(env)->errorFactory;
  if (factory.IsEmpty()) {
    // Only reachable if the addon is loaded without src/native.ts; still give a usable error.
    Napi::Error e = Napi::Error::New(env, syscall + " failed: errno " + std::to_string(err) + " " + context + " " + kernelMessage);
    e.Set("errno", Napi::Number::New(env, err));
    e.Set("syscall", Napi::String::New(env, syscall));
    if (!env.IsExceptionPending()) napi_throw(env, e.Value());
    return env.Undefined();
  }
  Napi::Value error = factory.Call({Napi::Number::New(env, err), Napi::String::New(env, syscall),
                                    Napi::String::New(env, context), Napi::String::New(env, kernelMessage)});
  if (!env.IsExceptionPending()) napi_throw(env, error);
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  // node-addon-api's ThrowAsJavaScriptException aborts the process when napi_throw fails, as it
  // does with an exception already pending or in a worker being terminated (a shard stopped while
  // it starts): then the pending exception or the termination wins, and this one is dropped.
  Napi::Value error = Napi::TypeError::New(env, message).Value();
  if (!env.IsExceptionPending()) napi_throw(env, error);
  return env.Undefined();
}

}  // namespace wc
