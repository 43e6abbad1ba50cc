/* test_tcp_conn: the TCP connection probe. Parsing on captured and forged sock_diag bytes (truncated
 * or malformed messages give -EBADMSG), the fd join and the netns check on fake /proc trees, the
 * selection table, the cut with injected operations; then the real kernel: a child blocked in read()
 * on a loopback connection that went quiet is listed with its bytes, and cut so that its read ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <cmocka.h>

#include "probes/host/tcp_conn.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static char proc_root[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        snprintf(proc_root, sizeof(proc_root), "/tmp/pullwatch-tcp-XXXXXX");
        return mkdtemp(proc_root) ? 0 : -1;
}

static int teardown(void **state) {
        return nftw(proc_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* One SOCK_DIAG_BY_FAMILY message captured on this project's kernel (6.x) with the request
 * tcp_diag_dump() sends: a loopback connection 127.0.0.1:40764 -> 127.0.0.1:57191 that had received
 * 1000 bytes, INET_DIAG_INFO carrying the kernel's full struct tcp_info. */
static const uint8_t captured[] = {
        0x98, 0x01, 0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x07, 0x00, 0x00, 0x00,
        0x09, 0x4a, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00, 0x9f, 0x3c, 0xdf, 0x67,
        0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xd8, 0xa8, 0x00, 0x00, 0x05, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x15, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x16, 0x00,
        0x52, 0x00, 0x00, 0x00, 0x1c, 0x01, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x07, 0xaa, 0x01, 0xe0, 0x1c, 0x03, 0x00, 0x40, 0x9c, 0x00, 0x00,
        0x00, 0x80, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00,
        0x1d, 0x12, 0x01, 0x00, 0x23, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0x7f, 0x0a, 0x00, 0x00, 0x00, 0xcb, 0xff, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd7, 0xff, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xc4, 0x15, 0x78, 0x39, 0x06, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x23, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x14, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
};

typedef struct Buf {
        uint8_t b[8192];
        size_t n;
} Buf;

static void put_msg(Buf *b, uint16_t type, const void *payload, size_t plen) {
        struct nlmsghdr h = { .nlmsg_len = (uint32_t) (sizeof(h) + plen), .nlmsg_type = type, .nlmsg_flags = NLM_F_MULTI };
        assert_true(b->n + NLMSG_ALIGN(h.nlmsg_len) <= sizeof(b->b));
        memcpy(b->b + b->n, &h, sizeof(h));
        if (plen > 0)
                memcpy(b->b + b->n + sizeof(h), payload, plen);
        b->n += NLMSG_ALIGN(h.nlmsg_len);
}

static void put_done(Buf *b) {
        int zero = 0;
        put_msg(b, NLMSG_DONE, &zero, sizeof(zero));
}

/* An inet_diag_msg and, when ti_len > 0, an INET_DIAG_INFO attribute of that many bytes of ti. */
static size_t forge_diag(uint8_t *out, uint8_t family, uint8_t state, const char *src, uint16_t sport,
                         const char *dst, uint16_t dport, uint32_t inode, const struct tcp_info *ti, size_t ti_len) {
        struct inet_diag_msg m = { .idiag_family = family, .idiag_state = state, .idiag_inode = inode, .idiag_uid = 7 };
        size_t n = NLMSG_ALIGN(sizeof(m));
        uint16_t alen, atype = INET_DIAG_INFO;

        m.id.idiag_sport = htons(sport);
        m.id.idiag_dport = htons(dport);
        assert_int_equal(inet_pton(family, src, m.id.idiag_src), 1);
        assert_int_equal(inet_pton(family, dst, m.id.idiag_dst), 1);
        memset(out, 0, n);
        memcpy(out, &m, sizeof(m));
        if (ti_len > 0) {
                alen = (uint16_t) (4 + ti_len);
                memcpy(out + n, &alen, 2);
                memcpy(out + n + 2, &atype, 2);
                memcpy(out + n + 4, ti, ti_len);
                n += NLMSG_ALIGN(alen);
        }
        return n;
}

static struct tcp_info info_of(uint64_t received, uint64_t acked, uint64_t sent, uint32_t recv_ms, uint32_t sent_ms) {
        return (struct tcp_info) { .tcpi_bytes_received = received, .tcpi_bytes_acked = acked, .tcpi_bytes_sent = sent,
                                   .tcpi_last_data_recv = recv_ms, .tcpi_last_data_sent = sent_ms };
}

