#include "queue.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "tun_open.h"
#include "readable_watch.h"

namespace wctun {
namespace {

// One read() asks for this much: more than any IP packet (65535), so the
// kernel never truncates one.
constexpr size_t kReadSize = 65536;
// A batch stops once less than one full read fits, so 4 reads always do.
constexpr size_t kArenaSize = 4 * kReadSize;

}  // namespace

struct Queue::Reader {
  uv_poll_t handle;
  Queue* owner;  // null once stopping: the Queue may be gone before OnClosed runs
  // Holds the environment's teardown until the poll handle is closed: a
  // worker's addon code is unloaded afterwards, and OnClosed lives in it.
  napi_async_cleanup_hook_handle cleanup = nullptr;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> asyncContext;
  std::unique_ptr<uint8_t[]> arena{new uint8_t[kArenaSize]};
  std::vector<uint32_t> lengths;
};

Napi::Function Queue::Define(Napi::Env env) {
  return DefineClass(env, "TunQueue",
                     {
                         InstanceMethod("start", &Queue::Start),
                         InstanceMethod("stop", &Queue::Stop),
                         InstanceMethod("write", &Queue::Write),
                         InstanceMethod("stats", &Queue::Stats),
                         InstanceMethod("setRef", &Queue::SetRef),
                         InstanceMethod("close", &Queue::Close),
                         InstanceAccessor("fd", &Queue::Fd, nullptr),
                     });
}

Napi::Function DefineQueue(Napi::Env env) { return Queue::Define(env); }

Queue::Queue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Queue>(info), env_(info.Env()), fd_(-1) {
  int64_t fd, maxPacket, batchSize;
  if (!IntValue(info.Env(), info[0], "fd", &fd) || !IntValue(info.Env(), info[1], "maxPacket", &maxPacket) ||
      !IntValue(info.Env(), info[2], "batchSize", &batchSize)) {
    return;
  }
  if (fd < 0 || maxPacket < 1 || maxPacket > 65535 || batchSize < 1 || batchSize > 4096) {
    ThrowType(info.Env(), "TunQueue(fd >= 0, 1 <= maxPacket <= 65535, 1 <= batchSize <= 4096)");
    return;
  }
  fd_ = static_cast<int>(fd);
  maxPacket_ = static_cast<uint32_t>(maxPacket);
  batchSize_ = static_cast<uint32_t>(batchSize);
  vnetHdr_ = info.Length() > 3 && info[3].ToBoolean().Value();
  napi_add_env_cleanup_hook(env_, Teardown, this);
}

Queue::~Queue() {
  napi_remove_env_cleanup_hook(env_, Teardown, this);
  StopReading(true);
  CloseFd();
}

// The environment is going away (process exit, worker end): let go of the fd
// and of every JS reference now, while the env is still valid.
void Queue::Teardown(void* self) {
  auto* q = static_cast<Queue*>(self);
  q->StopReading(true);
  q->CloseFd();
}

Napi::Value Queue::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) return ThrowType(env, "start expects a callback");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "uv_poll_start", "TUN queue is closed");
  if (reader_ != nullptr) return ThrowType(env, "this TUN queue is already being read");
  if (vnetHdr_) return ThrowType(env, "a TUN queue with virtio_net_hdr (offload) is read by a RingPoller only");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowType(env, "no event loop");
  auto* r = new Reader();
  r->owner = this;
  r->lengths.resize(batchSize_);
  // On failure OnClosed frees r, whichever step failed.
  int rc = StartReadablePoll(loop, &r->handle, fd_, r, OnPoll, OnClosed);
  if (rc != 0) return ThrowErrno(env, -rc, "uv_poll_start", "TUN queue fd " + std::to_string(fd_));
  napi_add_async_cleanup_hook(env, AsyncTeardown, r, &r->cleanup);
  r->callback = Napi::Persistent(info[0].As<Napi::Function>());
  r->asyncContext = std::make_unique<Napi::AsyncContext>(env, "wirecage:TunQueue");
  if (!refed_) uv_unref(reinterpret_cast<uv_handle_t*>(&r->handle));
  reader_ = r;
  Ref();  // a queue that is being read must not be collected under its poll handle
  return env.Undefined();
}

Napi::Value Queue::Stop(const Napi::CallbackInfo& info) {
  StopReading(false);
  return info.Env().Undefined();
}

void Queue::StopReading(bool teardown) {
  Reader* r = reader_;
  if (r == nullptr) return;
  reader_ = nullptr;
  r->owner = nullptr;
  uv_poll_stop(&r->handle);
  if (teardown) {
    // OnClosed may run after the env is gone; drop JS references while it is alive.
    r->callback.Reset();
    r->asyncContext.reset();
  } else {
    Unref();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&r->handle), OnClosed);
}

void Queue::OnClosed(uv_handle_t* handle) {
  auto* r = static_cast<Reader*>(handle->data);
  if (r->cleanup != nullptr) napi_remove_async_cleanup_hook(r->cleanup);
  delete r;
}

void Queue::AsyncTeardown(napi_async_cleanup_hook_handle /*handle*/, void* arg) {
  auto* r = static_cast<Reader*>(arg);
  if (r->owner != nullptr) r->owner->StopReading(true);  // else already closing; OnClosed ends the hook
}

void Queue::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  auto* r = static_cast<Reader*>(handle->data);
  if (r->owner == nullptr) return;
  r->owner->Drain(r, status);
}

