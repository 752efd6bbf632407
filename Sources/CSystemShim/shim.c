#include <errno.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "CSystemShim.h"

int strait_sys_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}

int strait_sys_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int strait_sys_open_current_network_namespace(void) {
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return -1;
    int namespace = ioctl(probe, SIOCGSKNS);
    int saved = errno;
    close(probe);
    errno = saved;
    return namespace;
}
