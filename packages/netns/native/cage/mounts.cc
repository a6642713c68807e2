// The cage's private mount namespace. Everything here is done while we still
// own the mount namespace; the command then gets a user namespace of its own
// and a copy of this mount namespace in which the kernel locks every mount
// (MNT_LOCKED): it can neither unmount a hiding mount nor remount one.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "setup.h"

namespace wc {

namespace {

// Keeps the flags the kernel locks on mounts inherited from a less privileged namespace;
// a read-only remount that tried to drop them would fail with EPERM.
unsigned long LockedFlags(const char* path) {
  struct statfs sf;
  if (statfs(path, &sf) != 0) return 0;
  return sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

// mkdir -p; the last component gets `mode`, the parents 0755.
bool MakeDirs(const std::string& path, unsigned mode) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (mkdir(part.c_str(), i == path.size() ? mode : 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// A mount point for `source` at `target`: a directory for a directory, an empty file otherwise.
bool CreateLike(int source, const std::string& target) {
  struct stat st;
  if (stat(target.c_str(), &st) == 0) return true;  // there already: mount over it
  if (fstat(source, &st) != 0) return false;
  if (!MakeDirs(Parent(target), 0755)) return false;
  if (S_ISDIR(st.st_mode)) return mkdir(target.c_str(), 0755) == 0 || errno == EEXIST;
  int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return errno == EEXIST;
  close(fd);
  return true;
}

void MountTmpfs(const Plan& p) {
  for (size_t i = 0; i < p.tmpfs.size(); i++) {
    const Dir& d = p.tmpfs[i];
    struct stat st;
    if (stat(d.path.c_str(), &st) != 0 && errno == ENOENT) continue;  // nothing there to replace
    char options[96];
    snprintf(options, sizeof options, "mode=%o,uid=%u,gid=%u", d.mode, d.uid, d.gid);
    if (mount("tmpfs", d.path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) Fail(p, kTmpfs, i);
  }
  for (size_t i = 0; i < p.dirs.size(); i++) {
    const Dir& d = p.dirs[i];
    if (!MakeDirs(d.path, d.mode) || chown(d.path.c_str(), d.uid, d.gid) != 0 || chmod(d.path.c_str(), d.mode) != 0) Fail(p, kMkdir, i);
  }
}

void Hide(const Plan& p) {
  for (size_t i = 0; i < p.hide.size(); i++) {
    const char* path = p.hide[i].c_str();
    struct stat st;
    if (lstat(path, &st) != 0) {
      if (errno == ENOENT) continue;  // nothing there (or already under a private tmpfs)
      Fail(p, kHide, i);
    }
    int rc = S_ISDIR(st.st_mode)
                 ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000,size=4k")
                 : mount("/dev/null", path, nullptr, MS_BIND, nullptr);
    if (rc != 0) Fail(p, kHide, i);
  }
}

}  // namespace

void SetupMounts(const Plan& p) {
  // A pid namespace needs its own /proc, hence its own mount namespace.
  if (!p.pidNamespace && p.mounts.empty() && p.hide.empty() && p.tmpfs.empty() && !p.sysfs) return;
  if (unshare(CLONE_NEWNS) != 0) Fail(p, kUnshare);
  // Nothing done below may propagate back to the host's mount table.
  if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail(p, kMountPrivate);
  // Sources are opened first: a private tmpfs (over /tmp, /run...) may cover where they are.
  std::vector<int> sources;
  for (size_t i = 0; i < p.mounts.size(); i++) {
    int fd = open(p.mounts[i].source.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) Fail(p, kOpenSource, i);
    sources.push_back(fd);
  }
  MountTmpfs(p);
  // Best effort: the kernel refuses a new sysfs where the one there is partly covered (some
  // containers mask parts of /sys); the host's then stays, which shows names, not a way out.
  if (p.sysfs) mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  for (size_t i = 0; i < p.mounts.size(); i++) {
    const Mount& m = p.mounts[i];
    if (m.create && !CreateLike(sources[i], m.target)) Fail(p, kBind, i);
    char from[32];
    snprintf(from, sizeof from, "/proc/self/fd/%d", sources[i]);
    if (mount(from, m.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) Fail(p, kBind, i);
    close(sources[i]);
    if (m.readonly) {
      unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | LockedFlags(m.target.c_str());
      if (mount("none", m.target.c_str(), nullptr, flags, nullptr) != 0) Fail(p, kRemount, i);
    }
  }
  Hide(p);
}

}  // namespace wc
