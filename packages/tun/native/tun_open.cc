#include "tun_open.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// Older userspace headers predate UDP segmentation offload (kernel 6.2).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace wctun {
namespace {

void Fail(OpenResult* r, const char* syscall, int queue = -1) {
  r->err = errno;
  r->syscall = syscall;
  r->failedQueue = queue;
}

void CloseAll(OpenResult* r) {
  for (int fd : r->fds) close(fd);
  r->fds.clear();
}

ifreq NamedRequest(const std::string& name) {
  ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  return ifr;
}

// The first queue creates the interface; IFF_TUN_EXCL makes that fail with
// EBUSY when the name is taken, instead of silently attaching us to a device
// some other process owns. Later queues attach to the one we created.
bool OpenQueue(const OpenRequest& req, int index, OpenResult* r) {
  int fd = open(req.devicePath.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    Fail(r, "open", index);
    return false;
  }
  ifreq ifr = NamedRequest(index == 0 ? req.name : r->name);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (index == 0 ? IFF_TUN_EXCL : 0) |
                  (req.offload ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    Fail(r, "ioctl(TUNSETIFF)", index);
    close(fd);
    return false;
  }
  if (index == 0) r->name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  r->fds.push_back(fd);
  return true;
}

// The header size and offloads belong to the device, so queue 0 sets them for
// all. Kernels refuse (EINVAL) offload bits they do not know: USO arrived in
// 6.2, so try with it, then without, then with none (the header stays, and
// the kernel then hands over only plain, fully checksummed packets).
bool SetOffloads(OpenResult* r) {
  int fd = r->fds[0];
  int size = static_cast<int>(kVnetHdrBytes);
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
    Fail(r, "ioctl(TUNSETVNETHDRSZ)");
    return false;
  }
  r->vnetHdr = true;
  const unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  for (unsigned flags : {tso | TUN_F_USO4 | TUN_F_USO6, tso, 0u}) {
    if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0) {
      r->offloads = flags;
      return true;
    }
    if (errno != EINVAL) break;
  }
  Fail(r, "ioctl(TUNSETOFFLOAD)");
  return false;
}

bool InterfaceIoctl(int sock, unsigned long request, const char* syscall, ifreq* ifr, OpenResult* r) {
  if (ioctl(sock, request, ifr) == 0) return true;
  Fail(r, syscall);
  return false;
}

// A persistent interface outlives its queues: the kernel deletes it with its
// network namespace, from a workqueue, instead of in the last close(), which
// waits for RCU grace periods (tens of milliseconds).
bool SetPersist(OpenResult* r) {
  if (ioctl(r->fds[0], TUNSETPERSIST, 1) == 0) return true;
  Fail(r, "ioctl(TUNSETPERSIST)");
  return false;
}

// Interface ioctls go through a socket: it must be created after setns so it
// belongs to the target namespace (the host's /sys would describe the wrong one).
bool QueryInterface(const OpenRequest& req, OpenResult* r) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    Fail(r, "socket");
    return false;
  }
  ifreq setMtu = NamedRequest(r->name);
  setMtu.ifr_mtu = req.mtu;
  ifreq getMtu = NamedRequest(r->name);
  ifreq getIndex = NamedRequest(r->name);
  bool ok = (req.mtu <= 0 || InterfaceIoctl(sock, SIOCSIFMTU, "ioctl(SIOCSIFMTU)", &setMtu, r)) &&
            InterfaceIoctl(sock, SIOCGIFMTU, "ioctl(SIOCGIFMTU)", &getMtu, r) &&
            InterfaceIoctl(sock, SIOCGIFINDEX, "ioctl(SIOCGIFINDEX)", &getIndex, r);
  close(sock);
  if (ok) {
    r->mtu = getMtu.ifr_mtu;
    r->ifindex = getIndex.ifr_ifindex;
  }
  return ok;
}

}  // namespace

OpenResult OpenTunQueues(const OpenRequest& req) {
  OpenResult r;
  if (req.netnsFd >= 0 && setns(req.netnsFd, CLONE_NEWNET) < 0) {
    Fail(&r, "setns");
    return r;
  }
  for (int i = 0; i < req.queues; i++) {
    if (!OpenQueue(req, i, &r)) {
      CloseAll(&r);
      return r;
    }
  }
  if ((req.offload && !SetOffloads(&r)) || !QueryInterface(req, &r) || (req.deleteWithNetns && !SetPersist(&r))) {
    // A persistent interface would stay after its fds: make it ordinary again before they close.
    if (req.deleteWithNetns && !r.fds.empty()) ioctl(r.fds[0], TUNSETPERSIST, 0);
    CloseAll(&r);
  }
  return r;
}

}  // namespace wctun
