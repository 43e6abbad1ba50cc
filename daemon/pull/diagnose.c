/* diagnose.c: known failure signatures -> Diagnosis + one sentence with the remedy. The runtime
 * texts come from moby (daemon/internal/distribution, vendored distribution client) and containerd
 * (core/remotes/docker, core/metadata/content.go, core/images). Pure functions. */
#include "daemon/pull/diagnose.h"

#include <inttypes.h>
#include <stdarg.h>

#include "probes/containerd/containerd.h"
#include "probes/drivers/runtime_drivers.h"

static const char *const diagnosis_names[_DIAGNOSIS_MAX] = {
        [DIAG_NONE] = "none",
        [DIAG_OCTET_STREAM_CONFIG] = "octet-stream-config",
        [DIAG_SCHEMA1] = "schema1",
        [DIAG_NO_PLATFORM] = "no-platform",
        [DIAG_RANGE_IGNORED] = "range-ignored",
        [DIAG_MIDDLEBOX_TIMEOUT] = "middlebox-timeout",
        [DIAG_DECOMPRESSOR_HANG] = "decompressor-hang",
        [DIAG_AUTH] = "auth",
        [DIAG_RATE_LIMITED] = "rate-limited",
        [DIAG_DISK_FULL] = "disk-full",
        [DIAG_NOT_FOUND] = "not-found",
        [DIAG_RUNTIME_UNVERIFIED] = "runtime-unverified",
        [DIAG_TLS_UNTRUSTED] = "tls-untrusted",
        [DIAG_DISK_PRESSURE] = "disk-pressure",
        [DIAG_REGISTRY_SCHEME] = "registry-scheme",
        [DIAG_CRI_PROGRESS_TIMEOUT] = "cri-progress-timeout",
        [DIAG_MIRROR_UNRESPONSIVE] = "mirror-unresponsive",
        [DIAG_MIRROR_REFUSED] = "mirror-refused",
};

const char *diagnosis_to_string(Diagnosis d) {
        return d >= 0 && d < _DIAGNOSIS_MAX ? diagnosis_names[d] : NULL;
}

Diagnosis diagnosis_from_string(const char *s) {
        for (int i = 0; s && i < _DIAGNOSIS_MAX; i++)
                if (streq(s, diagnosis_names[i]))
                        return (Diagnosis) i;
        return _DIAGNOSIS_INVALID;
}

bool diagnosis_is_permanent(Diagnosis d) {
        return d == DIAG_OCTET_STREAM_CONFIG || d == DIAG_SCHEMA1 || d == DIAG_NO_PLATFORM || d == DIAG_AUTH ||
               d == DIAG_NOT_FOUND || d == DIAG_TLS_UNTRUSTED || d == DIAG_REGISTRY_SCHEME;
}

_printf_(3, 4) static int verdict(Diagnosis d, char **ret_text, const char *fmt, ...) {
        va_list ap;
        int k;

        if (!ret_text)
                return d;
        va_start(ap, fmt);
        k = vasprintf(ret_text, fmt, ap);
        va_end(ap);
        if (k < 0) {
                *ret_text = NULL;
                return -ENOMEM;
        }
        return d;
}

static int nothing(char **ret_text) {
        if (ret_text)
                *ret_text = NULL;
        return DIAG_NONE;
}

static bool has(const char *text, const char *needle) {
        return strcasestr(text, needle) != NULL;
}

/* The word that follows needle in text ("sha256:…", "linux/arm64/v8"), into buf. */
static const char *word_after(const char *text, const char *needle, const char *stops, char *buf, size_t size) {
        const char *p = strcasestr(text, needle);
        if (!p)
                return NULL;
        p += strlen(needle);
        size_t n = strcspn(p, stops);
        if (n == 0 || n >= size)
                return NULL;
        memcpy(buf, p, n);
        buf[n] = 0;
        return buf;
}

/* How runtime is worded: its driver's words; a kind without a driver is worded as auto's fallback. */
static const RuntimeWording *words(RuntimeKind runtime) {
        const RuntimeDriver *d = runtime_driver_get(runtime) ?: runtime_driver_auto_fallback();
        return d->wording;
}

