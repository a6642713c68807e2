#include "step_io.h"

#include <poll.h>

#include <cerrno>

namespace wctun {

Wait WaitFd(StepContext& c, short events, int timeoutMs) {
  pollfd fds[1] = {{c.fd, events, 0}};
  int n = poll(fds, 1, timeoutMs);
  StepStats::Add(c.stats->syscalls, 1);
  if (n < 0) return errno == EINTR ? Wait::kTimeout : Wait::kError;
  if (n == 0) return Wait::kTimeout;
  // POLLERR/POLLHUP: let the next syscall on the fd report (or clear) the error.
  if ((fds[0].revents & POLLNVAL) != 0) {
    errno = EBADF;
    return Wait::kError;
  }
  return Wait::kReady;
}

uint32_t CollectDone(StepContext& c, uint32_t tail, uint32_t max) {
  uint32_t n = 0;
  while (n < max && c.ring.Done(tail + n)) n++;
  return n;
}

void ReleaseSlots(StepContext& c, uint32_t tail, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) c.ring.SetState(tail + i, ring::kFree);
  ring::Store(c.ring.Ctl(ring::kTailAt), static_cast<int32_t>(tail + n));
}

uint32_t EmitInline(StepContext& c, Consumer& k) {
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

}  // namespace wctun
