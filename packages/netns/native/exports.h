// Every function the addon exports; the JS names are in addon.cc.
#pragma once
#include <napi.h>

namespace wc {

Napi::Value CreateNetns(const Napi::CallbackInfo& info);

Napi::Value RtnlOpen(const Napi::CallbackInfo& info);
Napi::Value LinkList(const Napi::CallbackInfo& info);
Napi::Value LinkSet(const Napi::CallbackInfo& info);
Napi::Value LinkDelete(const Napi::CallbackInfo& info);
Napi::Value AddrList(const Napi::CallbackInfo& info);
Napi::Value AddrAdd(const Napi::CallbackInfo& info);
Napi::Value RouteList(const Napi::CallbackInfo& info);
Napi::Value RouteAdd(const Napi::CallbackInfo& info);

Napi::Value Spawn(const Napi::CallbackInfo& info);
Napi::Value WaitPidfd(const Napi::CallbackInfo& info);
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info);
Napi::Value Pipe(const Napi::CallbackInfo& info);

Napi::Value SocketOpen(const Napi::CallbackInfo& info);
Napi::Value SocketBind(const Napi::CallbackInfo& info);
Napi::Value SocketListen(const Napi::CallbackInfo& info);
Napi::Value SocketConnect(const Napi::CallbackInfo& info);
Napi::Value SocketSend(const Napi::CallbackInfo& info);
Napi::Value RecvSocketError(const Napi::CallbackInfo& info);
Napi::Value SocketName(const Napi::CallbackInfo& info);
Napi::Value RecvOrigDst(const Napi::CallbackInfo& info);
Napi::Value ExecWithInput(const Napi::CallbackInfo& info);
Napi::Function ReadableWatcherClass(Napi::Env env);

Napi::Value IcmpOpen(const Napi::CallbackInfo& info);
Napi::Value IcmpRecv(const Napi::CallbackInfo& info);
Napi::Value IcmpSend(const Napi::CallbackInfo& info);

Napi::Value NetlinkMonitorOpen(const Napi::CallbackInfo& info);
Napi::Value NetlinkMonitorDrain(const Napi::CallbackInfo& info);

Napi::Value NfnlOpen(const Napi::CallbackInfo& info);
Napi::Value NfnlSend(const Napi::CallbackInfo& info);
Napi::Value NfnlRecv(const Napi::CallbackInfo& info);
Napi::Value NetnsWriteSysctl(const Napi::CallbackInfo& info);

Napi::Value UnixDgramSend(const Napi::CallbackInfo& info);
Napi::Value UnixDgramBind(const Napi::CallbackInfo& info);
Napi::Value UnixDgramRecv(const Napi::CallbackInfo& info);

Napi::Value PidfdOpen(const Napi::CallbackInfo& info);
Napi::Value FlockExclusive(const Napi::CallbackInfo& info);
Napi::Value PeerCredentials(const Napi::CallbackInfo& info);
Napi::Value ExecJoin(const Napi::CallbackInfo& info);
Napi::Value SpawnJoin(const Napi::CallbackInfo& info);

}  // namespace wc
