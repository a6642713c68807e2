// Steps both executables take: wirecage-cage (a cage's first command) and wirecage-join (a command
// joining a running cage) each start in a fresh image forked from Node, read a plan, relay signals
// to the command and exec it.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include "plan.h"

namespace wc {

// Dispositions Node set to "ignore" survive execve; the mask was all-blocked across fork.
void ResetSignals();

// Reads a plan from `fd` to its end, then closes it. False with errno set: read's, or EINVAL for a
// plan that does not parse (the executable and the addon are from different builds).
bool ReadPlan(int fd, Plan* p);

// No capability now, none ever: uid 0 confers none at execve (SECBIT_NOROOT, locked), the ambient
// set is empty and may not be raised, and with no_new_privs no setuid bit or file capability adds
// any. The bounding set is left alone on purpose: the kernel refuses to execve a binary whose
// file capabilities it cannot grant in full (Debian's ping has cap_net_raw), while no_new_privs
// already grants none of them. Each returns false with errno set (prctl's, capset's).
bool LockRootOut();
bool ClearCapabilities();

// Node leaves pipes non-blocking; the command expects blocking stdio, as libuv's own spawn gives.
void MakeBlocking(int fd);

// execve of the plan's command with execvp's search of p.candidates: EACCES is remembered and the
// search goes on, "not there" errors are skipped. Returns only when no candidate ran: the errno to
// report (another error at once, else EACCES if one was refused, else ENOENT).
int ExecCommand(const Plan& p);

// The signals a relay passes on to the command, and SIGCHLD.
sigset_t SupervisedSignals();

// Passes the signals of `set` on to `target` and reaps every child until `target` exits; returns its
// wait status. Signals from a terminal (SI_KERNEL) are passed on only with `terminalSignals`: where
// the command shares the terminal's process group, the terminal sends them to it itself, and
// forwarding them would deliver them twice.
// With `stopAfterExit`, a signal other than SIGWINCH that comes once `target` has exited (a zombie
// not yet reaped) is not passed on, where it would be lost: *stopAfterExit is set instead.
int Supervise(pid_t target, const sigset_t& set, bool terminalSignals, bool* stopAfterExit = nullptr);

}  // namespace wc
