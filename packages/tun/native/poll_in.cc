// pollIn(fdA, fdB, timeoutMs): a run-to-completion shard's only wait. It
// blocks the calling worker thread in poll() until either fd is readable or
// the timeout passes (bounded, so the shard sees CLOSED and configuration
// changes). Returns a mask: 1 fdA readable, 2 fdB readable, 0 on timeout or EINTR.
#include <poll.h>

#include <cerrno>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace wctun {

Napi::Value PollInJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t a, b, timeout;
  if (!IntValue(env, info[0], "fdA", &a) || !IntValue(env, info[1], "fdB", &b) || !IntValue(env, info[2], "timeoutMs", &timeout)) {
    return env.Undefined();
  }
  if (timeout < 0 || timeout > 60000) return ThrowType(env, "timeoutMs must be from 0 to 60000");
  pollfd fds[2] = {{static_cast<int>(a), POLLIN, 0}, {static_cast<int>(b), POLLIN, 0}};
  int n = poll(fds, 2, static_cast<int>(timeout));
  if (n < 0) {
    if (errno == EINTR) return Napi::Number::New(env, 0);
    return ThrowErrno(env, errno, "poll", "pollIn");
  }
  if (((fds[0].revents | fds[1].revents) & POLLNVAL) != 0) return ThrowErrno(env, EBADF, "poll", "pollIn: a closed fd");
  // POLLERR/POLLHUP count as readable: the read that follows reports (or clears) the error.
  int mask = (fds[0].revents != 0 ? 1 : 0) | (fds[1].revents != 0 ? 2 : 0);
  return Napi::Number::New(env, mask);
}

}  // namespace wctun