static const char *storage_root(RuntimeKind runtime) {
        const RuntimeDriver *d = runtime_driver_get(runtime);
        return d ? d->wording->storage_root : "the runtime's root (/var/lib/docker or /var/lib/containerd)";
}

/* A remedy naming the host more than once: {host} in the driver's text stands for it. */
static char *with_host(const char *text, const char *host) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0, hl = strlen(host);
        const char *p, *q;

        for (p = text; (q = strstr(p, "{host}")); p = q + 6)
                n++;
        out = malloc(strlen(text) + n * hl + 1);
        if (!out)
                return NULL;
        char *o = out;
        for (p = text; (q = strstr(p, "{host}")); p = q + 6) {
                o = mempcpy(o, p, q - p);
                o = mempcpy(o, host, hl);
        }
        strcpy(o, p);
        return TAKE_PTR(out);
}

static const char *const schema1_remedy =
        "rebuild and push the image with a current builder (Docker schema 2 or OCI)";

static int diagnose_text_octet(RuntimeKind runtime, const char *t, char **ret_text) {
        char digest[160];

        /* containerd >= 1.4 skips the config it does not know and then misses its layers:
         * "failed to get reader from content store: content digest sha256:…: not found" */
        if (word_after(t, "content digest ", " \t\n", digest, sizeof(digest)) && has(t, "not found")) {
                size_t l = strlen(digest);
                if (digest[l - 1] == ':')
                        digest[l - 1] = 0;
                return verdict(DIAG_OCTET_STREAM_CONFIG, ret_text,
                               "content %s was never fetched because the image's config has mediaType "
                               "application/octet-stream (built by docker < 1.11), which %s skips: %s.", digest,
                               words(runtime)->octet_skipper, words(runtime)->octet_remedy);
        }
        if ((has(t, "unknown type: application/octet-stream") ||
             has(t, "unexpected media type application/octet-stream")))
                return verdict(DIAG_OCTET_STREAM_CONFIG, ret_text,
                               "the image's config has mediaType application/octet-stream (built by docker "
                               "< 1.11), which containerd 1.4 to 2.0 cannot unpack: %s.", words(runtime)->octet_remedy);
        return DIAG_NONE;
}

static int diagnose_text_auth(const char *t, char **ret_text) {
        char url[512];
        const char *realm = NULL;

        if (!(has(t, "401 unauthorized") || has(t, "403 forbidden") || has(t, "unauthorized:") ||
              has(t, "denied:") || has(t, "authentication required") || has(t, "pull access denied") ||
              has(t, "no basic auth credentials") || has(t, "insufficient_scope") ||
              has(t, "failed to authorize") || has(t, "failed to fetch anonymous token") ||
              has(t, "failed to fetch oauth token") || has(t, "access to the resource is denied")))
                return DIAG_NONE;
        /* containerd names the token endpoint: "... request to https://auth.example/token?scope=…: 401" */
        if (has(t, "token") && word_after(t, "request to ", "? \t\n", url, sizeof(url)))
                realm = url;
        bool denied = has(t, "403") || has(t, "denied");
        return verdict(DIAG_AUTH, ret_text,
                       "the registry %s%s%s: %s.",
                       denied ? "denied access to the repository" : "requires authentication",
                       realm ? " at realm " : "", realm ?: "",
                       denied ? "check that the repository exists and that the credentials in config.json "
                                "(docker login) may pull it" :
                                "log in (docker login) or put credentials for this registry in config.json");
}

/* The runtime spoke HTTPS to a registry that answers plain HTTP. dockerd on the containerd image store
 * (Docker 29's default) resolves through containerd 2.1, which does not fall back to http for a
 * registry outside 127.0.0.0/8 (measured: HEAD https://... "http: server gave HTTP response to HTTPS
 * client"; a plain-http proxy gave "tls: first record does not look like a TLS handshake"), and
 * insecure-registries alone did not help there. */