static void test_parse_captured(void **state) {
        TcpConnList l = {};
        char a[64];
        bool done = true;

        assert_int_equal(tcp_diag_parse(captured, sizeof(captured), &l, &done), 0);
        assert_false(done);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].fd, -1);
        assert_int_equal(l.v[0].state, TCP_CONN_ESTABLISHED);
        assert_string_equal(tcp_addr_format(&l.v[0].local, a, sizeof(a)), "127.0.0.1:40764");
        assert_string_equal(tcp_addr_format(&l.v[0].peer, a, sizeof(a)), "127.0.0.1:57191");
        assert_true(l.v[0].inode > 0);
        assert_true(l.v[0].has_info);
        assert_int_equal(l.v[0].bytes_received, 1000);
        assert_int_equal(l.v[0].bytes_sent, 0);
        assert_string_equal(tcp_state_to_string(l.v[0].state), "ESTABLISHED");

        /* Every prefix: a cut inside a message is -EBADMSG, never a read past it (ASan watches). */
        for (size_t len = 1; len < sizeof(captured); len++) {
                TcpConnList p = {};
                _cleanup_free_ uint8_t *copy = malloc(len);
                memcpy(copy, captured, len);
                assert_int_equal(tcp_diag_parse(copy, len, &p, &done), -EBADMSG);
                tcp_conn_list_done(&p);
        }
        tcp_conn_list_done(&l);
}

static void test_parse_forged(void **state) {
        uint8_t payload[1024];
        struct tcp_info ti = info_of(5000, 300, 400, 1234, 56);
        TcpConnList l = {};
        Buf b = {};
        char a[64];
        bool done = false;
        size_t n;

        n = forge_diag(payload, AF_INET, 1, "10.0.0.2", 41000, "192.0.2.7", 443, 111, &ti, sizeof(ti));
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        /* IPv4-mapped IPv6 (a dual-stack Go socket dialling IPv4) folds to AF_INET. */
        n = forge_diag(payload, AF_INET6, 8, "::ffff:10.0.0.2", 41001, "::ffff:192.0.2.7", 443, 222, &ti, sizeof(ti));
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        /* An old kernel's shorter tcp_info: no byte counters yet, the ms fields are there. */
        n = forge_diag(payload, AF_INET6, 1, "2001:db8::1", 41002, "2001:db8::2", 5000, 333, &ti,
                       offsetof(struct tcp_info, tcpi_bytes_received));
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        /* A kernel before tcpi_bytes_sent (4.19): sent reads as acked. */
        n = forge_diag(payload, AF_INET, 1, "10.0.0.2", 41003, "192.0.2.7", 443, 444, &ti,
                       offsetof(struct tcp_info, tcpi_bytes_sent));
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        /* No INET_DIAG_INFO at all. */
        n = forge_diag(payload, AF_INET, 1, "10.0.0.2", 41004, "192.0.2.7", 443, 555, NULL, 0);
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        put_done(&b);

        assert_int_equal(tcp_diag_parse(b.b, b.n, &l, &done), 0);
        assert_true(done);
        assert_int_equal(l.n, 5);

        assert_string_equal(tcp_addr_format(&l.v[0].local, a, sizeof(a)), "10.0.0.2:41000");
        assert_string_equal(tcp_addr_format(&l.v[0].peer, a, sizeof(a)), "192.0.2.7:443");
        assert_int_equal(l.v[0].inode, 111);
        assert_int_equal(l.v[0].uid, 7);
        assert_int_equal(l.v[0].bytes_received, 5000);
        assert_int_equal(l.v[0].bytes_acked, 300);
        assert_int_equal(l.v[0].bytes_sent, 400);
        assert_int_equal(l.v[0].last_data_recv_ms, 1234);
        assert_int_equal(l.v[0].last_data_sent_ms, 56);

        assert_int_equal(l.v[1].peer.family, AF_INET);
        assert_string_equal(tcp_addr_format(&l.v[1].peer, a, sizeof(a)), "192.0.2.7:443");
        assert_int_equal(l.v[1].state, TCP_CONN_CLOSE_WAIT);

        assert_string_equal(tcp_addr_format(&l.v[2].peer, a, sizeof(a)), "[2001:db8::2]:5000");
        assert_true(l.v[2].has_info);
        assert_int_equal(l.v[2].bytes_received, 0);
        assert_int_equal(l.v[2].last_data_recv_ms, 1234);

        assert_int_equal(l.v[3].bytes_received, 5000);
        assert_int_equal(l.v[3].bytes_sent, 300);

        assert_false(l.v[4].has_info);
        assert_int_equal(l.v[4].bytes_received, 0);
        tcp_conn_list_done(&l);

        /* Cut at every length: -EBADMSG inside a message, 0 (not done) at a boundary. */
        for (size_t len = 0; len < b.n; len++) {
                TcpConnList p = {};
                _cleanup_free_ uint8_t *copy = malloc(len + 1);
                int r;
                memcpy(copy, b.b, len);
                r = tcp_diag_parse(copy, len, &p, &done);
                assert_true(r == 0 || r == -EBADMSG);
                if (r == 0)
                        assert_false(done);
                tcp_conn_list_done(&p);
        }
}

