// openTun({ name, queues, netnsFd?, mtu?, devicePath?, offload? })
//   -> { fds, name, ifindex, mtu, vnetHdr, offloads }
#include <linux/if.h>
#include <napi.h>

#include "args.h"
#include "errors.h"
#include "exports.h"
#include "fresh_thread.h"
#include "tun_open.h"

namespace wctun {
namespace {

constexpr int64_t kMaxQueues = 256;  // the kernel's MAX_TAP_QUEUES

bool ReadRequest(const Napi::CallbackInfo& info, OpenRequest* req) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowType(env, "openTun expects an options object");
    return false;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  int64_t netnsFd = -1, queues = 1, mtu = 0;
  if (!OptString(o, "name", &req->name) || !OptString(o, "devicePath", &req->devicePath) ||
      !OptInt(o, "netnsFd", &netnsFd) || !OptInt(o, "queues", &queues) || !OptInt(o, "mtu", &mtu)) {
    return false;
  }
  if (req->name.empty() || req->name.size() >= IFNAMSIZ) {
    ThrowType(env, "name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
    return false;
  }
  if (queues < 1 || queues > kMaxQueues) {
    ThrowType(env, "queues must be between 1 and " + std::to_string(kMaxQueues));
    return false;
  }
  if (mtu < 0) {
    ThrowType(env, "mtu must not be negative");
    return false;
  }
  req->offload = o.Get("offload").ToBoolean().Value();
  req->deleteWithNetns = o.Get("deleteWithNetns").ToBoolean().Value();
  req->netnsFd = static_cast<int>(netnsFd);
  req->queues = static_cast<int>(queues);
  req->mtu = static_cast<int>(mtu);
  return true;
}

std::string Context(const OpenRequest& req, const OpenResult& r) {
  std::string what = "TUN '" + req.name + "'";
  if (r.failedQueue >= 0 && req.queues > 1) {
    what += " queue " + std::to_string(r.failedQueue + 1) + " of " + std::to_string(req.queues);
  }
  return what;
}

}  // namespace

Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenRequest req;
  if (!ReadRequest(info, &req)) return env.Undefined();
  OpenResult r;
  int rc = RunOnFreshThread([&] { r = OpenTunQueues(req); });
  if (rc != 0) return ThrowErrno(env, rc, "pthread_create", "TUN '" + req.name + "'");
  if (r.err != 0) return ThrowErrno(env, r.err, r.syscall, Context(req, r));
  Napi::Array fds = Napi::Array::New(env, r.fds.size());
  for (size_t i = 0; i < r.fds.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, r.fds[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("fds", fds);
  out.Set("name", Napi::String::New(env, r.name));
  out.Set("ifindex", Napi::Number::New(env, r.ifindex));
  out.Set("mtu", Napi::Number::New(env, r.mtu));
  out.Set("vnetHdr", Napi::Boolean::New(env, r.vnetHdr));
  out.Set("offloads", Napi::Number::New(env, r.offloads));
  return out;
}

}  // namespace wctun
