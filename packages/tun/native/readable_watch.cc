// new ReadableWatch(fd, callback): the main loop calls back when fd is
// readable and reads nothing; the caller reads (the inline shard of workers 0
// reads its fds itself). The watch polls a dup of fd: a caller that closes its
// fd first leaves no poll handle on a dead, or reused, fd number (libuv would
// watch whatever file got it next); close() releases the dup.
#include "readable_watch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace wctun {

int StartReadablePoll(uv_loop_t* loop, uv_poll_t* handle, int fd, void* data, uv_poll_cb onPoll, uv_close_cb onClosed) {
  handle->data = data;
  int rc = uv_poll_init(loop, handle, fd);
  if (rc != 0) {
    onClosed(reinterpret_cast<uv_handle_t*>(handle));  // never initialised: nothing for libuv to close
    return rc;
  }
  handle->data = data;
  rc = uv_poll_start(handle, UV_READABLE, onPoll);
  if (rc != 0) uv_close(reinterpret_cast<uv_handle_t*>(handle), onClosed);
  return rc;
}

namespace {

class ReadableWatch : public Napi::ObjectWrap<ReadableWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReadableWatch",
                       {
                           InstanceMethod("start", &ReadableWatch::Start),
                           InstanceMethod("stop", &ReadableWatch::Stop),
                           InstanceMethod("close", &ReadableWatch::Close),
                       });
  }

  explicit ReadableWatch(const Napi::CallbackInfo& info);
  ~ReadableWatch() override { Release(true); }

 private:
  // Lives until libuv has closed the handle, which may be after the wrapper is collected.
  struct Handle {
    uv_poll_t poll;
    ReadableWatch* owner = nullptr;  // null once closing
    // Holds the environment's teardown until the handle is closed: a worker's
    // addon code is unloaded afterwards, and OnClosed lives in it.
    napi_async_cleanup_hook_handle cleanup = nullptr;
  };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void AsyncTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  void Report(int status);
  void Release(bool teardown);
  std::string What() const { return "watching fd " + std::to_string(watched_); }

  napi_env env_;
  int watched_ = -1;  // the caller's number, for messages
  int fd_ = -1;       // the dup that is polled
  bool polling_ = false;
  Handle* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
};

ReadableWatch::ReadableWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReadableWatch>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!IntValue(env, info[0], "fd", &fd)) return;
  if (fd < 0) {
    ThrowType(env, "fd must be >= 0");
    return;
  }
  if (!info[1].IsFunction()) {
    ThrowType(env, "watchReadable expects a callback");
    return;
  }
  watched_ = static_cast<int>(fd);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    ThrowType(env, "no event loop");
    return;
  }
  int dup = fcntl(watched_, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    ThrowErrno(env, errno, "fcntl(F_DUPFD_CLOEXEC)", What());
    return;
  }
  auto* h = new Handle();
  int rc = StartReadablePoll(loop, &h->poll, dup, h, OnPoll, OnClosed);
  if (rc != 0) {
    close(dup);
    ThrowErrno(env, -rc, "uv_poll_start", What());
    return;
  }
  h->owner = this;
  napi_add_async_cleanup_hook(env, AsyncTeardown, h, &h->cleanup);
  fd_ = dup;
  handle_ = h;
  polling_ = true;
  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "wirecage:ReadableWatch");
  Ref();  // an open watch must not be collected under its poll handle
}

Napi::Value ReadableWatch::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == nullptr) return ThrowErrno(env, EBADF, "uv_poll_start", What() + ": the watch is closed");
  if (polling_) return env.Undefined();
  int rc = uv_poll_start(&handle_->poll, UV_READABLE, OnPoll);
  if (rc != 0) return ThrowErrno(env, -rc, "uv_poll_start", What());
  polling_ = true;
  return env.Undefined();
}

Napi::Value ReadableWatch::Stop(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr && polling_) {
    uv_poll_stop(&handle_->poll);
    polling_ = false;
  }
  return info.Env().Undefined();
}

Napi::Value ReadableWatch::Close(const Napi::CallbackInfo& info) {
  Release(false);
  return info.Env().Undefined();
}

void ReadableWatch::Release(bool teardown) {
  Handle* h = handle_;
  if (h == nullptr) return;
  handle_ = nullptr;
  polling_ = false;
  h->owner = nullptr;
  // uv_close stops the poll and forgets the fd at once (no event for it is delivered
  // afterwards, even one already collected this loop turn), so the dup can go now.
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
  close(fd_);
  fd_ = -1;
  callback_.Reset();
  if (teardown) {
    asyncContext_.reset();  // the env may be gone before the wrapper's destructor
  } else {
    Unref();
  }
}

void ReadableWatch::OnClosed(uv_handle_t* handle) {
  auto* h = static_cast<Handle*>(handle->data);
  if (h->cleanup != nullptr) napi_remove_async_cleanup_hook(h->cleanup);
  delete h;
}

void ReadableWatch::AsyncTeardown(napi_async_cleanup_hook_handle /*hook*/, void* arg) {
  auto* h = static_cast<Handle*>(arg);
  if (h->owner != nullptr) h->owner->Release(true);  // else already closing; OnClosed ends the hook
}

void ReadableWatch::OnPoll(uv_poll_t* poll, int status, int /*events*/) {
  auto* h = static_cast<Handle*>(poll->data);
  if (h->owner != nullptr) h->owner->Report(status);
}

void ReadableWatch::Report(int status) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  Napi::Object self = Value();  // keeps the wrapper alive even if the callback closes it
  Napi::Value arg = env.Null();
  if (status < 0) {
    // An error condition stays: polling on would call back on every loop turn. The caller's
    // read (or start(), after it dealt with the cause) goes on from here.
    uv_poll_stop(&handle_->poll);
    polling_ = false;
    arg = MakeErrno(env, -status, "poll", What());
    if (env.IsExceptionPending()) return;
  }
  callback_.MakeCallback(self, {arg}, *asyncContext_);
  if (env.IsExceptionPending()) {
    // A throwing handler is the application's uncaught exception, as for any I/O callback.
    Napi::Error error = env.GetAndClearPendingException();
    napi_fatal_exception(env, error.Value());
  }
}

}  // namespace

Napi::Function DefineReadableWatch(Napi::Env env) { return ReadableWatch::Define(env); }

}  // namespace wctun
