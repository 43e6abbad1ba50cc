/* tcp_conn.c: see tcp_conn.h. Pure parsers (netlink bytes, fd links, the join, the selection) first,
 * then the syscalls (the sock_diag dump, the fd dir, the pidfd_getfd cut). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>

#include "probes/host/tcp_conn.h"
#include "probes/host/proc_fd.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* One recv() of a dump. The kernel fills dump skbs up to about 32 KiB; a bigger buffer never
 * truncates one (MSG_TRUNC is checked anyway). */
#define DIAG_RECV_BUF (64 * 1024)
/* A dump that stops answering must not hold the daemon's loop. */
#define DIAG_RECV_TIMEOUT_SEC 2

static const char *const state_names[] = {
        [1] = "ESTABLISHED", [2] = "SYN_SENT",   [3] = "SYN_RECV",   [4] = "FIN_WAIT1",
        [5] = "FIN_WAIT2",   [6] = "TIME_WAIT",  [7] = "CLOSE",      [8] = "CLOSE_WAIT",
        [9] = "LAST_ACK",    [10] = "LISTEN",    [11] = "CLOSING",   [12] = "NEW_SYN_RECV",
};
enum { STATE_TIME_WAIT = 6, STATE_LISTEN = 10, STATE_NEW_SYN_RECV = 12 };

const char *tcp_state_to_string(uint8_t state) {
        return state < ELEMENTSOF(state_names) && state_names[state] ? state_names[state] : "UNKNOWN";
}

void tcp_conn_list_done(TcpConnList *l) {
        if (!l)
                return;
        free(l->v);
        *l = (TcpConnList) {};
}

static int list_push(TcpConnList *l, const TcpConn *c) {
        if (l->n == l->allocated) {
                size_t a = MAX(l->allocated * 2, (size_t) 64);
                TcpConn *v = reallocarray(l->v, a, sizeof(TcpConn));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = a;
        }
        l->v[l->n++] = *c;
        return 0;
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* family + 16 bytes of address as the kernel or sockaddr_in6 hold them; v4-mapped folded. */
static void addr_set(TcpAddr *a, int family, const void *addr, uint16_t port_host) {
        *a = (TcpAddr) { .family = family, .port = port_host };
        if (family == AF_INET)
                memcpy(a->addr, addr, 4);
        else if (memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
                a->family = AF_INET;
                memcpy(a->addr, (const uint8_t *) addr + 12, 4);
        } else
                memcpy(a->addr, addr, 16);
}

const char *tcp_addr_format(const TcpAddr *a, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];

        if (!a || (a->family != AF_INET && a->family != AF_INET6) || !inet_ntop(a->family, a->addr, ip, sizeof(ip)))
                snprintf(buf, size, "?");
        else if (a->family == AF_INET6)
                snprintf(buf, size, "[%s]:%u", ip, a->port);
        else
                snprintf(buf, size, "%s:%u", ip, a->port);
        return buf;
}

int tcp_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, TcpAddr *ret) {
        if (!sa || !ret)
                return -EINVAL;
        if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                addr_set(ret, AF_INET, &in->sin_addr, ntohs(in->sin_port));
                return 0;
        }
        if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                addr_set(ret, AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port));
                return 0;
        }
        return -EAFNOSUPPORT;
}

bool tcp_addr_matches(const TcpAddr *hop, const TcpAddr *a) {
        size_t len;

        if (hop->family != a->family || (hop->family != AF_INET && hop->family != AF_INET6))
                return false;
        len = hop->family == AF_INET ? 4 : 16;
        return memcmp(hop->addr, a->addr, len) == 0 && (hop->port == 0 || hop->port == a->port);
}

/* The counters of a tcp_info of any kernel's length: what this kernel did not send stays 0. */
static void conn_take_info(TcpConn *c, const void *data, size_t len) {
        struct tcp_info ti = {};

        memcpy(&ti, data, MIN(len, sizeof(ti)));
        c->has_info = true;
        c->last_data_recv_ms = ti.tcpi_last_data_recv;
        c->last_data_sent_ms = ti.tcpi_last_data_sent;
        if (len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received)) {
                c->bytes_acked = ti.tcpi_bytes_acked;
                c->bytes_received = ti.tcpi_bytes_received;
        }
        if (len >= offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(ti.tcpi_bytes_sent))
                c->bytes_sent = ti.tcpi_bytes_sent;
        else
                c->bytes_sent = c->bytes_acked;
}

