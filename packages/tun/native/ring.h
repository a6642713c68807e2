// The packet ring layout of src/ring.ts (the contract with the shard that
// transforms slots), as seen from the native pollers and emitters; test/ring-layout.test.ts
// checks the two against each other through LayoutForTest(). Words are int32 in a SharedArrayBuffer, accessed
// with sequentially consistent atomics so they pair with JS Atomics.*.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wctun {
namespace ring {

constexpr int32_t kMagic = 0x57435247;
constexpr size_t kControlBytes = 256;
constexpr size_t kSlotHeader = 64;

// Control block, byte offsets.
constexpr size_t kMagicAt = 0, kCapacityAt = 4, kSlotBytesAt = 8, kClosedAt = 20, kHeadroomAt = 24;
constexpr size_t kHeadAt = 64, kTailAt = 128, kConsumerLockAt = 136;
constexpr size_t kDropsFullAt = 196, kProducedAt = 200, kEmittedAt = 204, kEmitErrorsAt = 208,
                 kDroppedAt = 212;

// Slot header, byte offsets from the slot start.
constexpr size_t kStateAt = 0, kSeqAt = 4, kOffsetAt = 8, kLengthAt = 12, kFamilyAt = 16, kPortAt = 20, kAddrAt = 24,
                 kScopeAt = 40, kSegmentAt = 48, kGatherAt = 52;

enum SlotState : int32_t { kFree = 0, kFilled = 1, kBusy = 2, kEmit = 3, kDrop = 4 };

inline int32_t Load(const uint8_t* p) { return __atomic_load_n(reinterpret_cast<const int32_t*>(p), __ATOMIC_SEQ_CST); }
inline void Store(uint8_t* p, int32_t v) { __atomic_store_n(reinterpret_cast<int32_t*>(p), v, __ATOMIC_SEQ_CST); }
inline void Add(uint8_t* p, int32_t v) { __atomic_fetch_add(reinterpret_cast<int32_t*>(p), v, __ATOMIC_SEQ_CST); }
inline int32_t* Word(uint8_t* p) { return reinterpret_cast<int32_t*>(p); }

// Plain (non-atomic) header fields: published by the STATE store that follows them.
inline int32_t Get(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void Set(uint8_t* p, int32_t v) { std::memcpy(p, &v, 4); }

// A validated view of one ring. The memory belongs to a SharedArrayBuffer that
// the owning step keeps alive (a napi reference) for as long as it uses this.
class View {
 public:
  // Checks the control block against the buffer's size; returns an error text or nullptr.
  const char* Attach(uint8_t* base, size_t byteLength) {
    if (byteLength < kControlBytes || reinterpret_cast<uintptr_t>(base) % 8 != 0) return "ring buffer too small";
    if (Load(base + kMagicAt) != kMagic) return "not a packet ring (bad magic)";
    int32_t cap = Load(base + kCapacityAt), slot = Load(base + kSlotBytesAt);
    if (cap < 2 || cap > 65536 || (cap & (cap - 1)) != 0) return "ring capacity must be a power of two from 2 to 65536";
    if (slot < 128 || slot % 64 != 0) return "ring slot size must be a multiple of 64, at least 128";
    if (kControlBytes + static_cast<size_t>(cap) * slot > byteLength) return "ring buffer smaller than its layout";
    int32_t headroom = Load(base + kHeadroomAt);
    if (headroom < 0 || static_cast<size_t>(headroom) >= static_cast<size_t>(slot) - kSlotHeader) {
      return "ring headroom must be smaller than a slot's data area";
    }
    headroom_ = headroom;
    base_ = base;
    mask_ = static_cast<uint32_t>(cap - 1);
    slotBytes_ = static_cast<size_t>(slot);
    return nullptr;
  }

  uint8_t* Slot(uint32_t seq) const { return base_ + kControlBytes + (seq & mask_) * slotBytes_; }
  uint8_t* Data(uint32_t seq) const { return Slot(seq) + kSlotHeader; }
  size_t DataBytes() const { return slotBytes_ - kSlotHeader; }
  // Where readers store a packet in the data area: the room the ring's creator asked for before it.
  int32_t Headroom() const { return headroom_; }
  uint32_t Capacity() const { return mask_ + 1; }
  uint8_t* Ctl(size_t at) const { return base_ + at; }

  bool Closed() const { return Load(base_ + kClosedAt) != 0; }
  uint32_t Head() const { return static_cast<uint32_t>(Load(base_ + kHeadAt)); }
  uint32_t Tail() const { return static_cast<uint32_t>(Load(base_ + kTailAt)); }
  int32_t State(uint32_t seq) const { return Load(Slot(seq) + kStateAt); }
  void SetState(uint32_t seq, SlotState s) const { Store(Slot(seq) + kStateAt, s); }

  // Producer side: publish slot HEAD (its data and header already written).
  void Publish(uint32_t seq) const {
    Set(Slot(seq) + kSeqAt, static_cast<int32_t>(seq));
    Set(Slot(seq) + kGatherAt, 0);
    SetState(seq, kFilled);
    Store(base_ + kHeadAt, static_cast<int32_t>(seq + 1));
    Add(base_ + kProducedAt, 1);
  }

  // Consumers exclude each other: whoever holds this emits from TAIL; whoever
  // fails to take it leaves the slots to the holder, which looks at TAIL again
  // after letting go. A ring has one consumer, its shard; the lock (one
  // uncontended atomic per emit) guards against a second one sending a slot twice.
  bool TryLockConsumer() const {
    int32_t free = 0;
    return __atomic_compare_exchange_n(Word(base_ + kConsumerLockAt), &free, 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
  void UnlockConsumer() const { Store(base_ + kConsumerLockAt, 0); }
  bool Done(uint32_t seq) const {
    int32_t s = State(seq);
    return s == kEmit || s == kDrop;
  }

 private:
  uint8_t* base_ = nullptr;
  uint32_t mask_ = 0;
  size_t slotBytes_ = 0;
  int32_t headroom_ = 0;
};

}  // namespace ring
}  // namespace wctun
