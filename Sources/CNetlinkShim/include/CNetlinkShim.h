#pragma once
// Shims for what Swift cannot import from libnl and the kernel headers (macros, inline functions,
// declarations that glibc only exposes under _GNU_SOURCE). Every symbol is prefixed `strait_nl_`.
// (None needed today: entering a namespace moved to StraitSystem's CSystemShim.)
