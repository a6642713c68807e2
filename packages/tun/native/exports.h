// The functions and classes src/native.ts finds on the addon.
#pragma once
#include <napi.h>

namespace wctun {

Napi::Value OpenTun(const Napi::CallbackInfo& info);
Napi::Function DefineQueue(Napi::Env env);
Napi::Function DefineRingStep(Napi::Env env);
Napi::Function DefineUdpSocket(Napi::Env env);
Napi::Function DefineReadableWatch(Napi::Env env);
Napi::Value OpenUdpJs(const Napi::CallbackInfo& info);
Napi::Value SetThreadName(const Napi::CallbackInfo& info);
Napi::Value PollInJs(const Napi::CallbackInfo& info);
Napi::Value RingLayoutJs(const Napi::CallbackInfo& info);

}  // namespace wctun
