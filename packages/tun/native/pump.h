// RingPump: one native thread moving packets between a TUN queue or UDP socket
// and a packet ring (native/ring.h); or, for the emitter kinds, no thread: the
// owner calls emit() to send what is finished from its own thread.
//
// Lifetime: the pump dup()s the fd, so its thread never touches a number that
// JS may close and the kernel reuse; and it holds napi references to the
// ring's and doorbell's Int32Arrays (and through them their SharedArrayBuffer),
// so the memory stays valid even if every other thread that held the ring ends.
// A running pump also references its own wrapper; stop() (or the teardown of
// the environment that created it) joins the thread and lets go of all of it.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "pump_loop.h"

namespace wctun {

class Pump : public Napi::ObjectWrap<Pump> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new RingPump(kind, fd, ring: Int32Array, doorbell: Int32Array | null, { batch, gso, gro })
  explicit Pump(const Napi::CallbackInfo& info);
  ~Pump() override;

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Running(const Napi::CallbackInfo& info);
  Napi::Value Emit(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);

  bool Setup(const Napi::CallbackInfo& info);
  void Join();
  static void Teardown(void* self);

  napi_env env_;
  std::string kind_;
  std::unique_ptr<PumpContext> ctx_;
  std::unique_ptr<Consumer> consumer_;  // emitters only
  std::unique_ptr<Producer> producer_;  // pollers only
  PumpStats stats_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  bool hooked_ = false;
  bool selfRef_ = false;
  Napi::ObjectReference ringRef_;
  Napi::ObjectReference doorbellRef_;
};

}  // namespace wctun
