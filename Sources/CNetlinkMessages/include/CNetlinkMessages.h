// The libmnl interface strait-cni's static link implements (see netlink_messages.c): the callers are compiled
// against libmnl's own header, so the prototypes here are exactly those.
#include <libmnl/libmnl.h>
