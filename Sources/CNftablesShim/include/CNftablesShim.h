#pragma once
// Shims for what Swift cannot import from libmnl/libnftnl and glibc. Every symbol is prefixed `strait_nft_`.
#include <libmnl/libmnl.h>

/// Moves the calling thread into the network namespace `fd` refers to; returns 0 or -1 with errno.
/// Why a shim: glibc declares `setns` and `CLONE_NEWNET` only under _GNU_SOURCE, which Swift's Glibc
/// module is not built with; this target defines it (Package.swift).
int strait_nft_enter_network_namespace(int fd);
