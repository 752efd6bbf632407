#include <sched.h>
#include "CNftablesShim.h"

int strait_nft_enter_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}