static int parse_one(const void *msg, size_t len) {
        TcpConnList l = {};
        bool done;
        int r = tcp_diag_parse(msg, len, &l, &done);
        tcp_conn_list_done(&l);
        return r;
}

static void test_parse_malformed(void **state) {
        uint8_t payload[1024];
        struct tcp_info ti = info_of(1, 1, 1, 1, 1);
        struct nlmsghdr *h;
        Buf b = {};
        size_t n;
        int err;

        n = forge_diag(payload, AF_INET, 1, "10.0.0.2", 1, "10.0.0.3", 2, 9, &ti, sizeof(ti));
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        h = (struct nlmsghdr *) b.b;

        assert_int_equal(parse_one(b.b, b.n), 0);
        /* nlmsg_len smaller than a header, or larger than what was received */
        h->nlmsg_len = 8;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        h->nlmsg_len = 0;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        h->nlmsg_len = (uint32_t) b.n + 4;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        h->nlmsg_len = UINT32_MAX;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        /* a payload shorter than inet_diag_msg */
        h->nlmsg_len = sizeof(*h) + sizeof(struct inet_diag_msg) - 1;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        h->nlmsg_len = (uint32_t) (sizeof(*h) + n);

        /* attribute length below its header, or beyond the message */
        uint8_t *attr = b.b + sizeof(*h) + NLMSG_ALIGN(sizeof(struct inet_diag_msg));
        uint16_t alen_saved, bad;
        memcpy(&alen_saved, attr, 2);
        bad = 2;
        memcpy(attr, &bad, 2);
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        bad = (uint16_t) (alen_saved + 8);
        memcpy(attr, &bad, 2);
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        memcpy(attr, &alen_saved, 2);
        /* a family that is not inet */
        b.b[sizeof(*h)] = 99;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        b.b[sizeof(*h)] = AF_INET;
        assert_int_equal(parse_one(b.b, b.n), 0);

        /* NLMSG_ERROR: the kernel's errno comes back; a short one or a positive one is malformed */
        b = (Buf) {};
        err = -EPERM;
        put_msg(&b, NLMSG_ERROR, &err, sizeof(err));
        assert_int_equal(parse_one(b.b, b.n), -EPERM);
        b = (Buf) {};
        put_msg(&b, NLMSG_ERROR, &err, 2);
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        b = (Buf) {};
        err = 5;
        put_msg(&b, NLMSG_ERROR, &err, sizeof(err));
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        /* an ack (error 0) and a NOOP carry nothing */
        b = (Buf) {};
        err = 0;
        put_msg(&b, NLMSG_ERROR, &err, sizeof(err));
        put_msg(&b, NLMSG_NOOP, NULL, 0);
        assert_int_equal(parse_one(b.b, b.n), 0);
        /* three bytes of garbage after a good message */
        b = (Buf) {};
        put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, n);
        b.n += 3;
        assert_int_equal(parse_one(b.b, b.n), -EBADMSG);
        assert_int_equal(parse_one(NULL, 0), 0);
}

static void test_socket_link(void **state) {
        uint64_t ino = 0;

        assert_int_equal(tcp_socket_link_parse("socket:[12345]", &ino), 0);
        assert_int_equal(ino, 12345);
        assert_int_equal(tcp_socket_link_parse("socket:[18446744073709551615]", &ino), 0);
        assert_int_equal(ino, UINT64_MAX);
        static const char *const bad[] = {
                "socket:[]", "socket:[12", "socket:[12]x", "socket:[-1]", "socket:[ 1]", "socket:[0]",
                "socket:[18446744073709551616]", "pipe:[12]", "anon_inode:[eventfd]", "/dev/null", "", "socket:",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(tcp_socket_link_parse(bad[i], &ino), -EBADMSG);
        assert_int_equal(tcp_socket_link_parse(NULL, &ino), -EBADMSG);
}

static void fake_link(pid_t pid, const char *name, const char *target) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%d", proc_root, (int) pid);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%d/fd", proc_root, (int) pid);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%d/fd/%s", proc_root, (int) pid, name);
        assert_int_equal(symlink(target, path), 0);
}

