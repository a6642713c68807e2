// ringLayout(): ring.h's constants as an object, so test/ring-layout.test.ts
// can hold them against src/ring.ts. The layout is written in both languages
// (native code cannot import TypeScript, shards cannot include C++); this
// is what keeps the two copies from drifting apart unseen.
#include "exports.h"
#include "ring.h"

namespace wctun {

Napi::Value RingLayoutJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto object = [&](std::initializer_list<std::pair<const char*, double>> entries) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [name, value] : entries) o.Set(name, Napi::Number::New(env, value));
    return o;
  };
  using namespace ring;
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("magic", Napi::Number::New(env, kMagic));
  layout.Set("controlBytes", Napi::Number::New(env, static_cast<double>(kControlBytes)));
  layout.Set("slotHeaderBytes", Napi::Number::New(env, static_cast<double>(kSlotHeader)));
  layout.Set("control", object({{"MAGIC", kMagicAt}, {"CAPACITY", kCapacityAt}, {"SLOT_BYTES", kSlotBytesAt},
                                {"CLOSED", kClosedAt},
                                {"HEADROOM", kHeadroomAt}, {"HEAD", kHeadAt}, {"TAIL", kTailAt},
                                {"CONSUMER_LOCK", kConsumerLockAt}, {"DROPS_FULL", kDropsFullAt}, {"PRODUCED", kProducedAt},
                                {"EMITTED", kEmittedAt}, {"EMIT_ERRORS", kEmitErrorsAt}, {"DROPPED", kDroppedAt}}));
  layout.Set("slot", object({{"STATE", kStateAt}, {"SEQ", kSeqAt}, {"OFFSET", kOffsetAt}, {"LENGTH", kLengthAt},
                             {"FAMILY", kFamilyAt}, {"PORT", kPortAt}, {"ADDR", kAddrAt}, {"SCOPE", kScopeAt},
                             {"SEGMENT", kSegmentAt}, {"GATHER", kGatherAt}}));
  layout.Set("state", object({{"FREE", kFree}, {"FILLED", kFilled}, {"BUSY", kBusy}, {"EMIT", kEmit}, {"DROP", kDrop}}));
  return layout;
}

}  // namespace wctun
