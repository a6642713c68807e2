#include "udp_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "fresh_thread.h"
#include "sockaddr.h"
#include "udp_open.h"

namespace wctun {

Napi::Function UdpSocket::Define(Napi::Env env) {
  return DefineClass(env, "UdpSocket",
                     {
                         InstanceMethod("sendTo", &UdpSocket::SendTo),
                         InstanceMethod("close", &UdpSocket::Close),
                         InstanceMethod("stats", &UdpSocket::Stats),
                         InstanceAccessor("fd", &UdpSocket::Fd, nullptr),
                         InstanceAccessor("port", &UdpSocket::Port, nullptr),
                         InstanceAccessor("family", &UdpSocket::Family, nullptr),
                     });
}

Napi::Function DefineUdpSocket(Napi::Env env) { return UdpSocket::Define(env); }

UdpSocket::UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!IntValue(env, info[0], "fd", &fd)) return;
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (fd < 0 || getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
    ThrowErrno(env, fd < 0 ? EBADF : errno, "getsockopt(SO_TYPE)", "adopting fd " + std::to_string(fd));
    return;
  }
  len = sizeof domain;
  getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_DOMAIN, &domain, &len);
  if (type != SOCK_DGRAM || (domain != AF_INET && domain != AF_INET6)) {
    ThrowType(env, "fd " + std::to_string(fd) + " is not an IPv4/IPv6 UDP socket");
    return;
  }
  std::string failed;
  int err = PrepareUdp(static_cast<int>(fd), &failed);
  if (err != 0) {
    ThrowErrno(env, err, failed, "adopting fd " + std::to_string(fd));
    return;
  }
  fd_ = static_cast<int>(fd);
  family_ = domain;
  napi_add_env_cleanup_hook(env_, Teardown, this);
}

UdpSocket::~UdpSocket() {
  if (family_ != 0) napi_remove_env_cleanup_hook(env_, Teardown, this);
  Teardown(this);
}

void UdpSocket::Teardown(void* self) {
  auto* s = static_cast<UdpSocket*>(self);
  if (s->fd_ >= 0) close(s->fd_);
  s->fd_ = -1;
}

Napi::Value UdpSocket::SendTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowType(env, "sendTo expects bytes as a Uint8Array or Buffer");
  }
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowType(env, "sendTo expects the address as a Uint8Array (4 or 16 bytes)");
  }
  int64_t family, port, scope = 0;
  if (!IntValue(env, info[1], "family", &family) || !IntValue(env, info[3], "port", &port)) return env.Undefined();
  if (info.Length() > 4 && !info[4].IsUndefined() && !IntValue(env, info[4], "scope", &scope)) return env.Undefined();
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  Napi::Uint8Array addr = info[2].As<Napi::Uint8Array>();
  PeerAddr peer;
  peer.family = static_cast<int32_t>(family);
  peer.port = static_cast<int32_t>(port);
  peer.scope = static_cast<int32_t>(scope);
  size_t need = family == 4 ? 4 : 16;
  if ((family != 4 && family != 6) || addr.ByteLength() < need || port < 1 || port > 65535) {
    return ThrowType(env, "sendTo: family must be 4 or 6 with a 4/16-byte address and a port from 1 to 65535");
  }
  std::memcpy(peer.addr, addr.Data(), need);
  if (fd_ < 0) return ThrowErrno(env, EBADF, "sendto", "UDP socket is closed");
  sockaddr_storage sa;
  socklen_t len;
  if (!ToSockaddr(family_, peer, &sa, &len)) {
    return ThrowErrno(env, EAFNOSUPPORT, "sendto", "an IPv4-only socket cannot send to an IPv6 address");
  }
  for (;;) {
    ssize_t n = sendto(fd_, bytes.Data(), bytes.ByteLength(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len);
    if (n >= 0) {
      sent_++;
      return Napi::Boolean::New(env, true);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == ENOBUFS) {
      sendDropped_++;
      return Napi::Boolean::New(env, false);
    }
    return ThrowErrno(env, errno, "sendto", "UDP socket fd " + std::to_string(fd_));
  }
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  Teardown(this);
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value UdpSocket::Family(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), family_ == AF_INET ? 4 : 6);
}

Napi::Value UdpSocket::Port(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return ThrowErrno(env, EBADF, "getsockname", "UDP socket is closed");
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return ThrowErrno(env, errno, "getsockname");
  PeerAddr local;
  FromSockaddr(sa, &local);
  return Napi::Number::New(env, local.port);
}

Napi::Value UdpSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
  o.Set("sendDropped", Napi::Number::New(env, static_cast<double>(sendDropped_)));
  return o;
}

// openUdp({ address?, port?, family: 4 | 6 | 0, netnsFd? }) -> { fd, family }
Napi::Value OpenUdpJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "openUdp expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  UdpOpenRequest req;
  int64_t port = 0, family = 0, netnsFd = -1;
  if (!OptString(o, "address", &req.address) || !OptInt(o, "port", &port) || !OptInt(o, "family", &family) ||
      !OptInt(o, "netnsFd", &netnsFd)) {
    return env.Undefined();
  }
  if (port < 0 || port > 65535) return ThrowType(env, "port must be from 0 to 65535");
  if (family != 0 && family != 4 && family != 6) return ThrowType(env, "family must be 4, 6 or 'dual'");
  req.port = static_cast<int>(port);
  req.family = static_cast<int>(family);
  req.netnsFd = static_cast<int>(netnsFd);
  req.reusePort = o.Get("reusePort").ToBoolean().Value();
  UdpOpenResult r;
  std::string where = "UDP socket on " + (req.address.empty() ? std::string("*") : req.address) + ":" +
                      std::to_string(req.port);
  if (req.netnsFd >= 0) {
    // setns() moves only the calling thread: do it on one that exits right after.
    int rc = RunOnFreshThread([&] { r = OpenUdp(req); });
    if (rc != 0) return ThrowErrno(env, rc, "pthread_create", where);
  } else {
    r = OpenUdp(req);
  }
  if (r.err != 0) return ThrowErrno(env, r.err, r.syscall, where);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, r.fd));
  out.Set("family", Napi::Number::New(env, r.family == AF_INET ? 4 : 6));
  return out;
}

}  // namespace wctun
