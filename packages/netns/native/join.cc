// The addon's side of joining a running cage (join/main.cc says how): a
// pidfd of a process in it, the join itself (exec'd in place of this process,
// or forked for a caller that stays), and the two checks a cage's control
// socket needs: who is on the other end (SO_PEERCRED) and a name lock that the
// kernel drops with its holder (flock), so a killed cage leaves no stale name.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "cage/plan.h"
#include "exports.h"
#include "glue.h"
#include "child.h"
#include "memfd.h"

namespace wc {
namespace {

// {file, argv, env, cwd?, uid?, gid?, groups?, dropCapabilities?, noNewPrivs?, newSession?}
bool ReadJoinPlan(Napi::Env env, Napi::Value v, Plan* p) {
  if (!v.IsObject()) {
    ThrowType(env, "the join plan must be an object");
    return false;
  }
  auto o = v.As<Napi::Object>();
  std::string file;
  if (!StringValue(env, o.Get("file"), "file", &file) || !StringArray(env, o.Get("argv"), "argv", &p->argv) ||
      !StringArray(env, o.Get("env"), "env", &p->env) || !OptString(o, "cwd", &p->cwd, &p->hasCwd)) {
    return false;
  }
  if (file.empty() || p->argv.empty()) {
    ThrowType(env, "file and argv must not be empty");
    return false;
  }
  p->candidates = PathCandidates(file, p->env);
  int64_t n;
  if (!OptInt(o, "uid", &n, &p->hasUid)) return false;
  p->uid = static_cast<uid_t>(n);
  if (!OptInt(o, "gid", &n, &p->hasGid)) return false;
  p->gid = static_cast<gid_t>(n);
  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) {
      ThrowType(env, "groups must be an array of numbers");
      return false;
    }
    p->hasGroups = true;
    auto arr = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      if (!IntValue(env, arr.Get(i), "groups[]", &n)) return false;
      p->groups.push_back(static_cast<gid_t>(n));
    }
  }
  p->dropCapabilities = o.Get("dropCapabilities").ToBoolean().Value();
  p->noNewPrivs = o.Get("noNewPrivs").ToBoolean().Value();
  p->newSession = o.Get("newSession").ToBoolean().Value();
  p->parent = getpid();
  return true;
}

// Everything wirecage-join is started with, from the (plan, helper, pidfd) arguments: the plan in
// a memfd, and the argv naming it and the pidfd.
struct Prepared {
  Prepared() = default;
  Prepared(const Prepared&) = delete;  // argv points into the strings
  std::string helper;
  int pidfd = -1;
  int planFd = -1;
  std::string planArg, pidfdArg;
  char* argv[4] = {};
};

bool Prepare(const Napi::CallbackInfo& info, Prepared* out) {
  Napi::Env env = info.Env();
  Plan plan;
  int64_t fd;
  if (!ReadJoinPlan(env, info[0], &plan) || !StringValue(env, info[1], "helper", &out->helper) ||
      !Int32Value(env, info[2], "pidfd", &fd)) {
    return false;
  }
  out->pidfd = static_cast<int>(fd);
  const std::string serialized = SerializePlan(plan);
  out->planFd = MemfdWith("wirecage-join-plan", serialized.data(), serialized.size());
  if (out->planFd < 0) {
    ThrowErrno(env, errno, "memfd_create", "joining the cage");
    return false;
  }
  out->planArg = std::to_string(out->planFd);
  out->pidfdArg = std::to_string(out->pidfd);
  out->argv[0] = const_cast<char*>("wirecage-join");
  out->argv[1] = out->planArg.data();
  out->argv[2] = out->pidfdArg.data();
  return true;
}

// Between fork and execve: system calls only. wirecage-join gets the plan, the pidfd and the report pipe
// (still close-on-exec: EOF on it means the exec worked), nothing else of ours.
[[noreturn]] void ExecJoinChild(pid_t parent, const Prepared& prep, int reportFd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(125);
  int keep[] = {0, 1, 2, prep.planFd, prep.pidfd, reportFd};
  std::sort(std::begin(keep), std::end(keep));
  unsigned from = 0;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) < from) continue;
    if (static_cast<unsigned>(fd) > from) syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0U);
    if (fd != reportFd) fcntl(fd, F_SETFD, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
  char* const envp[] = {nullptr};
  execve(prep.helper.c_str(), prep.argv, envp);
  int err = errno;
  ssize_t ignored = write(reportFd, &err, sizeof err);
  (void)ignored;
  _exit(125);
}

