// The functions and classes src/native.ts finds on the addon.
#pragma once
#include <napi.h>

namespace wctun {

Napi::Value OpenTun(const Napi::CallbackInfo& info);
Napi::Function DefineQueue(Napi::Env env);

}  // namespace wctun
