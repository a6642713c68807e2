// What spawnInCage and spawnJoin do with the child they forked once it has exec'd.
#pragma once
#include <sys/types.h>

#include <napi.h>

#include <string>

namespace wc {

// Waits for `pid` to end (retrying on EINTR); returns waitpid's result.
pid_t ReapNow(pid_t pid);

// {pid, pidfd} of a child that runs now. Without a pidfd it could not be waited for
// safely, so it is killed and reaped, and the error names `what` was being watched.
Napi::Value WatchedChild(Napi::Env env, pid_t pid, const std::string& what);

}  // namespace wc