static int diagnose_text_scheme(RuntimeKind runtime, const char *t, char **ret_text) {
        char host[256];

        if (!has(t, "server gave HTTP response to HTTPS client") && !has(t, "does not look like a TLS handshake"))
                return DIAG_NONE;
        if (!word_after(t, "https://", "/\" \t\n", host, sizeof(host)))
                snprintf(host, sizeof(host), "HOST:PORT");
        _cleanup_free_ char *remedy = with_host(words(runtime)->scheme_remedy, host);
        if (!remedy)
                return -ENOMEM;
        return verdict(DIAG_REGISTRY_SCHEME, ret_text, "the registry %s answers plain HTTP but %s speaks HTTPS to it: %s",
                       host, words(runtime)->process, remedy);
}

int diagnose_runtime_error(RuntimeKind runtime, const char *t, char **ret_text) {
        char buf[256];
        int r;

        if (!t || !*t)
                return nothing(ret_text);
        if (has(t, "no space left on device")) {
                const char *end = strcasestr(t, "no space left on device"), *path = NULL;
                /* "write /var/lib/containerd/…/data: no space left on device" names the filesystem */
                for (const char *p = end; p > t; p--)
                        if (p[-1] == ' ' && p[0] == '/') {
                                path = p;
                                break;
                        }
                if (path && (size_t) (end - path) < sizeof(buf) && end - path > 2) {
                        memcpy(buf, path, end - path - 2);
                        buf[end - path - 2] = 0;
                }
                return verdict(DIAG_DISK_FULL, ret_text,
                               "the runtime's storage is full (no space left on device%s%s): free space under %s "
                               "(prune unused images and containers) or grow the filesystem, then retry.",
                               path ? " writing " : "", path ? buf : "", storage_root(runtime));
        }
        r = diagnose_text_octet(runtime, t, ret_text);
        if (r != DIAG_NONE)
                return r;
        if (has(t, "x509: ") || has(t, "certificate signed by unknown authority") ||
            has(t, "tls: failed to verify certificate") || has(t, "certificate is not valid for"))
                return diagnose_tls(runtime, NULL, NULL, strcasestr(t, "x509: ") ?: t, false, ret_text);
        if (has(t, "v1+prettyjws") || has(t, "schema 1 support") || has(t, "schema 1 has been removed") ||
            has(t, "schema 1 not supported") || has(t, "manifest version 2, schema 1"))
                return verdict(DIAG_SCHEMA1, ret_text,
                               "the image is a Docker schema 1 manifest, which current runtimes refuse: %s.",
                               schema1_remedy);
        if (word_after(t, "no matching manifest for ", " \t\n", buf, sizeof(buf)) && has(t, "manifest list entries"))
                return verdict(DIAG_NO_PLATFORM, ret_text,
                               "the image's manifest list has no %s entry: pull a platform it has, or build and "
                               "push a multi-platform image that includes %s.", buf, buf);
        if (has(t, "no match for platform in manifest") || has(t, "no manifest found for platform"))
                return verdict(DIAG_NO_PLATFORM, ret_text,
                               "the image's index has no entry for this node's platform: pull a platform it "
                               "has, or build and push a multi-platform image that includes this one.");
        if (has(t, "expected HTTP 206 from byte range request"))
                return verdict(DIAG_RANGE_IGNORED, ret_text,
                               "a hop between this node and the registry (a mirror or proxy) answered a resumed "
                               "download's Range request with 200, so each retry restarts the layer from zero: "
                               "enable Range support on that hop or bypass it (pullwatch's range probe names it).");
        if (has(t, "toomanyrequests") || has(t, "429 too many requests") || has(t, "pull rate limit") ||
            has(t, "too many requests"))
                return verdict(DIAG_RATE_LIMITED, ret_text,
                               "the registry rate-limited the pull (429 Too Many Requests): authenticate to "
                               "raise the limit, pull through a mirror or cache, or spread pulls out (splay).");
        r = diagnose_text_auth(t, ret_text);
        if (r != DIAG_NONE)
                return r;
        r = diagnose_text_scheme(runtime, t, ret_text);
        if (r != DIAG_NONE)
                return r;
        if (has(t, "manifest unknown") || has(t, "name unknown") || has(t, "repository name not known") ||
            (has(t, "manifest for ") && has(t, " not found")) || (has(t, "repository ") && has(t, " not found")) ||
            (has(t, "failed to resolve reference") && has(t, "not found")))
                return verdict(DIAG_NOT_FOUND, ret_text,
                               "the registry has no such image (repository, tag or digest unknown): check the "
                               "image name and tag, and the registry it resolves to.");
        return nothing(ret_text);
}

