// rtnetlink: links, addresses and routes of one network namespace.
//
// rtnlOpen(nsFd) opens the NETLINK_ROUTE socket on a throwaway thread that has
// entered the namespace; a netlink socket stays bound to the namespace it was
// created in, so every later call runs on Node's thread without moving it.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "exports.h"
#include "glue.h"
#include "nlmsg.h"
#include "threads.h"

namespace wc {
namespace {

SysResult OpenRouteSocket() {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return SysResult{-1, errno, "socket"};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    int err = errno;
    close(s);
    return SysResult{-1, err, "bind"};
  }
  int one = 1;
  // Extended acks carry the kernel's own explanation ("Invalid prefix for given prefix length");
  // capped acks keep our request out of the reply. Both are best effort.
  setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // The kernel answers synchronously; a timeout turns a lost reply into an error instead of a hang.
  timeval tv{5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return SysResult{s, 0, ""};
}

bool ParseAddr(const std::string& text, int* family, unsigned char out[16]) {
  if (inet_pton(AF_INET, text.c_str(), out) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

std::string FormatAddr(int family, const void* data) {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, data, text, sizeof text);
  return text;
}

int FamilyNumber(int family) { return family == AF_INET ? 4 : family == AF_INET6 ? 6 : 0; }

// Walks the attributes that follow a fixed family header.
template <class F>
void EachAttr(const nlmsghdr* h, size_t fixed, F&& fn) {
  const char* base = reinterpret_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(fixed);
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(NLMSG_ALIGN(fixed)));
  for (auto* a = reinterpret_cast<const rtattr*>(base); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    fn(a->rta_type & NLA_TYPE_MASK, RTA_DATA(a), RTA_PAYLOAD(a));
  }
}

uint32_t U32(const void* data) {
  uint32_t v;
  memcpy(&v, data, sizeof v);
  return v;
}

bool SockArg(const Napi::CallbackInfo& info, int* sock) {
  int64_t v;
  if (!IntValue(info.Env(), info[0], "socket", &v)) return false;
  *sock = static_cast<int>(v);
  return true;
}

// The JS layer (src/rtnl.ts) names the link or address involved, so no context here.
Napi::Value Finish(Napi::Env env, NlMsg& msg, const NlError& e) {
  if (e.err != 0) return ThrowErrno(env, e.err, RtmName(msg.type()), "", e.detail);
  return env.Undefined();
}

}  // namespace

// rtnlOpen(nsFd?: number): number
Napi::Value RtnlOpen(const Napi::CallbackInfo& info) {
  SysResult r;
  if (info[0].IsUndefined()) {
    r = OpenRouteSocket();
  } else {
    int64_t nsFd;
    if (!IntValue(info.Env(), info[0], "nsFd", &nsFd)) return info.Env().Undefined();
    r = OnFreshThread([nsFd] {
      if (setns(static_cast<int>(nsFd), CLONE_NEWNET) != 0) return SysResult{-1, errno, "setns"};
      return OpenRouteSocket();
    });
  }
  if (r.err != 0) return ThrowErrno(info.Env(), r.err, r.syscall, "opening a rtnetlink socket");
  return Napi::Number::New(info.Env(), r.value);
}

// linkList(sock): {index, name, flags, mtu, kind}[]
Napi::Value LinkList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  if (!SockArg(info, &sock)) return env.Undefined();
  NlMsg msg(RTM_GETLINK, 0);
  msg.Header<ifinfomsg>()->ifi_family = AF_UNSPEC;
  Napi::Array out = Napi::Array::New(env);
  NlError e = NlDump(sock, msg, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    Napi::Object link = Napi::Object::New(env);
    link.Set("index", ifi->ifi_index);
    link.Set("flags", ifi->ifi_flags);
    link.Set("kind", env.Null());
    EachAttr(h, sizeof(ifinfomsg), [&](int type, const void* data, size_t len) {
      if (type == IFLA_IFNAME) link.Set("name", std::string(static_cast<const char*>(data), strnlen(static_cast<const char*>(data), len)));
      if (type == IFLA_MTU && len >= 4) link.Set("mtu", U32(data));
      if (type != IFLA_LINKINFO) return;
      int rest = static_cast<int>(len);
      for (auto* a = static_cast<const rtattr*>(data); RTA_OK(a, rest); a = RTA_NEXT(a, rest)) {
        if ((a->rta_type & NLA_TYPE_MASK) == IFLA_INFO_KIND) {
          link.Set("kind", std::string(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a))));
        }
      }
    });
    out.Set(out.Length(), link);
  });
  if (e.err != 0) return Finish(env, msg, e);
  return out;
}

