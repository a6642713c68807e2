// spawn(): fork a command into the cage.
//
// The child execs wirecage-cage (native/cage/) at once with the plan on an fd:
// Node is multi-threaded, so between fork and execve only plain system calls
// are safe, and a forked copy of Node would carry its memory (the private key
// among it) into the processes that stay next to the command. wirecage-cage
// reports a failure as {errno, stage, index} over a close-on-exec pipe; EOF on
// that pipe means the command was executed.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "cage/plan.h"
#include "exports.h"
#include "glue.h"
#include "child.h"
#include "memfd.h"

namespace wc {
namespace {

bool TypeError(Napi::Env env, const char* message) {
  ThrowType(env, message);
  return false;
}

// An optional array of objects, each read by `item`.
template <typename F>
bool ObjectArray(Napi::Object o, const char* key, const char* shape, F item) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsArray()) return TypeError(o.Env(), shape);
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (!arr.Get(i).IsObject()) return TypeError(o.Env(), shape);
    if (!item(arr.Get(i).As<Napi::Object>())) return false;
  }
  return true;
}

bool ReadDir(Napi::Object d, std::vector<Dir>* out) {
  Dir dir;
  int64_t v;
  bool present;
  if (!StringValue(d.Env(), d.Get("path"), "path", &dir.path)) return false;
  if (!OptInt(d, "mode", &v, &present)) return false;
  if (present) dir.mode = static_cast<unsigned>(v);
  if (!OptInt(d, "uid", &v, &present)) return false;
  if (present) dir.uid = static_cast<uid_t>(v);
  if (!OptInt(d, "gid", &v, &present)) return false;
  if (present) dir.gid = static_cast<gid_t>(v);
  out->push_back(std::move(dir));
  return true;
}

bool ReadMount(Napi::Object m, std::vector<Mount>* out) {
  Mount mount;
  if (!StringValue(m.Env(), m.Get("source"), "mounts[].source", &mount.source) ||
      !StringValue(m.Env(), m.Get("target"), "mounts[].target", &mount.target)) {
    return false;
  }
  mount.readonly = m.Get("readonly").ToBoolean().Value();
  mount.create = m.Get("create").ToBoolean().Value();
  out->push_back(std::move(mount));
  return true;
}

bool ReadSysctl(Napi::Object s, std::vector<Sysctl>* out) {
  Sysctl sysctl;
  if (!StringValue(s.Env(), s.Get("path"), "sysctls[].path", &sysctl.path) ||
      !StringValue(s.Env(), s.Get("value"), "sysctls[].value", &sysctl.value)) {
    return false;
  }
  out->push_back(std::move(sysctl));
  return true;
}

// file, argv, env, cwd? and the namespace to run in, netnsFd?
bool ReadCommand(Napi::Env env, Napi::Object o, Plan* p) {
  std::string file;
  if (!StringValue(env, o.Get("file"), "file", &file) || !StringArray(env, o.Get("argv"), "argv", &p->argv) ||
      !StringArray(env, o.Get("env"), "env", &p->env) || !OptString(o, "cwd", &p->cwd, &p->hasCwd)) {
    return false;
  }
  if (file.empty()) return TypeError(env, "file must not be empty");
  p->candidates = PathCandidates(file, p->env);
  int64_t v;
  bool present;
  if (!OptInt(o, "netnsFd", &v, &present)) return false;
  if (present) p->netnsFd = static_cast<int>(v);
  return true;
}

// uid?, gid?, groups?
bool ReadIds(Napi::Env env, Napi::Object o, Plan* p) {
  int64_t v = 0;
  if (!OptInt(o, "uid", &v, &p->hasUid)) return false;
  p->uid = static_cast<uid_t>(v);
  if (!OptInt(o, "gid", &v, &p->hasGid)) return false;
  p->gid = static_cast<gid_t>(v);
  Napi::Value groups = o.Get("groups");
  if (groups.IsUndefined() || groups.IsNull()) return true;
  if (!groups.IsArray()) return TypeError(env, "groups must be an array of numbers");
  p->hasGroups = true;
  auto arr = groups.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (!IntValue(env, arr.Get(i), "groups[]", &v)) return false;
    p->groups.push_back(static_cast<gid_t>(v));
  }
  return true;
}

// mounts?, tmpfs?, dirs?, sysctls?
bool ReadFilesystem(Napi::Object o, Plan* p) {
  return ObjectArray(o, "mounts", "mounts[] must be {source, target, readonly?, create?}",
                     [p](Napi::Object m) { return ReadMount(m, &p->mounts); }) &&
         ObjectArray(o, "tmpfs", "tmpfs[] must be {path, mode?, uid?, gid?}", [p](Napi::Object d) { return ReadDir(d, &p->tmpfs); }) &&
         ObjectArray(o, "dirs", "dirs[] must be {path, mode?, uid?, gid?}", [p](Napi::Object d) { return ReadDir(d, &p->dirs); }) &&
         ObjectArray(o, "sysctls", "sysctls[] must be {path, value}", [p](Napi::Object s) { return ReadSysctl(s, &p->sysctls); });
}

