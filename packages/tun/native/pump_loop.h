// What one pump thread works with, and the loops that run on it (one per kind).
// The loops never call into JS: they see raw memory, fds and atomics only.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "ring.h"

namespace wctun {

struct PumpOptions {
  int batch = 64;    // most packets per syscall batch / doorbell ring
  bool gso = true;   // udpEmitter: UDP_SEGMENT for runs of same-destination, same-size slots
  bool gro = true;   // udpReader: UDP_GRO, splitting coalesced receives into slots
};

struct PumpStats {
  std::atomic<uint64_t> syscalls{0};
  std::atomic<uint64_t> packets{0};      // published (readers) or emitted (emitters)
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> batches{0};      // doorbell rings (readers), non-empty consumer rounds (emitters)
  std::atomic<uint64_t> errors{0};       // failed syscalls or packets (emitters: also in the ring's EMIT_ERRORS)
  std::atomic<uint64_t> dropsFull{0};    // readers: no FREE slot at HEAD (also in the ring's DROPS_FULL)
  std::atomic<uint64_t> truncated{0};    // readers: larger than a slot's data area, dropped
  std::atomic<uint64_t> gsoSends{0};     // udpEmitter: messages sent with UDP_SEGMENT
  std::atomic<uint64_t> gsoSegments{0};  // ... and the datagrams they carried
  std::atomic<uint64_t> gsoRefused{0};   // ... GSO messages the kernel refused (resent one datagram each)
  std::atomic<uint64_t> groReceives{0};  // udpReader: coalesced receives (UDP_GRO cmsg)
  std::atomic<uint64_t> groSegments{0};  // ... and the datagrams split out of them
  std::atomic<bool> gsoActive{false};
  std::atomic<bool> groActive{false};
  std::atomic<int> lastErrno{0};
  std::atomic<int> fatalErrno{0};        // the error that ended the thread, if any
  std::atomic<const char*> fatalSyscall{nullptr};

  static void Add(std::atomic<uint64_t>& c, uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }
};

struct PumpContext {
  int fd = -1;              // the pump's own dup of the queue/socket fd
  int stopFd = -1;          // eventfd: readable once stop() was called
  int sockFamily = 0;       // UDP: AF_INET or AF_INET6
  ring::View ring;
  uint8_t* doorbell = nullptr;  // readers only
  PumpOptions options;
  PumpStats* stats = nullptr;
  std::atomic<bool> stopping{false};

  bool Done() const { return stopping.load(std::memory_order_relaxed) || ring.Closed(); }
  void Fatal(int err, const char* syscall) {
    stats->fatalSyscall.store(syscall);
    stats->fatalErrno.store(err);
  }
};

// Readiness of ctx.fd for `events` (POLLIN/POLLOUT), or the stop eventfd.
enum class Wait { kReady, kTimeout, kStop, kError };
Wait WaitFd(PumpContext& c, short events, int timeoutMs);

// Consumer helpers shared by the emitters: the run of finished slots at TAIL,
// and its release back to the producer.
uint32_t CollectDone(PumpContext& c, uint32_t tail, uint32_t max);
void ReleaseSlots(PumpContext& c, uint32_t tail, uint32_t n);

// A consumer's sending state (GSO on or off, scratch arrays): each emitter owns one. Round() emits up to n finished
// slots from `tail` (a gathered TUN run may take a few more) and returns how
// many it took, to be released; 0 when the slot at `tail` cannot go yet.
class Consumer {
 public:
  virtual ~Consumer() = default;
  virtual uint32_t Round(uint32_t tail, uint32_t n) = 0;
};
std::unique_ptr<Consumer> NewTunConsumer(PumpContext& c);
std::unique_ptr<Consumer> NewUdpConsumer(PumpContext& c);

// One caller's turn at emitting, on its own thread (a shard after finishing
// slots): every finished slot from TAIL on, if it gets the consumer lock.
// Returns how many slots it freed.
uint32_t EmitInline(PumpContext& c, Consumer& k);

// A reader's step without its thread: one batch from the fd into free slots,
// no waiting (the fd is non-blocking). A run-to-completion shard calls it on
// its own thread after its own poll; the reader loops call it after WaitFd.
// Returns the slots published (the doorbell is rung only when the context has one).
class Producer {
 public:
  virtual ~Producer() = default;
  virtual uint32_t Read() = 0;
};
std::unique_ptr<Producer> NewTunProducer(PumpContext& c);
std::unique_ptr<Producer> NewUdpProducer(PumpContext& c);

void TunReaderLoop(PumpContext& c);
void UdpReaderLoop(PumpContext& c);

}  // namespace wctun
