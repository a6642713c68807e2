#include "linger.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace wc {

namespace {

// /proc/net/tcp's st column (include/net/tcp_states.h).
enum : unsigned { kEstablished = 1, kSynRecv = 3, kFinWait1 = 4, kCloseWait = 8, kLastAck = 9, kClosing = 11 };

// The first poll comes soon (a FIN's acknowledgement takes one round trip), later ones less often.
constexpr long kFirstPollMs = 1;
constexpr long kMaxPollMs = 20;

bool ReadAll(const char* path, std::string* out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return n == 0;
}

bool FileOwesPeer(const char* path) {
  std::string text;
  // A kernel without IPv6 has no tcp6; an unreadable file has nothing we could wait for.
  if (!ReadAll(path, &text)) return false;
  size_t pos = text.find('\n');  // the header line
  while (pos != std::string::npos && pos + 1 < text.size()) {
    size_t end = text.find('\n', pos + 1);
    std::string line = text.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    pos = end;
    unsigned st = 0;
    unsigned long tx = 0;
    // "sl local_address rem_address st tx_queue:rx_queue ..."
    if (sscanf(line.c_str(), "%*s %*s %*s %x %lx:", &st, &tx) != 2) continue;
    if (st == kFinWait1 || st == kClosing || st == kLastAck) return true;
    if ((st == kEstablished || st == kSynRecv || st == kCloseWait) && tx > 0) return true;
  }
  return false;
}

long ElapsedMs(const timespec& since) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since.tv_sec) * 1000 + (now.tv_nsec - since.tv_nsec) / 1000000;
}

}  // namespace

void EndTheRest() {
  kill(-1, SIGKILL);  // from pid 1: every process of the namespace but us
  // Orphans of the namespace are ours to reap; ECHILD once all are gone.
  while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
}

bool TcpOwesPeer() { return FileOwesPeer("/proc/net/tcp") || FileOwesPeer("/proc/net/tcp6"); }

void Linger(int limitMs, const sigset_t& set) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long poll = kFirstPollMs;
  while (TcpOwesPeer()) {
    long left = limitMs - ElapsedMs(start);
    if (left <= 0) return;
    long wait = left < poll ? left : poll;
    poll = poll * 2 < kMaxPollMs ? poll * 2 : kMaxPollMs;
    timespec ts{wait / 1000, (wait % 1000) * 1000000};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &ts);
    if (sig == SIGCHLD) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
    } else if (sig > 0 && sig != SIGWINCH) {
      return;
    }
  }
}

}  // namespace wc
