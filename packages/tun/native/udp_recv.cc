// UDP socket -> ring: one recvmmsg batch per read(). Without GRO, datagrams land directly
// in free slots. With UDP_GRO the kernel may hand over several equal-size
// datagrams as one receive (the UDP_GRO cmsg gives their size): those arrive
// in per-message scratch buffers and are split into consecutive slots.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "step_io.h"
#include "sockaddr.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace wctun {
namespace {

constexpr size_t kGroBuffer = 65536;  // a coalesced receive is at most one 64 KiB skb
constexpr int kMaxGroMessages = 64;   // bounds the scratch memory (4 MiB) whatever the batch size

struct Batch {
  explicit Batch(int n) : msgs(n), iov(n), names(n), control(n) {}
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iov;
  std::vector<sockaddr_storage> names;
  std::vector<std::aligned_storage_t<CMSG_SPACE(sizeof(int)), alignof(cmsghdr)>> control;

  void Prepare(int i, void* buf, size_t len, bool wantCmsg) {
    iov[i] = {buf, len};
    msghdr& h = msgs[i].msg_hdr;
    std::memset(&h, 0, sizeof h);
    h.msg_name = &names[i];
    h.msg_namelen = sizeof names[i];
    h.msg_iov = &iov[i];
    h.msg_iovlen = 1;
    if (wantCmsg) {
      h.msg_control = &control[i];
      h.msg_controllen = sizeof control[i];
    }
    msgs[i].msg_len = 0;
  }
};

int GroSize(const msghdr& h) {
  for (cmsghdr* cm = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); cm != nullptr; cm = CMSG_NXTHDR(const_cast<msghdr*>(&h), cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int size;
      std::memcpy(&size, CMSG_DATA(cm), sizeof size);
      return size;
    }
  }
  return 0;
}

void FillHeader(uint8_t* slot, int32_t headroom, size_t len, const PeerAddr& from) {
  ring::Set(slot + ring::kOffsetAt, headroom);
  ring::Set(slot + ring::kLengthAt, static_cast<int32_t>(len));
  ring::Set(slot + ring::kSegmentAt, 0);
  WriteSlotAddr(slot, from);
}

