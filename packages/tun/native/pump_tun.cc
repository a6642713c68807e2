// TUN queue <-> ring: one read()/write() per packet (a TUN queue has no batch
// syscall), one doorbell ring per batch.
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "pump_loop.h"

namespace wctun {
namespace {

// More than any IP packet plus a virtio_net_hdr: nothing is ever truncated by the kernel.
constexpr size_t kScratch = 65536 + 64;
constexpr int kWriteRetryMs = 5;

bool Unrecoverable(int err) { return err == EBADF || err == EBADFD || err == EINVAL || err == EFAULT; }

}  // namespace

void TunReaderLoop(PumpContext& c) {
  std::unique_ptr<uint8_t[]> scratch(new uint8_t[kScratch]);
  const size_t room = c.ring.DataBytes() - ring::kTunOffset;
  while (!c.Done()) {
    Wait w = WaitFd(c, POLLIN, -1);
    if (w == Wait::kStop) return;
    if (w == Wait::kError) return c.Fatal(errno ? errno : EBADF, "poll");
    if (w == Wait::kTimeout) continue;
    uint32_t published = 0;
    for (int i = 0; i < c.options.batch && !c.Done(); i++) {
      uint32_t head = c.ring.Head();
      bool free = c.ring.State(head) == ring::kFree;
      // A packet that does not fit the slot spills into scratch, so its real
      // length is known and it is dropped whole instead of being cut short.
      iovec iov[2] = {{c.ring.Data(head) + ring::kTunOffset, room}, {scratch.get(), kScratch}};
      ssize_t n = free ? readv(c.fd, iov, 2) : read(c.fd, scratch.get(), kScratch);
      PumpStats::Add(c.stats->syscalls, 1);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        PumpStats::Add(c.stats->errors, 1);
        c.stats->lastErrno.store(errno);
        if (Unrecoverable(errno)) return c.Fatal(errno, "read");
        break;
      }
      if (!free) {
        ring::Add(c.ring.Ctl(ring::kDropsFullAt), 1);
        PumpStats::Add(c.stats->dropsFull, 1);
        continue;
      }
      if (n == 0) continue;
      if (static_cast<size_t>(n) > room) {
        PumpStats::Add(c.stats->truncated, 1);
        continue;
      }
      uint8_t* slot = c.ring.Slot(head);
      ring::Set(slot + ring::kOffsetAt, ring::kTunOffset);
      ring::Set(slot + ring::kLengthAt, static_cast<int32_t>(n));
      ring::Set(slot + ring::kFamilyAt, 0);
      ring::Set(slot + ring::kPortAt, 0);
      ring::Set(slot + ring::kSegmentAt, 0);
      c.ring.Publish(head);
      PumpStats::Add(c.stats->bytes, static_cast<uint64_t>(n));
      published++;
    }
    if (published > 0) {
      ring::RingDoorbell(c.doorbell);
      PumpStats::Add(c.stats->packets, published);
      PumpStats::Add(c.stats->batches, 1);
    }
  }
}

namespace {

// One packet to the kernel. False when it was not written (counted by the caller).
bool WritePacket(PumpContext& c, const uint8_t* data, size_t len) {
  bool retried = false;
  for (;;) {
    ssize_t n = write(c.fd, data, len);
    PumpStats::Add(c.stats->syscalls, 1);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    int err = errno;
    if ((err == EAGAIN || err == ENOBUFS) && !retried) {
      retried = true;
      if (WaitFd(c, POLLOUT, kWriteRetryMs) == Wait::kStop) return false;
      continue;
    }
    c.stats->lastErrno.store(err);
    if (err == EBADF || err == EBADFD) c.Fatal(err, "write");
    return false;
  }
}

}  // namespace

void TunWriterLoop(PumpContext& c) {
  const size_t dataBytes = c.ring.DataBytes();
  while (!c.Done() && c.stats->fatalErrno.load() == 0) {
    uint32_t tail = c.ring.Tail();
    uint32_t n = CollectDone(c, tail, static_cast<uint32_t>(c.options.batch));
    if (n == 0) {
      SleepUntilDone(c);
      continue;
    }
    uint32_t emitted = 0, failed = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint8_t* slot = c.ring.Slot(tail + i);
      if (c.ring.State(tail + i) == ring::kDrop) {
        dropped++;
        continue;
      }
      int32_t off = ring::Get(slot + ring::kOffsetAt), len = ring::Get(slot + ring::kLengthAt);
      // A zero-length TUN write is an EINVAL that has killed writer loops elsewhere; refuse it here.
      bool sane = off >= 0 && len > 0 && static_cast<size_t>(off) + static_cast<size_t>(len) <= dataBytes;
      if (sane && WritePacket(c, c.ring.Data(tail + i) + off, static_cast<size_t>(len))) {
        emitted++;
        PumpStats::Add(c.stats->bytes, static_cast<uint64_t>(len));
      } else {
        failed++;
      }
    }
    ring::Add(c.ring.Ctl(ring::kEmittedAt), static_cast<int32_t>(emitted));
    ring::Add(c.ring.Ctl(ring::kEmitErrorsAt), static_cast<int32_t>(failed));
    ring::Add(c.ring.Ctl(ring::kDroppedAt), static_cast<int32_t>(dropped));
    PumpStats::Add(c.stats->packets, emitted);
    PumpStats::Add(c.stats->errors, failed);
    PumpStats::Add(c.stats->batches, 1);
    ReleaseSlots(c, tail, n);
  }
}

}  // namespace wctun
