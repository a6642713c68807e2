// What a spawn into the cage needs, shared by the addon (which fills it from
// JS and serialises it) and wirecage-cage (which reads it and carries it out).
// The addon forks and at once execs wirecage-cage: everything after the fork
// runs in a fresh small image that holds none of Node's memory (no key, no
// spec), only the fds named here.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wc {

// Where a failure happened; the child reports {errno, stage, index} on reportFd.
enum Stage : int32_t {
  kSetns, kUnshare, kMountPrivate, kBind, kRemount, kHide, kChdir,
  kSetgroups, kSetgid, kSetuid, kPdeathsig, kStdio, kCloseFds, kExecve,
  kUnsharePid, kPipe, kFork, kMountProc, kSetsid, kTerminal,
  kPlan, kSysctl, kTmpfs, kMkdir, kUserns, kIdMap, kCaps, kNoNewPrivs, kOpenSource, kPty,
};

struct Report {
  int32_t err;
  int32_t stage;
  int32_t index;
};

struct Mount {
  std::string source, target;
  bool readonly = false;
  // Make the target (and its parents) first, as a file or directory like the source: for targets
  // inside a private tmpfs, where nothing exists yet.
  bool create = false;
};

// A fresh tmpfs (private /tmp, /run...) or a directory made inside one.
struct Dir {
  std::string path;
  unsigned mode = 0700;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Sysctl {
  std::string path, value;  // path relative to /proc/sys
};

struct Plan {
  std::vector<std::string> candidates;  // execve paths, in PATH order
  std::vector<std::string> argv, env;
  std::string cwd;
  bool hasCwd = false;
  int netnsFd = -1;
  std::vector<Sysctl> sysctls;  // written after entering netnsFd, for that namespace
  std::vector<Dir> tmpfs;       // mounted before the bind mounts
  std::vector<Dir> dirs;        // made inside them
  std::vector<Mount> mounts;
  std::vector<std::string> hide;
  // A sysfs of the network namespace entered, read-only, over /sys: the host's lists the host's
  // interfaces (names, addresses) under /sys/class/net.
  bool sysfs = false;
  // Read-only /proc/sys, /proc/sysrq-trigger and the like: kernel-wide knobs that uid 0 of the
  // host (a command run as root) may write by file mode alone, without any capability.
  bool readOnlyKernelFiles = false;
  bool hasUid = false, hasGid = false, hasGroups = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int stdio[3] = {-1, -1, -1};
  pid_t parent = 0;
  int reportFd = -1;
  bool pidNamespace = false;
  // The command's own user namespace, nested in ours, with these maps ("inside outside count\n"):
  // its mounts are locked and it holds no capability over our namespaces.
  bool userns = false;
  std::string uidMap, gidMap;
  bool dropCapabilities = false;  // empty bounding and ambient sets
  bool noNewPrivs = false;
  // A session of its own: on a pseudo-terminal relayed to ours when stdin is a terminal, else
  // without a controlling terminal (setsid).
  bool newSession = false;
  // With pidNamespace: after the command's end, how long init keeps the network namespace for the
  // TCP connections that still owe their peer data or a FIN (linger.h); 0 ends at once.
  int lingerMs = 0;
};

// Serialised as NUL-terminated "key" "value" pairs; the order of repeated keys is kept.
std::string SerializePlan(const Plan& p);
bool ParsePlan(const std::string& data, Plan* p);

const char* StageSyscall(int32_t stage);
std::string DescribeFailure(const Plan& p, const Report& r);

// The paths execve tries for `file`, in order: `file` itself when it holds a '/', else each
// entry of the PATH in env (the default path without one; an empty entry is the current
// directory), as execvp would, so the search happens before fork, in the caller.
std::vector<std::string> PathCandidates(const std::string& file, const std::vector<std::string>& env);

}  // namespace wc
