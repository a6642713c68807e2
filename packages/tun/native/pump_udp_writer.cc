// Ring -> UDP socket: sendmmsg batches in sequence order. Runs of consecutive
// slots to one destination with one size (the last may be shorter) go out as
// a single UDP_SEGMENT (GSO) message with an iovec per slot. When the kernel
// refuses such a message, its slots are resent one datagram each: EMSGSIZE
// (segments larger than the route's MTU) concerns that run only; EIO/EINVAL
// (no GSO for this socket or route: UDP-Lite, IPsec, SO_NO_CHECK, an old
// kernel) turn GSO off for the rest of this pump's life.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "pump_loop.h"
#include "sockaddr.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace wctun {
namespace {

constexpr uint32_t kMaxSegments = 64;     // UDP_MAX_SEGMENTS of older kernels (newer allow 128)
constexpr size_t kMaxGsoBytes = 65000;    // under the 64 KiB an IP packet may hold, headers included
constexpr int kSendRetryMs = 5;

struct Item {
  uint32_t seq;
  const uint8_t* data;
  size_t len;
  PeerAddr to;
};

struct Group {
  uint32_t first;  // index into items
  uint32_t count;
};

class Writer {
 public:
  explicit Writer(PumpContext& c)
      : c_(c), msgs_(c.options.batch), iov_(c.options.batch), names_(c.options.batch), control_(c.options.batch) {
    items_.reserve(c.options.batch);
    groups_.reserve(c.options.batch);
    gso_ = c.options.gso;
    c.stats->gsoActive.store(gso_);
  }

  void Run() {
    while (!c_.Done() && c_.stats->fatalErrno.load() == 0) {
      uint32_t tail = c_.ring.Tail();
      uint32_t n = CollectDone(c_, tail, static_cast<uint32_t>(c_.options.batch));
      if (n == 0) {
        SleepUntilDone(c_);
        continue;
      }
      Round(tail, n);
      ReleaseSlots(c_, tail, n);
    }
  }

 private:
  void Round(uint32_t tail, uint32_t n) {
    items_.clear();
    uint32_t dropped = 0, refused = 0;
    const size_t dataBytes = c_.ring.DataBytes();
    for (uint32_t i = 0; i < n; i++) {
      uint8_t* slot = c_.ring.Slot(tail + i);
      if (c_.ring.State(tail + i) == ring::kDrop) {
        dropped++;
        continue;
      }
      Item it;
      it.seq = tail + i;
      ReadSlotAddr(slot, &it.to);
      int32_t off = ring::Get(slot + ring::kOffsetAt), len = ring::Get(slot + ring::kLengthAt);
      sockaddr_storage probe;
      socklen_t probeLen;
      if (off < 0 || len < 0 || static_cast<size_t>(off) + static_cast<size_t>(len) > dataBytes ||
          !ToSockaddr(c_.sockFamily, it.to, &probe, &probeLen)) {
        refused++;
        continue;
      }
      it.data = c_.ring.Data(tail + i) + off;
      it.len = static_cast<size_t>(len);
      items_.push_back(it);
    }
    sent_ = 0;
    failed_ = refused;
    Send();
    ring::Add(c_.ring.Ctl(ring::kEmittedAt), static_cast<int32_t>(sent_));
    ring::Add(c_.ring.Ctl(ring::kEmitErrorsAt), static_cast<int32_t>(failed_));
    ring::Add(c_.ring.Ctl(ring::kDroppedAt), static_cast<int32_t>(dropped));
    PumpStats::Add(c_.stats->packets, sent_);
    PumpStats::Add(c_.stats->errors, failed_);
    PumpStats::Add(c_.stats->batches, 1);
  }

