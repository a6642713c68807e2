#include "threads.h"

#include <pthread.h>

namespace wc {
namespace {

struct Job {
  const std::function<SysResult()>* fn;
  SysResult result;
};

void* Run(void* arg) {
  auto* job = static_cast<Job*>(arg);
  job->result = (*job->fn)();
  return nullptr;
}

}  // namespace

SysResult OnFreshThread(const std::function<SysResult()>& fn) {
  Job job{&fn, {}};
  pthread_t thread;
  int rc = pthread_create(&thread, nullptr, Run, &job);
  if (rc != 0) return SysResult{-1, rc, "pthread_create"};
  pthread_join(thread, nullptr);
  return job.result;
}

}  // namespace wc
