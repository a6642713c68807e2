// spawn(): fork a command into the cage.
//
// Everything the child needs is prepared before fork(): Node is multi-threaded,
// so between fork and execve the child may only make plain system calls
// (no malloc, no locks). The child reports a failure as {errno, stage, index}
// over a close-on-exec pipe; EOF on that pipe means execve succeeded.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "exports.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace wc {
namespace {

enum Stage : int32_t {
  kSetns, kUnshare, kMountPrivate, kBind, kRemount, kHide, kChdir,
  kSetgroups, kSetgid, kSetuid, kPdeathsig, kStdio, kCloseFds, kExecve,
  kUnsharePid, kPipe, kFork, kMountProc, kSetpgid, kTcsetpgrp,
};

const char* StageSyscall(int32_t stage) {
  switch (stage) {
    case kSetns: return "setns";
    case kUnshare: return "unshare";
    case kMountPrivate: case kBind: case kRemount: case kHide: return "mount";
    case kChdir: return "chdir";
    case kSetgroups: return "setgroups";
    case kSetgid: return "setresgid";
    case kSetuid: return "setresuid";
    case kPdeathsig: return "prctl";
    case kStdio: return "dup2";
    case kCloseFds: return "close_range";
    case kUnsharePid: return "unshare";
    case kPipe: return "pipe2";
    case kFork: return "fork";
    case kMountProc: return "mount";
    case kSetpgid: return "setpgid";
    case kTcsetpgrp: return "tcsetpgrp";
    default: return "execve";
  }
}

struct Report {
  int32_t err;
  int32_t stage;
  int32_t index;
};

struct Mount {
  std::string source, target;
  bool readonly;
};

struct Plan {
  std::vector<std::string> candidates;  // execve paths, in PATH order
  std::vector<std::string> argvStore, envStore;
  std::vector<char*> argv, envp;
  std::string cwd;
  bool hasCwd = false;
  int netnsFd = -1;
  std::vector<Mount> mounts;
  std::vector<std::string> hide;
  bool hasUid = false, hasGid = false, hasGroups = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int stdio[3] = {-1, -1, -1};
  pid_t parent = 0;
  int reportFd = -1;
  bool pidNamespace = false;
};

[[noreturn]] void Fail(const Plan& p, int32_t stage, int32_t index = -1) {
  Report r{errno, stage, index};
  ssize_t ignored = write(p.reportFd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

// Keeps the flags the kernel locks on mounts inherited from a less privileged namespace;
// a read-only remount that tried to drop them would fail with EPERM.
unsigned long LockedFlags(const char* path) {
  struct statfs sf;
  if (statfs(path, &sf) != 0) return 0;
  return sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

void SetupMounts(const Plan& p) {
  // A pid namespace needs its own /proc, hence its own mount namespace.
  if (!p.pidNamespace && p.mounts.empty() && p.hide.empty()) return;
  if (unshare(CLONE_NEWNS) != 0) Fail(p, kUnshare);
  // Nothing done below may propagate back to the host's mount table.
  if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail(p, kMountPrivate);
  for (size_t i = 0; i < p.mounts.size(); i++) {
    const Mount& m = p.mounts[i];
    if (mount(m.source.c_str(), m.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) Fail(p, kBind, i);
    if (m.readonly) {
      unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | LockedFlags(m.target.c_str());
      if (mount("none", m.target.c_str(), nullptr, flags, nullptr) != 0) Fail(p, kRemount, i);
    }
  }
  for (size_t i = 0; i < p.hide.size(); i++) {
    const char* path = p.hide[i].c_str();
    struct stat st;
    if (lstat(path, &st) != 0) {
      if (errno == ENOENT) continue;  // nothing there, nothing to hide
      Fail(p, kHide, i);
    }
    int rc = S_ISDIR(st.st_mode)
                 ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000,size=4k")
                 : mount("/dev/null", path, nullptr, MS_BIND, nullptr);
    if (rc != 0) Fail(p, kHide, i);
  }
}

void DropPrivileges(const Plan& p) {
  // Raw system calls: glibc's wrappers would try to signal threads that do not exist after fork.
  if (p.hasGroups && syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0) Fail(p, kSetgroups);
  if (p.hasGid && syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) Fail(p, kSetgid);
  if (p.hasUid && syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) Fail(p, kSetuid);
}

void SetupStdio(const Plan& p) {
  // Copy the sources out of the way first so that e.g. stdio [1, 0, 2] cannot clobber itself.
  int moved[3];
  for (int i = 0; i < 3; i++) {
    moved[i] = -1;
    if (p.stdio[i] >= 0 && p.stdio[i] != i) {
      moved[i] = fcntl(p.stdio[i], F_DUPFD_CLOEXEC, 3);
      if (moved[i] < 0) Fail(p, kStdio, i);
    }
  }
  for (int i = 0; i < 3; i++) {
    if (moved[i] >= 0 && dup2(moved[i], i) < 0) Fail(p, kStdio, i);
    // Inherited stdio may be close-on-exec (it is under some supervisors) and Node leaves pipes
    // non-blocking; the command expects neither. Same treatment as libuv's own spawn.
    if (moved[i] < 0) fcntl(i, F_SETFD, 0);
    int fl = fcntl(i, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(i, F_SETFL, fl & ~O_NONBLOCK);
  }
}

void CloseOtherFds(const Plan& p) {
  // Marking them close-on-exec (instead of closing) keeps the report pipe usable until execve.
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0) Fail(p, kCloseFds);
  for (long fd = 3; fd < max; fd++) fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

void ResetSignals() {
  // Node ignores SIGPIPE and handles others; ignored dispositions would survive execve.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// The command's last steps; `parent` is who must still be there once the parent-death signal is set.
[[noreturn]] void Exec(const Plan& p, pid_t parent) {
  DropPrivileges(p);
  // After the uid change: a credential change clears the parent-death signal.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(p, kPdeathsig);
  if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  SetupStdio(p);
  CloseOtherFds(p);
  // execvp's search: EACCES is remembered and the search goes on; "not there" errors are skipped.
  bool sawEacces = false;
  for (const auto& path : p.candidates) {
    execve(path.c_str(), p.argv.data(), p.envp.data());
    if (errno == EACCES) {
      sawEacces = true;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT) {
      Fail(p, kExecve);
    }
  }
  errno = sawEacces ? EACCES : ENOENT;
  Fail(p, kExecve);
}

// --- pid namespace: wirecage -> relay (first child) -> init (pid 1) -> command (pid 2) ---
// When init exits the kernel kills everything left in the namespace, so nothing the
// command started outlives it. Both relay and init handle signals synchronously
// (blocked, then sigwaitinfo): no handlers run in these forks of a threaded process,
// and pid 1 receives blocked signals even where their default action is ignored for it.

const int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};

sigset_t SupervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwarded) sigaddset(&set, sig);
  sigaddset(&set, SIGCHLD);
  return set;
}

// Passes the forwarded signals on to `target` and reaps every child until `target` exits; returns its wait status.
// Signals from a terminal (SI_KERNEL) are not passed on: the terminal sends them to the command's
// process group itself, so forwarding them would deliver them twice.
int Supervise(pid_t target, const sigset_t& set) {
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      if (info.si_code != SI_KERNEL) kill(target, sig);
      continue;
    }
    int status;
    pid_t r;
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
      if (r == target) return status;
    }
  }
}

// Ends this process the way the command ended: same exit code, or death by the same signal.
[[noreturn]] void ExitLike(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    // A core dump of this process would be a copy of wirecage's memory.
    struct rlimit none {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    sigprocmask(SIG_UNBLOCK, &only, nullptr);
    kill(getpid(), sig);
    _exit(128 + sig);  // a signal whose default action is to ignore it
  }
  _exit(WEXITSTATUS(status));
}

// The caller's process group is invisible from inside the namespace, which breaks a job-control
// shell (it could not hand the terminal back on exit). So the command gets a process group of its
// own, made the terminal's foreground group as the caller's was; the terminal's signals go to it.
void TakeTerminal(const Plan& p) {
  int fd = p.stdio[0] >= 0 ? p.stdio[0] : 0;  // stdin is set up later, from this fd
  if (setpgid(0, 0) != 0) Fail(p, kSetpgid);
  // A process outside the foreground group gets SIGTTOU from tcsetpgrp unless it ignores it.
  struct sigaction ign {}, dfl {};
  ign.sa_handler = SIG_IGN;
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTTOU, &ign, nullptr);
  if (tcsetpgrp(fd, getpid()) != 0) Fail(p, kTcsetpgrp);
  sigaction(SIGTTOU, &dfl, nullptr);
}

