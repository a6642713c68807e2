// wirecage-cage: carries out a spawn plan (see plan.h). Started only by the
// addon's spawn(), right after fork, as
//   wirecage-cage PLAN_FD REPORT_FD
// so that none of Node's memory (the key, the spec) is copied into the
// processes that live next to the command. Failures go to REPORT_FD as
// {errno, stage, index}; EOF there means the command was executed.
//
// With a pid namespace: this process is the relay (outside the namespace),
// its child the namespace's init (pid 1), whose child the command (pid 2).
// Relay and init are non-dumpable and keep only the fds they use; the command
// gets a user namespace of its own nested in ours, so the mounts made here are
// locked for it and it has no capability over the namespaces we live in.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "linger.h"
#include "process.h"
#include "setup.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace wc {

void Fail(const Plan& p, int32_t stage, int32_t index) {
  Report r{errno, stage, index};
  ssize_t ignored = write(p.reportFd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

void CloseAllExcept(std::initializer_list<int> keep) {
  std::vector<int> k;
  for (int fd : keep) if (fd >= 0) k.push_back(fd);
  std::sort(k.begin(), k.end());
  unsigned from = 0;
  for (int fd : k) {
    if (static_cast<unsigned>(fd) > from) syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0U);
    from = static_cast<unsigned>(fd) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
}

namespace {

void WriteSysctls(const Plan& p) {
  for (size_t i = 0; i < p.sysctls.size(); i++) {
    std::string path = "/proc/sys/" + p.sysctls[i].path;
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) Fail(p, kSysctl, i);
    const std::string& v = p.sysctls[i].value;
    if (write(fd, v.data(), v.size()) != static_cast<ssize_t>(v.size())) Fail(p, kSysctl, i);
    close(fd);
  }
}

// The command's side of its user namespace: unshare, let init write the maps, then take a copy of
// the mount namespace, which the kernel locks because its owner is now less privileged.
void EnterOwnUserNamespace(const Plan& p, int fromInit, int toInit) {
  if (unshare(CLONE_NEWUSER) != 0) Fail(p, kUserns);
  char c = 'u';
  if (write(toInit, &c, 1) != 1) _exit(127);
  ssize_t n;
  do n = read(fromInit, &c, 1); while (n < 0 && errno == EINTR);
  if (n != 1) _exit(127);  // init could not write the maps and reported why
  close(toInit);
  close(fromInit);
  if (unshare(CLONE_NEWNS) != 0) Fail(p, kUnshare);
}

void DropPrivileges(const Plan& p) {
  if (p.hasGroups && setgroups(p.groups.size(), p.groups.data()) != 0) Fail(p, kSetgroups);
  if (p.hasGid && setresgid(p.gid, p.gid, p.gid) != 0) Fail(p, kSetgid);
  if (p.hasUid && setresuid(p.uid, p.uid, p.uid) != 0) Fail(p, kSetuid);
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
    if (moved[i] < 0) fcntl(i, F_SETFD, 0);
    MakeBlocking(i);
  }
}

void CloseOtherFds(const Plan& p) {
  // Marking them close-on-exec (instead of closing) keeps the report pipe usable until execve.
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0) Fail(p, kCloseFds);
  for (long fd = 3; fd < max; fd++) fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

// The caller's process group is invisible from inside the namespace, which breaks a job-control
// shell (it could not hand the terminal back on exit). Without a session of its own the command
// gets a process group of its own, made the terminal's foreground group as the caller's was.
void TakeTerminal(const Plan& p) {
  int fd = p.stdio[0] >= 0 ? p.stdio[0] : 0;  // stdin is set up later, from this fd
  if (setpgid(0, 0) != 0) Fail(p, kSetsid);
  // A process outside the foreground group gets SIGTTOU from tcsetpgrp unless it ignores it.
  struct sigaction ign {}, dfl {};
  ign.sa_handler = SIG_IGN;
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTTOU, &ign, nullptr);
  if (tcsetpgrp(fd, getpid()) != 0) Fail(p, kTerminal);
  sigaction(SIGTTOU, &dfl, nullptr);
}

struct CommandSide {
  int ctty = -1;              // the pty slave to make the controlling terminal
  bool foreground = false;    // (no session of its own) take the caller's terminal
  int fromInit = -1, toInit = -1;  // user-namespace handshake with init
};