static int parse_diag_msg(const uint8_t *p, size_t len, TcpConn *ret) {
        struct inet_diag_msg m;
        size_t off;

        if (len < sizeof(m))
                return -EBADMSG;
        memcpy(&m, p, sizeof(m));
        if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
                return -EBADMSG;

        *ret = (TcpConn) { .fd = -1, .inode = m.idiag_inode, .state = m.idiag_state, .uid = m.idiag_uid };
        addr_set(&ret->local, m.idiag_family, m.id.idiag_src, ntohs(m.id.idiag_sport));
        addr_set(&ret->peer, m.idiag_family, m.id.idiag_dst, ntohs(m.id.idiag_dport));

        /* Attributes: rtattr-shaped {u16 len, u16 type}, 4-aligned, inside this message only. */
        for (off = NLMSG_ALIGN(sizeof(m)); off < len;) {
                uint16_t alen, atype;

                if (len - off < 4)
                        return -EBADMSG;
                memcpy(&alen, p + off, 2);
                memcpy(&atype, p + off + 2, 2);
                if (alen < 4 || alen > len - off)
                        return -EBADMSG;
                if ((atype & NLA_TYPE_MASK) == INET_DIAG_INFO)
                        conn_take_info(ret, p + off + 4, alen - 4u);
                off += MIN((size_t) NLMSG_ALIGN(alen), len - off);
        }
        return 0;
}

int tcp_diag_parse(const void *buf, size_t len, TcpConnList *l, bool *ret_done) {
        const uint8_t *p = buf;
        size_t off = 0;
        int r;

        if ((!buf && len > 0) || !l || !ret_done)
                return -EINVAL;
        *ret_done = false;
        while (off < len) {
                struct nlmsghdr h;
                size_t plen;

                if (len - off < sizeof(h))
                        return -EBADMSG;
                memcpy(&h, p + off, sizeof(h));
                if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
                        return -EBADMSG;
                plen = h.nlmsg_len - sizeof(h);

                if (h.nlmsg_type == NLMSG_DONE) {
                        *ret_done = true;
                        return 0;
                }
                if (h.nlmsg_type == NLMSG_ERROR) {
                        struct nlmsgerr e;
                        if (plen < sizeof(e.error))
                                return -EBADMSG;
                        memcpy(&e.error, p + off + sizeof(h), sizeof(e.error));
                        if (e.error > 0 || e.error < -4095)
                                return -EBADMSG;
                        if (e.error < 0)
                                return e.error;
                } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
                        TcpConn c;
                        r = parse_diag_msg(p + off + sizeof(h), plen, &c);
                        if (r < 0)
                                return r;
                        r = list_push(l, &c);
                        if (r < 0)
                                return r;
                } /* NLMSG_NOOP, NLMSG_OVERRUN and the rest carry nothing for us */

                off += MIN((size_t) NLMSG_ALIGN(h.nlmsg_len), len - off);
        }
        return 0;
}

int tcp_socket_link_parse(const char *target, uint64_t *ret_inode) {
        const char *s;
        char *end = NULL;
        unsigned long long v;

        if (!target || !startswith(target, "socket:["))
                return -EBADMSG;
        s = target + strlen("socket:[");
        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || !end || end[0] != ']' || end[1] != 0 || v == 0)
                return -EBADMSG;
        if (ret_inode)
                *ret_inode = v;
        return 0;
}

static int cmp_sockfd(const void *a, const void *b) {
        const TcpSockFd *x = a, *y = b;
        if (x->inode != y->inode)
                return (x->inode > y->inode) - (x->inode < y->inode);
        return (x->fd > y->fd) - (x->fd < y->fd);
}

int tcp_conn_join(const TcpConnList *dump, const TcpSockFd *fds, size_t n_fds, TcpConnList *ret) {
        _cleanup_free_ TcpSockFd *sorted = NULL;
        TcpConnList out = {};

        if (!dump || (!fds && n_fds > 0) || !ret)
                return -EINVAL;
        if (n_fds > 0) {
                sorted = reallocarray(NULL, n_fds, sizeof(TcpSockFd));
                if (!sorted)
                        return -ENOMEM;
                memcpy(sorted, fds, n_fds * sizeof(TcpSockFd));
                qsort(sorted, n_fds, sizeof(TcpSockFd), cmp_sockfd);
        }
        for (size_t i = 0; i < dump->n; i++) {
                size_t lo = 0, hi = n_fds;
                uint64_t ino = dump->v[i].inode;

                if (ino == 0)
                        continue;
                while (lo < hi) { /* first entry with inode >= ino: the lowest fd of that socket */
                        size_t mid = lo + (hi - lo) / 2;
                        if (sorted[mid].inode < ino)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                if (lo < n_fds && sorted[lo].inode == ino) {
                        TcpConn c = dump->v[i];
                        c.fd = sorted[lo].fd;
                        if (list_push(&out, &c) < 0) {
                                tcp_conn_list_done(&out);
                                return -ENOMEM;
                        }
                }
        }
        *ret = out;
        return 0;
}

size_t tcp_conn_select_stalled(const TcpConn *conns, size_t n, const TcpAddr *hops, size_t n_hops,
                               uint32_t budget_ms, size_t *ret_idx) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                const TcpConn *c = &conns[i];
                bool hop_ok = n_hops == 0;

                if (c->state != TCP_CONN_ESTABLISHED || !c->has_info || c->bytes_received == 0 ||
                    c->last_data_recv_ms < budget_ms)
                        continue;
                for (size_t h = 0; h < n_hops && !hop_ok; h++)
                        hop_ok = tcp_addr_matches(&hops[h], &c->peer);
                if (hop_ok)
                        ret_idx[k++] = i;
        }
        return k;
}