// linkSet(sock, index, {up?, mtu?, noLinkLocal?})
Napi::Value LinkSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  int64_t index, mtu;
  bool hasMtu;
  if (!SockArg(info, &sock) || !IntValue(env, info[1], "index", &index)) return env.Undefined();
  if (!info[2].IsObject()) return ThrowType(env, "linkSet options must be an object");
  Napi::Object opts = info[2].As<Napi::Object>();
  if (!OptInt(opts, "mtu", &mtu, &hasMtu)) return env.Undefined();
  Napi::Value up = opts.Get("up");
  NlMsg msg(RTM_NEWLINK, 0);
  auto* ifi = msg.Header<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  if (up.IsBoolean()) {
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up.As<Napi::Boolean>().Value() ? IFF_UP : 0;
  }
  if (hasMtu) msg.AttrU32(IFLA_MTU, static_cast<uint32_t>(mtu));
  if (opts.Get("noLinkLocal").ToBoolean().Value()) {
    // addr_gen_mode none: no IPv6 link-local address, hence no fe80::/64 route, when the link comes up.
    size_t spec = msg.BeginNest(IFLA_AF_SPEC);
    size_t inet6 = msg.BeginNest(AF_INET6);
    uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
    msg.Attr(IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof mode);
    msg.EndNest(inet6);
    msg.EndNest(spec);
  }
  return Finish(env, msg, NlRequest(sock, msg));
}

// linkDelete(sock, index)
Napi::Value LinkDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  int64_t index;
  if (!SockArg(info, &sock) || !IntValue(env, info[1], "index", &index)) return env.Undefined();
  NlMsg msg(RTM_DELLINK, 0);
  auto* ifi = msg.Header<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(index);
  return Finish(env, msg, NlRequest(sock, msg));
}

// addrList(sock): {index, family, address, prefixLen, flags, scope}[]
Napi::Value AddrList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  if (!SockArg(info, &sock)) return env.Undefined();
  NlMsg msg(RTM_GETADDR, 0);
  msg.Header<ifaddrmsg>()->ifa_family = AF_UNSPEC;
  Napi::Array out = Napi::Array::New(env);
  NlError e = NlDump(sock, msg, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    const auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    std::string address, local;
    uint32_t flags = ifa->ifa_flags;
    EachAttr(h, sizeof(ifaddrmsg), [&](int type, const void* data, size_t len) {
      size_t want = ifa->ifa_family == AF_INET ? 4 : 16;
      if (type == IFA_ADDRESS && len >= want) address = FormatAddr(ifa->ifa_family, data);
      if (type == IFA_LOCAL && len >= want) local = FormatAddr(ifa->ifa_family, data);
      if (type == IFA_FLAGS && len >= 4) flags = U32(data);
    });
    Napi::Object a = Napi::Object::New(env);
    a.Set("index", ifa->ifa_index);
    a.Set("family", FamilyNumber(ifa->ifa_family));
    // For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point links).
    a.Set("address", local.empty() ? address : local);
    a.Set("prefixLen", ifa->ifa_prefixlen);
    a.Set("flags", flags);
    a.Set("scope", ifa->ifa_scope);
    out.Set(out.Length(), a);
  });
  if (e.err != 0) return Finish(env, msg, e);
  return out;
}

// addrAdd(sock, index, address, prefixLen)
Napi::Value AddrAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  int64_t index, prefix;
  std::string text;
  if (!SockArg(info, &sock) || !IntValue(env, info[1], "index", &index) ||
      !StringValue(env, info[2], "address", &text) || !IntValue(env, info[3], "prefixLen", &prefix)) {
    return env.Undefined();
  }
  int family;
  unsigned char addr[16];
  if (!ParseAddr(text, &family, addr)) return ThrowType(env, "not an IP address: " + text);
  size_t alen = family == AF_INET ? 4 : 16;
  if (prefix < 0 || prefix > static_cast<int64_t>(alen * 8)) return ThrowType(env, "prefix length out of range: " + std::to_string(prefix));
  NlMsg msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = msg.Header<ifaddrmsg>();
  ifa->ifa_family = family;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa->ifa_index = static_cast<unsigned>(index);
  if (family == AF_INET) {
    // Same default as ip(8): loopback addresses get host scope.
    ifa->ifa_scope = addr[0] == 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
    msg.Attr(IFA_LOCAL, addr, alen);
  } else {
    // No duplicate address detection: the cage's v6 address must work the moment the command starts.
    ifa->ifa_flags = IFA_F_NODAD;
    msg.AttrU32(IFA_FLAGS, IFA_F_NODAD);
  }
  msg.Attr(IFA_ADDRESS, addr, alen);
  return Finish(env, msg, NlRequest(sock, msg));
}

