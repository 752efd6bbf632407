#include "CNetlinkShim.h"

#include <sched.h>

int strait_nl_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}

