// Unix datagram sockets, which node:dgram does not offer: sd_notify's one
// datagram to $NOTIFY_SOCKET, and the receiving end (with the sender's
// credentials, as systemd checks them) for whoever plays systemd in a test.
// A name starting with '@' is in the abstract namespace.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

namespace wc {
namespace {

// false (and a TypeError) when the name does not fit sun_path.
bool UnixAddress(Napi::Env env, const std::string& name, sockaddr_un* sa, socklen_t* len) {
  *sa = sockaddr_un{};
  sa->sun_family = AF_UNIX;
  if (name.empty() || name.size() > sizeof sa->sun_path - (name[0] == '@' ? 0 : 1)) {
    ThrowType(env, "a unix socket name must be 1 to 107 bytes (108 with a leading @)");
    return false;
  }
  memcpy(sa->sun_path, name.data(), name.size());
  // Abstract: a leading NUL, and the length says where the name ends (no terminator).
  if (name[0] == '@') sa->sun_path[0] = '\0';
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1));
  return true;
}

}  // namespace

// unixDgramSend(name, data): one datagram from a fresh unbound socket; never blocks (EAGAIN throws).
Napi::Value UnixDgramSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!StringValue(env, info[0], "name", &name)) return env.Undefined();
  if (!info[1].IsTypedArray()) return ThrowType(env, "unixDgramSend needs the data as a Uint8Array");
  auto data = info[1].As<Napi::Uint8Array>();
  sockaddr_un sa;
  socklen_t len;
  if (!UnixAddress(env, name, &sa, &len)) return env.Undefined();
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ThrowErrno(env, errno, "socket", "sending to " + name);
  ssize_t n;
  do n = sendto(s, data.Data(), data.ByteLength(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
  while (n < 0 && errno == EINTR);
  int err = errno;
  close(s);
  if (n < 0) return ThrowErrno(env, err, "sendto", "sending to " + name);
  return env.Undefined();
}

// unixDgramBind(name): fd of a bound, non-blocking, close-on-exec socket that receives senders' credentials.
Napi::Value UnixDgramBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!StringValue(env, info[0], "name", &name)) return env.Undefined();
  sockaddr_un sa;
  socklen_t len;
  if (!UnixAddress(env, name, &sa, &len)) return env.Undefined();
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return ThrowErrno(env, errno, "socket", "binding " + name);
  SysResult r = EnableOption(s, SOL_SOCKET, SO_PASSCRED, "setsockopt(SO_PASSCRED)");
  if (r.err == 0 && bind(s, reinterpret_cast<sockaddr*>(&sa), len) != 0) r = SysResult{-1, errno, "bind"};
  if (r.err != 0) {
    close(s);
    return ThrowErrno(env, r.err, r.syscall, "binding " + name);
  }
  return Napi::Number::New(env, s);
}

// unixDgramRecv(fd, buffer): {length, truncated, pid, uid, gid} (the kernel's SCM_CREDENTIALS), or null when
// nothing is waiting.
Napi::Value UnixDgramRecv(const Napi::CallbackInfo& info) {
  return ReceiveCall(info, "unixDgramRecv", 0, "recvmsg", "", [](Received& r, Napi::Object out) {
    ucred cred{-1, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
    for (cmsghdr* c = CMSG_FIRSTHDR(&r.msg); c != nullptr; c = CMSG_NXTHDR(&r.msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) memcpy(&cred, CMSG_DATA(c), sizeof cred);
    }
    out.Set("pid", static_cast<double>(cred.pid));
    out.Set("uid", static_cast<double>(cred.uid));
    out.Set("gid", static_cast<double>(cred.gid));
  });
}

}  // namespace wc
