#include "fresh_thread.h"

#include <pthread.h>

namespace wctun {
namespace {

void* Trampoline(void* arg) {
  (*static_cast<const std::function<void()>*>(arg))();
  return nullptr;
}

}  // namespace

int RunOnFreshThread(const std::function<void()>& fn) {
  pthread_t thread;
  int rc = pthread_create(&thread, nullptr, Trampoline, const_cast<std::function<void()>*>(&fn));
  if (rc != 0) return rc;
  pthread_join(thread, nullptr);
  return 0;
}

}  // namespace wctun
