// Ring -> UDP socket, for an emitter (a shard sending what it finished, on its
// own thread): sendmmsg batches in sequence order. Runs of consecutive
// datagrams to one destination with one size (the last may be shorter) go out
// as a single UDP_SEGMENT (GSO) message with an iovec per datagram. A run may
// span slots (one datagram each) or come from one slot whose SEGMENT field
// says it holds several datagrams back to back. When the kernel refuses a
// GSO message, its datagrams are resent one each: EMSGSIZE (segments larger
// than the route's MTU) concerns that run only; EIO/EINVAL (no GSO for this
// socket or route: UDP-Lite, IPsec, SO_NO_CHECK, an old kernel) turn GSO off
// for the rest of this emitter's life.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "step_io.h"
#include "sockaddr.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace wctun {
namespace {

constexpr uint32_t kMaxSegments = 64;     // UDP_MAX_SEGMENTS of older kernels (newer allow 128)
constexpr size_t kMaxGsoBytes = 65507;    // 65535 - 20 (IPv4 header) - 8 (UDP header): the most one send may carry
constexpr int kSendRetryMs = 5;
// A slot cut into more datagrams than this is refused: no shard makes one,
// and it bounds the per-round arrays below.
constexpr uint32_t kMaxSlotSegments = 1024;
// A round stops taking slots once it holds this many datagrams.
constexpr size_t kRoundItems = 1024;

struct Item {
  uint32_t slot;  // index of its slot in the round
  const uint8_t* data;
  size_t len;
  PeerAddr to;
};

struct Group {
  uint32_t first;  // index into items
  uint32_t count;
};

class UdpConsumer : public Consumer {
 public:
  explicit UdpConsumer(StepContext& c) : c_(c) {
    Reserve(static_cast<size_t>(c.options.batch));
    gso_ = c.options.gso;
    c.stats->gsoActive.store(gso_);
  }

  // Sends the datagrams of up to n finished slots from `tail`; returns how many slots it took.
  uint32_t Round(uint32_t tail, uint32_t n) override {
    items_.clear();
    slotFailed_.assign(n, 0);
    uint32_t dropped = 0, refused = 0, taken = 0;
    for (; taken < n && (taken == 0 || items_.size() < kRoundItems); taken++) {
      if (c_.ring.State(tail + taken) == ring::kDrop) {
        dropped++;
        slotFailed_[taken] = kSkipped;
        continue;
      }
      if (!AddSlot(tail + taken, taken)) {
        refused++;
        slotFailed_[taken] = kSkipped;
      }
    }
    Reserve(items_.size());
    sent_ = 0;
    failed_ = 0;
    Send();
    uint32_t emitted = 0, failedSlots = refused;
    for (uint32_t i = 0; i < taken; i++) {
      if (slotFailed_[i] == kFailed) failedSlots++;
      else if (slotFailed_[i] == 0) emitted++;
    }
    ring::Add(c_.ring.Ctl(ring::kEmittedAt), static_cast<int32_t>(emitted));
    ring::Add(c_.ring.Ctl(ring::kEmitErrorsAt), static_cast<int32_t>(failedSlots));
    ring::Add(c_.ring.Ctl(ring::kDroppedAt), static_cast<int32_t>(dropped));
    StepStats::Add(c_.stats->packets, sent_);
    StepStats::Add(c_.stats->errors, failed_ + refused);
    StepStats::Add(c_.stats->batches, 1);
    return taken;
  }

 private:
  void Reserve(size_t n) {
    if (msgs_.size() >= n) return;
    msgs_.resize(n);
    iov_.resize(n);
    names_.resize(n);
    control_.resize(n);
    items_.reserve(n);
    groups_.reserve(n);
  }

  // One item per datagram of an EMIT slot; false (nothing added) for a slot
  // whose packet, segment size or destination makes no sense.
  bool AddSlot(uint32_t seq, uint32_t index) {
    const uint8_t* slot = c_.ring.Slot(seq);
    PeerAddr to;
    ReadSlotAddr(slot, &to);
    int32_t off = ring::Get(slot + ring::kOffsetAt), len = ring::Get(slot + ring::kLengthAt);
    int32_t segment = ring::Get(slot + ring::kSegmentAt);
    sockaddr_storage probe;
    socklen_t probeLen;
    if (off < 0 || len < 0 || segment < 0 ||
        static_cast<size_t>(off) + static_cast<size_t>(len) > c_.ring.DataBytes() ||
        !ToSockaddr(c_.sockFamily, to, &probe, &probeLen)) {
      return false;
    }
    size_t size = segment > 0 && segment < len ? static_cast<size_t>(segment) : static_cast<size_t>(len);
    size_t count = size == 0 ? 1 : (static_cast<size_t>(len) + size - 1) / size;
    if (count > kMaxSlotSegments) return false;
    const uint8_t* data = c_.ring.Data(seq) + off;
    for (size_t k = 0; k < count; k++) {
      size_t at = k * size;
      items_.push_back(Item{index, data + at, count == 1 ? static_cast<size_t>(len) : std::min(size, static_cast<size_t>(len) - at), to});
    }
    return true;
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
      StepStats::Add(c_.stats->syscalls, 1);
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
        StepStats::Add(c_.stats->gsoRefused, 1);
        // Everything before `done` is sent and counted; this run goes out as single datagrams.
        uint32_t first = g.first, count = g.count;
        Build(first, first + count);
        done = 0;
        continue;
      }
      if ((err == EAGAIN || err == ENOBUFS) && !retried) {
        retried = true;
        WaitFd(c_, POLLOUT, kSendRetryMs);
        continue;
      }
      // This message fails (the socket buffer stayed full, or the kernel refused
      // this destination/size); the rest of the batch still gets its chance.
      c_.stats->lastErrno.store(err);
      if (err == EBADF || err == ENOTSOCK) c_.Fatal(err, "sendmmsg");
      if (err == EBADF || err == ENOTSOCK) {
        for (size_t k = done; k < groups_.size(); k++) Failed(groups_[k]);
        return;
      }
      Failed(g);
      done++;
      retried = false;
    }
  }

  void Failed(const Group& g) {
    failed_ += g.count;
    for (uint32_t k = 0; k < g.count; k++) slotFailed_[items_[g.first + k].slot] = kFailed;
  }

  void Sent(const Group& g) {
    sent_ += g.count;
    for (uint32_t k = 0; k < g.count; k++) StepStats::Add(c_.stats->bytes, items_[g.first + k].len);
    if (g.count > 1) {
      StepStats::Add(c_.stats->gsoSends, 1);
      StepStats::Add(c_.stats->gsoSegments, g.count);
    }
  }

  StepContext& c_;
  // Per slot of the round: 0 emitted, or why not.
  static constexpr uint8_t kSkipped = 1, kFailed = 2;
  std::vector<uint8_t> slotFailed_;
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

std::unique_ptr<Consumer> NewUdpConsumer(StepContext& c) { return std::make_unique<UdpConsumer>(c); }

}  // namespace wctun
