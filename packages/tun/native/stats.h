// Per-queue counters. Atomic (relaxed) so that native I/O threads can own a
// queue's reads or writes later while the main thread still reads the totals.
#pragma once
#include <atomic>
#include <cstdint>

namespace wctun {

struct QueueStats {
  std::atomic<uint64_t> rxPackets{0};
  std::atomic<uint64_t> rxBytes{0};
  std::atomic<uint64_t> rxBatches{0};
  std::atomic<uint64_t> rxErrors{0};    // failed reads (the reader stops on a fatal one)
  std::atomic<uint64_t> txPackets{0};
  std::atomic<uint64_t> txBytes{0};
  std::atomic<uint64_t> txDropped{0};   // queue full (EAGAIN/ENOBUFS): dropped like a NIC would
  std::atomic<uint64_t> txRefused{0};   // zero-length or over the size limit: never handed to the kernel
  std::atomic<uint64_t> txErrors{0};    // the kernel rejected the packet (EINVAL, EIO, ...)
  std::atomic<int> lastTxErrno{0};

  static void Add(std::atomic<uint64_t>& counter, uint64_t n) { counter.fetch_add(n, std::memory_order_relaxed); }
};

}  // namespace wctun
