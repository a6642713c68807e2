// Peer addresses as ring slots hold them (FAMILY 4|6, PORT, ADDR[16], SCOPE)
// and their sockaddr forms. On an AF_INET6 dual-stack socket IPv4 peers travel
// as v4-mapped addresses; slots always show them as plain family 4.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

#include "ring.h"

namespace wctun {

struct PeerAddr {
  int32_t family = 0;  // 0, 4 or 6
  int32_t port = 0;
  uint8_t addr[16] = {};
  int32_t scope = 0;
};

// Fills *sa for a send on a socket of `sockFamily`; false when the socket cannot reach that family.
inline bool ToSockaddr(int sockFamily, const PeerAddr& p, sockaddr_storage* sa, socklen_t* len) {
  std::memset(sa, 0, sizeof *sa);
  if (p.port < 0 || p.port > 65535) return false;
  if (sockFamily == AF_INET) {
    if (p.family != 4) return false;
    auto* in = reinterpret_cast<sockaddr_in*>(sa);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(p.port));
    std::memcpy(&in->sin_addr, p.addr, 4);
    *len = sizeof *in;
    return true;
  }
  if (p.family != 4 && p.family != 6) return false;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(sa);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<uint16_t>(p.port));
  if (p.family == 4) {
    in6->sin6_addr.s6_addr[10] = 0xff;
    in6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&in6->sin6_addr.s6_addr[12], p.addr, 4);
  } else {
    std::memcpy(&in6->sin6_addr, p.addr, 16);
    in6->sin6_scope_id = static_cast<uint32_t>(p.scope);
  }
  *len = sizeof *in6;
  return true;
}

inline void FromSockaddr(const sockaddr_storage& sa, PeerAddr* p) {
  *p = PeerAddr();
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    p->family = 4;
    p->port = ntohs(in.sin_port);
    std::memcpy(p->addr, &in.sin_addr, 4);
  } else if (sa.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    p->port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      p->family = 4;
      std::memcpy(p->addr, &in6.sin6_addr.s6_addr[12], 4);
    } else {
      p->family = 6;
      std::memcpy(p->addr, &in6.sin6_addr, 16);
      p->scope = static_cast<int32_t>(in6.sin6_scope_id);
    }
  }
}

inline void ReadSlotAddr(const uint8_t* slot, PeerAddr* p) {
  p->family = ring::Get(slot + ring::kFamilyAt);
  p->port = ring::Get(slot + ring::kPortAt);
  std::memcpy(p->addr, slot + ring::kAddrAt, 16);
  p->scope = ring::Get(slot + ring::kScopeAt);
}

inline void WriteSlotAddr(uint8_t* slot, const PeerAddr& p) {
  ring::Set(slot + ring::kFamilyAt, p.family);
  ring::Set(slot + ring::kPortAt, p.port);
  std::memcpy(slot + ring::kAddrAt, p.addr, 16);
  ring::Set(slot + ring::kScopeAt, p.scope);
}

inline bool SamePeer(const PeerAddr& a, const PeerAddr& b) {
  return a.family == b.family && a.port == b.port && a.scope == b.scope && std::memcmp(a.addr, b.addr, 16) == 0;
}

}  // namespace wctun
