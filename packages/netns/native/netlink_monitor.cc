// A NETLINK_ROUTE socket subscribed to the kernel's link, address and route
// notifications of one network namespace: JS watches its fd and drains it to
// learn that the network changed. Nothing here reads the messages' contents.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

namespace wc {
namespace {

constexpr unsigned kGroups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;

SysResult OpenMonitor() {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (s < 0) return SysResult{-1, errno, "socket"};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = kGroups;
  if (bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    int err = errno;
    close(s);
    return SysResult{-1, err, "bind"};
  }
  return SysResult{s, 0, ""};
}

}  // namespace

// netlinkMonitorOpen(nsFd|null): fd, non-blocking and close-on-exec.
Napi::Value NetlinkMonitorOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsFd;
  if (!NsFdArg(env, info[0], &nsFd)) return env.Undefined();
  return OpenInNetns(env, nsFd, OpenMonitor, "opening a netlink route monitor");
}

// netlinkMonitorDrain(fd, buffer): {datagrams, overflowed}. Reads until nothing is waiting;
// ENOBUFS (the kernel dropped notifications for a full receive queue) is itself a change.
Napi::Value NetlinkMonitorDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  if (!info[1].IsBuffer()) return ThrowType(env, "buffer must be a Buffer");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  int64_t datagrams = 0;
  bool overflowed = false;
  for (;;) {
    ssize_t n = recv(fd, buf.Data(), buf.Length(), MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) {
      datagrams++;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == ENOBUFS) {
      overflowed = true;
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return ThrowErrno(env, errno, "recv", "draining a netlink route monitor");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("datagrams", Napi::Number::New(env, static_cast<double>(datagrams)));
  out.Set("overflowed", Napi::Boolean::New(env, overflowed));
  return out;
}

}  // namespace wc
