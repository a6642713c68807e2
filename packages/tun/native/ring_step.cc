#include "ring_step.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "typed_view.h"

namespace wctun {
namespace {

using MakeConsumer = std::unique_ptr<Consumer> (*)(StepContext&);
using MakeProducer = std::unique_ptr<Producer> (*)(StepContext&);

struct Kind {
  const char* name;
  MakeConsumer consumer;
  MakeProducer producer;
  bool udp;
};

constexpr Kind kKinds[] = {
    {"tunEmitter", NewTunConsumer, nullptr, false},
    {"udpEmitter", NewUdpConsumer, nullptr, true},
    {"tunPoller", nullptr, NewTunProducer, false},
    {"udpPoller", nullptr, NewUdpProducer, true},
};

const Kind* FindKind(const std::string& name) {
  for (const Kind& k : kKinds) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

}  // namespace

Napi::Function RingStep::Define(Napi::Env env) {
  return DefineClass(env, "RingStep",
                     {
                         InstanceMethod("close", &RingStep::Close),
                         InstanceMethod("stats", &RingStep::Stats),
                         InstanceMethod("emit", &RingStep::Emit),
                         InstanceMethod("read", &RingStep::Read),
                     });
}

Napi::Function DefineRingStep(Napi::Env env) { return RingStep::Define(env); }

RingStep::RingStep(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingStep>(info) {
  if (!Setup(info)) {
    Release();
    return;
  }
  const Kind* kind = FindKind(kind_);
  if (kind->consumer != nullptr) consumer_ = kind->consumer(*ctx_);
  if (kind->producer != nullptr) producer_ = kind->producer(*ctx_);
}

bool RingStep::Setup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "RingStep: kind must be a string");
    return false;
  }
  kind_ = info[0].As<Napi::String>().Utf8Value();
  const Kind* kind = FindKind(kind_);
  if (kind == nullptr) {
    ThrowType(env, "RingStep: unknown kind '" + kind_ + "'");
    return false;
  }
  int64_t fd;
  if (!IntValue(env, info[1], "fd", &fd)) return false;
  Int32View ringView;
  if (!GetInt32View(info[2], &ringView)) {
    ThrowType(env, "RingStep: ring must be an Int32Array over the ring's SharedArrayBuffer");
    return false;
  }
  ctx_ = std::make_unique<StepContext>();
  ctx_->stats = &stats_;
  if (info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    int64_t batch = ctx_->options.batch;
    if (!OptInt(o, "batch", &batch)) return false;
    if (batch < 1 || batch > 1024) {
      ThrowType(env, "RingStep: batch must be from 1 to 1024");
      return false;
    }
    ctx_->options.batch = static_cast<int>(batch);
    if (o.Has("gso")) ctx_->options.gso = o.Get("gso").ToBoolean().Value();
    if (o.Has("gro")) ctx_->options.gro = o.Get("gro").ToBoolean().Value();
  }
  if (const char* bad = ctx_->ring.Attach(reinterpret_cast<uint8_t*>(ringView.data), ringView.length * 4)) {
    ThrowType(env, std::string("RingStep: ") + bad);
    return false;
  }
  std::string what = kind_ + " on fd " + std::to_string(fd);
  ctx_->fd = fd < 0 ? -1 : fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 3);
  if (ctx_->fd < 0) {
    ThrowErrno(env, fd < 0 ? EBADF : errno, "fcntl(F_DUPFD_CLOEXEC)", what);
    return false;
  }
  if (kind->udp) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(ctx_->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM) {
      ThrowErrno(env, type == 0 ? errno : ENOTSOCK, "getsockopt(SO_TYPE)", what + ": not a UDP socket");
      return false;
    }
    len = sizeof ctx_->sockFamily;
    getsockopt(ctx_->fd, SOL_SOCKET, SO_DOMAIN, &ctx_->sockFamily, &len);
  }
  ringRef_ = Napi::Persistent(info[2].As<Napi::Object>());
  return true;
}

RingStep::~RingStep() { Release(); }

void RingStep::Release() {
  if (ctx_ && ctx_->fd >= 0) close(ctx_->fd);
  if (ctx_) ctx_->fd = -1;
}

Napi::Value RingStep::Close(const Napi::CallbackInfo& info) {
  Release();
  if (!ringRef_.IsEmpty()) ringRef_.Reset();
  return info.Env().Undefined();
}

Napi::Value RingStep::Emit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!consumer_) {
    ThrowType(env, "RingStep: emit() is for emitters (tunEmitter, udpEmitter)");
    return env.Undefined();
  }
  if (ctx_->fd < 0) return Napi::Number::New(env, 0);  // closed
  return Napi::Number::New(env, EmitInline(*ctx_, *consumer_));
}

Napi::Value RingStep::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!producer_) {
    ThrowType(env, "RingStep: read() is for pollers (tunPoller, udpPoller)");
    return env.Undefined();
  }
  // Closed (the step or its ring), or the fd is gone.
  if (ctx_->fd < 0 || ctx_->ring.Closed() || ctx_->stats->fatalErrno.load() != 0) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, producer_->Read());
}

Napi::Value RingStep::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* key, const std::atomic<uint64_t>& v) {
    o.Set(key, Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))));
  };
  set("syscalls", stats_.syscalls);
  set("packets", stats_.packets);
  set("bytes", stats_.bytes);
  set("batches", stats_.batches);
  set("errors", stats_.errors);
  set("dropsFull", stats_.dropsFull);
  set("truncated", stats_.truncated);
  set("gsoSends", stats_.gsoSends);
  set("gsoSegments", stats_.gsoSegments);
  set("gsoRefused", stats_.gsoRefused);
  set("groReceives", stats_.groReceives);
  set("groSegments", stats_.groSegments);
  o.Set("gsoActive", Napi::Boolean::New(env, stats_.gsoActive.load()));
  o.Set("groActive", Napi::Boolean::New(env, stats_.groActive.load()));
  o.Set("lastErrno", Napi::Number::New(env, stats_.lastErrno.load()));
  int fatal = stats_.fatalErrno.load();
  const char* syscall = stats_.fatalSyscall.load();
  if (fatal != 0) {
    o.Set("fatal", MakeErrno(env, fatal, syscall ? syscall : "?", "RingStep " + kind_ + " stopped using its fd"));
  }
  return o;
}

}  // namespace wctun
