// The error queue of a socket opened with recvErr (IP_RECVERR / IPV6_RECVERR):
// each entry is an ICMP error (or a local one) the kernel matched to a
// datagram this socket sent, with the error's type, code, sender and the part
// of that datagram it quoted. Read with MSG_ERRQUEUE; only the fields of
// struct sock_extended_err are passed on, the quoted bytes are not looked into.
#include <time.h>  // linux/errqueue.h needs struct timespec

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "exports.h"
#include "glue.h"
#include "socket_util.h"

namespace wc {
namespace {

const char* OriginName(uint8_t origin) {
  switch (origin) {
    case SO_EE_ORIGIN_LOCAL:
      return "local";
    case SO_EE_ORIGIN_ICMP:
      return "icmp";
    case SO_EE_ORIGIN_ICMP6:
      return "icmp6";
    case SO_EE_ORIGIN_NONE:
      return "none";
    default:
      return "other";
  }
}

// What the entry says: sock_extended_err and the offender's address that follows it.
void DescribeError(Received& r, Napi::Object out) {
  // An entry without IP_RECVERR data reads as origin "none", errno 0.
  sock_extended_err ee{};
  sockaddr_storage offender{};
  size_t rest = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&r.msg); c != nullptr; c = CMSG_NXTHDR(&r.msg, c)) {
    bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR;
    bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR;
    size_t have = c->cmsg_len - CMSG_LEN(0);
    if ((!v4 && !v6) || have < sizeof ee) continue;
    memcpy(&ee, CMSG_DATA(c), sizeof ee);
    // The offender's address follows the structure (SO_EE_OFFENDER); AF_UNSPEC when the kernel knows none.
    rest = have - sizeof ee;
    memcpy(&offender, CMSG_DATA(c) + sizeof ee, rest < sizeof offender ? rest : sizeof offender);
    break;
  }
  out.Set("errno", static_cast<double>(ee.ee_errno));
  out.Set("origin", OriginName(ee.ee_origin));
  out.Set("type", ee.ee_type);
  out.Set("code", ee.ee_code);
  out.Set("info", static_cast<double>(ee.ee_info));
  if (rest >= sizeof(sockaddr_in) && offender.ss_family == AF_INET) {
    out.Set("offender", AddressText(AF_INET, &reinterpret_cast<sockaddr_in*>(&offender)->sin_addr));
  } else if (rest >= sizeof(sockaddr_in6) && offender.ss_family == AF_INET6) {
    out.Set("offender", AddressText(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&offender)->sin6_addr));
  } else {
    out.Set("offender", out.Env().Null());
  }
}

}  // namespace

// recvSocketError(fd, buffer): {errno, origin, type, code, info, offender, length, truncated}, or null when the
// error queue is empty. The buffer gets the quoted part of the datagram the error is about (its payload for UDP,
// from the ICMP header on for a ping socket).
Napi::Value RecvSocketError(const Napi::CallbackInfo& info) {
  return ReceiveCall(info, "recvSocketError", MSG_ERRQUEUE, "recvmsg(MSG_ERRQUEUE)", "reading a socket's error queue",
                     DescribeError);
}

}  // namespace wc
