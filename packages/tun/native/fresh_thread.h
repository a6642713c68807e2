// Running a short piece of code on a new thread, so that setns() (which moves
// only the calling thread) never changes the namespace of one of Node's threads.
#pragma once
#include <functional>

namespace wctun {

// Runs `fn` on a new thread and joins it. Returns 0, or the pthread_create error.
int RunOnFreshThread(const std::function<void()>& fn);

}  // namespace wctun
