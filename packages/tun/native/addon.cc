#include <napi.h>

#include "errors.h"
#include "exports.h"

namespace wctun {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("TunQueue", DefineQueue(env));
  exports.Set("setThreadName", Napi::Function::New(env, SetThreadName, "setThreadName"));
  exports.Set("openUdp", Napi::Function::New(env, OpenUdpJs, "openUdp"));
  exports.Set("UdpSocket", DefineUdpSocket(env));
  exports.Set("RingStep", DefineRingStep(env));
  exports.Set("pollIn", Napi::Function::New(env, PollInJs, "pollIn"));
  exports.Set("ringLayout", Napi::Function::New(env, RingLayoutJs, "ringLayout"));
  exports.Set("ReadableWatch", DefineReadableWatch(env));
  return exports;
}

}  // namespace wctun

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return wctun::Init(env, exports); }

NODE_API_MODULE(tun, InitModule)
