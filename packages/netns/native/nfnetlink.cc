// A NETLINK_NETFILTER socket in a given network namespace: open it (with
// multicast groups, such as conntrack's new/destroy events), send a request
// or a batch, and receive one datagram at a time. The messages are built and
// parsed in TypeScript (nfnetlink.ts and its users): this stays a thin pipe.
// Also writes a net sysctl of that namespace (nf_conntrack_acct), which
// /proc/sys/net resolves by the opening thread's namespace.
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

namespace wc {
namespace {

constexpr int kReceiveBuffer = 4 * 1024 * 1024;

SysResult OpenNfnl(const std::vector<int64_t>& groups) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (s < 0) return SysResult{-1, errno, "socket"};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    int err = errno;
    close(s);
    return SysResult{-1, err, "bind"};
  }
  // A burst of events (a browser opening dozens of connections) must not overflow the queue;
  // the kernel caps this at rmem_max, which is enough for thousands of events.
  int size = kReceiveBuffer;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  for (int64_t g : groups) {
    int group = static_cast<int>(g);
    if (setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
      int err = errno;
      close(s);
      return SysResult{-1, err, "setsockopt(NETLINK_ADD_MEMBERSHIP)"};
    }
  }
  return SysResult{s, 0, ""};
}

SysResult WriteSysctl(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return SysResult{-1, errno, "open"};
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) return SysResult{-1, err, "write"};
  return SysResult{0, 0, ""};
}

}  // namespace

// nfnlOpen(nsFd|null, groups: number[]): fd, non-blocking and close-on-exec.
Napi::Value NfnlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsFd;
  if (!NsFdArg(env, info[0], &nsFd)) return env.Undefined();
  if (!info[1].IsArray()) return ThrowType(env, "groups must be an array of numbers");
  auto arr = info[1].As<Napi::Array>();
  std::vector<int64_t> groups;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    int64_t g;
    if (!IntValue(env, arr.Get(i), "group", &g)) return env.Undefined();
    if (g < 1 || g > 31) return ThrowType(env, "group must be 1..31");
    groups.push_back(g);
  }
  return OpenInNetns(env, nsFd, [&groups] { return OpenNfnl(groups); }, "opening a netfilter netlink socket");
}

// nfnlSend(fd, buffer): sends the buffer as one datagram to the kernel.
Napi::Value NfnlSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  if (!info[1].IsBuffer()) return ThrowType(env, "buffer must be a Buffer");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) return env.Undefined();
    if (errno != EINTR) return ThrowErrno(env, errno, "sendto", "sending to netfilter netlink");
  }
}

// nfnlRecv(fd, buffer): bytes of one datagram; -1: nothing waiting; -2: the kernel dropped
// messages because the queue was full (ENOBUFS), which the caller must report.
Napi::Value NfnlRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(env, info[0], &fd)) return env.Undefined();
  if (!info[1].IsBuffer()) return ThrowType(env, "buffer must be a Buffer");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  for (;;) {
    ssize_t n = recv(fd, buf.Data(), buf.Length(), MSG_DONTWAIT);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    if (errno == ENOBUFS) return Napi::Number::New(env, -2);
    return ThrowErrno(env, errno, "recv", "receiving from netfilter netlink");
  }
}

// netnsWriteSysctl(nsFd, path, value): writes /proc/sys/net/... as seen from namespace nsFd.
Napi::Value NetnsWriteSysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsFd;
  std::string path, value;
  if (!IntValue(env, info[0], "nsFd", &nsFd) || !StringValue(env, info[1], "path", &path) || !StringValue(env, info[2], "value", &value)) {
    return env.Undefined();
  }
  if (path.rfind("/proc/sys/net/", 0) != 0 || path.find("..") != std::string::npos) return ThrowType(env, "path must be under /proc/sys/net/");
  SysResult r = OnFreshThread([nsFd, &path, &value] {
    if (setns(static_cast<int>(nsFd), CLONE_NEWNET) != 0) return SysResult{-1, errno, "setns"};
    return WriteSysctl(path, value);
  });
  if (r.err != 0) return ThrowErrno(env, r.err, r.syscall, "writing " + path + " in the cage's network namespace");
  return env.Undefined();
}

}  // namespace wc
