#pragma once
// Shims for what Swift cannot import from libnl and the kernel headers (macros, inline functions,
// declarations that glibc only exposes under _GNU_SOURCE). Every symbol is prefixed `strait_nl_`.
// (No libnl header is needed yet; libnl macros that Swift cannot import get their wrappers here.)

/// Moves the calling thread into the network namespace open at `fd`; returns 0 or -1 with errno set.
/// Why a shim: glibc declares `setns` and `CLONE_NEWNET` only under _GNU_SOURCE, which Swift's
/// Glibc module is not built with, so neither is visible from Swift.
int strait_nl_enter_network_namespace(int fd);

