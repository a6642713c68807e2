// RingStep: one side of a packet ring (native/ring.h) on a TUN queue or UDP
// socket, run on the caller's thread: a poller's read() fills free slots from
// the fd, an emitter's emit() sends the finished slots. There is no thread:
// a run-to-completion shard calls them on its own.
//
// Lifetime: the step dup()s the fd, so it never touches a number that JS may
// close and the kernel reuse; and it holds a napi reference to the ring's
// Int32Array (and through it the SharedArrayBuffer) until close().
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "step_io.h"

namespace wctun {

class RingStep : public Napi::ObjectWrap<RingStep> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new RingStep(kind, fd, ring: Int32Array, { batch, gso, gro })
  explicit RingStep(const Napi::CallbackInfo& info);
  ~RingStep() override;

 private:
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Emit(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);

  bool Setup(const Napi::CallbackInfo& info);
  void Release();

  std::string kind_;
  std::unique_ptr<StepContext> ctx_;
  std::unique_ptr<Consumer> consumer_;  // emitters only
  std::unique_ptr<Producer> producer_;  // pollers only
  StepStats stats_;
  Napi::ObjectReference ringRef_;
};

}  // namespace wctun
