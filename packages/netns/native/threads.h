// Running a short piece of code on a fresh thread, so that namespace changes
// (unshare/setns act on the calling thread only) never touch Node's own threads.
#pragma once
#include <functional>

namespace wc {

struct SysResult {
  int value = -1;           // e.g. the fd produced
  int err = 0;              // errno, 0 on success
  const char* syscall = ""; // the failing call
};

// Runs `fn` on a new thread and joins it; the thread (and any namespace it entered) is gone afterwards.
SysResult OnFreshThread(const std::function<SysResult()>& fn);

}  // namespace wc
