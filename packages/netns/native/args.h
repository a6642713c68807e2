// Argument readers: each throws a TypeError naming the argument and returns false when it is wrong.
#pragma once
#include <napi.h>

#include "errors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace wc {

inline bool IntValue(Napi::Env env, Napi::Value v, const char* name, int64_t* out) {
  if (!v.IsNumber()) {
    ThrowType(env, std::string(name) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowType(env, std::string(name) + " must be an integer");
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

// Optional object property: absent/undefined leaves *present false and succeeds.
inline bool OptInt(Napi::Object o, const char* key, int64_t* out, bool* present) {
  Napi::Value v = o.Get(key);
  *present = !v.IsUndefined() && !v.IsNull();
  return !*present || IntValue(o.Env(), v, key, out);
}

inline bool OptString(Napi::Object o, const char* key, std::string* out, bool* present) {
  Napi::Value v = o.Get(key);
  *present = !v.IsUndefined() && !v.IsNull();
  return !*present || StringValue(o.Env(), v, key, out);
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

}  // namespace wc
