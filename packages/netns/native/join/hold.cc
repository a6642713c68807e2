// wirecage-hold: the process that keeps a named cage's namespaces (its own
// nested user namespace, the locked mount namespace, network and pid) while
// the commands in it come and go: wirecage-cage starts it as the cage's
// "command" (pid 2, under the namespace's init), and every command of the
// cage, the first one too, joins it (wirecage-join). It does nothing else:
// when it ends, init ends and the kernel ends everything left in the cage.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main() {
  prctl(PR_SET_NAME, "wirecage-hold", 0, 0, 0);
  syscall(SYS_close_range, 3U, ~0U, 0U);
  // SIGTERM (init passes on the relay's) ends it by default; everything else is ignored.
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGTERM && sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_IGN);
  }
  for (;;) pause();
}
