#pragma once
// Shims for what Swift cannot import from libnl and the kernel headers (macros, inline functions).
#include <netlink/netlink.h>
