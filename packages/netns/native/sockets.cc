// Sockets for a NAT that lives in another network namespace: opened there by a
// throwaway thread (a socket stays in the namespace it was created in, so every
// later call runs on Node's thread), plus the few calls Node's net and dgram do
// not offer: bind to a non-local address, receive with the original
// destination (IP_RECVORIGDSTADDR), and a readability watcher on the event loop.
// Syscalls only; nothing here looks inside a payload.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR 20
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_ORIGDSTADDR
#define IPV6_ORIGDSTADDR 74
#endif

namespace wc {
namespace {

struct SocketOptions {
  int family;  // AF_INET / AF_INET6
  int type;    // SOCK_STREAM / SOCK_DGRAM
  bool transparent, reuseAddr, reusePort, origDstAddr, ipv6Only, recvErr;
};

SysResult OpenSocket(const SocketOptions& o) {
  int fd = socket(o.family, o.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysResult{-1, errno, "socket"};
  bool v6 = o.family == AF_INET6;
  SysResult r{fd, 0, ""};
  if (r.err == 0 && o.reuseAddr) r = EnableOption(fd, SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)");
  if (r.err == 0 && o.reusePort) r = EnableOption(fd, SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)");
  if (r.err == 0 && v6 && o.ipv6Only) r = EnableOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, "setsockopt(IPV6_V6ONLY)");
  if (r.err == 0 && o.transparent) r = EnableTransparent(fd, v6);
  if (r.err == 0 && o.origDstAddr) {
    r = v6 ? EnableOption(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, "setsockopt(IPV6_RECVORIGDSTADDR)")
           : EnableOption(fd, SOL_IP, IP_RECVORIGDSTADDR, "setsockopt(IP_RECVORIGDSTADDR)");
  }
  if (r.err == 0 && o.recvErr) r = EnableRecvErr(fd, v6);
  if (r.err != 0) close(fd);
  return r;
}

void SetAddress(Napi::Object out, const char* addrKey, const char* portKey, const sockaddr_storage& ss) {
  std::string text;
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(&ss);
    text = AddressText(AF_INET, &in4->sin_addr);
    port = ntohs(in4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    text = AddressText(AF_INET6, &in6->sin6_addr);
    port = ntohs(in6->sin6_port);
  }
  out.Set(addrKey, text);
  out.Set(portKey, port);
}

std::string Where(const std::string& address, int64_t port) {
  return (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// Calls a JS callback each time an fd is readable (level-triggered), until stop().
class ReadableWatcher : public Napi::ObjectWrap<ReadableWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReadableWatcher", {InstanceMethod("stop", &ReadableWatcher::Stop)});
  }

  explicit ReadableWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReadableWatcher>(info) {
    Napi::Env env = info.Env();
    int fd;
    if (!FdArg(env, info[0], &fd)) return;
    if (!info[1].IsFunction()) {
      ThrowType(env, "ReadableWatcher needs a callback");
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      ThrowType(env, "no event loop");
      return;
    }
    poll_ = new uv_poll_t();
    poll_->data = this;
    int rc = uv_poll_init(loop, poll_, fd);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init", "watching a socket");
      return;
    }
    rc = uv_poll_start(poll_, UV_READABLE, Ready);
    if (rc != 0) {
      Close();
      ThrowErrno(env, -rc, "uv_poll_start", "watching a socket");
      return;
    }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "wirecage.readableWatcher", Value());
    Ref();  // alive while watching, even with no JS reference
  }

  ~ReadableWatcher() override { delete context_; }

 private:
  static void Ready(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<ReadableWatcher*>(handle->data);
    if (self == nullptr) return;
    // libuv stops a poll handle on POLLERR and reports UV_EBADF. On a socket opened with IP_RECVERR,
    // POLLERR means an entry in the error queue, which the callback reads: keep watching, as readable.
    if (status == UV_EBADF) {
      int rc = uv_poll_start(handle, UV_READABLE, Ready);
      status = rc == 0 ? 0 : rc;
    }
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Value err = status < 0 ? Napi::Number::New(env, -status) : env.Null();
    self->callback_.MakeCallback(self->Value(), {err}, *self->context_);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) {
      Close();
      callback_.Reset();
      Unref();
    }
    return info.Env().Undefined();
  }

  void Close() {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
};

}  // namespace