bool diagnose_octet_applies(const char *v) {
        /* 1.4 stopped fetching configs of unknown type (#4756, "reference for unknown type"); 2.1.0's
         * unpacker takes the platform's config types (containerd #11744), and 2.1.x pulls such images. */
        return runtime_version_cmp(v, 1, 4, 0) < 0 ? v == NULL || runtime_version_cmp(v, 1, 4, 0) == -EINVAL :
                                                     runtime_version_cmp(v, 2, 1, 0) < 0;
}

int diagnose_tls(RuntimeKind runtime, const char *host, const char *ca_where, const char *detail, bool probe,
                 char **ret_text) {
        const RuntimeWording *w = words(runtime);
        _cleanup_free_ char *def = NULL;
        if (!ca_where) {
                if (asprintf(&def, "%s%s%s", w->ca_dir, host ?: "<host:port>", w->ca_file) < 0)
                        return -ENOMEM;
                ca_where = def;
        }
        size_t dl = detail ? strcspn(detail, "\n") : 0;
        return verdict(DIAG_TLS_UNTRUSTED, ret_text,
                       "%s%s%.*s%s: %s reads the CA for %s from %s; put the registry's CA there%s, or fix the "
                       "registry's certificate (name, chain, expiry).",
                       probe ? "registry probe unavailable: " : "the registry's TLS certificate is not trusted",
                       probe ? "" : " (", (int) MIN(dl, 300), detail ?: "", probe ? "" : ")",
                       w->process, host ?: "this registry", ca_where, w->ca_remedy);
}

int diagnose_manifest(RuntimeKind runtime, const char *version, const RegistryManifest *m, char **ret_text) {
        if (!m)
                return nothing(ret_text);
        if (m->platform_missing) {
                _cleanup_free_ char *have = NULL;
                size_t len = 0;
                for (char **p = m->platforms; p && *p; p++)
                        len += strlen(*p) + 2;
                if (len > 0 && (have = calloc(1, len))) {
                        for (char **p = m->platforms; *p; p++) {
                                if (p != m->platforms)
                                        strcat(have, ", ");
                                strcat(have, *p);
                        }
                } else if (len > 0)
                        return -ENOMEM;
                return verdict(DIAG_NO_PLATFORM, ret_text,
                               "the image's index has no %s entry (it has: %s): pull a platform it has, or build "
                               "and push a multi-platform image that includes %s.",
                               m->chosen_platform ?: "matching", have ?: "none",
                               m->chosen_platform ?: "this node's platform");
        }
        if (m->schema_version == 1 || streq_ptr(m->manifest_media_type, REGISTRY_MT_SCHEMA1_SIGNED) ||
            streq_ptr(m->manifest_media_type, REGISTRY_MT_SCHEMA1))
                return verdict(DIAG_SCHEMA1, ret_text,
                               "the image is a Docker schema 1 manifest (%s), which current runtimes refuse: %s.",
                               m->manifest_media_type ?: REGISTRY_MT_SCHEMA1_SIGNED, schema1_remedy);
        if (words(runtime)->octet_config_refused && streq_ptr(m->config_media_type, REGISTRY_MT_OCTET_STREAM) &&
            diagnose_octet_applies(version))
                return verdict(DIAG_OCTET_STREAM_CONFIG, ret_text,
                               "the image's config %s has mediaType application/octet-stream (built by docker "
                               "< 1.11), which containerd 1.4 to 2.0 cannot unpack (this is %s): %s.",
                               m->config_digest ?: "blob", version ? version : "containerd, version unknown",
                               words(runtime)->octet_remedy);
        return nothing(ret_text);
}

