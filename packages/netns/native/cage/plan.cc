#include "plan.h"

#include <cstdlib>

namespace wc {

namespace {

void Put(std::string* out, const char* key, const std::string& value) {
  out->append(key);
  out->push_back('\0');
  out->append(value);
  out->push_back('\0');
}

void Put(std::string* out, const char* key, long long value) { Put(out, key, std::to_string(value)); }

bool Number(const std::string& s, long long* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = strtoll(s.c_str(), &end, 10);
  return *end == '\0';
}

}  // namespace

std::string SerializePlan(const Plan& p) {
  std::string o;
  for (const auto& c : p.candidates) Put(&o, "candidate", c);
  for (const auto& a : p.argv) Put(&o, "argv", a);
  for (const auto& e : p.env) Put(&o, "env", e);
  if (p.hasCwd) Put(&o, "cwd", p.cwd);
  Put(&o, "netnsFd", p.netnsFd);
  for (const auto& s : p.sysctls) {
    Put(&o, "sysctl", s.path);
    Put(&o, "sysctl.value", s.value);
  }
  for (const auto* list : {&p.tmpfs, &p.dirs}) {
    const char* key = list == &p.tmpfs ? "tmpfs" : "dir";
    for (const auto& d : *list) {
      Put(&o, key, d.path);
      Put(&o, "dir.mode", d.mode);
      Put(&o, "dir.uid", d.uid);
      Put(&o, "dir.gid", d.gid);
    }
  }
  for (const auto& m : p.mounts) {
    Put(&o, "mount", m.source);
    Put(&o, "mount.target", m.target);
    Put(&o, "mount.readonly", m.readonly);
    Put(&o, "mount.create", m.create);
  }
  for (const auto& h : p.hide) Put(&o, "hide", h);
  if (p.hasUid) Put(&o, "uid", p.uid);
  if (p.hasGid) Put(&o, "gid", p.gid);
  if (p.hasGroups) {
    Put(&o, "groups", static_cast<long long>(p.groups.size()));
    for (gid_t g : p.groups) Put(&o, "group", g);
  }
  for (int i = 0; i < 3; i++) Put(&o, "stdio", p.stdio[i]);
  Put(&o, "parent", p.parent);
  Put(&o, "reportFd", p.reportFd);
  Put(&o, "pidNamespace", p.pidNamespace);
  if (p.userns) {
    Put(&o, "uidMap", p.uidMap);
    Put(&o, "gidMap", p.gidMap);
  }
  Put(&o, "dropCapabilities", p.dropCapabilities);
  Put(&o, "noNewPrivs", p.noNewPrivs);
  Put(&o, "sysfs", p.sysfs);
  Put(&o, "readOnlyKernelFiles", p.readOnlyKernelFiles);
  Put(&o, "newSession", p.newSession);
  Put(&o, "lingerMs", p.lingerMs);
  return o;
}

bool ParsePlan(const std::string& data, Plan* p) {
  size_t pos = 0;
  int stdioIndex = 0;
  Dir* dir = nullptr;
  auto next = [&](std::string* s) {
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) return false;
    *s = data.substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::string key, value;
  while (pos < data.size()) {
    if (!next(&key) || !next(&value)) return false;
    long long n = 0;
    bool isNumber = Number(value, &n);
    if (key == "candidate") p->candidates.push_back(value);
    else if (key == "argv") p->argv.push_back(value);
    else if (key == "env") p->env.push_back(value);
    else if (key == "cwd") p->cwd = value, p->hasCwd = true;
    else if (key == "sysctl") p->sysctls.push_back({value, ""});
    else if (key == "sysctl.value" && !p->sysctls.empty()) p->sysctls.back().value = value;
    else if (key == "tmpfs") p->tmpfs.push_back({value}), dir = &p->tmpfs.back();
    else if (key == "dir") p->dirs.push_back({value}), dir = &p->dirs.back();
    else if (key == "mount") p->mounts.push_back({value, ""});
    else if (key == "mount.target" && !p->mounts.empty()) p->mounts.back().target = value;
    else if (key == "mount.readonly" && !p->mounts.empty()) p->mounts.back().readonly = n != 0;
    else if (key == "mount.create" && !p->mounts.empty()) p->mounts.back().create = n != 0;
    else if (key == "hide") p->hide.push_back(value);
    else if (key == "uidMap") p->uidMap = value, p->userns = true;
    else if (key == "gidMap") p->gidMap = value;
    else if (!isNumber) return false;
    else if (key == "netnsFd") p->netnsFd = static_cast<int>(n);
    else if (key == "dir.mode" && dir) dir->mode = static_cast<unsigned>(n);
    else if (key == "dir.uid" && dir) dir->uid = static_cast<uid_t>(n);
    else if (key == "dir.gid" && dir) dir->gid = static_cast<gid_t>(n);
    else if (key == "uid") p->uid = static_cast<uid_t>(n), p->hasUid = true;
    else if (key == "gid") p->gid = static_cast<gid_t>(n), p->hasGid = true;
    else if (key == "groups") p->hasGroups = true;
    else if (key == "group") p->groups.push_back(static_cast<gid_t>(n));
    else if (key == "stdio" && stdioIndex < 3) p->stdio[stdioIndex++] = static_cast<int>(n);
    else if (key == "parent") p->parent = static_cast<pid_t>(n);
    else if (key == "reportFd") p->reportFd = static_cast<int>(n);
    else if (key == "pidNamespace") p->pidNamespace = n != 0;
    else if (key == "dropCapabilities") p->dropCapabilities = n != 0;
    else if (key == "noNewPrivs") p->noNewPrivs = n != 0;
    else if (key == "sysfs") p->sysfs = n != 0;
    else if (key == "readOnlyKernelFiles") p->readOnlyKernelFiles = n != 0;
    else if (key == "newSession") p->newSession = n != 0;
    else if (key == "lingerMs") p->lingerMs = static_cast<int>(n);
    else return false;
  }
  return !p->argv.empty() && !p->candidates.empty();
}

const char* StageSyscall(int32_t stage) {
  switch (stage) {
    case kSetns: return "setns";
    case kUnshare: case kUnsharePid: case kUserns: return "unshare";
    case kMountPrivate: case kBind: case kRemount: case kHide: case kMountProc: case kTmpfs: return "mount";
    case kChdir: return "chdir";
    case kSetgroups: return "setgroups";
    case kSetgid: return "setresgid";
    case kSetuid: return "setresuid";
    case kPdeathsig: case kCaps: case kNoNewPrivs: return "prctl";
    case kStdio: return "dup2";
    case kCloseFds: return "close_range";
    case kPipe: return "pipe2";
    case kFork: return "fork";
    case kSetsid: return "setsid";
    case kTerminal: return "ioctl";
    case kPlan: return "read";
    case kSysctl: case kIdMap: return "write";
    case kMkdir: return "mkdir";
    case kOpenSource: return "open";
    case kPty: return "posix_openpt";
    default: return "execve";
  }
}

std::string DescribeFailure(const Plan& p, const Report& r) {
  auto at = [](const std::vector<std::string>& v, int32_t i) { return i >= 0 && i < (int32_t)v.size() ? v[i] : ""; };
  auto mount = [&]() -> const Mount* { return r.index >= 0 && r.index < (int32_t)p.mounts.size() ? &p.mounts[r.index] : nullptr; };
  switch (r.stage) {
    case kSetns: return "entering the cage's network namespace";
    case kUnshare: return "creating the cage's mount namespace";
    case kMountPrivate: return "making / private in the cage's mount namespace";
    case kOpenSource: return mount() ? "opening " + mount()->source + " to share it with the cage" : "opening a path to share";
    case kBind:
    case kRemount:
      if (mount()) {
        return (r.stage == kBind ? "bind-mounting " : "making read-only the bind mount of ") + mount()->source + " on " + mount()->target;
      }
      return "bind-mounting";
    case kHide: return "hiding " + at(p.hide, r.index);
    case kTmpfs: return "mounting a private tmpfs on " + (r.index >= 0 && r.index < (int32_t)p.tmpfs.size() ? p.tmpfs[r.index].path : "");
    case kMkdir: return "making " + (r.index >= 0 && r.index < (int32_t)p.dirs.size() ? p.dirs[r.index].path : std::string("a directory")) + " in the cage";
    case kSysctl: return "setting " + (r.index >= 0 && r.index < (int32_t)p.sysctls.size() ? p.sysctls[r.index].path : "") + " in the cage's network namespace";
    case kChdir: return "changing directory to " + p.cwd + " (is it under a private directory of the cage such as /tmp or /run? see --share)";
    case kSetgroups: case kSetgid: case kSetuid: return "dropping privileges";
    case kUserns: return "creating the command's user namespace";
    case kIdMap: return "writing the uid/gid maps of the command's user namespace";
    case kCaps: return "dropping the command's capabilities";
    case kNoNewPrivs: return "setting no_new_privs for the command";
    case kStdio: return "setting up stdio";
    case kExecve: return "running " + at(p.argv, 0);
    case kUnsharePid: return "creating the cage's pid namespace";
    case kPipe: case kFork: return "starting the cage's init process";
    case kMountProc: return "mounting /proc for the cage's pid namespace";
    case kSetsid: case kTerminal: return "giving the command a session and terminal of its own";
    case kPty: return "opening a pseudo-terminal for the command";
    case kPlan: return "reading the spawn plan (wirecage-cage and the addon are from different builds?)";
    default: return "preparing the command";
  }
}

std::vector<std::string> PathCandidates(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return {file};
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    out.push_back(dir.empty() ? file : dir + "/" + file);  // an empty entry means the current directory
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

}  // namespace wc