/* --- the kernel --- */

static int dump_family(int fd, uint8_t family, uint8_t *buf, TcpConnList *l, ErrorDetail *ret_error) {
        struct {
                struct nlmsghdr h;
                struct inet_diag_req_v2 r;
        } req = {
                .h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = family },
                .r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
                       .idiag_ext = 1U << (INET_DIAG_INFO - 1),
                       /* every state but the ones that hold no process's connection */
                       .idiag_states = ~((1U << STATE_LISTEN) | (1U << STATE_TIME_WAIT) |
                                         (1U << STATE_NEW_SYN_RECV)) },
        };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        bool done = false;
        int r;

        if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
                return error_detail_setf(ret_error, errno, "sock_diag request: %s", strerror(errno));
        /* Bounded by the namespace's sockets; each recv either advances or fails (timeout included). */
        while (!done) {
                struct iovec iov = { .iov_base = buf, .iov_len = DIAG_RECV_BUF };
                struct msghdr mh = { .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = &iov,
                                     .msg_iovlen = 1 };
                ssize_t n = recvmsg(fd, &mh, 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_detail_setf(ret_error, errno, "sock_diag dump: %s", strerror(errno));
                }
                if (n == 0 || (mh.msg_flags & MSG_TRUNC))
                        return error_detail_setf(ret_error, EBADMSG, "sock_diag dump: %s",
                                                 n == 0 ? "ended without NLMSG_DONE" : "message truncated");
                r = tcp_diag_parse(buf, (size_t) n, l, &done);
                if (r < 0)
                        return error_detail_setf(ret_error, r, "sock_diag dump (family %u): %s", family, strerror(-r));
        }
        return 0;
}

