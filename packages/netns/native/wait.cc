// waitPidfd(): learn a child's exit without blocking the event loop or a pool thread.
// The pidfd becomes readable when the process exits; libuv polls it on the main loop,
// then waitid(P_PIDFD, WNOHANG) collects the status.
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>

#include "exports.h"
#include "glue.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace wc {
namespace {

struct Waiter {
  uv_poll_t poll;
  napi_env env;
  int pidfd;
  Napi::FunctionReference callback;
  Napi::ObjectReference resource;
  Napi::AsyncContext* context;
};

void Closed(uv_handle_t* handle) {
  auto* w = static_cast<Waiter*>(handle->data);
  delete w->context;
  delete w;
}

void Ready(uv_poll_t* handle, int status, int /*events*/) {
  auto* w = static_cast<Waiter*>(handle->data);
  siginfo_t si{};
  int err = 0;
  if (status < 0) {
    err = -status;
  } else if (waitid(static_cast<idtype_t>(P_PIDFD), w->pidfd, &si, WEXITED | WNOHANG) != 0) {
    err = errno;
    if (err == EINTR) return;  // poll again
  } else if (si.si_pid == 0) {
    return;  // woken without an exit; keep polling
  }
  uv_poll_stop(handle);

  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::Value code = env.Null(), signal = env.Null(), error = env.Null();
  if (err != 0) {
    error = Napi::Number::New(env, err);
  } else if (si.si_code == CLD_EXITED) {
    code = Napi::Number::New(env, si.si_status);
  } else {
    signal = Napi::Number::New(env, si.si_status);
  }
  // MakeCallback (not Call) so the promise reactions it triggers run right away.
  w->callback.MakeCallback(w->resource.Value(), {error, code, signal}, *w->context);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), Closed);
}

}  // namespace

// waitPidfd(pidfd, callback(errno|null, code|null, signal|null)); the callback runs exactly once.
Napi::Value WaitPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pidfd;
  if (!IntValue(env, info[0], "pidfd", &pidfd)) return env.Undefined();
  if (!info[1].IsFunction()) return ThrowType(env, "waitPidfd needs a callback");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowType(env, "no event loop");
  auto* w = new Waiter();
  w->env = env;
  w->pidfd = static_cast<int>(pidfd);
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->resource = Napi::Persistent(Napi::Object::New(env));
  w->context = new Napi::AsyncContext(env, "wirecage.waitPidfd", w->resource.Value());
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, w->pidfd);
  if (rc != 0) {
    delete w->context;
    delete w;
    return ThrowErrno(env, -rc, "uv_poll_init", "waiting for the command");
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, Ready);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), Closed);
    return ThrowErrno(env, -rc, "uv_poll_start", "waiting for the command");
  }
  return env.Undefined();
}

// pidfdSendSignal(pidfd, signal)
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pidfd, sig;
  if (!IntValue(env, info[0], "pidfd", &pidfd) || !IntValue(env, info[1], "signal", &sig)) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, static_cast<int>(pidfd), static_cast<int>(sig), nullptr, 0) != 0) {
    return ThrowErrno(env, errno, "pidfd_send_signal", "signalling the command");
  }
  return env.Undefined();
}

}  // namespace wc
