// Creating and preparing the non-blocking UDP sockets the shards move datagrams on.
#pragma once
#include <string>

namespace wctun {

struct UdpOpenRequest {
  std::string address;  // empty: the wildcard of the family
  int port = 0;         // 0: the kernel picks
  int family = 0;       // 4, 6, or 0 for dual stack (IPv6 socket that also carries IPv4)
  int netnsFd = -1;     // -1: the calling thread's network namespace
  bool reusePort = false;  // SO_REUSEPORT before bind: several sockets share the port, the kernel spreads peers over them
};

struct UdpOpenResult {
  int fd = -1;
  int family = 0;       // AF_INET or AF_INET6 as created
  int err = 0;
  std::string syscall;
};

// Runs on the calling thread (setns() first when netnsFd >= 0: call it on a throw-away thread then).
UdpOpenResult OpenUdp(const UdpOpenRequest& req);

// O_NONBLOCK and large kernel buffers on an adopted or new socket; returns 0 or errno (syscall in *failed).
int PrepareUdp(int fd, std::string* failed);

}  // namespace wctun
