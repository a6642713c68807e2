#include <pthread.h>
#include <string>
#include "pump.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "typed_view.h"

namespace wctun {
namespace {

using Loop = void (*)(PumpContext&);
using MakeConsumer = std::unique_ptr<Consumer> (*)(PumpContext&);
using MakeProducer = std::unique_ptr<Producer> (*)(PumpContext&);

// Readers run a loop on a thread of their own; emitters and pollers have no
// thread: their emit()/read() works on the calling thread (a shard's).
struct Kind {
  const char* name;
  Loop loop;
  MakeConsumer consumer;
  MakeProducer producer;
  bool reader;
  bool udp;
};

constexpr Kind kKinds[] = {
    {"tunReader", TunReaderLoop, nullptr, nullptr, true, false},
    {"udpReader", UdpReaderLoop, nullptr, nullptr, true, true},
    {"tunEmitter", nullptr, NewTunConsumer, nullptr, false, false},
    {"udpEmitter", nullptr, NewUdpConsumer, nullptr, false, true},
    {"tunPoller", nullptr, nullptr, NewTunProducer, false, false},
    {"udpPoller", nullptr, nullptr, NewUdpProducer, false, true},
};

}  // namespace

Napi::Function Pump::Define(Napi::Env env) {
  return DefineClass(env, "RingPump",
                     {
                         InstanceMethod("stop", &Pump::Stop),
                         InstanceMethod("stats", &Pump::Stats),
                         InstanceMethod("emit", &Pump::Emit),
                         InstanceMethod("read", &Pump::Read),
                         InstanceAccessor("running", &Pump::Running, nullptr),
                     });
}

Napi::Function DefinePump(Napi::Env env) { return Pump::Define(env); }

Pump::Pump(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pump>(info), env_(info.Env()) {
  if (!Setup(info)) {
    if (ctx_) {
      if (ctx_->fd >= 0) close(ctx_->fd);
      if (ctx_->stopFd >= 0) close(ctx_->stopFd);
      ctx_->fd = ctx_->stopFd = -1;
    }
    return;
  }
  const Kind* kind = nullptr;
  for (const Kind& k : kKinds) {
    if (kind_ == k.name) kind = &k;
  }
  if (kind->consumer != nullptr) {
    consumer_ = kind->consumer(*ctx_);
    return;
  }
  if (kind->producer != nullptr) {
    producer_ = kind->producer(*ctx_);
    return;
  }
  running_.store(true);
  PumpContext* ctx = ctx_.get();
  std::atomic<bool>* running = &running_;
  // Named so `top -H` and /proc/PID/task tell the pumps apart: "wc-tunReader", "wc-udpReader".
  std::string name = ("wc-" + kind_).substr(0, 15);
  thread_ = std::thread([ctx, running, loop = kind->loop, name] {
    pthread_setname_np(pthread_self(), name.c_str());
    loop(*ctx);
    running->store(false);
  });
  napi_add_env_cleanup_hook(env_, Teardown, this);
  hooked_ = true;
  Ref();  // a running pump is not collected; stop() lets go
  selfRef_ = true;
}

bool Pump::Setup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "RingPump: kind must be a string");
    return false;
  }
  kind_ = info[0].As<Napi::String>().Utf8Value();
  const Kind* kind = nullptr;
  for (const Kind& k : kKinds) {
    if (kind_ == k.name) kind = &k;
  }
  if (kind == nullptr) {
    ThrowType(env, "RingPump: unknown kind '" + kind_ + "'");
    return false;
  }
  int64_t fd;
  if (!IntValue(env, info[1], "fd", &fd)) return false;
  Int32View ringView, bellView;
  if (!GetInt32View(info[2], &ringView)) {
    ThrowType(env, "RingPump: ring must be an Int32Array over the ring's SharedArrayBuffer");
    return false;
  }
  if (kind->reader && (!GetInt32View(info[3], &bellView) || bellView.length < 2)) {
    ThrowType(env, "RingPump: a reader needs the doorbell's Int32Array");
    return false;
  }
  ctx_ = std::make_unique<PumpContext>();
  ctx_->stats = &stats_;
  if (info[4].IsObject()) {
    Napi::Object o = info[4].As<Napi::Object>();
    int64_t batch = ctx_->options.batch;
    if (!OptInt(o, "batch", &batch)) return false;
    if (batch < 1 || batch > 1024) {
      ThrowType(env, "RingPump: batch must be from 1 to 1024");
      return false;
    }
    ctx_->options.batch = static_cast<int>(batch);
    if (o.Has("gso")) ctx_->options.gso = o.Get("gso").ToBoolean().Value();
    if (o.Has("gro")) ctx_->options.gro = o.Get("gro").ToBoolean().Value();
  }
  if (const char* bad = ctx_->ring.Attach(reinterpret_cast<uint8_t*>(ringView.data), ringView.length * 4)) {
    ThrowType(env, std::string("RingPump: ") + bad);
    return false;
  }
  if (kind->reader) ctx_->doorbell = reinterpret_cast<uint8_t*>(bellView.data);
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
  ctx_->stopFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ctx_->stopFd < 0) {
    ThrowErrno(env, errno, "eventfd", what);
    return false;
  }
  ringRef_ = Napi::Persistent(info[2].As<Napi::Object>());
  if (kind->reader) doorbellRef_ = Napi::Persistent(info[3].As<Napi::Object>());
  return true;
}

Pump::~Pump() {
  if (hooked_) napi_remove_env_cleanup_hook(env_, Teardown, this);
  Join();
}

// The environment that created the pump is going away (worker end, process
// exit): the thread must be gone before the memory it uses can be.
void Pump::Teardown(void* self) {
  auto* p = static_cast<Pump*>(self);
  p->hooked_ = false;
  p->Join();
}

void Pump::Join() {
  if (!ctx_) return;
  if (thread_.joinable()) {
    ctx_->stopping.store(true);
    uint64_t one = 1;
    ssize_t ignored = write(ctx_->stopFd, &one, sizeof one);
    (void)ignored;
    thread_.join();
  }
  if (ctx_->fd >= 0) close(ctx_->fd);
  if (ctx_->stopFd >= 0) close(ctx_->stopFd);
  ctx_->fd = ctx_->stopFd = -1;
}

Napi::Value Pump::Stop(const Napi::CallbackInfo& info) {
  Join();
  if (selfRef_) {
    selfRef_ = false;
    ringRef_.Reset();
    doorbellRef_.Reset();
    Unref();
  }
  return info.Env().Undefined();
}

Napi::Value Pump::Emit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!consumer_) {
    ThrowType(env, "RingPump: emit() is for emitters (tunEmitter, udpEmitter)");
    return env.Undefined();
  }
  if (ctx_->fd < 0) return Napi::Number::New(env, 0);  // stopped
  return Napi::Number::New(env, EmitInline(*ctx_, *consumer_));
}

Napi::Value Pump::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!producer_) {
    ThrowType(env, "RingPump: read() is for pollers (tunPoller, udpPoller)");
    return env.Undefined();
  }
  if (ctx_->fd < 0 || ctx_->stats->fatalErrno.load() != 0) return Napi::Number::New(env, 0);  // stopped, or the fd is gone
  return Napi::Number::New(env, producer_->Read());
}

Napi::Value Pump::Running(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), running_.load()); }

Napi::Value Pump::Stats(const Napi::CallbackInfo& info) {
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
    o.Set("fatal", MakeErrno(env, fatal, syscall ? syscall : "?", "RingPump " + kind_ + " stopped"));
  }
  return o;
}

}  // namespace wctun