static void test_fds_and_join(void **state) {
        _cleanup_free_ TcpSockFd *fds = NULL;
        TcpConnList dump = {}, joined = {};
        size_t n = 0;

        fake_link(4242, "0", "/dev/null");
        fake_link(4242, "3", "socket:[111]");
        fake_link(4242, "4", "socket:[222]");
        fake_link(4242, "5", "pipe:[9]");
        fake_link(4242, "7", "socket:[111]"); /* the same socket dup'ed */
        fake_link(4242, "12", "anon_inode:[eventpoll]");
        fake_link(4242, "x", "socket:[333]");  /* not an fd number */

        assert_int_equal(tcp_socket_fds(proc_root, 4242, &fds, &n), 0);
        assert_int_equal(n, 3);

        /* The dump in its own order: another process's 333, ours 222 and 111, a socket without inode. */
        static const uint64_t inodes[] = { 333, 222, 0, 111, 444 };
        for (size_t i = 0; i < ELEMENTSOF(inodes); i++) {
                uint8_t payload[512];
                struct tcp_info ti = info_of(i, 0, 0, 0, 0);
                size_t len = forge_diag(payload, AF_INET, 1, "10.0.0.2", (uint16_t) (1000 + i), "10.0.0.9", 443,
                                        (uint32_t) inodes[i], &ti, sizeof(ti));
                Buf b = {};
                bool done;
                put_msg(&b, SOCK_DIAG_BY_FAMILY, payload, len);
                assert_int_equal(tcp_diag_parse(b.b, b.n, &dump, &done), 0);
        }
        assert_int_equal(dump.n, 5);

        assert_int_equal(tcp_conn_join(&dump, fds, n, &joined), 0);
        assert_int_equal(joined.n, 2);
        assert_int_equal(joined.v[0].inode, 222);
        assert_int_equal(joined.v[0].fd, 4);
        assert_int_equal(joined.v[1].inode, 111);
        assert_int_equal(joined.v[1].fd, 3); /* the lowest fd of a dup'ed socket */
        tcp_conn_list_done(&joined);

        assert_int_equal(tcp_conn_join(&dump, NULL, 0, &joined), 0);
        assert_int_equal(joined.n, 0);
        tcp_conn_list_done(&joined);
        tcp_conn_list_done(&dump);

        assert_int_equal(tcp_socket_fds(proc_root, 4343, &fds, &n), -ESRCH);
}

/* The namespace check, on a fake tree: a pid whose ns/net is another object is -EXDEV; one whose
 * ns/net is ours goes on to the fd dir (sockets of the fake tree are in no dump: an empty list). */
static void test_netns_fake(void **state) {
        TcpConnList l = {};
        ErrorDetail e = {};
        char path[512];

        fake_link(5000, "3", "socket:[1]");
        snprintf(path, sizeof(path), "%s/5000/ns", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/5000/ns/net", proc_root);
        _cleanup_close_ int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(tcp_conn_list(proc_root, 5000, &l, &e), -EXDEV);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "another network namespace"));
        error_detail_done(&e);

        fake_link(5001, "3", "socket:[1]");
        snprintf(path, sizeof(path), "%s/5001/ns", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/5001/ns/net", proc_root);
        assert_int_equal(symlink("/proc/self/ns/net", path), 0);
        assert_int_equal(tcp_conn_list(proc_root, 5001, &l, &e), 0);
        assert_int_equal(l.n, 0);
        tcp_conn_list_done(&l);

        assert_int_equal(tcp_conn_list(proc_root, 5002, &l, &e), -ESRCH);
        error_detail_done(&e);
}

static TcpAddr addr(const char *ip, uint16_t port) {
        TcpAddr a = { .family = strchr(ip, ':') ? AF_INET6 : AF_INET, .port = port };
        assert_int_equal(inet_pton(a.family, ip, a.addr), 1);
        return a;
}

