// A close-on-exec memfd holding `data`, positioned at its start; -1 with errno on failure.
#pragma once
#include <cstddef>

namespace wc {

int MemfdWith(const char* name, const void* data, size_t len);

}  // namespace wc
