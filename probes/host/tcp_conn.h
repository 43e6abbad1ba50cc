/* tcp_conn.h: the TCP connections a process holds (its socket fds joined with the kernel's sock_diag
 * dump: addresses, state, bytes, ms since data moved), which of them are stalled, and how to cut one.
 * Never logs, never decides; the cut is the one act here, and only on a pid its caller has proven.
 *
 * Sight: NETLINK_SOCK_DIAG answers for the network namespace of the socket that asks, i.e.
 * pullwatch's own. A runtime in another network namespace (pullwatch in a pod without hostNetwork,
 * or a runtime in its own netns) holds sockets this dump cannot see: tcp_conn_list() compares
 * /proc/self/ns/net with /proc/PID/ns/net and returns -EXDEV rather than an empty, wrong answer.
 *
 * Cost: one sock_diag dump of every TCP socket of the namespace (listeners and TIME_WAIT left out by
 * the kernel's state filter), as `ss -tni` does, plus one readlink per fd of the process. */
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "basic/error_detail.h"
#include "basic/macro.h"

/* The kernel's TCP state numbers (ABI; netinet/tcp.h has them too, but its struct tcp_info is too
 * old for the byte counters, so tcp_conn.c reads linux/tcp.h and cannot include both). */
#define TCP_CONN_ESTABLISHED 1
#define TCP_CONN_CLOSE_WAIT  8

/* An address and port; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack Go socket
 * dialling IPv4 shows) is kept as AF_INET so it compares equal to the IPv4 form. */
typedef struct TcpAddr {
        int family;              /* AF_INET or AF_INET6; 0 = none */
        uint8_t addr[16];        /* network order; AF_INET uses the first 4 bytes */
        uint16_t port;           /* host order; 0 in a hop = any port */
} TcpAddr;

typedef struct TcpConn {
        int fd;                  /* the fd in the process that holds it; -1 in a dump not yet joined */
        uint64_t inode;          /* the socket's inode, as /proc/PID/fd shows "socket:[N]" */
        TcpAddr local, peer;
        uint8_t state;           /* TCP_CONN_ESTABLISHED ...: the kernel's (and netinet/tcp.h's) numbers */
        uint32_t uid;
        bool has_info;           /* INET_DIAG_INFO came; the counters below are meaningful */
        uint64_t bytes_received; /* tcpi_bytes_received (kernel >= 4.1; 0 on older) */
        uint64_t bytes_acked;    /* tcpi_bytes_acked (kernel >= 4.1) */
        uint64_t bytes_sent;     /* tcpi_bytes_sent (kernel >= 4.19; else bytes_acked) */
        uint32_t last_data_recv_ms; /* ms since data was last received */
        uint32_t last_data_sent_ms; /* ms since data was last sent */
} TcpConn;

/* "1.2.3.4:443" or "[2001:db8::1]:443" into buf; returns buf. */
const char *tcp_addr_format(const TcpAddr *a, char *buf, size_t size);
/* From a sockaddr_in/_in6 (what getaddrinfo gives), v4-mapped folded to AF_INET. 0 or -EAFNOSUPPORT. */
int tcp_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, TcpAddr *ret);
/* Same address, and same port unless hop->port is 0. */
bool tcp_addr_matches(const TcpAddr *hop, const TcpAddr *a);
const char *tcp_state_to_string(uint8_t state);

/* A growing array of connections (a dump, or a process's joined list). */
typedef struct TcpConnList {
        TcpConn *v;
        size_t n, allocated;
} TcpConnList;
void tcp_conn_list_done(TcpConnList *l);

/* --- the pure layer: bytes in, records out --- */

/* Parse one buffer of netlink messages as a sock_diag dump answers them (recv() of the dump socket),
 * appending one TcpConn (fd = -1) per inet_diag_msg to l. *ret_done is set on NLMSG_DONE.
 * -EBADMSG for a truncated or malformed message (l keeps what parsed before it), the kernel's errno
 * for an NLMSG_ERROR, -ENOMEM. Never reads past len. */
int tcp_diag_parse(const void *buf, size_t len, TcpConnList *l, bool *ret_done);

/* "socket:[12345]" -> 12345; -EBADMSG for anything else (pipes, files, anon inodes). */
int tcp_socket_link_parse(const char *target, uint64_t *ret_inode);

/* One socket fd of a process. */
typedef struct TcpSockFd {
        int fd;
        uint64_t inode;
} TcpSockFd;

/* The socket fds of pid from PROC_ROOT/PID/fd (a fake tree of symlinks "3" -> "socket:[N]" works).
 * free() *ret. -ESRCH when pid is gone, -EACCES without ptrace-read access to it. */
int tcp_socket_fds(const char *proc_root, pid_t pid, TcpSockFd **ret, size_t *ret_n);

/* The connections of dump held by one of fds, with fd filled, in dump order, into *ret (a fresh
 * list; done it). A socket dup'ed into two fds shows once, under its lowest fd. */
