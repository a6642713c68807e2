// A UDP socket owned by JS: the main thread's synchronous sendTo for control
// packets, and the fd that pollers and emitters duplicate for their own use.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>

namespace wctun {

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit UdpSocket(const Napi::CallbackInfo& info);  // new UdpSocket(fd): adopts a bound UDP socket
  ~UdpSocket() override;

 private:
  Napi::Value SendTo(const Napi::CallbackInfo& info);  // sendTo(bytes, family, addr, port, scope?) -> boolean
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Port(const Napi::CallbackInfo& info);
  Napi::Value Family(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  static void Teardown(void* self);

  napi_env env_;
  int fd_ = -1;
  int family_ = 0;  // AF_INET or AF_INET6
  uint64_t sent_ = 0;
  uint64_t sendDropped_ = 0;  // EAGAIN/ENOBUFS: the kernel's buffer was full
};

}  // namespace wctun
