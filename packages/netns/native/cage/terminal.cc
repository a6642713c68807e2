// The command's own pseudo-terminal, relayed to the caller's, as `ssh -t`
// does. The command runs in a session of its own whose controlling terminal
// is this pty: whatever it pushes with TIOCSTI lands in its own input queue,
// never in the caller's, and it cannot reach the caller's session at all.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "setup.h"

namespace wc {

bool OpenPty(int callerTty, int* master, int* slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return false;
  char name[64];
  if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof name) != 0) {
    close(m);
    return false;
  }
  int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    close(m);
    return false;
  }
  struct termios t;
  if (tcgetattr(callerTty, &t) == 0) tcsetattr(s, TCSANOW, &t);
  struct winsize ws;
  if (ioctl(callerTty, TIOCGWINSZ, &ws) == 0) ioctl(s, TIOCSWINSZ, &ws);
  *master = m;
  *slave = s;
  return true;
}

namespace {

// Writes all of `data` to a blocking fd (the caller's terminal).
void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the caller's terminal is gone: the output has nowhere to go
    data += n;
    len -= static_cast<size_t>(n);
  }
}

// Copies what the command wrote; false once no one holds the slave any more (EIO) or it is empty.
bool CopyOut(int master, int out) {
  char buf[16384];
  ssize_t n = read(master, buf, sizeof buf);
  if (n > 0) {
    WriteAll(out, buf, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EINTR || errno == EAGAIN);
}

}  // namespace

int RelayTerminal(pid_t init, const sigset_t& set, int master, int in, int out) {
  struct termios saved;
  bool restore = tcgetattr(in, &saved) == 0;
  if (restore) {
    struct termios raw = saved;
    cfmakeraw(&raw);
    tcsetattr(in, TCSADRAIN, &raw);
  }
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  std::string pending;  // caller input the pty has not taken yet
  bool inOpen = true, masterOpen = true;
  int status = 0;
  bool exited = false;
  while (!exited) {
    struct pollfd fds[3] = {{sfd, POLLIN, 0}, {masterOpen ? master : -1, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0},
                            {inOpen && pending.empty() ? in : -1, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) continue;  // EINTR
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) {
          int st;
          pid_t r;
          while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
            if (r == init) status = st, exited = true;
          }
        } else if (sig == SIGWINCH) {
          struct winsize ws;
          if (ioctl(in, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);  // the pty signals the command itself
        } else if (si.ssi_code != SI_KERNEL) {
          kill(init, sig);
        }
      }
    }
    if (fds[1].revents & POLLIN) masterOpen = CopyOut(master, out);
    else if (fds[1].revents & (POLLHUP | POLLERR)) masterOpen = false;
    if (fds[1].revents & POLLOUT) {
      ssize_t n = write(master, pending.data(), pending.size());
      if (n > 0) pending.erase(0, static_cast<size_t>(n));
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t n = read(in, buf, sizeof buf);
      if (n > 0) pending.append(buf, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR) inOpen = false;  // the caller's terminal hung up
    }
  }
  // Init is gone, so is every process of the namespace: drain what they wrote last.
  while (masterOpen) {
    struct pollfd pfd {master, POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN)) break;
    masterOpen = CopyOut(master, out);
  }
  if (restore) tcsetattr(in, TCSADRAIN, &saved);
  return status;
}

}  // namespace wc
