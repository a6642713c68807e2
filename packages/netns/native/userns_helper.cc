// wirecage-userns: run a program as root in a new user namespace.
//
//   wirecage-userns [--uid-map MAP] [--gid-map MAP] [--die-with-parent] [--] PROGRAM [ARG...]
//   MAP = INSIDE:OUTSIDE:COUNT[,INSIDE:OUTSIDE:COUNT...]   (default 0:<euid>:1 / 0:<egid>:1)
//
// A separate executable because unshare(CLONE_NEWUSER) is refused to a
// multi-threaded process such as Node. The child unshares and waits on a pipe;
// this process writes its uid/gid maps (a process cannot usefully map itself
// once it has unshared) and releases it; the child then execs PROGRAM.
// Exit status: PROGRAM's own (a fatal signal is re-raised), 125 when the
// namespace cannot be set up, 126/127 when PROGRAM cannot be run / is not found.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kSetupFailed = 125;
volatile sig_atomic_t childPid = 0;

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr,
          "wirecage-userns: %s\n"
          "usage: wirecage-userns [--uid-map IN:OUT:COUNT[,...]] [--gid-map IN:OUT:COUNT[,...]]\n"
          "                       [--die-with-parent] [--] PROGRAM [ARG...]\n",
          why);
  exit(kSetupFailed);
}

// "0:1000:1,1:100000:65536" -> "0 1000 1\n1 100000 65536\n"
bool ParseMap(const char* spec, std::string* out) {
  out->clear();
  std::string s(spec);
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    unsigned long a, b, c;
    char tail;
    if (sscanf(item.c_str(), "%lu:%lu:%lu%c", &a, &b, &c, &tail) != 3 || c == 0) return false;
    *out += std::to_string(a) + " " + std::to_string(b) + " " + std::to_string(c) + "\n";
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return !out->empty();
}

long ReadSysctl(const char* path) {
  FILE* f = fopen(path, "re");
  if (f == nullptr) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

// Names the sysctl that forbids user namespaces, when one does.
const char* UsernsHint() {
  if (ReadSysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
    return "unprivileged user namespaces are disabled: set sysctl kernel.unprivileged_userns_clone=1";
  if (ReadSysctl("/proc/sys/user/max_user_namespaces") == 0)
    return "user namespaces are disabled: set sysctl user.max_user_namespaces to a positive value";
  if (ReadSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
    return "AppArmor restricts unprivileged user namespaces: run `sudo wirecage setup apparmor` (a profile for this "
           "helper alone), or set sysctl kernel.apparmor_restrict_unprivileged_userns=0 (every program)";
  return "user namespaces may be restricted by a sysctl (kernel.unprivileged_userns_clone, user.max_user_namespaces, "
         "kernel.apparmor_restrict_unprivileged_userns) or a seccomp filter (e.g. a container)";
}

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  errno = err;
  return n == static_cast<ssize_t>(text.size());
}

void Forward(int sig, siginfo_t* si, void*) {
  // Terminal-generated signals (SI_KERNEL) already reach the child through the process group.
  if (si != nullptr && si->si_code == SI_KERNEL) return;
  if (childPid > 0) kill(childPid, sig);
}

int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return kSetupFailed;
  }
  return status;
}

[[noreturn]] void ExitLike(int status) {
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  // Die of the same signal so our caller sees what the program saw; no second core dump.
  rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  _exit(128 + sig);
}

