// createNetns(): a new network namespace, returned as an O_CLOEXEC fd.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "exports.h"
#include "glue.h"
#include "threads.h"

namespace wc {

Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  // The thread that unshares is thrown away; the fd keeps the namespace alive.
  SysResult r = OnFreshThread([] {
    if (unshare(CLONE_NEWNET) != 0) return SysResult{-1, errno, "unshare"};
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SysResult{-1, errno, "open"};
    return SysResult{fd, 0, ""};
  });
  if (r.err != 0) return ThrowErrno(info.Env(), r.err, r.syscall, "creating a network namespace");
  return Napi::Number::New(info.Env(), r.value);
}

}  // namespace wc
