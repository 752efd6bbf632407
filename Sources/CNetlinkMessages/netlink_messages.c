// The part of libmnl's interface that strait-cni calls, directly (StraitNFT: batches and the netfilter socket) and
// through the libnftnl objects linked in from libnftnl.a (messages, attributes, their parsing), for strait-cni's
// fully static link: Debian ships libmnl only as a shared object, and a static executable has no dynamic loader to
// map it. Written from the netlink message format (<linux/netlink.h>: a header, then attributes as aligned
// length-type-value records, nested ones flagged NLA_F_NESTED) to the contract libmnl/libmnl.h documents; the
// callers are compiled against that header. Only strait-cni links this target; every other product keeps libmnl.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libmnl/libmnl.h>

// MARK: Messages

static char *message_tail(const struct nlmsghdr *message) {
    return (char *)message + MNL_ALIGN(message->nlmsg_len);
}

struct nlmsghdr *mnl_nlmsg_put_header(void *buffer) {
    struct nlmsghdr *message = buffer;
    memset(message, 0, MNL_NLMSG_HDRLEN);
    message->nlmsg_len = MNL_NLMSG_HDRLEN;
    return message;
}

void *mnl_nlmsg_put_extra_header(struct nlmsghdr *message, size_t size) {
    char *header = message_tail(message);
    memset(header, 0, MNL_ALIGN(size));
    message->nlmsg_len += MNL_ALIGN(size);
    return header;
}

void *mnl_nlmsg_get_payload(const struct nlmsghdr *message) {
    return (char *)message + MNL_NLMSG_HDRLEN;
}

// MARK: Attributes

uint16_t mnl_attr_get_type(const struct nlattr *attribute) { return attribute->nla_type & NLA_TYPE_MASK; }
uint16_t mnl_attr_get_payload_len(const struct nlattr *attribute) { return attribute->nla_len - MNL_ATTR_HDRLEN; }
void *mnl_attr_get_payload(const struct nlattr *attribute) { return (char *)attribute + MNL_ATTR_HDRLEN; }

uint8_t mnl_attr_get_u8(const struct nlattr *attribute) { return *(const uint8_t *)mnl_attr_get_payload(attribute); }
uint16_t mnl_attr_get_u16(const struct nlattr *attribute) {
    return *(const uint16_t *)mnl_attr_get_payload(attribute);
}
uint32_t mnl_attr_get_u32(const struct nlattr *attribute) {
    return *(const uint32_t *)mnl_attr_get_payload(attribute);
}
uint64_t mnl_attr_get_u64(const struct nlattr *attribute) {
    uint64_t value; // attributes are aligned to 4 bytes only
    memcpy(&value, mnl_attr_get_payload(attribute), sizeof value);
    return value;
}
const char *mnl_attr_get_str(const struct nlattr *attribute) { return mnl_attr_get_payload(attribute); }

/// True when a whole attribute header, and the attribute it announces, fit in the `remaining` bytes.
bool mnl_attr_ok(const struct nlattr *attribute, int remaining) {
    return remaining >= (int)sizeof(struct nlattr) && attribute->nla_len >= sizeof(struct nlattr)
        && (int)attribute->nla_len <= remaining;
}

struct nlattr *mnl_attr_next(const struct nlattr *attribute) {
    return (struct nlattr *)((char *)attribute + MNL_ALIGN(attribute->nla_len));
}

/// 1 when the attribute's type is at most `maxtype`, else -1 with errno EOPNOTSUPP.
int mnl_attr_type_valid(const struct nlattr *attribute, uint16_t maxtype) {
    if (mnl_attr_get_type(attribute) > maxtype) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return 1;
}