// The command's last steps; `parent` is who must still be there once the parent-death signal is set.
[[noreturn]] void Exec(const Plan& p, pid_t parent, const CommandSide& side) {
  if (p.newSession) {
    if (setsid() < 0) Fail(p, kSetsid);
    if (side.ctty >= 0 && ioctl(side.ctty, TIOCSCTTY, 0) != 0) Fail(p, kTerminal);
  } else if (side.foreground) {
    TakeTerminal(p);
  }
  if (p.userns) EnterOwnUserNamespace(p, side.fromInit, side.toInit);
  // The secure bits before the uid change, so that it keeps no capability either (see LockRootOut).
  if (p.dropCapabilities && !LockRootOut()) Fail(p, kCaps);
  DropPrivileges(p);
  if (p.dropCapabilities && !ClearCapabilities()) Fail(p, kCaps);
  if (p.noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(p, kNoNewPrivs);
  // After the uid change: a credential change clears the parent-death signal.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(p, kPdeathsig);
  if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  SetupStdio(p);
  CloseOtherFds(p);
  errno = ExecCommand(p);
  Fail(p, kExecve);
}

// --- pid namespace: caller -> relay (this process) -> init (pid 1) -> command (pid 2) ---
// When init exits the kernel kills everything left in the namespace, so nothing the
// command started outlives it. Relay and init handle signals synchronously (blocked, then
// sigwaitinfo or a signalfd): pid 1 receives blocked signals even where their default
// action is ignored for it.

// Ends this process the way the command ended: same exit code, or death by the same signal.
[[noreturn]] void ExitLike(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
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

// Files of the fresh /proc that change the whole machine, not the cage: the core_pattern helper
// runs as root outside every namespace, sysrq reboots. Read-only binds, locked for the command.
void ReadOnlyKernelFiles(const Plan& p) {
  for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}) {
    if (access(path, F_OK) != 0) continue;
    if (mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      Fail(p, kMountProc);
    }
  }
}

bool WriteIdMap(pid_t pid, const char* which, const std::string& map) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), which);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, map.data(), map.size()) == static_cast<ssize_t>(map.size());
  close(fd);
  return ok;
}

// Pid 1: fresh /proc, then the command as pid 2. The command's wait status goes to the relay
// over statusFd, because pid 1 cannot kill itself with the command's signal. After the command,
// the rest of the namespace is ended and the cage's network kept while its closed TCP connections
// finish (linger.h); the relay reads the status once we are gone.
[[noreturn]] void Init(const Plan& p, const sigset_t& set, int statusFd, CommandSide side) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(p, kPdeathsig);
  // Our parent is outside the namespace (getppid() is 0 either way): if the relay died before
  // prctl, the read end it held is closed, which poll reports as POLLERR on our write end.
  struct pollfd pfd {statusFd, POLLOUT, 0};
  if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR)) _exit(127);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) Fail(p, kMountProc);
  if (p.readOnlyKernelFiles) ReadOnlyKernelFiles(p);
  int up[2] = {-1, -1}, down[2] = {-1, -1};
  if (p.userns && (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0)) Fail(p, kPipe);
  pid_t command = fork();
  if (command < 0) Fail(p, kFork);
  if (command == 0) {
    close(statusFd);
    close(up[0]);
    close(down[1]);
    side.fromInit = down[0];
    side.toInit = up[1];
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    Exec(p, 1, side);
  }
  close(up[1]);
  close(down[0]);
  if (p.userns) {
    char c;
    ssize_t n;
    do n = read(up[0], &c, 1); while (n < 0 && errno == EINTR);
    // n != 1: the command failed before its namespace existed and has reported why.
    if (n == 1 && !(WriteIdMap(command, "uid_map", p.uidMap) && WriteIdMap(command, "gid_map", p.gidMap))) {
      int err = errno;
      kill(command, SIGKILL);
      errno = err;
      Fail(p, kIdMap);
    }
  }
  close(p.reportFd);  // only the command reports from here on; spawn() waits for EOF
  CloseAllExcept({statusFd, down[1]});
  if (p.userns) {
    ssize_t ignored = write(down[1], "g", 1);
    (void)ignored;
    close(down[1]);
  }
  // A signal the caller sent after the command's end (before we reaped it) asks for the end now.
  bool stop = false;
  int status = Supervise(command, set, false, &stop);
  ssize_t ignored = write(statusFd, &status, sizeof status);
  (void)ignored;
  if (p.lingerMs > 0 && !stop) {
    EndTheRest();
    Linger(p.lingerMs, set);
  }
  _exit(0);
}

