// ICMP sockets for a NAT that relays ping: an unprivileged ping socket
// (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6, allowed by net.ipv4.ping_group_range)
// and a raw ICMP socket (CAP_NET_RAW in the namespace's owner), opened in a
// given network namespace by a throwaway thread (socket_util.h). Send
// and receive carry the addresses and TTL as plain fields (IP_PKTINFO,
// IP_TTL and their IPv6 twins); what is inside an ICMP message is left to
// the caller: nothing here parses or builds one.
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif

namespace wc {
namespace {

struct IcmpOptions {
  int family;  // AF_INET / AF_INET6
  bool raw, transparent, recvErr;
  bool filter;                  // raw only: receive just `accept`
  std::vector<uint8_t> accept;  // ICMP types let through the filter
};

// ICMP_FILTER (IPv4, types 0-31) and ICMP6_FILTER take masks of the types to block.
SysResult SetFilter(int fd, const IcmpOptions& o) {
  if (o.family == AF_INET) {
    uint32_t block = 0xffffffffu;
    for (uint8_t t : o.accept) {
      if (t < 32) block &= ~(1u << t);
    }
    if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &block, sizeof block) != 0) return SysResult{-1, errno, "setsockopt(ICMP_FILTER)"};
  } else {
    icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    for (uint8_t t : o.accept) ICMP6_FILTER_SETPASS(t, &f);
    if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) != 0) return SysResult{-1, errno, "setsockopt(ICMP6_FILTER)"};
  }
  return SysResult{fd, 0, ""};
}

SysResult OpenIcmp(const IcmpOptions& o) {
  bool v6 = o.family == AF_INET6;
  int protocol = v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  int fd = socket(o.family, (o.raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return SysResult{-1, errno, "socket"};
  SysResult r = v6 ? EnableOption(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, "setsockopt(IPV6_RECVPKTINFO)")
                   : EnableOption(fd, IPPROTO_IP, IP_PKTINFO, "setsockopt(IP_PKTINFO)");
  if (r.err == 0) {
    r = v6 ? EnableOption(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, "setsockopt(IPV6_RECVHOPLIMIT)")
           : EnableOption(fd, IPPROTO_IP, IP_RECVTTL, "setsockopt(IP_RECVTTL)");
  }
  if (r.err == 0 && o.transparent) r = EnableTransparent(fd, v6);
  if (r.err == 0 && o.recvErr) r = EnableRecvErr(fd, v6);
  if (r.err == 0 && o.raw && o.filter) r = SetFilter(fd, o);
  if (r.err != 0) {
    close(fd);
    return r;
  }
  return SysResult{fd, 0, ""};
}

// icmpSend's arguments, addresses resolved.
struct SendArgs {
  int fd;
  Napi::Uint8Array data;
  std::string destination, source;
  bool haveSource;
  int64_t ttl = -1;  // -1: the socket's own
  sockaddr_storage to, from;
  socklen_t toLen;
};

bool ReadSendArgs(Napi::Env env, const Napi::CallbackInfo& info, SendArgs* a) {
  if (!FdArg(env, info[0], &a->fd)) return false;
  if (!info[1].IsTypedArray()) {
    ThrowType(env, "icmpSend needs the message as a Uint8Array");
    return false;
  }
  a->data = info[1].As<Napi::Uint8Array>();
  if (!StringValue(env, info[2], "destination", &a->destination)) return false;
  a->haveSource = !info[3].IsNull() && !info[3].IsUndefined();
  if (a->haveSource && !StringValue(env, info[3], "source", &a->source)) return false;
  if (!info[4].IsNull() && !info[4].IsUndefined()) {
    if (!IntValue(env, info[4], "ttl", &a->ttl)) return false;
    if (a->ttl < 1 || a->ttl > 255) {
      ThrowType(env, "ttl must be 1-255, not " + std::to_string(a->ttl));
      return false;
    }
  }
  if (!ToSockaddr(env, a->destination, 0, &a->to, &a->toLen)) return false;
  if (!a->haveSource) return true;
  socklen_t fromLen;
  if (!ToSockaddr(env, a->source, 0, &a->from, &fromLen)) return false;
  if (a->from.ss_family != a->to.ss_family) {
    ThrowType(env, "source " + a->source + " and destination " + a->destination + " differ in family");
    return false;
  }
  return true;
}

// Fills the control message at `c`; the space it takes.
size_t PutCmsg(cmsghdr* c, int level, int type, const void* data, size_t len) {
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(c), data, len);
  return CMSG_SPACE(len);
}

// The source address as IPV6_PKTINFO / IP_PKTINFO.
size_t PutSource(cmsghdr* c, const sockaddr_storage& from) {
  if (from.ss_family == AF_INET6) {
    in6_pktinfo pi{};
    pi.ipi6_addr = reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr;
    return PutCmsg(c, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
  }
  in_pktinfo pi{};
  pi.ipi_spec_dst = reinterpret_cast<const sockaddr_in*>(&from)->sin_addr;
  return PutCmsg(c, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
}

}  // namespace

// icmpOpen(nsFd|null, family 4|6, {raw?, transparent?, recvErr?, acceptTypes?: number[]}): fd
Napi::Value IcmpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsFd, family;
  if (!NsFdArg(env, info[0], &nsFd) || !IntValue(env, info[1], "family", &family)) return env.Undefined();
  if (family != 4 && family != 6) return ThrowType(env, "family must be 4 or 6");
  Napi::Object o = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  IcmpOptions opts{family == 4 ? AF_INET : AF_INET6, o.Get("raw").ToBoolean().Value(), o.Get("transparent").ToBoolean().Value(),
                   o.Get("recvErr").ToBoolean().Value(), false, {}};
  Napi::Value accept = o.Get("acceptTypes");
  if (!accept.IsUndefined() && !accept.IsNull()) {
    if (!accept.IsArray()) return ThrowType(env, "acceptTypes must be an array of ICMP types (0-255)");
    auto arr = accept.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      int64_t t;
      if (!IntValue(env, arr.Get(i), "acceptTypes[]", &t)) return env.Undefined();
      if (t < 0 || t > 255) return ThrowType(env, "ICMP type out of range: " + std::to_string(t));
      if (family == 4 && t > 31) return ThrowType(env, "the IPv4 ICMP filter covers types 0-31, not " + std::to_string(t));
      opts.accept.push_back(static_cast<uint8_t>(t));
    }
    opts.filter = true;
  }
  std::string what = std::string("opening an ") + (opts.raw ? "raw ICMP" : "ICMP ping") + " socket (IPv" + std::to_string(family) + ")";
  return OpenInNetns(env, nsFd, [&opts] { return OpenIcmp(opts); }, what);
}