int diagnose_range_probe(const RegistryRangeProbe *p, char **ret_text) {
        if (!p || p->honoured || p->http_status != 200)
                return nothing(ret_text);
        bool redirected = p->via && p->host && !streq(p->via, p->host);
        /* a mirror is the runtime's choice, not the registry's: say which of the two answered */
        const char *what = p->via_mirror && !redirected ? "the mirror " : "";
        const char *through = p->via_mirror ? " (reached through the mirror " : " (reached through ";
        return verdict(DIAG_RANGE_IGNORED, ret_text,
                       "%s%s answered a Range request with HTTP 200%s%s%s, so an interrupted layer restarts from "
                       "zero on every retry: enable Range support on %s or bypass it%s.",
                       what, p->host ?: p->via ?: "a hop", redirected ? through : "",
                       redirected ? p->via : "", redirected ? ")" : "", p->host ?: "that hop",
                       p->via_mirror ? " (remove the mirror from the runtime's mirror list)" : "");
}

int diagnose_registry_error(int r, const ErrorDetail *e, char **ret_text) {
        int status = e ? e->http_status : 0;
        const char *code = e ? e->code : NULL;
        char retry[48] = "";

        if (status == 429 || r == -EBUSY || streq_ptr(code, "TOOMANYREQUESTS")) {
                if (e && e->retry_after > 0)
                        snprintf(retry, sizeof(retry), ", retry after %" PRIu64 "s", e->retry_after);
                return verdict(DIAG_RATE_LIMITED, ret_text,
                               "the registry rate-limited the request (HTTP 429%s%s%s): authenticate to raise the "
                               "limit, pull through a mirror or cache, or spread pulls out (splay).",
                               code ? " " : "", code ?: "", retry);
        }
        if (status == 401 || status == 403 || r == -EACCES || r == -EPERM || streq_ptr(code, "UNAUTHORIZED") ||
            streq_ptr(code, "DENIED")) {
                bool denied = status == 403 || r == -EPERM || streq_ptr(code, "DENIED");
                return verdict(DIAG_AUTH, ret_text,
                               "the registry %s (HTTP %d%s%s%s%s): %s.",
                               denied ? "denied access to the repository" : "requires authentication",
                               status ? status : denied ? 403 : 401, code ? " " : "", code ?: "",
                               e && e->realm ? ", realm " : "", e && e->realm ? e->realm : "",
                               denied ? "check that the repository exists and that the credentials in config.json "
                                        "(docker login) may pull it" :
                                        "log in (docker login) or put credentials for this registry in config.json");
        }
        if (status == 404 || r == -ENOENT || streq_ptr(code, "MANIFEST_UNKNOWN") || streq_ptr(code, "NAME_UNKNOWN"))
                return verdict(DIAG_NOT_FOUND, ret_text,
                               "the registry has no such image (HTTP %d%s%s): check the image name and tag, and "
                               "the registry it resolves to.", status ? status : 404, code ? " " : "", code ?: "");
        return nothing(ret_text);
}

AttemptFailure attempt_failure_from_text(const char *t) {
        if (!t || !*t)
                return ATTEMPT_NONE;
        if (has(t, "connection reset") || has(t, "broken pipe") || has(t, "ECONNRESET") ||
            has(t, "INTERNAL_ERROR; received from peer") || has(t, "stream error"))
                return ATTEMPT_RESET;
        if (has(t, "unexpected EOF") || has(t, ": EOF") || streq(t, "EOF") || has(t, "short read"))
                return ATTEMPT_EOF;
        if (has(t, "timeout") || has(t, "timed out") || has(t, "500 ") || has(t, "502 ") || has(t, "503 ") ||
            has(t, "504 ") || has(t, "expected HTTP 206") || has(t, "temporary"))
                return ATTEMPT_TRANSIENT;
        return ATTEMPT_OTHER;
}

