// What a ring step works with: a poller's read (fd -> free slots) or an
// emitter's emit (finished slots -> fd), each run on the caller's thread (a
// shard's). They never call into JS: they see raw memory, fds and atomics only.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "ring.h"

namespace wctun {

struct StepOptions {
  int batch = 64;    // most packets per read() or per emit round
  bool gso = true;   // udpEmitter: UDP_SEGMENT for runs of same-destination, same-size slots
  bool gro = true;   // udpPoller: UDP_GRO, splitting coalesced receives into slots
};

struct StepStats {
  std::atomic<uint64_t> syscalls{0};
  std::atomic<uint64_t> packets{0};      // published (pollers) or emitted (emitters)
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> batches{0};      // reads that published (pollers), non-empty consumer rounds (emitters)
  std::atomic<uint64_t> errors{0};       // failed syscalls or packets (emitters: also in the ring's EMIT_ERRORS)
  std::atomic<uint64_t> dropsFull{0};    // pollers: no FREE slot at HEAD (also in the ring's DROPS_FULL)
  std::atomic<uint64_t> truncated{0};    // pollers: larger than a slot's data area, dropped
  std::atomic<uint64_t> gsoSends{0};     // udpEmitter: messages sent with UDP_SEGMENT
  std::atomic<uint64_t> gsoSegments{0};  // ... and the datagrams they carried
  std::atomic<uint64_t> gsoRefused{0};   // ... GSO messages the kernel refused (resent one datagram each)
  std::atomic<uint64_t> groReceives{0};  // udpPoller: coalesced receives (UDP_GRO cmsg)
  std::atomic<uint64_t> groSegments{0};  // ... and the datagrams split out of them
  std::atomic<bool> gsoActive{false};
  std::atomic<bool> groActive{false};
  std::atomic<int> lastErrno{0};
  std::atomic<int> fatalErrno{0};        // the error after which the fd is not used again (EBADF, EBADFD)
  std::atomic<const char*> fatalSyscall{nullptr};

  static void Add(std::atomic<uint64_t>& c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }
};

struct StepContext {
  int fd = -1;              // the step's own dup of the queue/socket fd
  int sockFamily = 0;       // UDP: AF_INET or AF_INET6
  ring::View ring;
  StepOptions options;
  StepStats* stats = nullptr;

  bool Done() const { return ring.Closed(); }
  void Fatal(int err, const char* syscall) {
    stats->fatalSyscall.store(syscall);
    stats->fatalErrno.store(err);
  }
};

// Readiness of ctx.fd for `events` (POLLOUT: an emitter waiting out a full socket buffer).
enum class Wait { kReady, kTimeout, kError };
Wait WaitFd(StepContext& c, short events, int timeoutMs);

// Consumer helpers shared by the emitters: the run of finished slots at TAIL,
// and its release back to the producer.
uint32_t CollectDone(StepContext& c, uint32_t tail, uint32_t max);
void ReleaseSlots(StepContext& c, uint32_t tail, uint32_t n);

// A consumer's sending state (GSO on or off, scratch arrays): each emitter owns one. Round() emits up to n finished
// slots from `tail` (a gathered TUN run may take a few more) and returns how
// many it took, to be released; 0 when the slot at `tail` cannot go yet.
class Consumer {
 public:
  virtual ~Consumer() = default;
  virtual uint32_t Round(uint32_t tail, uint32_t n) = 0;
};
std::unique_ptr<Consumer> NewTunConsumer(StepContext& c);
std::unique_ptr<Consumer> NewUdpConsumer(StepContext& c);

// One caller's turn at emitting, on its own thread (a shard after finishing
// slots): every finished slot from TAIL on, if it gets the consumer lock.
// Returns how many slots it freed.
uint32_t EmitInline(StepContext& c, Consumer& k);

// A poller's step: one batch from the fd into free slots, no waiting (the fd
// is non-blocking). A run-to-completion shard calls it on its own thread after
// its own poll. Returns the slots published.
class Producer {
 public:
  virtual ~Producer() = default;
  virtual uint32_t Read() = 0;
};
std::unique_ptr<Producer> NewTunProducer(StepContext& c);
std::unique_ptr<Producer> NewUdpProducer(StepContext& c);

}  // namespace wctun