// The forked wirecage-join's outcome: {pid, pidfd} once it has exec'd, or the error that stopped it.
Napi::Value AwaitJoin(Napi::Env env, pid_t pid, int reportFd, const std::string& helper) {
  int err = 0;
  ssize_t n;
  do n = read(reportFd, &err, sizeof err); while (n < 0 && errno == EINTR);
  close(reportFd);
  if (n == sizeof err) {
    ReapNow(pid);
    return ThrowErrno(env, err, "execve", "starting " + helper + " (is @wirecage/netns built?)");
  }
  return WatchedChild(env, pid, "watching the joined command");
}

}  // namespace

// pidfdOpen(pid): a pidfd (close-on-exec) for `pid`.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid;
  if (!IntValue(env, info[0], "pid", &pid)) return env.Undefined();
  int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (fd < 0) return ThrowErrno(env, errno, "pidfd_open", "pid " + std::to_string(pid));
  return Napi::Number::New(env, fd);
}

// flockExclusive(fd): true when this fd now holds the lock, false when another open file holds it.
Napi::Value FlockExclusive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!IntValue(env, info[0], "fd", &fd)) return env.Undefined();
  int r;
  do r = flock(static_cast<int>(fd), LOCK_EX | LOCK_NB); while (r != 0 && errno == EINTR);
  if (r == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  return ThrowErrno(env, errno, "flock");
}

// peerCredentials(fd): {pid, uid, gid} of a unix socket's peer, in this process's namespaces.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!IntValue(env, info[0], "fd", &fd)) return env.Undefined();
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return ThrowErrno(env, errno, "getsockopt", "SO_PEERCRED");
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", cred.pid);
  out.Set("uid", cred.uid);
  out.Set("gid", cred.gid);
  return out;
}

// execJoin(plan, helper, pidfd, keepFds): becomes wirecage-join (keeps this pid); returns only by throwing.
Napi::Value ExecJoin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Prepared prep;
  if (!Prepare(info, &prep)) return env.Undefined();
  std::vector<int> keep = {prep.planFd, prep.pidfd};
  if (info[3].IsArray()) {
    auto arr = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      int64_t fd;
      if (!IntValue(env, arr.Get(i), "keepFds[]", &fd)) return env.Undefined();
      keep.push_back(static_cast<int>(fd));
    }
  }
  if (access(prep.helper.c_str(), X_OK) != 0) {
    int err = errno;
    close(prep.planFd);
    return ThrowErrno(env, err, "access", prep.helper + " (is @wirecage/netns built?)");
  }
  // libuv marks every fd close-on-exec and the stdio ones non-blocking: hand them over as a shell would.
  for (int fd : keep) fcntl(fd, F_SETFD, 0);
  for (int fd = 0; fd <= 2; fd++) {
    int fdflags = fcntl(fd, F_GETFD);
    if (fdflags >= 0) fcntl(fd, F_SETFD, fdflags & ~FD_CLOEXEC);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  char* envp[] = {nullptr};
  execve(prep.helper.c_str(), prep.argv, envp);
  int err = errno;
  for (int fd : keep) fcntl(fd, F_SETFD, FD_CLOEXEC);
  close(prep.planFd);
  return ThrowErrno(env, err, "execve", prep.helper);
}

// spawnJoin(plan, helper, pidfd): forks wirecage-join; {pid, pidfd} of it, which exits as the command does.
Napi::Value SpawnJoin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Prepared prep;
  if (!Prepare(info, &prep)) return env.Undefined();
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    int err = errno;
    close(prep.planFd);
    return ThrowErrno(env, err, "pipe2", "joining the cage");
  }
  pid_t parent = getpid();
  // Signals stay blocked across fork so Node's handlers never run in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) ExecJoinChild(parent, prep, report[1]);
  int forkErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);
  close(prep.planFd);
  if (pid < 0) {
    close(report[0]);
    return ThrowErrno(env, forkErr, "fork", "joining the cage");
  }
  return AwaitJoin(env, pid, report[0], prep.helper);
}

}  // namespace wc
