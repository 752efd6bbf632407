#pragma once
// Shims for what Swift cannot import from libmnl/libnftnl (macros, inline functions).
#include <libmnl/libmnl.h>