int tcp_diag_dump(TcpConnList *ret, ErrorDetail *ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct timeval tv = { .tv_sec = DIAG_RECV_TIMEOUT_SEC };
        TcpConnList l = {};
        int r;

        if (!ret)
                return -EINVAL;
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return error_detail_setf(ret_error, errno, "socket(NETLINK_SOCK_DIAG): %s", strerror(errno));
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return error_detail_setf(ret_error, errno, "SO_RCVTIMEO: %s", strerror(errno));
        buf = malloc(DIAG_RECV_BUF);
        if (!buf)
                return -ENOMEM;
        r = dump_family(fd, AF_INET, buf, &l, ret_error);
        if (r >= 0)
                r = dump_family(fd, AF_INET6, buf, &l, ret_error);
        if (r < 0) {
                tcp_conn_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

typedef struct SockFds {
        TcpSockFd *v;
        size_t n, allocated;
} SockFds;

static int take_socket(int dirfd, const char *name, int fd, const char *target, void *userdata) {
        SockFds *s = userdata;
        uint64_t ino;

        if (tcp_socket_link_parse(target, &ino) < 0)
                return 0;
        if (s->n == s->allocated) {
                size_t a = MAX(s->allocated * 2, (size_t) 16);
                TcpSockFd *nv = reallocarray(s->v, a, sizeof(TcpSockFd));
                if (!nv)
                        return -ENOMEM;
                s->v = nv;
                s->allocated = a;
        }
        s->v[s->n++] = (TcpSockFd) { .fd = fd, .inode = ino };
        return 0;
}

int tcp_socket_fds(const char *proc_root, pid_t pid, TcpSockFd **ret, size_t *ret_n) {
        SockFds s = {};
        int r;

        if (pid <= 0 || !ret || !ret_n)
                return -EINVAL;
        r = proc_fd_foreach(proc_root, pid, take_socket, &s);
        if (r < 0) {
                free(s.v);
                return r;
        }
        *ret = s.v;
        *ret_n = s.n;
        return 0;
}

static int netns_of(const char *path, struct stat *ret) {
        return stat(path, ret) < 0 ? -errno : 0;
}

int tcp_conn_list(const char *proc_root, pid_t pid, TcpConnList *ret, ErrorDetail *ret_error) {
        _cleanup_free_ TcpSockFd *fds = NULL;
        TcpConnList dump = {};
        struct stat own, theirs;
        char path[PATH_MAX];
        size_t n_fds = 0;
        int r;

        if (pid <= 0 || !ret)
                return -EINVAL;
        r = netns_of("/proc/self/ns/net", &own);
        if (r < 0)
                return error_detail_set(ret_error, r, "/proc/self/ns/net", 0, 0, NULL, "%s", strerror(-r));
        snprintf(path, sizeof(path), "%s/%d/ns/net", proc_root ?: "/proc", (int) pid);
        r = netns_of(path, &theirs);
        if (r < 0)
                return error_detail_set(ret_error, r == -ENOENT ? -ESRCH : r, path, 0, 0, NULL, "%s", strerror(-r));
        if (own.st_dev != theirs.st_dev || own.st_ino != theirs.st_ino)
                return error_detail_set(ret_error, EXDEV, path, 0, 0, NULL,
                                        "pid %d is in another network namespace (net:[%" PRIu64 "], ours net:[%" PRIu64
                                        "]): its sockets are not in our sock_diag dump",
                                        (int) pid, (uint64_t) theirs.st_ino, (uint64_t) own.st_ino);

        r = tcp_socket_fds(proc_root, pid, &fds, &n_fds);
        if (r < 0) {
                snprintf(path, sizeof(path), "%s/%d/fd", proc_root ?: "/proc", (int) pid);
                return error_detail_set(ret_error, r, path, 0, 0, NULL, "%s", strerror(-r));
        }
        if (n_fds == 0) {
                *ret = (TcpConnList) {};
                return 0;
        }
        r = tcp_diag_dump(&dump, ret_error);
        if (r < 0)
                return r;
        r = tcp_conn_join(&dump, fds, n_fds, ret);
        tcp_conn_list_done(&dump);
        return r;
}

/* --- the cut --- */

static int op_pidfd_open(void *userdata, pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
}

static int op_getfd(void *userdata, int pidfd, int targetfd) {
        int fd = (int) syscall(SYS_pidfd_getfd, pidfd, targetfd, 0);
        return fd < 0 ? -errno : fd;
}

static int op_identify(void *userdata, int fd, uint64_t *ret_inode, bool *ret_is_socket) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret_inode = st.st_ino;
        *ret_is_socket = S_ISSOCK(st.st_mode);
        return 0;
}

static int op_shutdown(void *userdata, int fd) {
        return shutdown(fd, SHUT_RDWR) < 0 ? -errno : 0;
}

const TcpCutOps tcp_cut_ops_default = {
        .pidfd_open = op_pidfd_open,
        .getfd = op_getfd,
        .identify = op_identify,
        .shutdown = op_shutdown,
};

int tcp_conn_cut(const TcpCutOps *ops, pid_t pid, int pidfd, const TcpConn *conn, ErrorDetail *ret_error) {
        _cleanup_close_ int own_pidfd = -1, copy = -1;
        char peer[64];
        uint64_t ino = 0;
        bool is_socket = false;
        int r;

        if (!conn || conn->fd < 0 || conn->inode == 0 || (pid <= 0 && pidfd < 0))
                return -EINVAL;
        ops = ops ?: &tcp_cut_ops_default;
        tcp_addr_format(&conn->peer, peer, sizeof(peer));

        if (pidfd < 0) {
                r = ops->pidfd_open(ops->userdata, pid);
                if (r < 0)
                        return error_detail_setf(ret_error, r, "pidfd_open(%d): %s", (int) pid, strerror(-r));
                pidfd = own_pidfd = r;
        }
        r = ops->getfd(ops->userdata, pidfd, conn->fd);
        if (r < 0)
                return error_detail_setf(ret_error, r, "pidfd_getfd(pid %d, fd %d): %s%s", (int) pid, conn->fd,
                                         strerror(-r),
                                         r == -EPERM ? " (needs CAP_SYS_PTRACE, and pidfd_getfd allowed by the "
                                                       "unit's SystemCallFilter)"
                                                     : "");
        copy = r;
        r = ops->identify(ops->userdata, copy, &ino, &is_socket);
        if (r < 0)
                return error_detail_setf(ret_error, r, "fstat of pid %d fd %d: %s", (int) pid, conn->fd, strerror(-r));
        if (!is_socket || ino != conn->inode)
                return error_detail_setf(ret_error, ESTALE,
                                         "pid %d fd %d is no longer socket:[%" PRIu64 "] to %s (now %s %" PRIu64
                                         "): not cut",
                                         (int) pid, conn->fd, conn->inode, peer, is_socket ? "socket" : "inode", ino);
        r = ops->shutdown(ops->userdata, copy);
        if (r < 0)
                return error_detail_setf(ret_error, r, "shutdown of pid %d fd %d (to %s): %s", (int) pid, conn->fd,
                                         peer, strerror(-r));
        return 0;
}
