#ifndef STRAIT_CSYSTEMSHIM_H
#define STRAIT_CSYSTEMSHIM_H

/// Enters the network namespace the descriptor `fd` refers to, on the calling thread only.
/// Why a shim: glibc declares `setns` and `CLONE_NEWNET` only under _GNU_SOURCE, which Swift's
/// Glibc module is not built with. Equivalent: `setns(fd, CLONE_NEWNET)`.
int strait_sys_enter_network_namespace(int fd);

/// An anonymous in-memory file (close-on-exec), to hand a child its whole input before it starts.
/// Why a shim: `memfd_create` is declared only under _GNU_SOURCE. Equivalent: `memfd_create(name, MFD_CLOEXEC)`.
int strait_sys_memfd_create(const char *name);

/// A descriptor (close-on-exec) of the calling thread's network namespace, asked of a new socket; -1 and errno
/// when refused (it needs CAP_NET_ADMIN). Why: a fresh process opens /proc/thread-self/ns/net in about 26 µs
/// (procfs builds its entries for the new PID), the ioctl takes about 6. Why a shim: `ioctl` is variadic.
/// Equivalent: `ioctl(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), SIOCGSKNS)`.
int strait_sys_open_current_network_namespace(void);

#endif