// userns?: {uidMap, gidMap}, read after pidNamespace.
bool ReadUserns(Napi::Env env, Napi::Object o, Plan* p) {
  Napi::Value userns = o.Get("userns");
  if (userns.IsUndefined() || userns.IsNull()) return true;
  if (!userns.IsObject()) return TypeError(env, "userns must be {uidMap, gidMap}");
  auto u = userns.As<Napi::Object>();
  if (!StringValue(env, u.Get("uidMap"), "userns.uidMap", &p->uidMap) ||
      !StringValue(env, u.Get("gidMap"), "userns.gidMap", &p->gidMap)) {
    return false;
  }
  if (!p->pidNamespace) return TypeError(env, "userns needs pidNamespace: the namespace's init writes the maps");
  p->userns = true;
  return true;
}

// stdio?: up to three fds for the command's 0, 1 and 2.
bool ReadStdio(Napi::Env env, Napi::Object o, Plan* p) {
  Napi::Value stdio = o.Get("stdio");
  if (!stdio.IsArray()) return true;
  auto arr = stdio.As<Napi::Array>();
  for (uint32_t i = 0; i < 3 && i < arr.Length(); i++) {
    int64_t v;
    if (!IntValue(env, arr.Get(i), "stdio[]", &v)) return false;
    p->stdio[i] = static_cast<int>(v);
  }
  return true;
}

bool ReadPlan(Napi::Env env, Napi::Object o, Plan* p) {
  if (!ReadCommand(env, o, p) || !ReadIds(env, o, p) || !ReadFilesystem(o, p)) return false;
  p->pidNamespace = o.Get("pidNamespace").ToBoolean().Value();
  Napi::Value hide = o.Get("hide");
  if (!hide.IsUndefined() && !StringArray(env, hide, "hide", &p->hide)) return false;
  if (!ReadUserns(env, o, p)) return false;
  p->dropCapabilities = o.Get("dropCapabilities").ToBoolean().Value();
  p->noNewPrivs = o.Get("noNewPrivs").ToBoolean().Value();
  p->newSession = o.Get("newSession").ToBoolean().Value();
  p->sysfs = o.Get("sysfs").ToBoolean().Value();
  p->readOnlyKernelFiles = o.Get("readOnlyKernelFiles").ToBoolean().Value();
  int64_t linger;
  bool present;
  if (!OptInt(o, "lingerMs", &linger, &present)) return false;
  if (present && (linger < 0 || linger > 86400000)) return TypeError(env, "lingerMs must be from 0 to 86400000");
  if (present) p->lingerMs = static_cast<int>(linger);
  return ReadStdio(env, o, p);
}

// Between fork and execve: system calls only. wirecage-cage gets the fds the plan names and
// nothing else of ours.
[[noreturn]] void ExecCage(const Plan& p, int planFd, const char* helper, char* const* argv) {
  Report r{0, kPlan, -2};  // index -2: wirecage-cage itself could not be executed
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != p.parent) _exit(127);
  int keep[] = {0, 1, 2, planFd, p.reportFd, p.netnsFd, p.stdio[0], p.stdio[1], p.stdio[2]};
  std::sort(std::begin(keep), std::end(keep));
  unsigned from = 0;
  for (int fd : keep) {
    if (fd < 0 || static_cast<unsigned>(fd) < from) continue;
    if (static_cast<unsigned>(fd) > from) syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0U);
    fcntl(fd, F_SETFD, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
  char* const envp[] = {nullptr};
  execve(helper, argv, envp);
  r.err = errno;
  ssize_t ignored = write(p.reportFd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

}  // namespace

// spawn(options, helperPath): {pid, pidfd}
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "spawn options must be an object");
  std::string helper;
  if (!StringValue(env, info[1], "helper", &helper)) return env.Undefined();
  Plan plan;
  if (!ReadPlan(env, info[0].As<Napi::Object>(), &plan)) return env.Undefined();

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return ThrowErrno(env, errno, "pipe2", "spawning a command");
  plan.reportFd = report[1];
  plan.parent = getpid();
  const std::string serialized = SerializePlan(plan);
  int planFd = MemfdWith("wirecage-plan", serialized.data(), serialized.size());
  if (planFd < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return ThrowErrno(env, err, "memfd_create", "spawning a command");
  }
  std::string planArg = std::to_string(planFd), reportArg = std::to_string(report[1]);
  char* argv[] = {const_cast<char*>("wirecage-cage"), planArg.data(), reportArg.data(), nullptr};

  // Signals stay blocked across fork so Node's handlers never run in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) ExecCage(plan, planFd, helper.c_str(), argv);
  int forkErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);
  close(planFd);
  if (pid < 0) {
    close(report[0]);
    return ThrowErrno(env, forkErr, "fork", "spawning a command");
  }

  Report r{};
  ssize_t n;
  do n = read(report[0], &r, sizeof r); while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == sizeof r) {
    ReapNow(pid);
    if (r.stage == kPlan && r.index == -2) {
      return ThrowErrno(env, r.err, "execve", "starting " + helper + " (the cage's setup program; is @wirecage/netns built?)");
    }
    return ThrowErrno(env, r.err, StageSyscall(r.stage), DescribeFailure(plan, r));
  }

  return WatchedChild(env, pid, "watching the spawned command");
}

// pipe(closeOnExec = true): [readFd, writeFd]
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2];
  bool cloexec = info[0].IsUndefined() || info[0].ToBoolean().Value();
  if (pipe2(fds, cloexec ? O_CLOEXEC : 0) != 0) return ThrowErrno(info.Env(), errno, "pipe2");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

}  // namespace wc