class Reader : public Producer {
 public:
  explicit Reader(StepContext& c) : c_(c), batch_(c.options.batch) {
    int on = c.options.gro ? 1 : 0;
    // Kernels or sockets that refuse UDP_GRO simply keep receiving one datagram at a time.
    bool gro = setsockopt(c.fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0 && on == 1;
    c.stats->groActive.store(gro);
    if (gro) {
      groMessages_ = c.options.batch < kMaxGroMessages ? c.options.batch : kMaxGroMessages;
      gro_.reset(new uint8_t[kGroBuffer * static_cast<size_t>(groMessages_)]);
    }
    scratch_.reset(new uint8_t[c.ring.DataBytes()]);
  }

  // One recvmmsg without waiting; the slots it published.
  uint32_t Read() override {
    Round();
    return published_;
  }

  // One recvmmsg; false when the socket is drained (or failed).
  bool Round() {
    published_ = 0;
    uint32_t head = c_.ring.Head();
    int free = 0;
    while (free < c_.options.batch && c_.ring.State(head + free) == ring::kFree) free++;
    int n = free > 0 ? free : c_.options.batch;
    if (gro_ && free > 0 && n > groMessages_) n = groMessages_;
    for (int i = 0; i < n; i++) {
      if (free == 0) {
        batch_.Prepare(i, scratch_.get(), c_.ring.DataBytes(), false);  // read only to drop: one shared buffer
      } else if (gro_) {
        batch_.Prepare(i, gro_.get() + kGroBuffer * i, kGroBuffer, true);
      } else {
        batch_.Prepare(i, c_.ring.Data(head + i) + c_.ring.Headroom(), c_.ring.DataBytes() - c_.ring.Headroom(), false);
      }
    }
    int got = recvmmsg(c_.fd, batch_.msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
    StepStats::Add(c_.stats->syscalls, 1);
    if (got < 0) {
      if (errno == EINTR) return true;
      if (errno == EAGAIN) return false;
      StepStats::Add(c_.stats->errors, 1);
      c_.stats->lastErrno.store(errno);
      if (errno == EBADF || errno == ENOTSOCK || errno == EFAULT) c_.Fatal(errno, "recvmmsg");
      // Others (a queued ICMP error, ENOMEM) concern one receive; the next poll retries.
      return false;
    }
    if (free == 0) {
      ring::Add(c_.ring.Ctl(ring::kDropsFullAt), got);
      StepStats::Add(c_.stats->dropsFull, static_cast<uint64_t>(got));
      return got == n;
    }
    uint32_t published = gro_ ? SplitGro(head, got) : Compact(head, got);
    published_ = published;
    if (published > 0) {
      StepStats::Add(c_.stats->packets, published);
      StepStats::Add(c_.stats->batches, 1);
    }
    return got == n;
  }

 private:
  // Direct receives: datagrams i sit in slot head+i. One that was truncated
  // (bigger than a slot) is dropped, and the ones after it move down so that
  // published slots stay contiguous.
  uint32_t Compact(uint32_t head, int got) {
    uint32_t out = 0;
    const int32_t headroom = c_.ring.Headroom();
    for (int i = 0; i < got; i++) {
      const mmsghdr& m = batch_.msgs[i];
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        StepStats::Add(c_.stats->truncated, 1);
        continue;
      }
      if (out != static_cast<uint32_t>(i)) std::memcpy(c_.ring.Data(head + out) + headroom, c_.ring.Data(head + i) + headroom, m.msg_len);
      PeerAddr from;
      FromSockaddr(batch_.names[i], &from);
      FillHeader(c_.ring.Slot(head + out), headroom, m.msg_len, from);
      c_.ring.Publish(head + out);
      StepStats::Add(c_.stats->bytes, m.msg_len);
      out++;
    }
    return out;
  }

  uint32_t SplitGro(uint32_t head, int got) {
    uint32_t out = 0;
    const int32_t headroom = c_.ring.Headroom();
    const size_t room = c_.ring.DataBytes() - headroom;
    for (int i = 0; i < got; i++) {
      const mmsghdr& m = batch_.msgs[i];
      size_t len = m.msg_len;
      int gso = GroSize(m.msg_hdr);
      size_t seg = gso > 0 ? static_cast<size_t>(gso) : len;
      if (gso > 0) StepStats::Add(c_.stats->groReceives, 1);
      PeerAddr from;
      FromSockaddr(batch_.names[i], &from);
      const uint8_t* data = gro_.get() + kGroBuffer * i;
      for (size_t at = 0; at < len || (len == 0 && at == 0); at += seg) {
        size_t piece = len - at < seg ? len - at : seg;
        if (gso > 0) StepStats::Add(c_.stats->groSegments, 1);
        if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0 || piece > room) {
          StepStats::Add(c_.stats->truncated, 1);
        } else if (c_.ring.State(head + out) != ring::kFree) {
          ring::Add(c_.ring.Ctl(ring::kDropsFullAt), 1);
          StepStats::Add(c_.stats->dropsFull, 1);
        } else {
          std::memcpy(c_.ring.Data(head + out) + headroom, data + at, piece);
          FillHeader(c_.ring.Slot(head + out), headroom, piece, from);
          c_.ring.Publish(head + out);
          StepStats::Add(c_.stats->bytes, piece);
          out++;
        }
        if (len == 0) break;
      }
    }
    return out;
  }

  StepContext& c_;
  Batch batch_;
  std::unique_ptr<uint8_t[]> gro_;
  int groMessages_ = 0;
  std::unique_ptr<uint8_t[]> scratch_;
  uint32_t published_ = 0;
};

}  // namespace

std::unique_ptr<Producer> NewUdpProducer(StepContext& c) { return std::make_unique<Reader>(c); }

}  // namespace wctun
