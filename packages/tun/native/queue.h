// One TUN queue fd: a non-blocking writer and a reader on the main loop.
//
// Reading uses uv_poll (no libuv thread pool): when the fd is readable the
// queue drains it with read() until EAGAIN or a batch is full, and hands the
// whole batch to JS in one call as (ArrayBuffer, lengths). Writes are plain
// non-blocking write()s that drop and count on a full queue instead of waiting.
#pragma once
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "stats.h"

namespace wctun {

class Queue : public Napi::ObjectWrap<Queue> {
 public:
  // Write outcomes as returned to JS.
  enum WriteResult { kWritten = 0, kDropped = 1, kRefused = 2, kFailed = 3 };

  static Napi::Function Define(Napi::Env env);
  // new Queue(fd, maxPacket, batchSize, vnetHdr?); takes ownership of fd. With vnetHdr every
  // write() is prefixed with a zeroed virtio_net_hdr (a plain packet) and reading is refused.
  explicit Queue(const Napi::CallbackInfo& info);
  ~Queue() override;

 private:
  struct Reader;

  Napi::Value Start(const Napi::CallbackInfo& info);  // start((err, buffer, lengths) => void)
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void Teardown(void* self);
  static void AsyncTeardown(napi_async_cleanup_hook_handle handle, void* reader);

  WriteResult WritePacket(const uint8_t* data, size_t len);
  void Drain(Reader* reader, int pollStatus);
  void Deliver(Reader* reader, size_t bytes, uint32_t count);
  void Fail(Reader* reader, int err, const char* syscall);
  void StopReading(bool teardown);
  void CloseFd();

  napi_env env_;
  int fd_;
  uint32_t maxPacket_;
  uint32_t batchSize_;
  bool vnetHdr_ = false;
  bool refed_ = true;
  Reader* reader_ = nullptr;  // owned by libuv once closing; see OnClosed
  QueueStats stats_;
};

}  // namespace wctun
