#include "child.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "glue.h"

namespace wc {

pid_t ReapNow(pid_t pid) {
  int status;
  pid_t r;
  do r = waitpid(pid, &status, 0); while (r < 0 && errno == EINTR);
  return r;
}

Napi::Value WatchedChild(Napi::Env env, pid_t pid, const std::string& what) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int err = errno;
    kill(pid, SIGKILL);
    ReapNow(pid);
    return ThrowErrno(env, err, "pidfd_open", what);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  return out;
}

}  // namespace wc