// Pid 1: fresh /proc, then the command as pid 2. The command's wait status goes to the relay
// over statusFd, because pid 1 cannot kill itself with the command's signal.
[[noreturn]] void Init(const Plan& p, const sigset_t& set, int statusFd, bool foreground) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(p, kPdeathsig);
  // Our parent is outside the namespace (getppid() is 0 either way): if the relay died before
  // prctl, the read end it held is closed, which poll reports as POLLERR on our write end.
  struct pollfd pfd {statusFd, POLLOUT, 0};
  if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR)) _exit(127);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) Fail(p, kMountProc);
  pid_t command = fork();
  if (command < 0) Fail(p, kFork);
  if (command == 0) {
    close(statusFd);
    if (foreground) TakeTerminal(p);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    Exec(p, 1);
  }
  close(p.reportFd);  // only the command reports from here on; wirecage waits for EOF
  int status = Supervise(command, set);
  ssize_t ignored = write(statusFd, &status, sizeof status);
  (void)ignored;
  _exit(0);
}

// The relay: the process wirecage waits for. It stays outside the new namespace (unshare
// CLONE_NEWPID only affects children), forwards signals to init and mirrors the command's end.
[[noreturn]] void RunInPidNamespace(const Plan& p) {
  // No credential change happens in this process, so the parent-death signal sticks.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(p, kPdeathsig);
  if (getppid() != p.parent) _exit(127);
  if (unshare(CLONE_NEWPID) != 0) Fail(p, kUnsharePid);
  // Asked out here, where the caller's process group is still visible.
  int stdinFd = p.stdio[0] >= 0 ? p.stdio[0] : 0;
  bool foreground = isatty(stdinFd) && tcgetpgrp(stdinFd) == getpgrp();
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) Fail(p, kPipe);
  // Blocked before fork so that no signal or child exit slips past init's sigwaitinfo.
  sigset_t set = SupervisedSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t init = fork();
  if (init < 0) Fail(p, kFork);
  if (init == 0) {
    close(status[0]);
    Init(p, set, status[1], foreground);
  }
  close(status[1]);
  close(p.reportFd);
  int st = Supervise(init, set);
  int commandStatus;
  ssize_t n;
  do n = read(status[0], &commandStatus, sizeof commandStatus); while (n < 0 && errno == EINTR);
  // Without a status, init itself failed (or was killed): mirror init.
  ExitLike(n == sizeof commandStatus ? commandStatus : st);
}