  // Cuts items[from..] into messages: GSO runs when enabled, else one item
  // each; items before `plainUntil` always go one each.
  void Build(uint32_t from, uint32_t plainUntil = 0) {
    groups_.clear();
    uint32_t iovAt = 0;
    for (uint32_t i = from; i < items_.size();) {
      uint32_t count = 1;
      size_t total = items_[i].len;
      if (gso_ && i >= plainUntil && items_[i].len > 0) {
        // Same destination and size; a shorter item may end a run, never continue it.
        while (i + count < items_.size() && count < kMaxSegments) {
          const Item& next = items_[i + count];
          if (!SamePeer(next.to, items_[i].to) || next.len == 0 || next.len > items_[i].len ||
              total + next.len > kMaxGsoBytes || items_[i + count - 1].len != items_[i].len) {
            break;
          }
          total += next.len;
          count++;
        }
      }
      Group g{i, count};
      mmsghdr& m = msgs_[groups_.size()];
      std::memset(&m, 0, sizeof m);
      socklen_t nameLen = 0;
      ToSockaddr(c_.sockFamily, items_[i].to, &names_[groups_.size()], &nameLen);
      m.msg_hdr.msg_name = &names_[groups_.size()];
      m.msg_hdr.msg_namelen = nameLen;
      for (uint32_t k = 0; k < count; k++) {
        iov_[iovAt + k] = {const_cast<uint8_t*>(items_[i + k].data), items_[i + k].len};
      }
      m.msg_hdr.msg_iov = &iov_[iovAt];
      m.msg_hdr.msg_iovlen = count;
      iovAt += count;
      if (count > 1) {
        auto* buf = &control_[groups_.size()];
        m.msg_hdr.msg_control = buf;
        m.msg_hdr.msg_controllen = sizeof *buf;
        cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t size = static_cast<uint16_t>(items_[i].len);
        std::memcpy(CMSG_DATA(cm), &size, sizeof size);
        m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
      }
      groups_.push_back(g);
      i += count;
    }
  }

  void Send() {
    Build(0);
    size_t done = 0;
    bool retried = false;
    while (done < groups_.size()) {
      int r = sendmmsg(c_.fd, &msgs_[done], static_cast<unsigned>(groups_.size() - done), MSG_DONTWAIT);
      PumpStats::Add(c_.stats->syscalls, 1);
      if (r > 0) {
        for (int k = 0; k < r; k++) Sent(groups_[done + k]);
        done += static_cast<size_t>(r);
        retried = false;
        continue;
      }
      int err = r < 0 ? errno : EAGAIN;
      if (err == EINTR) continue;
      const Group& g = groups_[done];
      if ((err == EIO || err == EINVAL || err == EMSGSIZE) && g.count > 1) {
        if (err != EMSGSIZE) {
          gso_ = false;
          c_.stats->gsoActive.store(false);
        }
        c_.stats->lastErrno.store(err);
        PumpStats::Add(c_.stats->gsoRefused, 1);
        // Everything before `done` is sent and counted; this run goes out as single datagrams.
        uint32_t first = g.first, count = g.count;
        Build(first, first + count);
        done = 0;
        continue;
      }
      if ((err == EAGAIN || err == ENOBUFS) && !retried) {
        retried = true;
        if (WaitFd(c_, POLLOUT, kSendRetryMs) == Wait::kStop) err = ECANCELED;
        else continue;
      }
      // This message fails (the socket buffer stayed full, or the kernel refused
      // this destination/size); the rest of the batch still gets its chance.
      c_.stats->lastErrno.store(err);
      if (err == EBADF || err == ENOTSOCK) c_.Fatal(err, "sendmmsg");
      if (err == EBADF || err == ENOTSOCK || err == ECANCELED) {
        for (size_t k = done; k < groups_.size(); k++) failed_ += groups_[k].count;
        return;
      }
      failed_ += g.count;
      done++;
      retried = false;
    }
  }

  void Sent(const Group& g) {
    sent_ += g.count;
    for (uint32_t k = 0; k < g.count; k++) PumpStats::Add(c_.stats->bytes, items_[g.first + k].len);
    if (g.count > 1) {
      PumpStats::Add(c_.stats->gsoSends, 1);
      PumpStats::Add(c_.stats->gsoSegments, g.count);
    }
  }

  PumpContext& c_;
  std::vector<Item> items_;
  std::vector<Group> groups_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> names_;
  std::vector<std::aligned_storage_t<CMSG_SPACE(sizeof(uint16_t)), alignof(cmsghdr)>> control_;
  bool gso_ = true;
  uint32_t sent_ = 0, failed_ = 0;
};

}  // namespace

void UdpWriterLoop(PumpContext& c) { Writer(c).Run(); }

}  // namespace wctun
