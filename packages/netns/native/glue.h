// The typed errno errors and argument readers of @wirecage/napi-glue, shared with @wirecage/tun,
// named here without their namespace as the rest of the addon uses them.
#pragma once
#include "wcglue/args.h"
#include "wcglue/errors.h"

namespace wc {
using namespace wcglue;
}  // namespace wc
