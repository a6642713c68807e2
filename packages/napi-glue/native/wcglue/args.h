// Argument readers: each throws a TypeError naming the argument and returns false when it is wrong.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "wcglue/errors.h"

namespace wcglue {

inline bool NumberValue(Napi::Env env, Napi::Value v, const char* name, double* out) {
  if (!v.IsNumber()) {
    ThrowType(env, std::string(name) + " must be a number");
    return false;
  }
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

// Any integer a JS number holds exactly (uids, table ids and other unsigned 32-bit values fit).
inline bool IntValue(Napi::Env env, Napi::Value v, const char* name, int64_t* out) {
  double d;
  if (!NumberValue(env, v, name, &d)) return false;
  if (!std::isfinite(d) || std::trunc(d) != d) {
    ThrowType(env, std::string(name) + " must be an integer");
    return false;
  }
  if (std::fabs(d) > 9007199254740991.0) {
    ThrowType(env, std::string(name) + " must be an integer from -(2^53 - 1) to 2^53 - 1");
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// An integer that fits an int (fds, counts, timeouts).
inline bool Int32Value(Napi::Env env, Napi::Value v, const char* name, int64_t* out) {
  double d;
  if (!NumberValue(env, v, name, &d)) return false;
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || std::trunc(d) != d) {
    ThrowType(env, std::string(name) + " must be a 32-bit integer");
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool StringValue(Napi::Env env, Napi::Value v, const char* name, std::string* out) {
  if (!v.IsString()) {
    ThrowType(env, std::string(name) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowType(env, std::string(name) + " must not contain NUL");
    return false;
  }
  return true;
}

inline bool StringArray(Napi::Env env, Napi::Value v, const char* name, std::vector<std::string>* out) {
  if (!v.IsArray()) {
    ThrowType(env, std::string(name) + " must be an array of strings");
    return false;
  }
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::string s;
    if (!StringValue(env, arr.Get(i), name, &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

// Optional object properties: absent (undefined or null) leaves *out untouched, sets *present (when
// given) to false, and succeeds.
template <typename T>
bool OptValue(Napi::Object o, const char* key, T* out, bool* present,
              bool (*read)(Napi::Env, Napi::Value, const char*, T*)) {
  Napi::Value v = o.Get(key);
  bool has = !v.IsUndefined() && !v.IsNull();
  if (present != nullptr) *present = has;
  return !has || read(o.Env(), v, key, out);
}

inline bool OptInt(Napi::Object o, const char* key, int64_t* out, bool* present = nullptr) {
  return OptValue(o, key, out, present, IntValue);
}

inline bool OptInt32(Napi::Object o, const char* key, int64_t* out, bool* present = nullptr) {
  return OptValue(o, key, out, present, Int32Value);
}

inline bool OptString(Napi::Object o, const char* key, std::string* out, bool* present = nullptr) {
  return OptValue(o, key, out, present, StringValue);
}

}  // namespace wcglue