// icmpRecv(fd, buffer): {length, truncated, source, destination, ttl}, or null when nothing is waiting.
// A raw IPv4 socket hands over the IP header too; IPv6 and ping sockets start at the ICMP header.
Napi::Value IcmpRecv(const Napi::CallbackInfo& info) {
  return ReceiveCall(info, "icmpRecv", 0, "recvmsg", "reading an ICMP socket", [](Received& r, Napi::Object out) {
    if (r.from.ss_family == AF_INET) {
      out.Set("source", AddressText(AF_INET, &reinterpret_cast<sockaddr_in*>(&r.from)->sin_addr));
    } else {
      out.Set("source", AddressText(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&r.from)->sin6_addr));
    }
    out.Set("destination", out.Env().Null());
    out.Set("ttl", out.Env().Null());
    for (cmsghdr* c = CMSG_FIRSTHDR(&r.msg); c != nullptr; c = CMSG_NXTHDR(&r.msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        out.Set("destination", AddressText(AF_INET, &pi.ipi_addr));
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        out.Set("destination", AddressText(AF_INET6, &pi.ipi6_addr));
      } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                 (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
        int ttl;
        memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
        out.Set("ttl", ttl);
      }
    }
  });
}

// icmpSend(fd, data, destination, source|null, ttl|null): true when sent, false when the socket would block.
// A source the namespace does not own needs a transparent socket.
Napi::Value IcmpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SendArgs a;
  if (!ReadSendArgs(env, info, &a)) return env.Undefined();
  bool v6 = a.to.ss_family == AF_INET6;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  iovec iov{a.data.Data(), a.data.ByteLength()};
  msg.msg_name = &a.to;
  msg.msg_namelen = a.toLen;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  size_t used = 0;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (a.haveSource) {
    used += PutSource(c, a.from);
    c = CMSG_NXTHDR(&msg, c);
  }
  if (a.ttl > 0) {
    int value = static_cast<int>(a.ttl);
    used += PutCmsg(c, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_HOPLIMIT : IP_TTL, &value, sizeof value);
  }
  msg.msg_controllen = used;
  if (used == 0) msg.msg_control = nullptr;
  ssize_t n;
  do n = sendmsg(a.fd, &msg, MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, errno, "sendmsg", "sending ICMP to " + a.destination);
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace wc
