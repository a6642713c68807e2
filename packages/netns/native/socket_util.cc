#include "socket_util.h"

#include <arpa/inet.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

#include "glue.h"

namespace wc {

SysResult EnableOption(int fd, int level, int name, const char* syscall) {
  int one = 1;
  if (setsockopt(fd, level, name, &one, sizeof one) != 0) return SysResult{-1, errno, syscall};
  return SysResult{fd, 0, ""};
}

SysResult EnableTransparent(int fd, bool v6) {
  return v6 ? EnableOption(fd, SOL_IPV6, IPV6_TRANSPARENT, "setsockopt(IPV6_TRANSPARENT)")
            : EnableOption(fd, SOL_IP, IP_TRANSPARENT, "setsockopt(IP_TRANSPARENT)");
}

SysResult EnableRecvErr(int fd, bool v6) {
  return v6 ? EnableOption(fd, SOL_IPV6, IPV6_RECVERR, "setsockopt(IPV6_RECVERR)")
            : EnableOption(fd, SOL_IP, IP_RECVERR, "setsockopt(IP_RECVERR)");
}

bool NsFdArg(Napi::Env env, Napi::Value v, int64_t* nsFd) {
  *nsFd = -1;
  return v.IsNull() || v.IsUndefined() || Int32Value(env, v, "nsFd", nsFd);
}

bool FdArg(Napi::Env env, Napi::Value v, int* fd) {
  int64_t n;
  if (!Int32Value(env, v, "fd", &n)) return false;
  *fd = static_cast<int>(n);
  return true;
}

Napi::Value OpenInNetns(Napi::Env env, int64_t nsFd, const std::function<SysResult()>& open, const std::string& what) {
  SysResult r;
  if (nsFd < 0) {
    r = open();
  } else {
    r = OnFreshThread([nsFd, &open] {
      if (setns(static_cast<int>(nsFd), CLONE_NEWNET) != 0) return SysResult{-1, errno, "setns"};
      return open();
    });
  }
  if (r.err != 0) return ThrowErrno(env, r.err, r.syscall, nsFd < 0 ? what : what + " in another network namespace");
  return Napi::Number::New(env, r.value);
}

bool ToSockaddr(Napi::Env env, const std::string& text, int64_t port, sockaddr_storage* ss, socklen_t* len) {
  if (port < 0 || port > 65535) {
    ThrowType(env, "port out of range: " + std::to_string(port));
    return false;
  }
  memset(ss, 0, sizeof *ss);
  auto* in4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, text.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *in4;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *in6;
    return true;
  }
  ThrowType(env, "not an IP address: " + text);
  return false;
}

std::string AddressText(int family, const void* addr) {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, addr, text, sizeof text);
  return text;
}

Received::Received(uint8_t* data, size_t length) : iov_{data, length} {
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov_;
  msg.msg_iovlen = 1;
  msg.msg_control = control_;
  msg.msg_controllen = sizeof control_;
}

ssize_t Received::Receive(int fd, int flags) {
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | flags); while (n < 0 && errno == EINTR);
  return n;
}

Napi::Value ReceiveCall(const Napi::CallbackInfo& info, const char* call, int flags, const char* syscall,
                        const std::string& context, const std::function<void(Received&, Napi::Object)>& describe) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  if (!info[1].IsBuffer()) return ThrowType(env, std::string(call) + " needs a Buffer");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  Received r(buf.Data(), buf.Length());
  ssize_t n = r.Receive(fd, flags);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    return ThrowErrno(env, errno, syscall, context);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("length", static_cast<double>(n));
  out.Set("truncated", (r.msg.msg_flags & MSG_TRUNC) != 0);
  describe(r, out);
  return out;
}

}  // namespace wc
