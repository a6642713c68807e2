// A minimal rtnetlink request builder and request/dump transport.
#pragma once
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace wc {

class NlMsg {
 public:
  NlMsg(uint16_t type, uint16_t flags);

  // Appends the fixed family header (ifinfomsg, ifaddrmsg, rtmsg) and returns it for filling in.
  template <class T>
  T* Header() {
    return static_cast<T*>(Reserve(sizeof(T)));
  }
  void Attr(uint16_t type, const void* data, size_t len);
  void AttrU32(uint16_t type, uint32_t value) { Attr(type, &value, sizeof value); }
  void AttrStr(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  size_t BeginNest(uint16_t type);
  void EndNest(size_t offset);

  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_); }
  uint16_t type() const { return type_; }
  bool overflowed() const { return overflow_; }

 private:
  void* Reserve(size_t len);

  alignas(NLMSG_ALIGNTO) unsigned char buf_[1024] = {};
  uint16_t type_;
  bool overflow_ = false;
};

struct NlError {
  int err = 0;         // errno; 0 when the kernel accepted the request
  std::string detail;  // the kernel's extended-ack text, when it sent one
};

// Sends a request that wants an ACK and waits for it.
NlError NlRequest(int sock, NlMsg& msg);

// Sends a dump request and hands each reply message to `each` until NLMSG_DONE.
NlError NlDump(int sock, NlMsg& msg, const std::function<void(const nlmsghdr*)>& each);

// Name of an RTM_* message type, used as the error's `syscall`.
const char* RtmName(uint16_t type);

}  // namespace wc