void Queue::Drain(Reader* r, int pollStatus) {
  if (pollStatus < 0) {
    // libuv turns EPOLLERR into UV_EBADF; a read() names the actual cause
    // (EBADFD once the interface was deleted under us).
    uint8_t probe[1];
    bool readFailed = read(fd_, probe, sizeof probe) < 0 && errno != EAGAIN && errno != EINTR;
    QueueStats::Add(stats_.rxErrors, 1);
    if (readFailed) {
      Fail(r, errno, "read");
    } else {
      Fail(r, -pollStatus, "poll");
    }
    return;
  }
  uint8_t* arena = r->arena.get();
  size_t used = 0;
  uint32_t count = 0;
  int fatal = 0;
  // Bounded by the batch size so one busy queue cannot starve the loop; the
  // poll is level-triggered and comes straight back if packets remain.
  for (uint32_t attempt = 0; attempt < batchSize_ && kArenaSize - used >= kReadSize; attempt++) {
    ssize_t n = read(fd_, arena + used, kReadSize);
    if (n > 0) {
      r->lengths[count++] = static_cast<uint32_t>(n);
      used += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else if (n < 0 && errno != EINTR) {
      fatal = errno;
      break;
    }
  }
  if (count > 0) {
    QueueStats::Add(stats_.rxPackets, count);
    QueueStats::Add(stats_.rxBytes, used);
    QueueStats::Add(stats_.rxBatches, 1);
    Deliver(r, used, count);
  }
  if (fatal != 0 && reader_ == r) {  // JS may have stopped or closed us from the callback
    QueueStats::Add(stats_.rxErrors, 1);
    Fail(r, fatal, "read");
  }
}

void Queue::Deliver(Reader* r, size_t bytes, uint32_t count) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  Napi::Object self = Value();  // keeps this wrapper alive even if the callback closes and drops it
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  std::memcpy(buffer.Data(), r->arena.get(), bytes);
  Napi::Uint32Array lengths = Napi::Uint32Array::New(env, count);
  std::memcpy(lengths.Data(), r->lengths.data(), count * sizeof(uint32_t));
  r->callback.MakeCallback(self, {env.Null(), buffer, lengths}, *r->asyncContext);
  if (env.IsExceptionPending()) {
    // A throwing packet handler is the application's uncaught exception, as for any I/O callback.
    Napi::Error error = env.GetAndClearPendingException();
    napi_fatal_exception(env, error.Value());
  }
}

// A read error that will not go away (the interface was deleted under us:
// EBADFD): stop polling, or the level-triggered poll would spin, and tell JS once.
void Queue::Fail(Reader* r, int err, const char* syscall) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  Napi::Object self = Value();
  StopReading(false);
  Napi::Value error = MakeErrno(env, err, syscall, "reading TUN queue fd " + std::to_string(fd_));
  if (env.IsExceptionPending()) return;
  r->callback.MakeCallback(self, {error}, *r->asyncContext);
  if (env.IsExceptionPending()) {
    Napi::Error thrown = env.GetAndClearPendingException();
    napi_fatal_exception(env, thrown.Value());
  }
}

Queue::WriteResult Queue::WritePacket(const uint8_t* data, size_t len) {
  // The kernel refuses an empty write with EINVAL, and a writer loop that
  // treats that as fatal dies (CONFORMANCE.md); refuse both here and count.
  if (len == 0 || len > maxPacket_) {
    QueueStats::Add(stats_.txRefused, 1);
    return kRefused;
  }
  // All zero: no checksum to finish, no segmentation (VIRTIO_NET_HDR_GSO_NONE).
  static const uint8_t kPlainHeader[kVnetHdrBytes] = {};
  iovec iov[2] = {{const_cast<uint8_t*>(kPlainHeader), kVnetHdrBytes}, {const_cast<uint8_t*>(data), len}};
  for (;;) {
    ssize_t n = vnetHdr_ ? writev(fd_, iov, 2) : write(fd_, data, len);
    if (n >= 0) {
      QueueStats::Add(stats_.txPackets, 1);
      QueueStats::Add(stats_.txBytes, len);
      return kWritten;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == ENOBUFS) {
      QueueStats::Add(stats_.txDropped, 1);
      return kDropped;
    }
    QueueStats::Add(stats_.txErrors, 1);
    stats_.lastTxErrno.store(errno, std::memory_order_relaxed);
    return kFailed;
  }
}

Napi::Value Queue::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowType(env, "write expects a Uint8Array or Buffer");
  }
  if (fd_ < 0) return ThrowErrno(env, EBADF, "write", "TUN queue is closed");
  Napi::Uint8Array packet = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(env, WritePacket(packet.Data(), packet.ByteLength()));
}

Napi::Value Queue::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* key, const std::atomic<uint64_t>& v) {
    o.Set(key, Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))));
  };
  set("rxPackets", stats_.rxPackets);
  set("rxBytes", stats_.rxBytes);
  set("rxBatches", stats_.rxBatches);
  set("rxErrors", stats_.rxErrors);
  set("txPackets", stats_.txPackets);
  set("txBytes", stats_.txBytes);
  set("txDropped", stats_.txDropped);
  set("txRefused", stats_.txRefused);
  set("txErrors", stats_.txErrors);
  o.Set("lastTxErrno", Napi::Number::New(env, stats_.lastTxErrno.load(std::memory_order_relaxed)));
  return o;
}

Napi::Value Queue::SetRef(const Napi::CallbackInfo& info) {
  refed_ = info[0].ToBoolean().Value();
  if (reader_ != nullptr) {
    auto* handle = reinterpret_cast<uv_handle_t*>(&reader_->handle);
    if (refed_) {
      uv_ref(handle);
    } else {
      uv_unref(handle);
    }
  }
  return info.Env().Undefined();
}

Napi::Value Queue::Close(const Napi::CallbackInfo& info) {
  StopReading(false);
  CloseFd();
  return info.Env().Undefined();
}

// Closing the last queue of a non-persistent TUN removes the interface.
void Queue::CloseFd() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
}

Napi::Value Queue::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

}  // namespace wctun