static void test_select_stalled(void **state) {
        const TcpConn conns[] = {
                /* 0: a stalled layer download from the registry */
                { .state = 1, .peer = addr("192.0.2.7", 443), .has_info = true, .bytes_received = 9000, .last_data_recv_ms = 8000 },
                /* 1: moving */
                { .state = 1, .peer = addr("192.0.2.7", 443), .has_info = true, .bytes_received = 9000, .last_data_recv_ms = 20 },
                /* 2: quiet, but never received anything (a request still waiting for its answer) */
                { .state = 1, .peer = addr("192.0.2.7", 443), .has_info = true, .bytes_received = 0, .last_data_recv_ms = 9000 },
                /* 3: the peer closed already */
                { .state = 8, .peer = addr("192.0.2.7", 443), .has_info = true, .bytes_received = 9000, .last_data_recv_ms = 9000 },
                /* 4: another host (the containerd socket's peer is not TCP; here: some other service) */
                { .state = 1, .peer = addr("198.51.100.1", 443), .has_info = true, .bytes_received = 1, .last_data_recv_ms = 9000 },
                /* 5: the mirror on IPv6, exactly at the budget */
                { .state = 1, .peer = addr("2001:db8::5", 5000), .has_info = true, .bytes_received = 1, .last_data_recv_ms = 6000 },
                /* 6: no INET_DIAG_INFO: nothing known, never selected */
                { .state = 1, .peer = addr("192.0.2.7", 443), .has_info = false, .last_data_recv_ms = 9000 },
                /* 7: same registry address, other port */
                { .state = 1, .peer = addr("192.0.2.7", 8443), .has_info = true, .bytes_received = 5, .last_data_recv_ms = 9000 },
        };
        const TcpAddr hops[] = { addr("192.0.2.7", 443), addr("2001:db8::5", 0) };
        size_t idx[ELEMENTSOF(conns)];
        size_t k;

        k = tcp_conn_select_stalled(conns, ELEMENTSOF(conns), hops, ELEMENTSOF(hops), 6000, idx);
        assert_int_equal(k, 2);
        assert_int_equal(idx[0], 0);
        assert_int_equal(idx[1], 5);

        k = tcp_conn_select_stalled(conns, ELEMENTSOF(conns), hops, ELEMENTSOF(hops), 6001, idx);
        assert_int_equal(k, 1);
        assert_int_equal(idx[0], 0);

        /* no hops: any peer */
        k = tcp_conn_select_stalled(conns, ELEMENTSOF(conns), NULL, 0, 6000, idx);
        assert_int_equal(k, 4);
        assert_int_equal(idx[0], 0);
        assert_int_equal(idx[1], 4);
        assert_int_equal(idx[2], 5);
        assert_int_equal(idx[3], 7);

        k = tcp_conn_select_stalled(conns, ELEMENTSOF(conns), hops, ELEMENTSOF(hops), 100000, idx);
        assert_int_equal(k, 0);

        /* a hop from getaddrinfo as a v4-mapped sockaddr_in6 matches the IPv4 peer */
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
        TcpAddr mapped;
        assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr), 1);
        assert_int_equal(tcp_addr_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6), &mapped), 0);
        assert_int_equal(mapped.family, AF_INET);
        k = tcp_conn_select_stalled(conns, ELEMENTSOF(conns), &mapped, 1, 6000, idx);
        assert_int_equal(k, 1);
        assert_int_equal(idx[0], 0);
        struct sockaddr sa = { .sa_family = AF_UNIX };
        assert_int_equal(tcp_addr_from_sockaddr(&sa, sizeof(sa), &mapped), -EAFNOSUPPORT);
}

/* --- the cut, with injected operations --- */

typedef struct FakeCut {
        int open_r, getfd_r;       /* < 0: fail with it */
        uint64_t inode;            /* what identify reports */
        bool is_socket;
        int shutdown_r;
        pid_t opened_pid;
        int got_pidfd, got_target;
        int copy_fd, own_pidfd;    /* the fds handed out, to check they were closed */
        unsigned n_open, n_getfd, n_shutdown;
} FakeCut;

static int fake_open(void *userdata, pid_t pid) {
        FakeCut *f = userdata;
        f->n_open++;
        f->opened_pid = pid;
        if (f->open_r < 0)
                return f->open_r;
        f->own_pidfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return f->own_pidfd;
}

static int fake_getfd(void *userdata, int pidfd, int targetfd) {
        FakeCut *f = userdata;
        f->n_getfd++;
        f->got_pidfd = pidfd;
        f->got_target = targetfd;
        if (f->getfd_r < 0)
                return f->getfd_r;
        f->copy_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return f->copy_fd;
}

static int fake_identify(void *userdata, int fd, uint64_t *ret_inode, bool *ret_is_socket) {
        FakeCut *f = userdata;
        assert_int_equal(fd, f->copy_fd);
        *ret_inode = f->inode;
        *ret_is_socket = f->is_socket;
        return 0;
}

static int fake_shutdown(void *userdata, int fd) {
        FakeCut *f = userdata;
        assert_int_equal(fd, f->copy_fd);
        f->n_shutdown++;
        return f->shutdown_r;
}

static bool fd_open(int fd) { return fd >= 0 && fcntl(fd, F_GETFD) >= 0; }

