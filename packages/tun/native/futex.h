// FUTEX_WAIT / FUTEX_WAKE on SharedArrayBuffer memory. V8's Atomics.wait/notify
// keep their waiters in user space and never see these, so every party of a
// ring (native threads and JS workers alike) sleeps and wakes through here.
#pragma once
#include <cstdint>

namespace wctun {

// Sleeps while *word == expected, at most timeoutMs (< 0: no limit). Returns 0
// when woken (or interrupted: callers re-check their condition anyway), EAGAIN
// when *word != expected, ETIMEDOUT, or another errno.
int FutexWait(int32_t* word, int32_t expected, int timeoutMs);

// Wakes up to `count` sleepers on word; returns how many, or -errno.
int FutexWake(int32_t* word, int32_t count);

}  // namespace wctun