// socketOpen(nsFd|null, family 4|6, 'tcp'|'udp', {transparent?, reuseAddr?, reusePort?, origDstAddr?, ipv6Only?, recvErr?}): fd
Napi::Value SocketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsFd, family;
  if (!NsFdArg(env, info[0], &nsFd) || !IntValue(env, info[1], "family", &family)) return env.Undefined();
  if (family != 4 && family != 6) return ThrowType(env, "family must be 4 or 6");
  std::string type;
  if (!StringValue(env, info[2], "type", &type)) return env.Undefined();
  if (type != "tcp" && type != "udp") return ThrowType(env, "type must be 'tcp' or 'udp'");
  Napi::Object o = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  auto flag = [&](const char* key, bool fallback) {
    Napi::Value v = o.Get(key);
    return v.IsUndefined() ? fallback : v.ToBoolean().Value();
  };
  SocketOptions opts{family == 4 ? AF_INET : AF_INET6, type == "tcp" ? SOCK_STREAM : SOCK_DGRAM,
                     flag("transparent", false), flag("reuseAddr", false), flag("reusePort", false),
                     flag("origDstAddr", false), flag("ipv6Only", true), flag("recvErr", false)};
  return OpenInNetns(env, nsFd, [&opts] { return OpenSocket(opts); }, "opening an IPv" + std::to_string(family) + " " + type + " socket");
}

// The (fd, address, port) arguments of socketBind and socketConnect; false once it threw.
static bool FdAndAddress(const Napi::CallbackInfo& info, int* fd, std::string* where, sockaddr_storage* ss, socklen_t* len) {
  Napi::Env env = info.Env();
  int64_t port;
  std::string address;
  if (!FdArg(env, info[0], fd) || !StringValue(env, info[1], "address", &address) || !IntValue(env, info[2], "port", &port)) {
    return false;
  }
  *where = Where(address, port);
  return ToSockaddr(env, address, port, ss, len);
}

// socketBind(fd, address, port)
Napi::Value SocketBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string where;
  sockaddr_storage ss;
  socklen_t len;
  if (!FdAndAddress(info, &fd, &where, &ss, &len)) return env.Undefined();
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return ThrowErrno(env, errno, "bind", "binding " + where);
  return env.Undefined();
}

// socketConnect(fd, address, port): a datagram socket's connect, which completes at once.
Napi::Value SocketConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string where;
  sockaddr_storage ss;
  socklen_t len;
  if (!FdAndAddress(info, &fd, &where, &ss, &len)) return env.Undefined();
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len); while (rc != 0 && errno == EINTR);
  if (rc != 0) return ThrowErrno(env, errno, "connect", "connecting to " + where);
  return env.Undefined();
}

// socketSend(fd, data): true when sent on the connected socket, false when it would block.
Napi::Value SocketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  if (!info[1].IsTypedArray()) return ThrowType(env, "socketSend needs the data as a Uint8Array");
  auto data = info[1].As<Napi::Uint8Array>();
  ssize_t n;
  do n = send(fd, data.Data(), data.ByteLength(), MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, errno, "send");
  }
  return Napi::Boolean::New(env, true);
}

// socketListen(fd, backlog)
Napi::Value SocketListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t backlog;
  if (!FdArg(env, info[0], &fd) || !IntValue(env, info[1], "backlog", &backlog)) return env.Undefined();
  if (listen(fd, static_cast<int>(backlog)) != 0) return ThrowErrno(env, errno, "listen");
  return env.Undefined();
}

// socketName(fd): {address, port}
Napi::Value SocketName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ThrowErrno(env, errno, "getsockname");
  Napi::Object out = Napi::Object::New(env);
  SetAddress(out, "address", "port", ss);
  return out;
}

// recvOrigDst(fd, buffer): {length, truncated, source, sourcePort, destination, destinationPort}, or null when
// nothing is waiting. The destination is the one the sender used (IP_ORIGDSTADDR), as a tproxy rule saw it.
Napi::Value RecvOrigDst(const Napi::CallbackInfo& info) {
  return ReceiveCall(info, "recvOrigDst", 0, "recvmsg", "", [](Received& r, Napi::Object out) {
    sockaddr_storage dst{};
    bool haveDst = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&r.msg); c != nullptr; c = CMSG_NXTHDR(&r.msg, c)) {
      if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) ||
          (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR)) {
        size_t len = c->cmsg_len - CMSG_LEN(0);
        memcpy(&dst, CMSG_DATA(c), len < sizeof dst ? len : sizeof dst);
        haveDst = true;
      }
    }
    SetAddress(out, "source", "sourcePort", r.from);
    if (haveDst) {
      SetAddress(out, "destination", "destinationPort", dst);
    } else {
      out.Set("destination", out.Env().Null());
      out.Set("destinationPort", out.Env().Null());
    }
  });
}

Napi::Function ReadableWatcherClass(Napi::Env env) { return ReadableWatcher::Define(env); }

}  // namespace wc
