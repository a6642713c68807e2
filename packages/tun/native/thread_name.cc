// Names the calling thread (as `top -H` and /proc/PID/task/TID/comm show it):
// data-plane shards call it from their worker threads.
#include <pthread.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace wctun {

Napi::Value SetThreadName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "name must be a string");
    return env.Undefined();
  }
  // The kernel keeps 15 bytes and a NUL.
  std::string name = info[0].As<Napi::String>().Utf8Value().substr(0, 15);
  int rc = pthread_setname_np(pthread_self(), name.c_str());
  if (rc != 0) return ThrowErrno(env, rc, "pthread_setname_np");
  return env.Undefined();
}

}  // namespace wctun
