// TUN queue <-> ring: one read()/write() per packet (a TUN queue has no batch
// syscall); writev joins a gathered run of slots into one write.
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "step_io.h"

namespace wctun {
namespace {

// More than any IP packet plus a virtio_net_hdr: nothing is ever truncated by the kernel.
constexpr size_t kScratch = 65536 + 64;
constexpr int kWriteRetryMs = 5;

bool Unrecoverable(int err) { return err == EBADF || err == EBADFD || err == EINVAL || err == EFAULT; }

}  // namespace

namespace {

// One batch of reads into free slots, without waiting: a run-to-completion shard's own read, after its poll.
class TunProducer : public Producer {
 public:
  explicit TunProducer(StepContext& c) : c_(c), scratch_(new uint8_t[kScratch]) {}

  uint32_t Read() override {
    StepContext& c = c_;
    const int32_t headroom = c.ring.Headroom();
    const size_t room = c.ring.DataBytes() - headroom;
    uint32_t published = 0;
    for (int i = 0; i < c.options.batch && !c.Done(); i++) {
      uint32_t head = c.ring.Head();
      bool free = c.ring.State(head) == ring::kFree;
      // A packet that does not fit the slot spills into scratch, so its real
      // length is known and it is dropped whole instead of being cut short.
      iovec iov[2] = {{c.ring.Data(head) + headroom, room}, {scratch_.get(), kScratch}};
      ssize_t n = free ? readv(c.fd, iov, 2) : read(c.fd, scratch_.get(), kScratch);
      StepStats::Add(c.stats->syscalls, 1);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        StepStats::Add(c.stats->errors, 1);
        c.stats->lastErrno.store(errno);
        if (Unrecoverable(errno)) c.Fatal(errno, "read");
        break;
      }
      if (!free) {
        ring::Add(c.ring.Ctl(ring::kDropsFullAt), 1);
        StepStats::Add(c.stats->dropsFull, 1);
        continue;
      }
      if (n == 0) continue;
      if (static_cast<size_t>(n) > room) {
        StepStats::Add(c.stats->truncated, 1);
        continue;
      }
      uint8_t* slot = c.ring.Slot(head);
      ring::Set(slot + ring::kOffsetAt, headroom);
      ring::Set(slot + ring::kLengthAt, static_cast<int32_t>(n));
      ring::Set(slot + ring::kFamilyAt, 0);
      ring::Set(slot + ring::kPortAt, 0);
      ring::Set(slot + ring::kSegmentAt, 0);
      c.ring.Publish(head);
      StepStats::Add(c.stats->bytes, static_cast<uint64_t>(n));
      published++;
    }
    if (published > 0) {
      StepStats::Add(c.stats->packets, published);
      StepStats::Add(c.stats->batches, 1);
    }
    return published;
  }

 private:
  StepContext& c_;
  std::unique_ptr<uint8_t[]> scratch_;
};

}  // namespace

std::unique_ptr<Producer> NewTunProducer(StepContext& c) { return std::make_unique<TunProducer>(c); }

namespace {

// Most slots one write gathers: coalesceTcp (src/gro.ts) joins at most GRO_MAX_SEGMENTS (64).
constexpr int32_t kMaxGather = 64;

// One packet to the kernel, in one or more pieces. False when it was not written (counted by the caller).
bool WritePacket(StepContext& c, const iovec* iov, int count) {
  bool retried = false;
  for (;;) {
    ssize_t n = writev(c.fd, iov, count);
    StepStats::Add(c.stats->syscalls, 1);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    int err = errno;
    if ((err == EAGAIN || err == ENOBUFS) && !retried) {
      retried = true;
      WaitFd(c, POLLOUT, kWriteRetryMs);
      continue;
    }
    c.stats->lastErrno.store(err);
    if (err == EBADF || err == EBADFD) c.Fatal(err, "write");
    return false;
  }
}

// The slot's OFFSET/LENGTH as a piece of a write; false when they do not frame bytes of the slot.
// A zero-length TUN write is an EINVAL that has killed writer loops elsewhere; refuse it here.
bool Piece(StepContext& c, uint32_t seq, iovec& iov) {
  const uint8_t* slot = c.ring.Slot(seq);
  int32_t off = ring::Get(slot + ring::kOffsetAt), len = ring::Get(slot + ring::kLengthAt);
  if (off < 0 || len <= 0 || static_cast<size_t>(off) + static_cast<size_t>(len) > c.ring.DataBytes()) return false;
  iov.iov_base = c.ring.Data(seq) + off;
  iov.iov_len = static_cast<size_t>(len);
  return true;
}

}  // namespace

namespace {

class TunConsumer : public Consumer {
 public:
  explicit TunConsumer(StepContext& c) : c_(c) {}

  uint32_t Round(uint32_t tail, uint32_t n) override {
    StepContext& c = c_;
    uint32_t emitted = 0, failed = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint8_t* slot = c.ring.Slot(tail + i);
      if (c.ring.State(tail + i) == ring::kDrop) {
        dropped++;
        continue;
      }
      int32_t gather = ring::Get(slot + ring::kGatherAt);
      if (gather < 0 || gather > kMaxGather) gather = 0;  // not ours to trust: write the head alone, it fails or not
      // A run a shard gathered may end past what was collected; shards finish runs last
      // slot first, so the rest is done: take it into this round.
      if (i + gather >= n) n = CollectDone(c, tail, i + gather + 1);
      if (i + gather >= n) {
        n = i;  // not finished after all (cannot happen when shards finish runs last slot first): come back for it
        break;
      }
      int pieces = 0;
      bool sane = true;
      for (int32_t k = 0; k <= gather && sane; k++) sane = Piece(c, tail + i + k, iov_[pieces++]);
      size_t bytes = 0;
      for (int k = 0; k < pieces; k++) bytes += iov_[k].iov_len;
      uint32_t slots = static_cast<uint32_t>(gather) + 1;
      if (sane && WritePacket(c, iov_, pieces)) {
        emitted += slots;
        StepStats::Add(c.stats->bytes, bytes);
      } else {
        failed += slots;
      }
      i += static_cast<uint32_t>(gather);
    }
    ring::Add(c.ring.Ctl(ring::kEmittedAt), static_cast<int32_t>(emitted));
    ring::Add(c.ring.Ctl(ring::kEmitErrorsAt), static_cast<int32_t>(failed));
    ring::Add(c.ring.Ctl(ring::kDroppedAt), static_cast<int32_t>(dropped));
    StepStats::Add(c.stats->packets, emitted);
    StepStats::Add(c.stats->errors, failed);
    StepStats::Add(c.stats->batches, 1);
    return n;
  }

 private:
  StepContext& c_;
  iovec iov_[kMaxGather + 1];
};

}  // namespace

std::unique_ptr<Consumer> NewTunConsumer(StepContext& c) { return std::make_unique<TunConsumer>(c); }

}  // namespace wctun
