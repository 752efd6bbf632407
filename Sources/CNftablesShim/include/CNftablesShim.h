#pragma once
// Shims for what Swift cannot import from libmnl/libnftnl and glibc. Every symbol is prefixed `strait_nft_`.
// (None needed today: entering a namespace moved to StraitSystem's CSystemShim.)
#include <libmnl/libmnl.h>
