// Creating a TUN interface and opening its queues inside a given network namespace.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace wctun {

struct OpenRequest {
  int netnsFd = -1;                      // -1: the calling thread's own namespace
  std::string devicePath = "/dev/net/tun";
  std::string name;                      // may hold "%d" for the kernel to number
  int queues = 1;
  int mtu = 0;                           // 0: leave the kernel's default
  bool offload = false;                  // IFF_VNET_HDR and as many TUN_F_* offloads as the kernel takes
  bool deleteWithNetns = false;          // TUNSETPERSIST: the interface ends with its namespace, not its queues
};

// The 10-byte struct virtio_net_hdr (no num_buffers) that an offloading TUN
// puts before every packet read from it and expects before every packet written.
constexpr size_t kVnetHdrBytes = 10;

struct OpenResult {
  std::vector<int> fds;   // one per queue, O_NONBLOCK | O_CLOEXEC
  std::string name;       // the name the kernel gave
  int ifindex = 0;
  int mtu = 0;
  bool vnetHdr = false;
  unsigned offloads = 0;  // the TUN_F_* flags TUNSETOFFLOAD accepted
  int err = 0;            // errno of the failing step, 0 on success
  std::string syscall;    // the failing step, e.g. "ioctl(TUNSETIFF)"
  int failedQueue = -1;   // which queue's open/TUNSETIFF failed
};

// Meant to run on a throw-away thread: it setns()es that thread into the
// target namespace, since TUNSETIFF creates the interface in the namespace of
// the thread that opened /dev/net/tun. On failure no fd is left open.
OpenResult OpenTunQueues(const OpenRequest& req);

}  // namespace wctun