static int run_fake_cut(FakeCut *f, pid_t pid, int pidfd, const TcpConn *c, ErrorDetail *e) {
        TcpCutOps ops = { .pidfd_open = fake_open, .getfd = fake_getfd, .identify = fake_identify,
                          .shutdown = fake_shutdown, .userdata = f };
        f->copy_fd = f->own_pidfd = -1;
        return tcp_conn_cut(&ops, pid, pidfd, c, e);
}

static void test_cut_fake(void **state) {
        const TcpConn c = { .fd = 17, .inode = 4711, .state = 1, .peer = addr("192.0.2.7", 443) };
        _cleanup_close_ int held_pidfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ErrorDetail e = {};
        FakeCut f;

        /* The caller's pidfd is used as is and stays open; the copy is shut down and closed. */
        f = (FakeCut) { .inode = 4711, .is_socket = true };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, &e), 0);
        assert_int_equal(f.n_open, 0);
        assert_int_equal(f.got_pidfd, held_pidfd);
        assert_int_equal(f.got_target, 17);
        assert_int_equal(f.n_shutdown, 1);
        assert_false(fd_open(f.copy_fd));
        assert_true(fd_open(held_pidfd));

        /* Without a pidfd, one is opened from the pid and closed again. */
        f = (FakeCut) { .inode = 4711, .is_socket = true };
        assert_int_equal(run_fake_cut(&f, 100, -1, &c, &e), 0);
        assert_int_equal(f.n_open, 1);
        assert_int_equal(f.opened_pid, 100);
        assert_int_equal(f.got_pidfd, f.own_pidfd);
        assert_false(fd_open(f.own_pidfd));
        assert_int_equal(f.n_shutdown, 1);

        /* The fd number now names another socket, or no socket: nothing is shut down. */
        f = (FakeCut) { .inode = 4712, .is_socket = true };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, &e), -ESTALE);
        assert_int_equal(f.n_shutdown, 0);
        assert_false(fd_open(f.copy_fd));
        assert_non_null(strstr(e.message, "no longer socket:[4711] to 192.0.2.7:443"));
        f = (FakeCut) { .inode = 4711, .is_socket = false };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, &e), -ESTALE);
        assert_int_equal(f.n_shutdown, 0);

        /* Refused by the kernel (no CAP_SYS_PTRACE, or the seccomp filter): the detail says what it needs. */
        f = (FakeCut) { .getfd_r = -EPERM };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, &e), -EPERM);
        assert_non_null(strstr(e.message, "CAP_SYS_PTRACE"));
        assert_int_equal(f.n_shutdown, 0);
        f = (FakeCut) { .open_r = -ESRCH };
        assert_int_equal(run_fake_cut(&f, 100, -1, &c, &e), -ESRCH);
        assert_int_equal(f.n_getfd, 0);
        f = (FakeCut) { .getfd_r = -EBADF };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, NULL), -EBADF);
        f = (FakeCut) { .inode = 4711, .is_socket = true, .shutdown_r = -ENOTCONN };
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &c, &e), -ENOTCONN);
        assert_false(fd_open(f.copy_fd));
        error_detail_done(&e);

        /* Nothing to name: no fd, no inode, no process. */
        TcpConn bad = c;
        bad.fd = -1;
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &bad, NULL), -EINVAL);
        bad = c;
        bad.inode = 0;
        assert_int_equal(run_fake_cut(&f, 100, held_pidfd, &bad, NULL), -EINVAL);
        assert_int_equal(run_fake_cut(&f, 0, -1, &c, NULL), -EINVAL);
}

/* --- the real kernel --- */

typedef struct Peer {
        int listen_fd, accepted;   /* this process's listener and its end of the connection */
        uint16_t port;             /* the listener's */
        uint16_t child_port;       /* the child's end */
        pid_t child;
        int report;                /* the child writes 'R' once it has the first bytes, then 'E' (EOF),
                                    * 'X' (error) or 'D' (more data) when its blocked read returns */
} Peer;

static char wait_report(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c = 0;
        if (poll(&p, 1, timeout_ms) != 1)
                return 0;
        return read(fd, &c, 1) == 1 ? c : 0;
}

/* A loopback listener that sends first_bytes and then stays quiet; a child that connects, reads them,
 * says so, and blocks in read(). */