// The first tty among the command's stdout and stderr sources: where the pty's output goes.
int TerminalOut(const Plan& p) {
  for (int i = 1; i <= 2; i++) {
    int fd = p.stdio[i] >= 0 ? p.stdio[i] : i;
    if (isatty(fd)) return fd;
  }
  return p.stdio[0] >= 0 ? p.stdio[0] : 0;
}

// The relay: the process spawn() returns. It stays outside the new namespace (unshare
// CLONE_NEWPID only affects children), forwards signals to init and mirrors the command's end.
[[noreturn]] void RunInPidNamespace(const Plan& p) {
  if (unshare(CLONE_NEWPID) != 0) Fail(p, kUnsharePid);
  int stdinFd = p.stdio[0] >= 0 ? p.stdio[0] : 0;
  Plan command = p;
  CommandSide side;
  int master = -1, out = -1;
  bool terminal = p.newSession && isatty(stdinFd);
  if (terminal && tcgetpgrp(stdinFd) != getpgrp()) {
    // Started in the background: a pty would stop us at once (SIGTTOU, making the caller's terminal
    // raw), and the caller's terminal is no controlling terminal of the command's to read from.
    command.stdio[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (command.stdio[0] < 0) Fail(p, kStdio, 0);
  } else if (terminal) {
    int slave;
    if (!OpenPty(stdinFd, &master, &slave)) Fail(p, kPty);
    for (int i = 0; i < 3; i++) {
      if (isatty(p.stdio[i] >= 0 ? p.stdio[i] : i)) command.stdio[i] = slave;
    }
    side.ctty = slave;
    out = TerminalOut(p);
  } else if (!p.newSession) {
    // Asked out here, where the caller's process group is still visible.
    side.foreground = isatty(stdinFd) && tcgetpgrp(stdinFd) == getpgrp();
  }
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) Fail(p, kPipe);
  // Blocked before fork so that no signal or child exit slips past init's sigwaitinfo.
  sigset_t set = SupervisedSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t init = fork();
  if (init < 0) Fail(p, kFork);
  if (init == 0) {
    close(status[0]);
    if (master >= 0) close(master);
    Init(command, set, status[1], side);
  }
  CloseAllExcept({status[0], master, master >= 0 ? stdinFd : -1, out});
  int st = master >= 0 ? RelayTerminal(init, set, master, stdinFd, out) : Supervise(init, set, false);
  int commandStatus;
  ssize_t n;
  do n = read(status[0], &commandStatus, sizeof commandStatus); while (n < 0 && errno == EINTR);
  // Without a status, init itself failed (or was killed): mirror init.
  ExitLike(n == sizeof commandStatus ? commandStatus : st);
}

[[noreturn]] void Run(const Plan& p) {
  ResetSignals();
  // Nothing of this image is secret, but the fds it holds until it closes them are.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (p.netnsFd >= 0) {
    if (setns(p.netnsFd, CLONE_NEWNET) != 0) Fail(p, kSetns);
    close(p.netnsFd);
  }
  WriteSysctls(p);
  SetupMounts(p);
  if (p.hasCwd && chdir(p.cwd.c_str()) != 0) Fail(p, kChdir);
  if (p.pidNamespace) RunInPidNamespace(p);
  Exec(p, p.parent, CommandSide{});
}

}  // namespace
}  // namespace wc

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "wirecage-cage: this program is started by @wirecage/netns's spawnInCage(), not by hand\n");
    return 125;
  }
  wc::Plan p;
  int reportFd = atoi(argv[2]);
  fcntl(reportFd, F_SETFD, FD_CLOEXEC);  // EOF at the command's execve
  bool ok = wc::ReadPlan(atoi(argv[1]), &p);
  p.reportFd = reportFd;
  if (!ok) wc::Fail(p, wc::kPlan);
  wc::Run(p);
}