// routeList(sock): {family, dst, prefixLen, oif, gateway, source, table, type, scope, protocol, metric}[]
Napi::Value RouteList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  if (!SockArg(info, &sock)) return env.Undefined();
  NlMsg msg(RTM_GETROUTE, 0);
  msg.Header<rtmsg>()->rtm_family = AF_UNSPEC;
  Napi::Array out = Napi::Array::New(env);
  NlError e = NlDump(sock, msg, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) return;
    size_t want = rt->rtm_family == AF_INET ? 4 : 16;
    unsigned char zero[16] = {};
    Napi::Object r = Napi::Object::New(env);
    r.Set("family", FamilyNumber(rt->rtm_family));
    r.Set("dst", FormatAddr(rt->rtm_family, zero));
    r.Set("prefixLen", rt->rtm_dst_len);
    r.Set("oif", env.Null());
    r.Set("gateway", env.Null());
    r.Set("source", env.Null());
    r.Set("metric", env.Null());
    r.Set("table", rt->rtm_table);
    r.Set("type", rt->rtm_type);
    r.Set("scope", rt->rtm_scope);
    r.Set("protocol", rt->rtm_protocol);
    EachAttr(h, sizeof(rtmsg), [&](int type, const void* data, size_t len) {
      if (type == RTA_DST && len >= want) r.Set("dst", FormatAddr(rt->rtm_family, data));
      if (type == RTA_GATEWAY && len >= want) r.Set("gateway", FormatAddr(rt->rtm_family, data));
      if (type == RTA_PREFSRC && len >= want) r.Set("source", FormatAddr(rt->rtm_family, data));
      if (type == RTA_OIF && len >= 4) r.Set("oif", U32(data));
      if (type == RTA_PRIORITY && len >= 4) r.Set("metric", U32(data));
      if (type == RTA_TABLE && len >= 4) r.Set("table", U32(data));
    });
    out.Set(out.Length(), r);
  });
  if (e.err != 0) return Finish(env, msg, e);
  return out;
}

// routeAdd(sock, {dst, prefixLen, oif?, gateway?, source?, metric?, table?})
Napi::Value RouteAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  if (!SockArg(info, &sock)) return env.Undefined();
  if (!info[1].IsObject()) return ThrowType(env, "routeAdd options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  std::string dst, gateway, source;
  int64_t prefix, oif = 0, metric = 0, table = RT_TABLE_MAIN;
  bool hasGateway, hasSource, hasOif, hasMetric, hasTable;
  if (!StringValue(env, o.Get("dst"), "dst", &dst) || !IntValue(env, o.Get("prefixLen"), "prefixLen", &prefix) ||
      !OptInt(o, "oif", &oif, &hasOif) || !OptString(o, "gateway", &gateway, &hasGateway) ||
      !OptString(o, "source", &source, &hasSource) || !OptInt(o, "metric", &metric, &hasMetric) ||
      !OptInt(o, "table", &table, &hasTable)) {
    return env.Undefined();
  }
  int family, gwFamily, srcFamily;
  unsigned char dstAddr[16], gwAddr[16], srcAddr[16];
  if (!ParseAddr(dst, &family, dstAddr)) return ThrowType(env, "not an IP address: " + dst);
  size_t alen = family == AF_INET ? 4 : 16;
  if (prefix < 0 || prefix > static_cast<int64_t>(alen * 8)) return ThrowType(env, "prefix length out of range: " + std::to_string(prefix));
  if (hasGateway && (!ParseAddr(gateway, &gwFamily, gwAddr) || gwFamily != family)) {
    return ThrowType(env, "gateway " + gateway + " is not an address of the same family as " + dst);
  }
  if (hasSource && (!ParseAddr(source, &srcFamily, srcAddr) || srcFamily != family)) {
    return ThrowType(env, "source " + source + " is not an address of the same family as " + dst);
  }
  if (!hasOif && !hasGateway) return ThrowType(env, "a route needs a device (oif) or a gateway");
  NlMsg msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rt = msg.Header<rtmsg>();
  rt->rtm_family = family;
  rt->rtm_dst_len = static_cast<unsigned char>(prefix);
  rt->rtm_table = static_cast<unsigned char>(table < 256 ? table : int64_t{RT_TABLE_UNSPEC});
  rt->rtm_protocol = RTPROT_BOOT;
  // A route without a gateway is "directly connected": link scope, as ip(8) picks for IPv4.
  rt->rtm_scope = (family == AF_INET && !hasGateway) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  if (prefix > 0) msg.Attr(RTA_DST, dstAddr, alen);
  if (hasOif) msg.AttrU32(RTA_OIF, static_cast<uint32_t>(oif));
  if (hasGateway) msg.Attr(RTA_GATEWAY, gwAddr, alen);
  if (hasSource) msg.Attr(RTA_PREFSRC, srcAddr, alen);
  if (hasMetric) msg.AttrU32(RTA_PRIORITY, static_cast<uint32_t>(metric));
  if (table >= 256) msg.AttrU32(RTA_TABLE, static_cast<uint32_t>(table));
  return Finish(env, msg, NlRequest(sock, msg));
}

}  // namespace wc
