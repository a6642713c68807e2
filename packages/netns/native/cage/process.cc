#include "process.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

namespace wc {

void ResetSignals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

bool ReadPlan(int fd, Plan* p) {
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) data.append(buf, static_cast<size_t>(n));
  }
  int err = errno;
  close(fd);
  if (n < 0) {
    errno = err;
    return false;
  }
  if (!ParsePlan(data, p)) {
    errno = EINVAL;
    return false;
  }
  return true;
}

bool LockRootOut() {
  long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return false;
  // EINVAL: a kernel without ambient capabilities, where there are none to clear.
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0 || errno == EINVAL;
}

bool ClearCapabilities() {
  struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

void MakeBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int ExecCommand(const Plan& p) {
  std::vector<char*> argv, envp;
  for (const auto& s : p.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const auto& s : p.env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  bool sawEacces = false;
  for (const auto& path : p.candidates) {
    execve(path.c_str(), argv.data(), envp.data());
    if (errno == EACCES) {
      sawEacces = true;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT) {
      return errno;
    }
  }
  return sawEacces ? EACCES : ENOENT;
}

sigset_t SupervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2, SIGCHLD}) sigaddset(&set, sig);
  return set;
}

namespace {

bool HasExited(pid_t pid) {
  siginfo_t info{};
  return waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

}  // namespace

int Supervise(pid_t target, const sigset_t& set, bool terminalSignals, bool* stopAfterExit) {
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      if (stopAfterExit && sig != SIGWINCH && HasExited(target)) {
        *stopAfterExit = true;
      } else if (terminalSignals || info.si_code != SI_KERNEL) {
        kill(target, sig);
      }
      continue;
    }
    int status;
    pid_t r;
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
      if (r == target) return status;
    }
  }
}

}  // namespace wc
