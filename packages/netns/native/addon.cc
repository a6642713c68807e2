#include "exports.h"
#include "glue.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } table[] = {
      {"setErrorFactory", wc::SetErrorFactory},
      {"createNetns", wc::CreateNetns},
      {"rtnlOpen", wc::RtnlOpen},
      {"linkList", wc::LinkList},
      {"linkSet", wc::LinkSet},
      {"linkDelete", wc::LinkDelete},
      {"addrList", wc::AddrList},
      {"addrAdd", wc::AddrAdd},
      {"routeList", wc::RouteList},
      {"routeAdd", wc::RouteAdd},
      {"spawn", wc::Spawn},
      {"waitPidfd", wc::WaitPidfd},
      {"pidfdSendSignal", wc::PidfdSendSignal},
      {"pipe", wc::Pipe},
      {"socketOpen", wc::SocketOpen},
      {"socketBind", wc::SocketBind},
      {"socketListen", wc::SocketListen},
      {"socketConnect", wc::SocketConnect},
      {"socketSend", wc::SocketSend},
      {"recvSocketError", wc::RecvSocketError},
      {"socketName", wc::SocketName},
      {"recvOrigDst", wc::RecvOrigDst},
      {"icmpOpen", wc::IcmpOpen},
      {"icmpRecv", wc::IcmpRecv},
      {"icmpSend", wc::IcmpSend},
      {"execWithInput", wc::ExecWithInput},
      {"unixDgramSend", wc::UnixDgramSend},
      {"unixDgramBind", wc::UnixDgramBind},
      {"unixDgramRecv", wc::UnixDgramRecv},
      {"netlinkMonitorOpen", wc::NetlinkMonitorOpen},
      {"netlinkMonitorDrain", wc::NetlinkMonitorDrain},
      {"nfnlOpen", wc::NfnlOpen},
      {"nfnlSend", wc::NfnlSend},
      {"nfnlRecv", wc::NfnlRecv},
      {"netnsWriteSysctl", wc::NetnsWriteSysctl},
      {"pidfdOpen", wc::PidfdOpen},
      {"flockExclusive", wc::FlockExclusive},
      {"peerCredentials", wc::PeerCredentials},
      {"execJoin", wc::ExecJoin},
      {"spawnJoin", wc::SpawnJoin},
  };
  for (const auto& entry : table) exports.Set(entry.name, Napi::Function::New(env, entry.fn, entry.name));
  exports.Set("ReadableWatcher", wc::ReadableWatcherClass(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(netns, Init)
