// Argument readers: each throws a TypeError naming the argument and returns false when it is wrong.
#pragma once
#include <napi.h>

#include "errors.h"

#include <cstdint>
#include <string>

namespace wctun {

inline bool IntValue(Napi::Env env, Napi::Value v, const char* name, int64_t* out) {
  if (!v.IsNumber()) {
    ThrowType(env, std::string(name) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowType(env, std::string(name) + " must be a 32-bit integer");
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// Optional object property: absent/undefined leaves *out untouched and succeeds.
inline bool OptInt(Napi::Object o, const char* key, int64_t* out) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() || IntValue(o.Env(), v, key, out);
}

inline bool OptString(Napi::Object o, const char* key, std::string* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsString()) {
    ThrowType(o.Env(), std::string(key) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowType(o.Env(), std::string(key) + " must not contain NUL");
    return false;
  }
  return true;
}

}  // namespace wctun
