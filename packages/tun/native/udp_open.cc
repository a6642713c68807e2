#include "udp_open.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wctun {
namespace {

// A few MB, so a burst between two reads of a busy shard is not dropped by the kernel.
constexpr int kSocketBuffer = 4 << 20;

void SetBuffer(int fd, int forceOpt, int opt) {
  int size = kSocketBuffer;
  // The FORCE variants pass rmem_max/wmem_max but need CAP_NET_ADMIN; the plain
  // ones are capped by those sysctls, which is the best an unprivileged user gets.
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

UdpOpenResult Failed(UdpOpenResult r, const char* syscall, int fd = -1) {
  r.err = errno;
  r.syscall = syscall;
  if (fd >= 0) close(fd);
  r.fd = -1;
  return r;
}

bool ParseAddress(const UdpOpenRequest& req, int family, sockaddr_storage* sa, socklen_t* len) {
  std::memset(sa, 0, sizeof *sa);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(sa);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(req.port));
    *len = sizeof *in;
    return req.address.empty() || inet_pton(AF_INET, req.address.c_str(), &in->sin_addr) == 1;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(sa);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<uint16_t>(req.port));
  *len = sizeof *in6;
  return req.address.empty() || inet_pton(AF_INET6, req.address.c_str(), &in6->sin6_addr) == 1;
}

UdpOpenResult OpenFamily(const UdpOpenRequest& req, int family, bool dual) {
  UdpOpenResult r;
  r.family = family;
  sockaddr_storage sa;
  socklen_t len;
  if (!ParseAddress(req, family, &sa, &len)) {
    errno = EINVAL;
    return Failed(r, "inet_pton");
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failed(r, "socket");
  if (family == AF_INET6) {
    int only = dual ? 0 : 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) < 0) return Failed(r, "setsockopt(IPV6_V6ONLY)", fd);
  }
  std::string failed;
  int err = PrepareUdp(fd, &failed);
  if (err != 0) {
    errno = err;
    return Failed(r, failed.c_str(), fd);
  }
  int on = 1;
  if (req.reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) return Failed(r, "setsockopt(SO_REUSEPORT)", fd);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return Failed(r, "bind", fd);
  r.fd = fd;
  return r;
}

}  // namespace

int PrepareUdp(int fd, std::string* failed) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    *failed = "fcntl(O_NONBLOCK)";
    return errno;
  }
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  return 0;
}

UdpOpenResult OpenUdp(const UdpOpenRequest& req) {
  if (req.netnsFd >= 0 && setns(req.netnsFd, CLONE_NEWNET) < 0) {
    UdpOpenResult r;
    return Failed(r, "setns");
  }
  if (req.family == 4) return OpenFamily(req, AF_INET, false);
  if (req.family == 6) return OpenFamily(req, AF_INET6, false);
  UdpOpenResult r = OpenFamily(req, AF_INET6, true);
  // A kernel without IPv6 (ipv6.disable=1) still gets a working IPv4 socket.
  if (r.err == EAFNOSUPPORT && req.address.empty()) return OpenFamily(req, AF_INET, false);
  return r;
}

}  // namespace wctun
