#include <sched.h>
#include <sys/mman.h>
#include "CSystemShim.h"

int strait_sys_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}

int strait_sys_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}
