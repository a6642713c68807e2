// The typed errno errors of @wirecage/napi-glue (shared with @wirecage/netns), named here without
// their namespace as the rest of the addon uses them.
#pragma once
#include "wcglue/errors.h"

namespace wctun {
using wcglue::MakeErrno;
using wcglue::SetErrorFactory;
using wcglue::ThrowErrno;
using wcglue::ThrowType;
}  // namespace wctun
