// Turning errno values into the JS error class from src/errors.ts.
#pragma once
#include <napi.h>
#include <string>

namespace wctun {

// Registers the JS factory (errno, syscall, context) => Error; src/native.ts calls it once.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info);

// Builds the typed error for `err` (a positive errno); `context` says what was being done.
Napi::Value MakeErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context = "");

// Throws MakeErrno(...); returns undefined so callers can `return ThrowErrno(...)`.
Napi::Value ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context = "");

// Throws a TypeError for a bad argument from JS.
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace wctun