/// 0 when the attribute's payload has the shape of `type`, else -1 with errno ERANGE (wrong size) or EINVAL (an
/// unknown type, a string without its terminating NUL).
int mnl_attr_validate(const struct nlattr *attribute, enum mnl_attr_data_type type) {
    uint16_t length = mnl_attr_get_payload_len(attribute);
    const char *payload = mnl_attr_get_payload(attribute);
    size_t fixed = 0;
    bool fits = true;
    switch (type) {
    case MNL_TYPE_U8: fixed = sizeof(uint8_t); break;
    case MNL_TYPE_U16: fixed = sizeof(uint16_t); break;
    case MNL_TYPE_U32: fixed = sizeof(uint32_t); break;
    case MNL_TYPE_U64: case MNL_TYPE_MSECS: fixed = sizeof(uint64_t); break;
    case MNL_TYPE_FLAG: fits = length == 0; break;
    case MNL_TYPE_STRING: fits = length > 0; break;
    case MNL_TYPE_NUL_STRING:
        if (length > 0 && payload[length - 1] != '\0') {
            errno = EINVAL;
            return -1;
        }
        fits = length > 0;
        break;
    case MNL_TYPE_NESTED: fits = length == 0 || length >= MNL_ATTR_HDRLEN; break;
    case MNL_TYPE_UNSPEC: case MNL_TYPE_NESTED_COMPAT: case MNL_TYPE_BINARY: break;
    default:
        errno = EINVAL;
        return -1;
    }
    if (!fits || (fixed != 0 && length != fixed)) {
        errno = ERANGE;
        return -1;
    }
    return 0;
}

/// Calls `callback` for each attribute in [start, end) until it answers MNL_CB_STOP or MNL_CB_ERROR.
static int parse_attributes(const char *start, const char *end, mnl_attr_cb_t callback, void *data) {
    const struct nlattr *attribute = (const struct nlattr *)start;
    while (mnl_attr_ok(attribute, (int)(end - (const char *)attribute))) {
        int verdict = callback(attribute, data);
        if (verdict <= MNL_CB_STOP) return verdict;
        attribute = mnl_attr_next(attribute);
    }
    return MNL_CB_OK;
}

int mnl_attr_parse(const struct nlmsghdr *message, unsigned int offset, mnl_attr_cb_t callback, void *data) {
    const char *start = (const char *)mnl_nlmsg_get_payload(message) + MNL_ALIGN(offset);
    return parse_attributes(start, message_tail(message), callback, data);
}

int mnl_attr_parse_nested(const struct nlattr *nest, mnl_attr_cb_t callback, void *data) {
    const char *start = mnl_attr_get_payload(nest);
    return parse_attributes(start, start + mnl_attr_get_payload_len(nest), callback, data);
}

/// Appends an attribute at the message's tail, its padding zeroed.
void mnl_attr_put(struct nlmsghdr *message, uint16_t type, size_t length, const void *data) {
    struct nlattr *attribute = (struct nlattr *)message_tail(message);
    attribute->nla_type = type;
    attribute->nla_len = (uint16_t)(MNL_ATTR_HDRLEN + length);
    char *payload = mnl_attr_get_payload(attribute);
    memcpy(payload, data, length);
    memset(payload + length, 0, MNL_ALIGN(length) - length);
    message->nlmsg_len += MNL_ALIGN(MNL_ATTR_HDRLEN + length);
}

void mnl_attr_put_u8(struct nlmsghdr *message, uint16_t type, uint8_t value) {
    mnl_attr_put(message, type, sizeof value, &value);
}
void mnl_attr_put_u16(struct nlmsghdr *message, uint16_t type, uint16_t value) {
    mnl_attr_put(message, type, sizeof value, &value);
}
void mnl_attr_put_u32(struct nlmsghdr *message, uint16_t type, uint32_t value) {
    mnl_attr_put(message, type, sizeof value, &value);
}
void mnl_attr_put_u64(struct nlmsghdr *message, uint16_t type, uint64_t value) {
    mnl_attr_put(message, type, sizeof value, &value);
}
/// The string without its NUL (the kernel's NLA_STRING).
void mnl_attr_put_str(struct nlmsghdr *message, uint16_t type, const char *text) {
    mnl_attr_put(message, type, strlen(text), text);
}
/// The string with its NUL (NLA_NUL_STRING).
void mnl_attr_put_strz(struct nlmsghdr *message, uint16_t type, const char *text) {
    mnl_attr_put(message, type, strlen(text) + 1, text);
}

