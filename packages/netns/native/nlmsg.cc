#include "nlmsg.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

namespace wc {
namespace {

std::atomic<uint32_t> nextSeq{1};

// Large enough for any single rtnetlink dump batch (the kernel caps those near 32 KiB).
constexpr size_t kRecvSize = 64 * 1024;

int SendMsg(int sock, NlMsg& msg, uint32_t seq) {
  msg.hdr()->nlmsg_seq = seq;
  if (msg.overflowed()) return EMSGSIZE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(sock, msg.hdr(), msg.hdr()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

// Reads one datagram; returns its length, or -errno.
ssize_t Recv(int sock, std::vector<char>& buf) {
  for (;;) {
    ssize_t n = recv(sock, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (static_cast<size_t>(n) > buf.size()) return -EMSGSIZE;
    return n;
  }
}

// Decodes an NLMSG_ERROR: errno plus the extended-ack message when present.
NlError DecodeError(const nlmsghdr* h) {
  NlError out;
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
    out.err = EBADMSG;
    return out;
  }
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  out.err = -e->error;
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return out;
  size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) offset += e->msg.nlmsg_len - NLMSG_HDRLEN;
  const char* base = reinterpret_cast<const char*>(h);
  while (offset + NLA_HDRLEN <= h->nlmsg_len) {
    const auto* a = reinterpret_cast<const nlattr*>(base + offset);
    if (a->nla_len < NLA_HDRLEN || offset + a->nla_len > h->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      out.detail.assign(base + offset + NLA_HDRLEN, strnlen(base + offset + NLA_HDRLEN, a->nla_len - NLA_HDRLEN));
    }
    offset += NLA_ALIGN(a->nla_len);
  }
  return out;
}

}  // namespace

NlMsg::NlMsg(uint16_t type, uint16_t flags) : type_(type) {
  hdr()->nlmsg_len = NLMSG_HDRLEN;
  hdr()->nlmsg_type = type;
  hdr()->nlmsg_flags = NLM_F_REQUEST | flags;
}

void* NlMsg::Reserve(size_t len) {
  static thread_local unsigned char spill[256];
  size_t offset = NLMSG_ALIGN(hdr()->nlmsg_len);
  if (offset + NLMSG_ALIGN(len) > sizeof buf_ || len > sizeof spill) {
    // Never hit by the fixed-size requests built here; SendMsg refuses the message if it is.
    overflow_ = true;
    memset(spill, 0, sizeof spill);
    return spill;
  }
  hdr()->nlmsg_len = offset + NLMSG_ALIGN(len);
  return buf_ + offset;
}

void NlMsg::Attr(uint16_t type, const void* data, size_t len) {
  auto* a = static_cast<nlattr*>(Reserve(NLA_HDRLEN + len));
  a->nla_len = NLA_HDRLEN + len;
  a->nla_type = type;
  memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, data, len);
}

size_t NlMsg::BeginNest(uint16_t type) {
  size_t offset = NLMSG_ALIGN(hdr()->nlmsg_len);
  auto* a = static_cast<nlattr*>(Reserve(NLA_HDRLEN));
  a->nla_type = type | NLA_F_NESTED;
  return offset;
}

void NlMsg::EndNest(size_t offset) {
  if (overflow_) return;
  reinterpret_cast<nlattr*>(buf_ + offset)->nla_len = hdr()->nlmsg_len - offset;
}

NlError NlRequest(int sock, NlMsg& msg) {
  msg.hdr()->nlmsg_flags |= NLM_F_ACK;
  uint32_t seq = nextSeq++;
  if (int err = SendMsg(sock, msg, seq)) return NlError{err, ""};
  std::vector<char> buf(kRecvSize);
  for (;;) {
    ssize_t n = Recv(sock, buf);
    if (n < 0) return NlError{static_cast<int>(-n), ""};
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // a late reply to an earlier, abandoned request
      if (h->nlmsg_type == NLMSG_ERROR) return DecodeError(h);
    }
  }
}

NlError NlDump(int sock, NlMsg& msg, const std::function<void(const nlmsghdr*)>& each) {
  msg.hdr()->nlmsg_flags |= NLM_F_DUMP;
  uint32_t seq = nextSeq++;
  if (int err = SendMsg(sock, msg, seq)) return NlError{err, ""};
  std::vector<char> buf(kRecvSize);
  for (;;) {
    ssize_t n = Recv(sock, buf);
    if (n < 0) return NlError{static_cast<int>(-n), ""};
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return DecodeError(h);
      if (h->nlmsg_type == NLMSG_DONE) {
        int status = h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) ? *static_cast<const int*>(NLMSG_DATA(h)) : 0;
        return NlError{status < 0 ? -status : 0, ""};
      }
      each(h);
    }
  }
}

const char* RtmName(uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_DELLINK: return "RTM_DELLINK";
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    case RTM_GETROUTE: return "RTM_GETROUTE";
    default: return "rtnetlink";
  }
}

}  // namespace wc
