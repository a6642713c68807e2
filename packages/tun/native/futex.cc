// futexWait(i32, index, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out'
// futexWake(i32, index, count) -> number woken
#include "futex.h"

#include <linux/futex.h>
#include <napi.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "typed_view.h"

namespace wctun {

// Private futexes: every party is a thread of this one process.
int FutexWait(int32_t* word, int32_t expected, int timeoutMs) {
  timespec ts{timeoutMs / 1000, static_cast<long>(timeoutMs % 1000) * 1000000L};
  long rc = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeoutMs < 0 ? nullptr : &ts, nullptr, 0);
  if (rc == 0 || errno == EINTR) return 0;
  return errno;
}

int FutexWake(int32_t* word, int32_t count) {
  long rc = syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

namespace {

// The word `index` of an Int32Array, or nullptr after throwing.
int32_t* WordAt(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  Int32View view;
  if (!GetInt32View(info[0], &view)) {
    ThrowType(env, std::string(fn) + " expects an Int32Array over a SharedArrayBuffer");
    return nullptr;
  }
  int64_t index;
  if (!IntValue(env, info[1], "index", &index)) return nullptr;
  if (index < 0 || static_cast<size_t>(index) >= view.length) {
    ThrowType(env, std::string(fn) + ": index " + std::to_string(index) + " is outside the array");
    return nullptr;
  }
  return view.data + index;
}

}  // namespace

Napi::Value FutexWaitJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = WordAt(info, "futexWait");
  if (word == nullptr) return env.Undefined();
  int64_t expected;
  if (!IntValue(env, info[2], "expected", &expected)) return env.Undefined();
  if (!info[3].IsNumber()) return ThrowType(env, "timeoutMs must be a number (Infinity: no limit)");
  double ms = info[3].As<Napi::Number>().DoubleValue();
  int timeout = std::isfinite(ms) ? static_cast<int>(std::fmax(0.0, std::fmin(ms, 2147483647.0))) : -1;
  int rc = FutexWait(word, static_cast<int32_t>(expected), timeout);
  if (rc == 0) return Napi::String::New(env, "ok");
  if (rc == EAGAIN) return Napi::String::New(env, "not-equal");
  if (rc == ETIMEDOUT) return Napi::String::New(env, "timed-out");
  return ThrowErrno(env, rc, "futex(FUTEX_WAIT)", "futexWait");
}

Napi::Value FutexWakeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = WordAt(info, "futexWake");
  if (word == nullptr) return env.Undefined();
  int64_t count;
  if (!IntValue(env, info[2], "count", &count)) return env.Undefined();
  if (count < 0) return ThrowType(env, "futexWake: count must not be negative");
  int rc = FutexWake(word, static_cast<int32_t>(count));
  if (rc < 0) return ThrowErrno(env, -rc, "futex(FUTEX_WAKE)", "futexWake");
  return Napi::Number::New(env, rc);
}

}  // namespace wctun