/// Opens a nested attribute at the tail; mnl_attr_nest_end sets its length once its members are written.
struct nlattr *mnl_attr_nest_start(struct nlmsghdr *message, uint16_t type) {
    struct nlattr *nest = (struct nlattr *)message_tail(message);
    nest->nla_type = NLA_F_NESTED | type;
    nest->nla_len = 0;
    message->nlmsg_len += MNL_ATTR_HDRLEN;
    return nest;
}

void mnl_attr_nest_end(struct nlmsghdr *message, struct nlattr *nest) {
    nest->nla_len = (uint16_t)(message_tail(message) - (char *)nest);
}

// MARK: Batches: messages written one after another into the caller's buffer, sent with one sendmsg

struct mnl_nlmsg_batch {
    char *head;
    size_t limit;
    size_t used;
    bool overflow;
};

struct mnl_nlmsg_batch *mnl_nlmsg_batch_start(void *buffer, size_t limit) {
    struct mnl_nlmsg_batch *batch = malloc(sizeof *batch);
    if (batch == NULL) return NULL;
    *batch = (struct mnl_nlmsg_batch){.head = buffer, .limit = limit};
    return batch;
}

void mnl_nlmsg_batch_stop(struct mnl_nlmsg_batch *batch) { free(batch); }

/// Takes the message written at the current position into the batch, or answers false (and leaves it out) when it
/// would pass the limit.
bool mnl_nlmsg_batch_next(struct mnl_nlmsg_batch *batch) {
    const struct nlmsghdr *message = mnl_nlmsg_batch_current(batch);
    if (batch->used + message->nlmsg_len > batch->limit) {
        batch->overflow = true;
        return false;
    }
    batch->used += message->nlmsg_len;
    return true;
}

size_t mnl_nlmsg_batch_size(struct mnl_nlmsg_batch *batch) { return batch->used; }
void *mnl_nlmsg_batch_head(struct mnl_nlmsg_batch *batch) { return batch->head; }
void *mnl_nlmsg_batch_current(struct mnl_nlmsg_batch *batch) { return batch->head + batch->used; }
bool mnl_nlmsg_batch_is_empty(struct mnl_nlmsg_batch *batch) { return batch->used == 0; }

// MARK: Sockets

struct mnl_socket {
    int fd;
    struct sockaddr_nl address; // as bound: nl_pid is the port ID the kernel gave
};

/// Equivalent: socket(AF_NETLINK, SOCK_RAW, bus).
struct mnl_socket *mnl_socket_open(int bus) {
    struct mnl_socket *netlink = calloc(1, sizeof *netlink);
    if (netlink == NULL) return NULL;
    netlink->fd = socket(AF_NETLINK, SOCK_RAW, bus);
    if (netlink->fd < 0) {
        int code = errno;
        free(netlink);
        errno = code;
        return NULL;
    }
    return netlink;
}

