/* registry_host.c: the registry probe's rules for platforms, hosts and URLs, Retry-After and sha256.
 * Pure functions (uname(2) aside); no network. */
#include "probes/registry/registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <sys/utsname.h>

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* ---- platforms (containerd's normalization: aarch64 -> arm64/v8, armhf -> arm/v7, ...) ---- */

int registry_platform_normalize(const char *s, char **ret) {
        char os[64] = "", arch[64] = "", variant[64] = "";
        const char *parts[3] = {};
        size_t lens[3] = {}, n = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s;; ) {
                if (n == 3)
                        return -EINVAL;
                size_t l = strcspn(p, "/");
                if (l == 0 || l >= sizeof(os))
                        return -EINVAL;
                parts[n] = p;
                lens[n++] = l;
                if (!p[l])
                        break;
                p += l + 1;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < lens[i]; j++)
                        if (!isalnum((unsigned char) parts[i][j]) && !strchr("_.-", parts[i][j]))
                                return -EINVAL;
        if (n == 1) { /* "arm64" alone means linux/arm64 */
                strcpy(os, "linux");
                memcpy(arch, parts[0], lens[0]);
        } else {
                memcpy(os, parts[0], lens[0]);
                memcpy(arch, parts[1], lens[1]);
                if (n == 3)
                        memcpy(variant, parts[2], lens[2]);
        }
        for (char *c = os; *c; c++)
                *c = tolower((unsigned char) *c);
        for (char *c = arch; *c; c++)
                *c = tolower((unsigned char) *c);

        if (streq(arch, "x86_64") || streq(arch, "x86-64"))
                strcpy(arch, "amd64");
        else if (streq(arch, "i386") || streq(arch, "i686"))
                strcpy(arch, "386");
        else if (streq(arch, "aarch64") || streq(arch, "arm64")) {
                strcpy(arch, "arm64");
                if (!*variant || streq(variant, "8") || streq(variant, "v8.0"))
                        strcpy(variant, "v8");
        } else if (streq(arch, "armhf")) {
                strcpy(arch, "arm");
                strcpy(variant, "v7");
        } else if (streq(arch, "armel")) {
                strcpy(arch, "arm");
                strcpy(variant, "v6");
        } else if (streq(arch, "arm")) {
                if (!*variant || streq(variant, "7"))
                        strcpy(variant, "v7");
                else if (isdigit((unsigned char) variant[0]) && strlen(variant) < sizeof(variant) - 1) {
                        memmove(variant + 1, variant, strlen(variant) + 1);
                        variant[0] = 'v';
                }
        }
        return asprintf(ret, "%s/%s%s%s", os, arch, *variant ? "/" : "", variant) < 0 ? -ENOMEM : 0;
}

int registry_host_platform(char **ret) {
        struct utsname u;
        if (uname(&u) < 0)
                return -errno;
        const char *m = u.machine;
        if (streq(m, "armv7l") || streq(m, "armv7"))
                m = "arm/v7";
        else if (streq(m, "armv6l") || streq(m, "armv6"))
                m = "arm/v6";
        _cleanup_free_ char *raw = NULL;
        if (asprintf(&raw, "linux/%s", m) < 0)
                return -ENOMEM;
        return registry_platform_normalize(raw, ret);
}

int registry_platform_format(const char *os, const char *arch, const char *variant, char **ret) {
        _cleanup_free_ char *raw = NULL;
        if (asprintf(&raw, "%s/%s%s%s", os, arch, variant && *variant ? "/" : "", variant ? variant : "") < 0)
                return -ENOMEM;
        return registry_platform_normalize(raw, ret);
}

bool registry_platform_match(const char *want, const char *os, const char *arch, const char *variant) {
        _cleanup_free_ char *w = NULL, *e = NULL;

        if (!os || !arch)
                return false;
        if (want ? registry_platform_normalize(want, &w) < 0 : registry_host_platform(&w) < 0)
                return false;
        if (registry_platform_format(os, arch, variant, &e) < 0)
                return false;
        if (streq(w, e))
                return true;
        /* "linux/amd64" asks for any variant of it */
        size_t wl = strlen(w);
        return strchr(w, '/') == strrchr(w, '/') && strncmp(w, e, wl) == 0 && e[wl] == '/';
}