static int cmp_usec(const void *a, const void *b) {
        usec_t x = *(const usec_t *) a, y = *(const usec_t *) b;
        return x < y ? -1 : x > y;
}

static bool is_cut(AttemptFailure f) {
        return f == ATTEMPT_RESET || f == ATTEMPT_EOF;
}

/* From the newest attempt backwards: the longest run of consecutive cuts that agree, its size (0 when
 * none), median and bounds. */
static size_t agreeing_cuts(const DiagAttempt *a, size_t n, usec_t *ret_median, usec_t *ret_lo, usec_t *ret_hi) {
        for (size_t end = n; end >= 2; end--) {
                usec_t lo = USEC_INFINITY, hi = 0;
                size_t start = end;

                while (start > 0 && is_cut(a[start - 1].failure)) {
                        usec_t e = a[start - 1].elapsed, nlo = MIN(lo, e), nhi = MAX(hi, e);
                        /* tolerance against the smaller time keeps the check symmetric */
                        usec_t tol = MAX(nlo / 100 * 15, 5 * USEC_PER_SEC);
                        if (nhi - nlo > tol)
                                break;
                        lo = nlo, hi = nhi;
                        start--;
                }
                size_t k = end - start;
                if (k < 2)
                        continue;
                usec_t sorted[k];
                for (size_t i = 0; i < k; i++)
                        sorted[i] = a[start + i].elapsed;
                qsort(sorted, k, sizeof(usec_t), cmp_usec);
                usec_t median = k % 2 ? sorted[k / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2;
                if (median < DIAG_MIDDLEBOX_MIN)
                        continue;
                *ret_median = median, *ret_lo = lo, *ret_hi = hi;
                return k;
        }
        return 0;
}

int diagnose_attempts(const DiagAttempt *a, size_t n, char **ret_text) {
        usec_t median, lo, hi;
        size_t k = agreeing_cuts(a, n, &median, &lo, &hi);

        if (k == 0)
                return nothing(ret_text);
        uint64_t secs = (median + USEC_PER_SEC / 2) / USEC_PER_SEC;
        return verdict(DIAG_MIDDLEBOX_TIMEOUT, ret_text,
                       "connections cut after ~%" PRIu64 "s on %zu consecutive attempts (%" PRIu64 "-%" PRIu64
                       "s): look for proxy_read_timeout or an LB idle timeout between this node and the "
                       "registry, raise it above the time a large layer needs, or bypass that hop.",
                       secs, k, (uint64_t) (lo / USEC_PER_SEC), (uint64_t) ((hi + USEC_PER_SEC - 1) / USEC_PER_SEC));
}

usec_t diagnose_attempts_cut(const DiagAttempt *a, size_t n) {
        usec_t median = 0, lo, hi;
        return agreeing_cuts(a, n, &median, &lo, &hi) > 0 ? median : 0;
}

int diagnose_unpassable_hop(usec_t cut, const char *hop, const char *layer, uint64_t size, uint64_t bytes_at_cut,
                            char **ret_text) {
        uint64_t secs = (cut + USEC_PER_SEC / 2) / USEC_PER_SEC;
        char need[160] = "";

        if (cut == 0)
                return nothing(ret_text);
        /* at the rate seen before the cut, how long the whole layer needs in one connection */
        if (layer && size > bytes_at_cut && bytes_at_cut > 0)
                snprintf(need, sizeof(need), " (layer %s needs ~%" PRIu64 "s for its %" PRIu64 " MB at the rate seen)",
                         layer, (uint64_t) ((double) size / (double) bytes_at_cut * (double) cut / USEC_PER_SEC + 0.5),
                         size / 1000000);
        return verdict(DIAG_MIDDLEBOX_TIMEOUT, ret_text,
                       "this pull cannot finish through %s: it cuts every connection after ~%" PRIu64 "s and answers "
                       "Range with HTTP 200, so each retry restarts the layer from zero and is cut again. Raise the "
                       "proxy/LB read or idle timeout on %s above the layer's transfer time%s, or bypass that hop; "
                       "retrying through it only burns time.",
                       hop ?: "a hop between this node and the registry", secs, hop ?: "that hop", need);
}

int diagnose_decompressor(RuntimeKind runtime, const char *comm, pid_t pid, bool spinning, usec_t quiet,
                          char **ret_text) {
        if (!comm || !*comm)
                return nothing(ret_text);
        /* containerd 2.0+ pipes gzip through igzip when it is installed, else unpigz: disabling only the
         * one that hung would switch to the other. dockerd's classic store runs only unpigz; with the
         * containerd image store, containerd's children decompress for dockerd. */
        bool igzip = strstr(comm, "igzip");
        bool pigz = strstr(comm, "pigz") || streq(comm, "docker-untar");
        const char *remedy = igzip ? words(runtime)->igzip_remedy :
                             !pigz ? "kill it to fail the layer (the pull retries), and report the helper's version" :
                                     words(runtime)->pigz_remedy;
        return verdict(DIAG_DECOMPRESSOR_HANG, ret_text,
                       "the decompressor %s (pid %d) has %s for %" PRIu64 "s while extracting: %s.",
                       comm, (int) pid, spinning ? "spun on the CPU without output" : "slept without output",
                       (uint64_t) (quiet / USEC_PER_SEC), remedy);
}

int diagnose_runtime_unverified(RuntimeKind runtime, const char *why, char **ret_text) {
        const RuntimeWording *w = words(runtime);
        return verdict(DIAG_RUNTIME_UNVERIFIED, ret_text,
                       "No process could be proven to be %s (%s): silent phases are judged by their size budgets "
                       "alone and no helper will be signalled. Set %s.pidfile to the runtime's pid file, or run "
                       "pullwatch in the host's pid namespace with access to /proc.",
                       w->process, why && *why ? why : "nothing found", w->config_section);
}

/* containerd's CRI plugin cancels its own pull when image_pull_progress_timeout passes with no new
 * bytes on an open request (internal/cri/server/images/image_pull.go: "cancel pulling image %s because
 * of no progress in %v" in its log). PullImage then fails with "failed to pull and unpack image
 * \"REF\": context canceled" (measured on 2.1.9, grpc-status 1 Canceled), or, when the cancel lands
 * during unpack, "... failed to extract layer (MEDIATYPE DIGEST) to overlayfs as \"extract-... \":
 * context canceled" (#13909: in 2.2's transfer service the progress reporter can miss a layer's
 * "complete" event, so its request stays open through a long unpack). The same text follows a
 * cancel by the CRI client; pullwatch is that client here and did not cancel, and its own evidence
 * said the pull was alive: the setting is what ended it. */
int diagnose_cri_cancel(const char *t, const char *alive, const char *progress_timeout, char **ret_text) {
        bool unpack;

        if (!t || !alive || !has(t, "context canceled") ||
            (!has(t, "failed to pull and unpack image") && !has(t, "failed to extract layer")))
                return DIAG_NONE;
        unpack = has(t, "failed to extract layer");
        return verdict(DIAG_CRI_PROGRESS_TIMEOUT, ret_text,
                       "containerd cancelled the pull itself%s: CRI's image_pull_progress_timeout%s%s%s saw no new "
                       "bytes, while pullwatch saw the pull alive (%s). Raise image_pull_progress_timeout (containerd "
                       "2.x: [plugins.\"io.containerd.cri.v1.images\"], 1.7: [plugins.\"io.containerd.grpc.v1.cri\"] "
                       "in /etc/containerd/config.toml, e.g. \"30m\") and leave stalls to pullwatch; not \"0s\" on "
                       "2.x, which hangs every pull (containerd #14158).%s",
                       unpack ? " during unpack" : "", progress_timeout ? " (" : "", progress_timeout ?: "",
                       progress_timeout ? ")" : "", alive,
                       unpack ? " During unpack this is containerd #13909 (2.2's transfer service loses a layer's "
                                "\"complete\" progress event): use_local_image_pull = true in the same section "
                                "avoids it."
                              : "");
}