[[noreturn]] void Child(pid_t parent, int toParent, int fromParent, char** argv) {
  // If this helper dies, the namespace's first process dies with it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(kSetupFailed);
  int err = unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
  if (write(toParent, &err, sizeof err) != sizeof err || err != 0) _exit(kSetupFailed);
  char go = 0;
  ssize_t n;
  do n = read(fromParent, &go, 1); while (n < 0 && errno == EINTR);
  if (n != 1 || go != 'g') _exit(kSetupFailed);  // the parent could not write the maps and said why
  execvp(argv[0], argv);
  err = errno;
  fprintf(stderr, "wirecage-userns: cannot run %s: %s\n", argv[0], strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

struct Options {
  std::string uidMap, gidMap;  // in /proc/PID/uid_map's format
  bool dieWithParent = false;
  char** program = nullptr;  // PROGRAM [ARG...], null-terminated
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  o.uidMap = "0 " + std::to_string(geteuid()) + " 1\n";
  o.gidMap = "0 " + std::to_string(getegid()) + " 1\n";
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a == "--die-with-parent") {
      o.dieWithParent = true;
    } else if (a == "--uid-map" || a == "--gid-map") {
      if (i + 1 >= argc || !ParseMap(argv[i + 1], a == "--uid-map" ? &o.uidMap : &o.gidMap))
        Usage(("bad or missing value for " + a).c_str());
      i++;
    } else if (a.rfind("--", 0) == 0) {
      Usage(("unknown option " + a).c_str());
    } else {
      break;
    }
  }
  if (i >= argc) Usage("missing PROGRAM");
  o.program = argv + i;
  return o;
}

// The namespace child as the parent sees it: `up` brings its unshare errno, writing "g" to `down` releases it.
struct ChildLink {
  pid_t pid;
  int up, down;
};

bool ForkChild(char** program, ChildLink* child) {
  int up[2], down[2];
  if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
    perror("wirecage-userns: pipe2");
    return false;
  }
  pid_t self = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    perror("wirecage-userns: fork");
    return false;
  }
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    Child(self, up[1], down[0], program);
  }
  close(up[1]);
  close(down[0]);
  *child = ChildLink{pid, up[0], down[1]};
  return true;
}

void ForwardSignals() {
  struct sigaction sa {};
  sa.sa_sigaction = Forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH}) sigaction(sig, &sa, nullptr);
}

// False, once the child is reaped and stderr says why, when the child could not unshare.
bool AwaitUnshare(const ChildLink& child) {
  int childErr = 0;
  ssize_t n;
  do n = read(child.up, &childErr, sizeof childErr); while (n < 0 && errno == EINTR);
  if (n != sizeof childErr) {
    fprintf(stderr, "wirecage-userns: the namespace child died before unsharing\n");
    WaitChild(child.pid);
    return false;
  }
  if (childErr != 0) {
    fprintf(stderr, "wirecage-userns: unshare(CLONE_NEWUSER): %s\nwirecage-userns: %s\n", strerror(childErr), UsernsHint());
    WaitChild(child.pid);
    return false;
  }
  return true;
}

// Writes the child's maps and releases it to exec PROGRAM; false, once the child is reaped and stderr
// says why, when either step fails.
bool MapAndRelease(const ChildLink& child, const Options& o) {
  std::string proc = "/proc/" + std::to_string(child.pid) + "/";
  // Without CAP_SETGID outside, the kernel accepts a gid_map only once setgroups is denied.
  bool ok = (geteuid() == 0 || WriteFile(proc + "setgroups", "deny")) && WriteFile(proc + "uid_map", o.uidMap);
  const char* failed = ok ? "gid_map" : "uid_map";
  ok = ok && WriteFile(proc + "gid_map", o.gidMap);
  if (!ok) {
    fprintf(stderr, "wirecage-userns: writing %s%s: %s\n", proc.c_str(), failed, strerror(errno));
    close(child.down);  // EOF tells the child to give up
    WaitChild(child.pid);
    return false;
  }
  if (write(child.down, "g", 1) != 1) {
    perror("wirecage-userns: releasing the child");
    kill(child.pid, SIGKILL);
    WaitChild(child.pid);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  if (o.dieWithParent) {
    pid_t caller = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != caller) return kSetupFailed;
  }
  ChildLink child;
  if (!ForkChild(o.program, &child)) return kSetupFailed;
  childPid = child.pid;
  ForwardSignals();
  if (!AwaitUnshare(child) || !MapAndRelease(child, o)) return kSetupFailed;
  // Nothing else is ours to keep: least of all an input fd (wirecage's spec, with its key, on fd 3),
  // which the child has inherited and reads itself.
  syscall(SYS_close_range, 3U, ~0U, 0U);
  ExitLike(WaitChild(child.pid));
}
