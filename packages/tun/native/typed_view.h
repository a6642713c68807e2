// The memory behind a JS Int32Array / Uint8Array. For one over a
// SharedArrayBuffer, napi_get_typedarray_info yields the shared memory itself
// (test/ring-layout.test.ts checks by behaviour that native steps and ring.ts see the same slots).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace wctun {

struct Int32View {
  int32_t* data = nullptr;
  size_t length = 0;  // in words
};

inline bool GetInt32View(Napi::Value v, Int32View* out) {
  if (!v.IsTypedArray()) return false;
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &buffer, &offset) != napi_ok) return false;
  if (type != napi_int32_array || data == nullptr) return false;
  out->data = static_cast<int32_t*>(data);
  out->length = length;
  return true;
}

}  // namespace wctun
