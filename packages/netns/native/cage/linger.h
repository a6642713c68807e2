// The cage's init after the command's end, before it exits (and the cage's network with it): the
// TCP connections the command's processes closed live on as orphans in the cage's network
// namespace until their peer has acknowledged their last data and FIN. Exiting at once would end
// them there, and the peer would never hear of their end (an iperf3 server kept waiting on a
// control connection for good; `printf DATA | nc HOST PORT` lost its tail).
#pragma once
#include <signal.h>

namespace wc {

// SIGKILL to every other process of the pid namespace, and reaps them: what init's exit does, done
// first, so that their sockets are closed (and orphaned) before the linger looks at them.
void EndTheRest();

// True while a TCP socket of this network namespace owes its peer something: FIN_WAIT1, CLOSING
// or LAST_ACK (a FIN not yet acknowledged, data perhaps still before it), or data queued on a
// connection not yet closed (SYN_RECV, ESTABLISHED, CLOSE_WAIT). Reads /proc/net/tcp and tcp6.
bool TcpOwesPeer();

// Waits until TcpOwesPeer() is false, for at most limitMs. A signal of `set` other than SIGCHLD and
// SIGWINCH (the caller asking again to stop) ends the wait at once; one that came after the command
// ended but before init reaped it skips the wait (Supervise's stopAfterExit).
void Linger(int limitMs, const sigset_t& set);

}  // namespace wc
