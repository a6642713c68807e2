// Readiness on the main loop (ReadableWatch, exports.h): a uv_poll handle that
// reports "fd readable" and reads nothing. Poll handles are level-triggered: one
// whose fd is not read calls back on every loop turn.
#pragma once
#include <uv.h>

namespace wctun {

// The poll setup every reader on the main loop needs (ReadableWatch, Queue's reader): init handle for fd on loop, handle->data = data, start it for UV_READABLE. Returns 0, or
// the (negative) libuv error after onClosed has run or been scheduled for the handle, so the
// caller frees its memory in one place, onClosed, whichever step failed.
int StartReadablePoll(uv_loop_t* loop, uv_poll_t* handle, int fd, void* data, uv_poll_cb onPoll, uv_close_cb onClosed);

}  // namespace wctun