static void peer_start(Peer *p, size_t first_bytes) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sin);
        struct pollfd pl;
        int pipefd[2];
        char buf[4096] = {};

        *p = (Peer) { .listen_fd = -1, .accepted = -1, .report = -1 };
        p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(p->listen_fd >= 0);
        assert_int_equal(bind(p->listen_fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
        assert_int_equal(listen(p->listen_fd, 1), 0);
        assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *) &sin, &len), 0);
        p->port = ntohs(sin.sin_port);
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);

        p->child = fork();
        assert_true(p->child >= 0);
        if (p->child == 0) {
                size_t got = 0;
                ssize_t n;
                int s;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(p->listen_fd);
                close(pipefd[0]);
                s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (s < 0 || connect(s, (struct sockaddr *) &sin, sizeof(sin)) < 0)
                        _exit(2);
                while (got < first_bytes) {
                        n = read(s, buf, sizeof(buf));
                        if (n <= 0)
                                _exit(3);
                        got += (size_t) n;
                }
                if (write(pipefd[1], "R", 1) != 1)
                        _exit(4);
                n = read(s, buf, sizeof(buf)); /* the stall: blocks until the cut */
                if (write(pipefd[1], n == 0 ? "E" : n < 0 ? "X" : "D", 1) != 1)
                        _exit(5);
                _exit(0);
        }
        close(pipefd[1]);
        p->report = pipefd[0];

        pl = (struct pollfd) { .fd = p->listen_fd, .events = POLLIN };
        assert_int_equal(poll(&pl, 1, 5000), 1);
        p->accepted = accept4(p->listen_fd, (struct sockaddr *) &sin, &len, SOCK_CLOEXEC);
        assert_true(p->accepted >= 0);
        p->child_port = ntohs(sin.sin_port);
        for (size_t sent = 0; sent < first_bytes;) {
                ssize_t n = write(p->accepted, buf, MIN(sizeof(buf), first_bytes - sent));
                assert_true(n > 0);
                sent += (size_t) n;
        }
        assert_int_equal(wait_report(p->report, 5000), 'R');
}

static void peer_stop(Peer *p) {
        int status = 0;
        if (p->child > 0) {
                (void) kill(p->child, SIGKILL);
                (void) waitpid(p->child, &status, 0);
        }
        if (p->accepted >= 0)
                close(p->accepted);
        if (p->listen_fd >= 0)
                close(p->listen_fd);
        if (p->report >= 0)
                close(p->report);
}

static const TcpConn *find_local_port(const TcpConnList *l, uint16_t port) {
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].local.port == port)
                        return &l->v[i];
        return NULL;
}

static void test_real_list_and_cut(void **state) {
        TcpConnList l = {}, mine = {};
        ErrorDetail e = {};
        const TcpConn *c;
        TcpConn conn;
        uint32_t first_ms;
        usec_t t0;
        int r, status = 0;
        char ch;
        Peer p;

        peer_start(&p, 3000);

        r = tcp_conn_list(NULL, p.child, &l, &e);
        if (r < 0)
                fail_msg("tcp_conn_list: %s", e.message ?: strerror(-r));
        /* The child holds exactly its one connection; our end and our listener are not its. */
        assert_int_equal(l.n, 1);
        c = &l.v[0];
        assert_int_equal(c->local.port, p.child_port);
        assert_int_equal(c->peer.port, p.port);
        assert_int_equal(c->peer.family, AF_INET);
        assert_int_equal(c->state, TCP_CONN_ESTABLISHED);
        assert_true(c->fd >= 0);
        assert_true(c->has_info);
        assert_int_equal(c->bytes_received, 3000);
        first_ms = c->last_data_recv_ms;
        conn = *c;
        tcp_conn_list_done(&l);

        /* Our own list has our end of it and not the child's. */
        assert_int_equal(tcp_conn_list(NULL, getpid(), &mine, &e), 0);
        c = find_local_port(&mine, p.port);
        assert_non_null(c);
        assert_int_equal(c->peer.port, p.child_port);
        assert_int_equal(c->bytes_sent, 3000);
        assert_null(find_local_port(&mine, p.child_port));
        tcp_conn_list_done(&mine);

        /* last_data_recv grows while the server is quiet (bounded: 3 s in 10 ms waits, each also
         * watching that the child's read did not return). */
        for (unsigned i = 0;; i++) {
                assert_true(i < 300);
                assert_int_equal(wait_report(p.report, 10), 0);
                assert_int_equal(tcp_conn_list(NULL, p.child, &l, &e), 0);
                assert_int_equal(l.n, 1);
                if (l.v[0].last_data_recv_ms > first_ms + 50)
                        break;
                tcp_conn_list_done(&l);
        }

        /* Selected as stalled for a budget it has reached, through its hop; not for a longer one. */
        TcpAddr hop = { .family = AF_INET, .port = p.port };
        size_t idx[1];
        struct in_addr lo = { htonl(INADDR_LOOPBACK) };
        memcpy(hop.addr, &lo, 4);
        assert_int_equal(tcp_conn_select_stalled(l.v, l.n, &hop, 1, 50, idx), 1);
        assert_int_equal(tcp_conn_select_stalled(l.v, l.n, &hop, 1, l.v[0].last_data_recv_ms + 60000, idx), 0);
        hop.port = (uint16_t) (p.port + 1);
        assert_int_equal(tcp_conn_select_stalled(l.v, l.n, &hop, 1, 50, idx), 0);
        tcp_conn_list_done(&l);

        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, p.child, 0);
        assert_true(pidfd >= 0);

        /* A listing gone stale (the fd now another inode) is refused and the child keeps waiting. */
        TcpConn stale = conn;
        stale.inode++;
        assert_int_equal(tcp_conn_cut(NULL, p.child, pidfd, &stale, &e), -ESTALE);
        stale = conn;
        stale.fd = 999;
        assert_int_equal(tcp_conn_cut(NULL, p.child, pidfd, &stale, &e), -EBADF);
        assert_int_equal(wait_report(p.report, 0), 0);

        /* The cut: the child's own blocked read returns EOF at once, and our end sees its FIN. */
        t0 = now_monotonic();
        r = tcp_conn_cut(NULL, p.child, pidfd, &conn, &e);
        if (r < 0)
                fail_msg("tcp_conn_cut: %s", e.message ?: strerror(-r));
        ch = wait_report(p.report, 2000);
        assert_int_equal(ch, 'E');
        assert_true(now_monotonic() - t0 < 2 * USEC_PER_SEC);
        struct pollfd pa = { .fd = p.accepted, .events = POLLIN };
        assert_int_equal(poll(&pa, 1, 2000), 1);
        assert_int_equal(read(p.accepted, &ch, 1), 0);

        assert_int_equal(waitpid(p.child, &status, 0), p.child);
        p.child = 0;
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        error_detail_done(&e);
        peer_stop(&p);
}

