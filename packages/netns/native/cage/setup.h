// Pieces of wirecage-cage, the program the addon's spawn() execs right after
// fork: it sets up the cage's mounts and pid namespace and starts the command.
#pragma once
#include <signal.h>

#include <initializer_list>

#include "plan.h"

namespace wc {

// Reports {errno, stage, index} to whoever called spawn() and exits 127.
[[noreturn]] void Fail(const Plan& p, int32_t stage, int32_t index = -1);

// The private mount namespace: tmpfs over the private directories, shared paths bound in, hidden
// paths covered; made before the command's own user namespace, which then locks all of it.
void SetupMounts(const Plan& p);

// Closes every fd but those listed (negative entries are ignored).
void CloseAllExcept(std::initializer_list<int> keep);

// The relay's loop when the command has a pseudo-terminal of its own: copies between the
// caller's terminal (raw while the cage runs) and the pty's master, passes window-size changes on,
// forwards signals to init; returns init's wait status once it exits and the output is drained.
int RelayTerminal(pid_t init, const sigset_t& set, int master, int in, int out);

// Opens a pty whose slave takes the caller's terminal settings and window size.
bool OpenPty(int callerTty, int* master, int* slave);

}  // namespace wc