/// Binds to `groups` and `pid` (0: the kernel picks the port ID), then reads back the address it bound.
int mnl_socket_bind(struct mnl_socket *netlink, unsigned int groups, pid_t pid) {
    struct sockaddr_nl address = {.nl_family = AF_NETLINK, .nl_groups = groups, .nl_pid = (__u32)pid};
    if (bind(netlink->fd, (struct sockaddr *)&address, sizeof address) < 0) return -1;
    socklen_t length = sizeof netlink->address;
    if (getsockname(netlink->fd, (struct sockaddr *)&netlink->address, &length) < 0) return -1;
    if (length != sizeof netlink->address || netlink->address.nl_family != AF_NETLINK) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int mnl_socket_close(struct mnl_socket *netlink) {
    int result = close(netlink->fd);
    free(netlink);
    return result;
}

int mnl_socket_get_fd(const struct mnl_socket *netlink) { return netlink->fd; }
unsigned int mnl_socket_get_portid(const struct mnl_socket *netlink) { return netlink->address.nl_pid; }

/// Sends to the kernel (port ID 0).
ssize_t mnl_socket_sendto(const struct mnl_socket *netlink, const void *request, size_t size) {
    static const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    return sendto(netlink->fd, request, size, 0, (const struct sockaddr *)&kernel, sizeof kernel);
}

/// One datagram; -1 with errno ENOSPC when it did not fit `size` (the kernel cut it), EINVAL when its sender is
/// not a netlink address.
ssize_t mnl_socket_recvfrom(const struct mnl_socket *netlink, void *buffer, size_t size) {
    struct sockaddr_nl sender;
    struct iovec vector = {.iov_base = buffer, .iov_len = size};
    struct msghdr header = {.msg_name = &sender, .msg_namelen = sizeof sender, .msg_iov = &vector, .msg_iovlen = 1};
    ssize_t received = recvmsg(netlink->fd, &header, 0);
    if (received < 0) return received;
    if (header.msg_flags & MSG_TRUNC) {
        errno = ENOSPC;
        return -1;
    }
    if (header.msg_namelen != sizeof sender) {
        errno = EINVAL;
        return -1;
    }
    return received;
}

// MARK: Replies

/// Walks the messages in `buffer`: data messages go to `callback`; an error message ends the walk (MNL_CB_ERROR
/// with errno the kernel's error, or MNL_CB_STOP for an acknowledgement), as does NLMSG_DONE (MNL_CB_STOP). A
/// message for another sequence number or port ID (when both sides name one) is -1 with errno EPROTO or ESRCH; a
/// dump the kernel interrupted is -1 with errno EINTR. MNL_CB_OK: more messages are to come.
int mnl_cb_run(const void *buffer, size_t size, unsigned int sequence, unsigned int portid, mnl_cb_t callback,
               void *data) {
    const struct nlmsghdr *message = buffer;
    int remaining = (int)size;
    while (remaining >= (int)sizeof(struct nlmsghdr) && message->nlmsg_len >= sizeof(struct nlmsghdr)
           && (int)message->nlmsg_len <= remaining) {
        if (message->nlmsg_pid != 0 && portid != 0 && message->nlmsg_pid != portid) {
            errno = ESRCH;
            return -1;
        }
        if (message->nlmsg_seq != 0 && sequence != 0 && message->nlmsg_seq != sequence) {
            errno = EPROTO;
            return -1;
        }
        if (message->nlmsg_flags & NLM_F_DUMP_INTR) {
            errno = EINTR;
            return -1;
        }
        if (message->nlmsg_type >= NLMSG_MIN_TYPE) {
            if (callback != NULL) {
                int verdict = callback(message, data);
                if (verdict <= MNL_CB_STOP) return verdict;
            }
        } else if (message->nlmsg_type == NLMSG_ERROR) {
            if (message->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr)) {
                errno = EBADMSG;
                return MNL_CB_ERROR;
            }
            const struct nlmsgerr *error = mnl_nlmsg_get_payload(message);
            if (error->error == 0) return MNL_CB_STOP;
            errno = error->error < 0 ? -error->error : error->error;
            return MNL_CB_ERROR;
        } else if (message->nlmsg_type == NLMSG_DONE) {
            return MNL_CB_STOP;
        }
        remaining -= MNL_ALIGN(message->nlmsg_len);
        message = (const struct nlmsghdr *)((const char *)message + MNL_ALIGN(message->nlmsg_len));
    }
    return MNL_CB_OK;
}
