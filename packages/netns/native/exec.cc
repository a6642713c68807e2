// Replaces the calling process with another program that reads `input` from
// fd 3 and inherits `extraFds` as fds 4, 5, ... (a lock it must go on holding). Stage 1 of `wirecage run` ends this way: the user-namespace helper
// takes over its pid (signals and the exit status keep working for the
// caller) and the oclif process's memory is gone for the life of the cage.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "exports.h"
#include "glue.h"
#include "memfd.h"

namespace wc {

namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

// execWithInput(file, argv, env, input: Uint8Array, extraFds?: number[]): returns only by throwing.
Napi::Value ExecWithInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file;
  std::vector<std::string> argv, envv;
  if (!StringValue(env, info[0], "file", &file) || !StringArray(env, info[1], "argv", &argv) ||
      !StringArray(env, info[2], "env", &envv)) {
    return env.Undefined();
  }
  if (!info[3].IsTypedArray()) return ThrowType(env, "input must be a Uint8Array");
  auto input = info[3].As<Napi::Uint8Array>();
  std::vector<int> extra;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsArray()) return ThrowType(env, "extraFds must be an array of fds");
    auto a = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      int64_t fd;
      if (!IntValue(env, a.Get(i), "extraFds[]", &fd)) return env.Undefined();
      if (fcntl(static_cast<int>(fd), F_GETFD) < 0) return ThrowErrno(env, errno, "fcntl", "extraFds: fd " + std::to_string(fd));
      extra.push_back(static_cast<int>(fd));
    }
  }
  // Checked first: once fd 3 is replaced, a failed exec would leave Node with a broken fd.
  if (access(file.c_str(), X_OK) != 0) return ThrowErrno(env, errno, "access", file);
  // Out of the way of 3, 4, ... first, so that placing one never closes another.
  for (auto& fd : extra) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 64);
    if (high < 0) return ThrowErrno(env, errno, "fcntl", "F_DUPFD_CLOEXEC");
    fd = high;
  }

  int fd = MemfdWith("wirecage-input", input.Data(), input.ByteLength());
  if (fd < 0) return ThrowErrno(env, errno, "memfd_create");
  // dup2 leaves the copy without FD_CLOEXEC: it survives the exec, nothing else of ours does.
  if (fd != 3) {
    if (dup2(fd, 3) < 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, err, "dup2");
    }
    close(fd);
  } else {
    fcntl(3, F_SETFD, 0);
  }
  // dup2 clears FD_CLOEXEC on the copy: these survive the exec too.
  for (size_t i = 0; i < extra.size(); i++) {
    if (dup2(extra[i], static_cast<int>(4 + i)) < 0) return ThrowErrno(env, errno, "dup2", "extraFds");
  }
  // libuv marks the stdio fds close-on-exec and non-blocking; the program gets them as a
  // shell would hand them over.
  for (int std = 0; std <= 2; std++) {
    int fdflags = fcntl(std, F_GETFD);
    if (fdflags >= 0) fcntl(std, F_SETFD, fdflags & ~FD_CLOEXEC);
    int flflags = fcntl(std, F_GETFL);
    if (flflags >= 0 && (flflags & O_NONBLOCK)) fcntl(std, F_SETFL, flflags & ~O_NONBLOCK);
  }
  auto cargv = CStrings(argv);
  auto cenv = CStrings(envv);
  execve(file.c_str(), cargv.data(), cenv.data());
  return ThrowErrno(env, errno, "execve", file);
}

}  // namespace wc