/* The same cut by pid (no pidfd from the caller), and the list of a pid that is gone. */
static void test_real_cut_by_pid(void **state) {
        TcpConnList l = {};
        pid_t gone;
        Peer p;

        peer_start(&p, 10);
        assert_int_equal(tcp_conn_list(NULL, p.child, &l, NULL), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(tcp_conn_cut(NULL, p.child, -1, &l.v[0], NULL), 0);
        assert_int_equal(wait_report(p.report, 2000), 'E');
        tcp_conn_list_done(&l);
        peer_stop(&p);

        gone = fork();
        assert_true(gone >= 0);
        if (gone == 0)
                _exit(0);
        assert_int_equal(waitpid(gone, NULL, 0), gone);
        assert_int_equal(tcp_conn_list(NULL, gone, &l, NULL), -ESRCH);
}

/* A process in another network namespace: its sockets are not in our dump, and the list says so. */
static void test_real_other_netns(void **state) {
        TcpConnList l = {};
        ErrorDetail e = {};
        int pipefd[2], status;
        pid_t child;
        char ch = 0;

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(pipefd[0]);
                bool ok = unshare(CLONE_NEWNET) == 0;
                if (write(pipefd[1], ok ? "U" : "S", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(pipefd[1]);
        struct pollfd pf = { .fd = pipefd[0], .events = POLLIN };
        assert_int_equal(poll(&pf, 1, 5000), 1);
        assert_int_equal(read(pipefd[0], &ch, 1), 1);
        close(pipefd[0]);
        if (ch == 'U') {
                assert_int_equal(tcp_conn_list(NULL, child, &l, &e), -EXDEV);
                assert_non_null(strstr(e.message, "another network namespace"));
        }
        (void) kill(child, SIGKILL);
        (void) waitpid(child, &status, 0);
        error_detail_done(&e);
        if (ch != 'U')
                skip(); /* not root here: test_netns_fake covers the check on a fake tree */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_captured),
                cmocka_unit_test(test_parse_forged),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_socket_link),
                cmocka_unit_test_setup_teardown(test_fds_and_join, setup, teardown),
                cmocka_unit_test_setup_teardown(test_netns_fake, setup, teardown),
                cmocka_unit_test(test_select_stalled),
                cmocka_unit_test(test_cut_fake),
                cmocka_unit_test(test_real_list_and_cut),
                cmocka_unit_test(test_real_cut_by_pid),
                cmocka_unit_test(test_real_other_netns),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