[[noreturn]] void Child(const Plan& p) {
  ResetSignals();
  if (p.netnsFd >= 0 && setns(p.netnsFd, CLONE_NEWNET) != 0) Fail(p, kSetns);
  SetupMounts(p);
  if (p.hasCwd && chdir(p.cwd.c_str()) != 0) Fail(p, kChdir);
  if (p.pidNamespace) RunInPidNamespace(p);
  Exec(p, p.parent);
}

std::vector<std::string> Candidates(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return {file};
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    out.push_back(dir.empty() ? file : dir + "/" + file);  // an empty entry means the current directory
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

bool ReadPlan(Napi::Env env, Napi::Object o, Plan* p) {
  std::string file;
  if (!StringValue(env, o.Get("file"), "file", &file) || !StringArray(env, o.Get("argv"), "argv", &p->argvStore) ||
      !StringArray(env, o.Get("env"), "env", &p->envStore) || !OptString(o, "cwd", &p->cwd, &p->hasCwd)) {
    return false;
  }
  if (file.empty()) {
    Napi::TypeError::New(env, "file must not be empty").ThrowAsJavaScriptException();
    return false;
  }
  p->candidates = Candidates(file, p->envStore);
  for (auto& s : p->argvStore) p->argv.push_back(s.data());
  p->argv.push_back(nullptr);
  for (auto& s : p->envStore) p->envp.push_back(s.data());
  p->envp.push_back(nullptr);

  int64_t v;
  bool present;
  if (!OptInt(o, "netnsFd", &v, &present)) return false;
  if (present) p->netnsFd = static_cast<int>(v);
  if (!OptInt(o, "uid", &v, &p->hasUid)) return false;
  p->uid = static_cast<uid_t>(v);
  if (!OptInt(o, "gid", &v, &p->hasGid)) return false;
  p->gid = static_cast<gid_t>(v);

  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) {
      Napi::TypeError::New(env, "groups must be an array of numbers").ThrowAsJavaScriptException();
      return false;
    }
    p->hasGroups = true;
    auto arr = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      if (!IntValue(env, arr.Get(i), "groups[]", &v)) return false;
      p->groups.push_back(static_cast<gid_t>(v));
    }
  }

  Napi::Value mounts = o.Get("mounts");
  if (mounts.IsArray()) {
    auto arr = mounts.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      if (!arr.Get(i).IsObject()) {
        Napi::TypeError::New(env, "mounts[] must be {source, target, readonly?}").ThrowAsJavaScriptException();
        return false;
      }
      auto m = arr.Get(i).As<Napi::Object>();
      Mount mount;
      if (!StringValue(env, m.Get("source"), "mounts[].source", &mount.source) ||
          !StringValue(env, m.Get("target"), "mounts[].target", &mount.target)) {
        return false;
      }
      mount.readonly = m.Get("readonly").ToBoolean().Value();
      p->mounts.push_back(std::move(mount));
    }
  }
  p->pidNamespace = o.Get("pidNamespace").ToBoolean().Value();
  Napi::Value hide = o.Get("hide");
  if (!hide.IsUndefined() && !StringArray(env, hide, "hide", &p->hide)) return false;

  Napi::Value stdio = o.Get("stdio");
  if (stdio.IsArray()) {
    auto arr = stdio.As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < arr.Length(); i++) {
      if (!IntValue(env, arr.Get(i), "stdio[]", &v)) return false;
      p->stdio[i] = static_cast<int>(v);
    }
  }
  return true;
}

