#include <napi.h>

#include "errors.h"
#include "exports.h"

namespace wctun {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("TunQueue", DefineQueue(env));
  return exports;
}

}  // namespace wctun

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return wctun::Init(env, exports); }

NODE_API_MODULE(tun, InitModule)