int tcp_conn_join(const TcpConnList *dump, const TcpSockFd *fds, size_t n_fds, TcpConnList *ret);

/* --- the kernel --- */

/* Every TCP socket (IPv4 and IPv6) of pullwatch's network namespace but listeners and TIME_WAIT,
 * with INET_DIAG_INFO. Needs no capability; the unit must allow AF_NETLINK (it does). */
int tcp_diag_dump(TcpConnList *ret, ErrorDetail *ret_error);

/* The TCP connections pid holds: tcp_socket_fds() joined with tcp_diag_dump(). proc_root NULL =
 * /proc; it is used for the fd part and the target's ns/net link, while the own namespace is always
 * the real /proc/self/ns/net (the dump asks the kernel, not the tree). -EXDEV when pid lives in
 * another network namespace (see the top of this file), -ESRCH when it is gone. */
int tcp_conn_list(const char *proc_root, pid_t pid, TcpConnList *ret, ErrorDetail *ret_error);

/* --- which connections are stalled in a transfer (pure) --- */

/* Indices into conns (ascending) of every connection that is ESTABLISHED, has a peer matching one
 * of hops (any peer when n_hops is 0), has received bytes (bytes_received > 0) and has received
 * nothing for at least budget_ms. Returns how many were written to ret_idx (at most n).
 *
 * An idle keep-alive connection in the runtime's pool also matches: it received a response once and
 * has been quiet since. Cutting it is harmless: Go's http.Transport (dockerd's and containerd's
 * client) finds the pooled connection closed and dials a new one for the next request; a request
 * that raced onto it is retried by the transport when nothing of it was written, or fails like any
 * reset and falls to the runtime's own layer retry. Callers that want only the connection carrying a
 * layer pass the layer's hop and a budget longer than the pool's idle timeout (90 s in Go) or
 * combine this with the runtime's own progress. Hops are the peer the runtime talks to: the
 * registry, mirror, or HTTP(S) proxy address, resolved by the caller. */
size_t tcp_conn_select_stalled(const TcpConn *conns, size_t n, const TcpAddr *hops, size_t n_hops,
                               uint32_t budget_ms, size_t *ret_idx);

/* --- the cut --- */

/* What the cut does to the outside world, injectable so daemon tests observe it without touching a
 * process (the model of liveness.c's ProcessOps). Each returns >= 0 or -errno. */
typedef struct TcpCutOps {
        /* A pidfd for pid (pidfd_open, kernel >= 5.3). */
        int (*pidfd_open)(void *userdata, pid_t pid);
        /* A duplicate in this process of targetfd of the process behind pidfd (pidfd_getfd,
         * kernel >= 5.6). The result is owned (closed) by the cut. */
        int (*getfd)(void *userdata, int pidfd, int targetfd);
        /* The identity of an fd this process holds: its inode, and whether it is a socket (fstat). */
        int (*identify)(void *userdata, int fd, uint64_t *ret_inode, bool *ret_is_socket);
        /* shutdown(fd, SHUT_RDWR). */
        int (*shutdown)(void *userdata, int fd);
        void *userdata;
} TcpCutOps;

/* The real syscalls. */
extern const TcpCutOps tcp_cut_ops_default;

/* Cut conn (conn->fd, conn->inode, as tcp_conn_list() gave them) of the process: duplicate its socket
 * into pullwatch with pidfd_getfd(), check that the duplicate is still the listed socket (same inode:
 * the fd number may have been closed and reused since the listing), shutdown(SHUT_RDWR) it, close
 * the duplicate. The runtime's blocked read returns EOF at once (its peer sees FIN) and its own
 * retry logic runs, with Range resume where it has one; nothing else of the process is touched: no
 * signal, no ptrace, no other fd. The socket stays open in the runtime until it closes it itself.
 *
 * The caller MUST have proven, right before, that the process is the runtime's own
 * (runtime_identity_check()), and should pass the pidfd it opened while proving it (pidfd >= 0): a
 * pidfd names one process, so a pid reused since cannot be cut. With pidfd < 0 one is opened from
 * pid here, and the proof must be immediately before.
 *
 * Needs: CAP_SYS_PTRACE, since pidfd_getfd() requires PTRACE_MODE_ATTACH_REALCREDS on the target (the
 * unit keeps it: docs/security.md); Yama ptrace_scope 3 refuses it to everyone. Under systemd's
 * SystemCallFilter=@system-service the syscall is refused (systemd 252 files pidfd_getfd under
 * @debug, with ptrace), so the unit allows pidfd_getfd by name. Kernel >= 5.6.
 *
 * 0 when cut; -ESTALE when the fd no longer is that socket (nothing was shut down); -EBADF when the
 * process no longer holds that fd; -ESRCH when the process is gone; -EPERM without the privilege or
 * under a filter; -ENOSYS on kernels without pidfd_getfd. ops NULL = tcp_cut_ops_default. */
int tcp_conn_cut(const TcpCutOps *ops, pid_t pid, int pidfd, const TcpConn *conn, ErrorDetail *ret_error);