std::string Describe(const Plan& p, const Report& r) {
  auto at = [](const std::vector<std::string>& v, int32_t i) { return i >= 0 && i < (int32_t)v.size() ? v[i] : ""; };
  switch (r.stage) {
    case kSetns: return "entering the cage's network namespace";
    case kUnshare: return "creating the cage's mount namespace";
    case kMountPrivate: return "making / private in the cage's mount namespace";
    case kBind:
    case kRemount:
      if (r.index >= 0 && r.index < (int32_t)p.mounts.size()) {
        const Mount& m = p.mounts[r.index];
        return (r.stage == kBind ? "bind-mounting " : "making read-only the bind mount of ") + m.source + " on " + m.target;
      }
      return "bind-mounting";
    case kHide: return "hiding " + at(p.hide, r.index);
    case kChdir: return "changing directory to " + p.cwd;
    case kSetgroups: case kSetgid: case kSetuid: return "dropping privileges";
    case kStdio: return "setting up stdio";
    case kExecve: return "running " + at(p.argvStore, 0);
    case kUnsharePid: return "creating the cage's pid namespace";
    case kPipe: case kFork: return "starting the cage's init process";
    case kMountProc: return "mounting /proc for the cage's pid namespace";
    case kSetpgid: case kTcsetpgrp: return "giving the command the terminal";
    default: return "preparing the command";
  }
}

pid_t ReapNow(pid_t pid) {
  int status;
  pid_t r;
  do r = waitpid(pid, &status, 0); while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

// spawn(options): {pid, pidfd}
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "spawn options must be an object");
  Plan plan;
  if (!ReadPlan(env, info[0].As<Napi::Object>(), &plan)) return env.Undefined();

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return ThrowErrno(env, errno, "pipe2", "spawning a command");
  plan.reportFd = report[1];
  plan.parent = getpid();

  // Signals stay blocked across fork so Node's handlers never run in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) Child(plan);
  int forkErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);
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
    return ThrowErrno(env, r.err, StageSyscall(r.stage), Describe(plan, r));
  }

  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    // The command already runs; without a pidfd it cannot be waited for safely, so stop it.
    int err = errno;
    kill(pid, SIGKILL);
    ReapNow(pid);
    return ThrowErrno(env, err, "pidfd_open", "watching the spawned command");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  return out;
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
