// wirecage-join: runs a command in a running cage, beside what is already
// there. Exec'd by `wirecage exec` (keeping its pid, so signals and the exit
// status pass straight through) or forked by stage 2 for a named cage's first
// command, as
//   wirecage-join PLAN_FD PIDFD
// where PIDFD is a pidfd of a process inside the cage whose namespaces the
// command gets: user (the command's own, nested, with the cage's id maps),
// mount (the private /tmp, /run, hidden files, locked), network and pid. All
// four are entered at once by setns(pidfd): the kernel installs the user
// namespace first and checks the others with our original credentials, which
// own the cage. setns of a user namespace needs a single-threaded process,
// which this fresh image is (a Node process never is).
//
// This process then stays outside the pid namespace as the relay (as
// wirecage-cage's relay does for the first command of an unnamed cage):
// forwards signals, relays a pseudo-terminal, exits as the command did. Any
// other fd it inherited (the exec's control connection) stays open as long
// as it lives: that is how the cage counts the session.
//
// Failures are reported on stderr as `wirecage: ...` with wirecage's exit
// codes (125 joining failed, 126 not executable, 127 not found): the caller
// may be gone (exec'd), so nobody else could word them.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../cage/process.h"
#include "../cage/setup.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace wc {

namespace {

constexpr int kJoinFailed = 125, kNotExecutable = 126, kNotFound = 127;

[[noreturn]] void Die(int code, const std::string& what, const char* syscall, int err) {
  const char* name = strerrorname_np(err);
  std::string line = "wirecage: " + what + ": " + syscall + " failed: " + (name ? name : "E?") + " (" + strerror(err) + ")\n";
  ssize_t ignored = write(2, line.data(), line.size());
  (void)ignored;
  _exit(code);
}

// As the first command: no capability now or ever (see LockRootOut).
void DropCapabilities() {
  if (!LockRootOut()) Die(kJoinFailed, "dropping the command's capabilities", "prctl", errno);
  if (!ClearCapabilities()) Die(kJoinFailed, "dropping the command's capabilities", "capset", errno);
}

void DropPrivileges(const Plan& p) {
  // Already that user: the command's user namespace maps its ids alone and denies setgroups, so
  // the one --user it can take is the one it has (the groups stay as the namespace maps them).
  if ((!p.hasUid || getuid() == p.uid) && (!p.hasGid || getgid() == p.gid)) return;
  const std::string what = "switching to uid " + std::to_string(p.uid) + " (is it mapped in the cage? the cage maps only the ids its first command runs as)";
  if (p.hasGroups && setgroups(p.groups.size(), p.groups.data()) != 0) Die(kJoinFailed, what, "setgroups", errno);
  if (p.hasGid && setresgid(p.gid, p.gid, p.gid) != 0) Die(kJoinFailed, what, "setresgid", errno);
  if (p.hasUid && setresuid(p.uid, p.uid, p.uid) != 0) Die(kJoinFailed, what, "setresuid", errno);
}

void SetupStdio(const int stdio[3]) {
  for (int i = 0; i < 3; i++) {
    if (stdio[i] >= 0 && stdio[i] != i && dup2(stdio[i], i) < 0) Die(kJoinFailed, "setting up stdio", "dup2", errno);
    MakeBlocking(i);
  }
}

struct Side {
  int ctty = -1;     // the pty slave, or -1
  int relayAlive = -1;  // write end of a pipe whose read end only the relay holds
};

[[noreturn]] void Exec(const Plan& p, const Side& side) {
  if (setsid() < 0) Die(kJoinFailed, "giving the command a session of its own", "setsid", errno);
  if (side.ctty >= 0 && ioctl(side.ctty, TIOCSCTTY, 0) != 0) Die(kJoinFailed, "giving the command its terminal", "ioctl", errno);
  if (p.dropCapabilities) DropCapabilities();
  DropPrivileges(p);
  if (p.noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Die(kJoinFailed, "setting no_new_privs", "prctl", errno);
  // After the uid change, which clears it. The relay is outside our pid namespace (getppid() is
  // 0): had it died before prctl, the read end it held is closed, which poll shows as POLLERR.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(kJoinFailed, "tying the command to wirecage", "prctl", errno);
  struct pollfd pfd {side.relayAlive, POLLOUT, 0};
  if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR)) _exit(kJoinFailed);
  int stdio[3] = {-1, -1, -1};
  if (side.ctty >= 0) {
    for (int i = 0; i < 3; i++) stdio[i] = isatty(i) ? side.ctty : -1;
  }
  SetupStdio(stdio);
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  int err = ExecCommand(p);
  Die(err == ENOENT || err == ENOTDIR ? kNotFound : kNotExecutable, "running " + p.argv[0], "execve", err);
}

// The shell's convention, as `wirecage run` exits: the command's code, or 128+N for death by signal
// N (not death by the same signal, which a caller would see as wirecage itself killed).
[[noreturn]] void ExitLike(int status) {
  _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

}  // namespace
}  // namespace wc

int main(int argc, char** argv) {
  using namespace wc;
  if (argc != 3) {
    fprintf(stderr, "wirecage-join: this program is started by @wirecage/netns (wirecage exec), not by hand\n");
    return kJoinFailed;
  }
  ResetSignals();
  // Nothing of this image is secret, but the caller's terminal it holds is.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  Plan p;
  if (!ReadPlan(atoi(argv[1]), &p)) {
    Die(kJoinFailed, "reading the join plan (wirecage-join and the addon are from different builds?)", "read", errno);
  }
  int pidfd = atoi(argv[2]);
  if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) != 0) {
    Die(kJoinFailed, "entering the cage's namespaces", "setns", errno);
  }
  close(pidfd);
  // setns into a mount namespace leaves us at its root.
  if (p.hasCwd && chdir(p.cwd.c_str()) != 0) {
    Die(kJoinFailed, "changing directory to " + p.cwd + " (is it under a private directory of the cage such as /tmp? cd elsewhere first)", "chdir", errno);
  }
  Side side;
  int master = -1, out = -1;
  bool terminal = p.newSession && isatty(0);
  int nullIn = -1;
  if (terminal && tcgetpgrp(0) != getpgrp()) {
    // Started in the background: no pty (it would stop us with SIGTTOU), stdin from /dev/null.
    nullIn = open("/dev/null", O_RDONLY | O_CLOEXEC);
    terminal = false;
  } else if (terminal) {
    if (!OpenPty(0, &master, &side.ctty)) Die(kJoinFailed, "opening a pseudo-terminal for the command", "posix_openpt", errno);
    out = isatty(1) ? 1 : isatty(2) ? 2 : 0;
  }
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) != 0) Die(kJoinFailed, "starting the command", "pipe2", errno);
  sigset_t set = SupervisedSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  // The fork lands in the cage's pid namespace: setns(CLONE_NEWPID) applies to our children.
  pid_t child = fork();
  if (child < 0) Die(kJoinFailed, "starting the command", "fork", errno);
  if (child == 0) {
    close(alive[0]);
    if (master >= 0) close(master);
    if (nullIn >= 0 && dup2(nullIn, 0) < 0) _exit(kJoinFailed);
    side.relayAlive = alive[1];
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    Exec(p, side);
  }
  close(alive[1]);
  if (side.ctty >= 0) close(side.ctty);
  if (nullIn >= 0) close(nullIn);
  // Without a pseudo-terminal the terminal's signals are passed on too: the command is in a session
  // of its own, so they reach only us.
  int status = master >= 0 ? RelayTerminal(child, set, master, 0, out) : Supervise(child, set, true);
  ExitLike(status);
}
