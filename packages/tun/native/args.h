// The argument readers of @wirecage/napi-glue, for an addon whose integers are all ints (fds,
// counts, ports, timeouts): each must fit one.
#pragma once
#include "wcglue/args.h"

#include "errors.h"

namespace wctun {

inline bool IntValue(Napi::Env env, Napi::Value v, const char* name, int64_t* out) {
  return wcglue::Int32Value(env, v, name, out);
}

inline bool OptInt(Napi::Object o, const char* key, int64_t* out) { return wcglue::OptInt32(o, key, out); }

using wcglue::OptString;

}  // namespace wctun