/* ---- hosts and URLs ---- */

static bool domain_is_docker_hub(const char *d) {
        return streq(d, "docker.io") || streq(d, "index.docker.io") || streq(d, "registry-1.docker.io");
}

const char *registry_api_host(const char *domain) {
        return domain_is_docker_hub(domain) ? "registry-1.docker.io" : domain;
}

/* Host part of host[:port] or [v6]:port, into buf. */
static const char *host_only(const char *hostport, char *buf, size_t size) {
        size_t n;
        if (hostport[0] == '[') {
                const char *end = strchr(hostport, ']');
                n = end ? (size_t) (end - hostport - 1) : strlen(hostport + 1);
                hostport++;
        } else {
                const char *colon = strchr(hostport, ':');
                /* a bare IPv6 address has several colons and no port */
                if (colon && strchr(colon + 1, ':'))
                        colon = NULL;
                n = colon ? (size_t) (colon - hostport) : strlen(hostport);
        }
        n = MIN(n, size - 1);
        memcpy(buf, hostport, n);
        buf[n] = 0;
        return buf;
}

static void freeifaddrsp(struct ifaddrs **p) {
        if (*p)
                freeifaddrs(*p);
}

bool registry_host_is_node_local(const char *hostport) {
        _cleanup_(freeifaddrsp) struct ifaddrs *ifs = NULL;
        char host[256];
        struct in_addr a4;
        struct in6_addr a6;
        int family;

        if (!hostport)
                return false;
        if (registry_host_is_loopback(hostport))
                return true;
        host_only(hostport, host, sizeof(host));
        family = inet_pton(AF_INET, host, &a4) == 1 ? AF_INET : inet_pton(AF_INET6, host, &a6) == 1 ? AF_INET6 : 0;
        if (family == 0 || getifaddrs(&ifs) < 0)
                return false;
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != family)
                        continue;
                if (family == AF_INET && ((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr == a4.s_addr)
                        return true;
                if (family == AF_INET6 && memcmp(&((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, &a6, sizeof(a6)) == 0)
                        return true;
        }
        return false;
}

bool registry_host_is_loopback(const char *hostport) {
        char host[256];
        struct in_addr a4;
        struct in6_addr a6;

        if (!hostport)
                return false;
        host_only(hostport, host, sizeof(host));
        if (strcasecmp(host, "localhost") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

static bool cidr4_contains(const char *cidr, const char *host) {
        char net[64];
        const char *slash = strchr(cidr, '/');
        struct in_addr n4, h4;
        char *end;

        if (!slash || (size_t) (slash - cidr) >= sizeof(net))
                return false;
        memcpy(net, cidr, slash - cidr);
        net[slash - cidr] = 0;
        long bits = strtol(slash + 1, &end, 10);
        if (*end || bits < 0 || bits > 32 || inet_pton(AF_INET, net, &n4) != 1 ||
            inet_pton(AF_INET, host, &h4) != 1)
                return false;
        uint32_t mask = bits == 0 ? 0 : htonl(~((1U << (32 - bits)) - 1) & 0xffffffffU);
        return (n4.s_addr & mask) == (h4.s_addr & mask);
}

bool registry_host_is_insecure(const RegistryConfig *c, const char *hostport) {
        char host[256];

        if (!c || !c->insecure || !hostport)
                return false;
        host_only(hostport, host, sizeof(host));
        for (char **i = c->insecure; *i; i++) {
                const char *e = *i;
                if (startswith(e, "http://"))
                        e += 7;
                else if (startswith(e, "https://"))
                        e += 8;
                size_t l = strcspn(e, "/");
                if ((strlen(hostport) == l && strncmp(e, hostport, l) == 0) ||
                    (strlen(host) == l && strncmp(e, host, l) == 0) || cidr4_contains(e, host))
                        return true;
        }
        return false;
}

static int base_url(const RegistryConfig *c, const char *entry, char **ret) {
        size_t l = strlen(entry);
        while (l > 0 && entry[l - 1] == '/')
                l--;
        if (l == 0)
                return -EINVAL;
        if (strstr(entry, "://"))
                return (*ret = strndup(entry, l)) ? 0 : -ENOMEM;
        _cleanup_free_ char *hp = strndup(entry, strcspn(entry, "/"));
        if (!hp)
                return -ENOMEM;
        bool plain = registry_host_is_loopback(hp) || registry_host_is_insecure(c, hp);
        return asprintf(ret, "%s://%.*s", plain ? "http" : "https", (int) l, entry) < 0 ? -ENOMEM : 0;
}

int registry_base_urls(const RegistryConfig *c, const char *domain, char ***ret) {
        size_t n_mirrors = c && domain_is_docker_hub(domain) ? strv_length(c->mirrors) : 0, n = 0;
        _cleanup_strv_free_ char **l = calloc(n_mirrors + 2, sizeof(char *));
        int r;

        if (!l)
                return -ENOMEM;
        if (!domain || !*domain || strpbrk(domain, "/?#@ "))
                return -EINVAL;
        for (size_t i = 0; i < n_mirrors; i++) {
                r = base_url(c, c->mirrors[i], &l[n]);
                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        return r;
                n++;
        }
        r = base_url(c, registry_api_host(domain), &l[n]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int registry_url_host(const char *url, char **ret) {
        const char *p = url ? strstr(url, "://") : NULL;
        if (!p)
                return -EINVAL;
        p += 3;
        size_t n = strcspn(p, "/?#");
        /* userinfo never leaves this function; a password may hold a raw '@', so the last one ends it
         * (as in Go's net/url and curl) */
        const char *at = memrchr(p, '@', n);
        if (at) {
                n -= at + 1 - p;
                p = at + 1;
        }
        if (n == 0)
                return -EINVAL;
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

int registry_url_strip_query(const char *url, char **ret) {
        _cleanup_free_ char *host = NULL;
        const char *p = url ? strstr(url, "://") : NULL;
        if (!p || registry_url_host(url, &host) < 0)
                return -EINVAL;
        const char *path = p + 3 + strcspn(p + 3, "/?#");
        return asprintf(ret, "%.*s://%s%.*s", (int) (p - url), url, host, (int) strcspn(path, "?#"), path) < 0 ?
                       -ENOMEM : 0;
}

uint64_t registry_parse_retry_after(const char *v, uint64_t now_sec) {
        if (!v)
                return 0;
        while (*v == ' ')
                v++;
        if (isdigit((unsigned char) *v)) {
                char *end;
                unsigned long long s = strtoull(v, &end, 10);
                return *skip_ws(end) ? 0 : s;
        }
        time_t t = curl_getdate(v, NULL);
        return t > 0 && (uint64_t) t > now_sec ? (uint64_t) t - now_sec : 0;
}

/* ---- sha256 (FIPS 180-4), for Docker-Content-Digest checks and the tests' pushes ---- */

static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
        uint32_t w[64], a, b, c, d, e, f, g, hh;
        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 | (uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
                uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
                uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

int registry_sha256_digest(const void *data, size_t size, char **ret) {
        uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
        const uint8_t *p = data;
        uint8_t tail[128] = {};
        size_t full = size / 64 * 64, rest = size - full, tail_len;
        char *s;

        for (size_t i = 0; i < full; i += 64)
                sha256_block(h, p + i);
        if (rest)
                memcpy(tail, p + full, rest);
        tail[rest] = 0x80;
        tail_len = rest < 56 ? 64 : 128;
        uint64_t bits = (uint64_t) size * 8;
        for (int i = 0; i < 8; i++)
                tail[tail_len - 1 - i] = (uint8_t) (bits >> (8 * i));
        sha256_block(h, tail);
        if (tail_len == 128)
                sha256_block(h, tail + 64);
        s = malloc(7 + 64 + 1);
        if (!s)
                return -ENOMEM;
        strcpy(s, "sha256:");
        for (int i = 0; i < 8; i++)
                sprintf(s + 7 + 8 * i, "%08x", h[i]);
        *ret = s;
        return 0;
}
