// Turning errno values into the JS error class from src/errors.ts.
#pragma once
#include <napi.h>
#include <string>

namespace wc {

// Registers the JS factory (errno, syscall, context, kernelMessage) => Error; called once by src/native.ts.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info);

// Throws the typed error for `err`; returns undefined so callers can `return ThrowErrno(...)`.
// `context` says what was being done; `kernelMessage` is rtnetlink's extended-ack text, if any.
Napi::Value ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& context = "",
                       const std::string& kernelMessage = "");

// Throws a TypeError for a bad argument from JS.
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace wc
