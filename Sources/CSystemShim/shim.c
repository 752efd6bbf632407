#include <sched.h>
#include "CSystemShim.h"

int strait_sys_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}
