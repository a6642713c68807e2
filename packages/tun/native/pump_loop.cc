#include "pump_loop.h"

#include <poll.h>
#include <sched.h>

#include <cerrno>

namespace wctun {

// How long a sleeping thread goes without looking at CLOSED: the owner wakes
// the futex words when it closes a ring, but a thread in poll() only sees it here.
constexpr int kPollMs = 50;
constexpr int kDoneWaitMs = 100;

Wait WaitFd(PumpContext& c, short events, int timeoutMs) {
  pollfd fds[2] = {{c.fd, events, 0}, {c.stopFd, POLLIN, 0}};
  int n = poll(fds, 2, timeoutMs < 0 ? kPollMs : timeoutMs);
  PumpStats::Add(c.stats->syscalls, 1);
  if (n < 0) return errno == EINTR ? Wait::kTimeout : Wait::kError;
  if (fds[1].revents != 0 || c.stopping.load(std::memory_order_relaxed)) return Wait::kStop;
  if (n == 0) return Wait::kTimeout;
  // POLLERR/POLLHUP: let the next syscall on the fd report (or clear) the error.
  if ((fds[0].revents & POLLNVAL) != 0) {
    errno = EBADF;
    return Wait::kError;
  }
  return Wait::kReady;
}

uint32_t CollectDone(PumpContext& c, uint32_t tail, uint32_t max) {
  uint32_t n = 0;
  while (n < max && c.ring.Done(tail + n)) n++;
  return n;
}

void ReleaseSlots(PumpContext& c, uint32_t tail, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) c.ring.SetState(tail + i, ring::kFree);
  ring::Store(c.ring.Ctl(ring::kTailAt), static_cast<int32_t>(tail + n));
}

void ConsumerLoop(PumpContext& c, Consumer& k) {
  while (!c.Done() && c.stats->fatalErrno.load() == 0) {
    if (!c.ring.TryLockConsumer()) {
      // A shard is emitting inline; it looks at TAIL again when it is done.
      FutexWait(ring::Word(c.ring.Ctl(ring::kDoneAt)), ring::Load(c.ring.Ctl(ring::kDoneAt)), 1);
      continue;
    }
    uint32_t tail = c.ring.Tail();
    uint32_t n = CollectDone(c, tail, static_cast<uint32_t>(c.options.batch));
    uint32_t taken = n > 0 ? k.Round(tail, n) : 0;
    if (taken > 0) ReleaseSlots(c, tail, taken);
    c.ring.UnlockConsumer();
    if (n == 0) SleepUntilDone(c);
    else if (taken == 0) sched_yield();
  }
}

uint32_t EmitInline(PumpContext& c, Consumer& k) {
  uint32_t total = 0;
  bool stuck = false;
  while (!stuck && !c.ring.Closed() && c.ring.TryLockConsumer()) {
    for (;;) {
      uint32_t tail = c.ring.Tail();
      uint32_t n = CollectDone(c, tail, static_cast<uint32_t>(c.options.batch));
      if (n == 0) break;
      uint32_t taken = k.Round(tail, n);
      if (taken == 0) {
        stuck = true;  // whoever finishes the rest of that run emits it
        break;
      }
      ReleaseSlots(c, tail, taken);
      total += taken;
    }
    c.ring.UnlockConsumer();
    // Slots finished while we held the lock were left to us by their shards.
    if (!c.ring.Done(c.ring.Tail())) break;
  }
  return total;
}

void SleepUntilDone(PumpContext& c) {
  int32_t seen = ring::Load(c.ring.Ctl(ring::kDoneAt));
  if (c.ring.Done(c.ring.Tail()) || c.Done()) return;
  c.ring.SleepOnDone(seen, kDoneWaitMs);
  PumpStats::Add(c.stats->syscalls, 1);
}

}  // namespace wctun
