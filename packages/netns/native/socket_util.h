// What sockets.cc and icmp_sockets.cc share: opening a socket inside a given
// network namespace, the fd and address arguments, and one non-blocking
// recvmsg with room for ancillary data.
#pragma once
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "threads.h"

#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

namespace wc {

// setsockopt(level, name, 1); the result carries fd, or `syscall` and errno.
SysResult EnableOption(int fd, int level, int name, const char* syscall);

// IP_TRANSPARENT or IPV6_TRANSPARENT.
SysResult EnableTransparent(int fd, bool v6);

// IP_RECVERR or IPV6_RECVERR: ICMP errors about the socket's datagrams are queued for RecvSocketError.
SysResult EnableRecvErr(int fd, bool v6);

// nsFd argument: null or undefined means this process's namespace (-1).
bool NsFdArg(Napi::Env env, Napi::Value v, int64_t* nsFd);

bool FdArg(Napi::Env env, Napi::Value v, int* fd);

// Runs `open` here when nsFd < 0, otherwise on a throwaway thread that first enters the
// network namespace nsFd (a socket stays in the namespace it was made in). Returns the fd
// as a number, or throws the errno with `what` as context.
Napi::Value OpenInNetns(Napi::Env env, int64_t nsFd, const std::function<SysResult()>& open, const std::string& what);

// "10.0.0.1" / "fd00::1" + port -> sockaddr; false (and a TypeError) when the text is no address.
bool ToSockaddr(Napi::Env env, const std::string& text, int64_t port, sockaddr_storage* ss, socklen_t* len);

// inet_ntop of an in_addr (AF_INET) or in6_addr (AF_INET6).
std::string AddressText(int family, const void* addr);

// One recvmsg into `data`, with the sender's address and up to 256 bytes of ancillary
// data. `msg` points into this object, which is therefore never copied.
class Received {
 public:
  Received(uint8_t* data, size_t length);
  Received(const Received&) = delete;
  Received& operator=(const Received&) = delete;

  // Never blocks; retried on EINTR. -1 with errno set on failure (EAGAIN: nothing waiting).
  // `flags` adds to MSG_DONTWAIT (MSG_ERRQUEUE reads the error queue).
  ssize_t Receive(int fd, int flags = 0);

  sockaddr_storage from{};
  msghdr msg{};

 private:
  iovec iov_;
  alignas(cmsghdr) char control_[256];
};

// The body of a xxxRecv(fd, buffer) call named `call`: one Receive(fd, flags) into the Buffer; null
// when nothing is waiting, the errno thrown as `syscall` failing with `context`. Otherwise
// {length, truncated}, to which `describe` adds what it reads of the message.
Napi::Value ReceiveCall(const Napi::CallbackInfo& info, const char* call, int flags, const char* syscall,
                        const std::string& context, const std::function<void(Received&, Napi::Object)>& describe);

}  // namespace wc
