/* registry.c: the registry probe's HTTP half. One RegistryOp walks the hops (mirrors, then the
 * registry), answers auth challenges, follows an index to the platform's manifest, or probes a
 * blob's Range support. Credentials live only in curl options, never in headers or messages. */
#include "probes/registry/registry.h"

#include <stddef.h>
#include <time.h>

typedef enum OpKind { OP_RESOLVE, OP_RANGE } OpKind;
typedef enum Step { STEP_MANIFEST, STEP_CHILD, STEP_BLOB, STEP_TOKEN } Step;
typedef enum AuthMode { AUTH_NONE, AUTH_BASIC, AUTH_BEARER } AuthMode;

/* A range probe reads this much at most: enough for a 206 of one byte, and a 200 is cut here. */
#define RANGE_BODY_MAX 4096
#define ERROR_BODY_MAX (64U * 1024U)

static const char accept_manifests[] =
        "Accept: " REGISTRY_MT_DOCKER_MANIFEST ", " REGISTRY_MT_DOCKER_LIST ", " REGISTRY_MT_OCI_MANIFEST
        ", " REGISTRY_MT_OCI_INDEX ", " REGISTRY_MT_SCHEMA1_SIGNED ", " REGISTRY_MT_SCHEMA1;

struct RegistryOp {
        CurlGlue *glue;
        OpKind kind;
        char *repository, *reference, *platform, *blob;
        char *username, *password, *identity_token;
        usec_t timeout;
        bool first_hop_only;
        RegistryHosts *hosts;
        size_t base_idx;            /* the hop in use */

        Step step, resume_step;
        char *child_digest;
        AuthMode auth;
        char *token;
        bool auth_tried;
        char *realm;

        CURL *easy;
        struct curl_slist *headers;
        char *url;                  /* of the request in flight, query cut */
        char *buf;
        size_t len;
        bool overflow, stopped_reading;
        char *h_content_type, *h_digest, *h_www_auth, *h_retry_after, *h_content_range;
        char errbuf[CURL_ERROR_SIZE];

        RegistryManifest *m;
        RegistryRangeProbe probe;
        ErrorDetail error;
        ErrorDetail answered;       /* the first hop's error that came with an HTTP answer */
        int answered_r;
        RegistryHopTry *tries;      /* one per hop asked, the last one the hop in use */
        size_t n_tries;

        registry_manifest_done_t manifest_done;
        registry_range_done_t range_done;
        void *userdata;
};

static void response_reset(RegistryOp *op) {
        free(op->buf);
        op->buf = NULL;
        op->len = 0;
        op->overflow = op->stopped_reading = false;
        free(op->h_content_type);
        free(op->h_digest);
        free(op->h_www_auth);
        free(op->h_retry_after);
        free(op->h_content_range);
        op->h_content_type = op->h_digest = op->h_www_auth = op->h_retry_after = op->h_content_range = NULL;
        op->errbuf[0] = 0;
}

RegistryOp *registry_op_free(RegistryOp *op) {
        if (!op)
                return NULL;
        if (op->easy) {
                curl_glue_remove(op->glue, op->easy);
                curl_easy_cleanup(op->easy);
        }
        if (op->headers)
                curl_slist_free_all(op->headers);
        response_reset(op);
        free(op->url);
        free(op->repository);
        free(op->reference);
        free(op->platform);
        free(op->blob);
        free(op->username);
        free(op->password);
        free(op->identity_token);
        registry_hosts_free(op->hosts);
        free(op->child_digest);
        free(op->token);
        free(op->realm);
        registry_manifest_free(op->m);
        registry_range_probe_done(&op->probe);
        error_detail_done(&op->error);
        error_detail_done(&op->answered);
        free(op->tries);
        free(op);
        return NULL;
}

const RegistryHopTry *registry_op_tries(const RegistryOp *op, size_t *ret_n) {
        *ret_n = op ? op->n_tries : 0;
        return op ? op->tries : NULL;
}

/* The outcome of the hop in use, from its latest request: a later request of the same hop (token,
 * child manifest) replaces the entry. */
static int note_try(RegistryOp *op, CURL *easy, CURLcode result, long status) {
        const RegistryHop *hop = &op->hosts->hops[op->base_idx];
        curl_off_t connect = 0, total = 0;
        long os_errno = 0;
        RegistryHopTry *t;

        if (op->n_tries == 0 || op->tries[op->n_tries - 1].host != hop->host) {
                t = reallocarray(op->tries, op->n_tries + 1, sizeof(*op->tries));
                if (!t)
                        return -ENOMEM;
                op->tries = t;
                op->n_tries++;
        }
        t = &op->tries[op->n_tries - 1];
        (void) curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect);
        (void) curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total);
        /* curl's own message no longer says "refused" (7.88: "Couldn't connect to server") */
        (void) curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
        *t = (RegistryHopTry) {
                .host = hop->host,
                .mirror = hop->mirror,
                .http_status = (int) status,
                .elapsed = (usec_t) MAX(total, (curl_off_t) 0),
        };
        if (status > 0)
                t->outcome = REGISTRY_HOP_ANSWERED;
        else if (result == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
                t->outcome = REGISTRY_HOP_REFUSED;
        else if (result == CURLE_OPERATION_TIMEDOUT && connect > 0)
                t->outcome = REGISTRY_HOP_SILENT; /* the connection was taken, the answer never came */
        else
                t->outcome = REGISTRY_HOP_FAILED;
        return 0;
}

static size_t on_header(char *b, size_t size, size_t n, void *userdata) {
        RegistryOp *op = userdata;
        size_t len = size * n;
        static const struct {
                const char *name;
                size_t offset;
        } wanted[] = {
                { "content-type", offsetof(RegistryOp, h_content_type) },
                { "docker-content-digest", offsetof(RegistryOp, h_digest) },
                { "www-authenticate", offsetof(RegistryOp, h_www_auth) },
                { "retry-after", offsetof(RegistryOp, h_retry_after) },
                { "content-range", offsetof(RegistryOp, h_content_range) },
        };

        if (len >= 5 && strncmp(b, "HTTP/", 5) == 0) {
                /* each response of a redirect chain starts afresh */
                char *keep = TAKE_PTR(op->buf);
                response_reset(op);
                op->buf = keep;
                return len;
        }
        const char *colon = memchr(b, ':', len);
        if (!colon)
                return len;
        size_t nl = colon - b;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                if (strlen(wanted[i].name) != nl || strncasecmp(b, wanted[i].name, nl) != 0)
                        continue;
                const char *v = colon + 1, *end = b + len;
                while (v < end && (*v == ' ' || *v == '\t'))
                        v++;
                while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                        end--;
                char **slot = (char **) ((uint8_t *) op + wanted[i].offset);
                if (*slot) /* first one wins; WWW-Authenticate may repeat */
                        break;
                *slot = strndup(v, end - v);
                if (!*slot)
                        return 0;
                break;
        }
        return len;
}

static size_t on_write(char *b, size_t size, size_t n, void *userdata) {
        RegistryOp *op = userdata;
        size_t len = size * n;
        size_t max = op->step == STEP_BLOB ? RANGE_BODY_MAX :
                     op->step == STEP_TOKEN ? ERROR_BODY_MAX : REGISTRY_MANIFEST_MAX;

        if (op->len + len > max) {
                if (op->step == STEP_BLOB) {
                        op->stopped_reading = true; /* a whole blob is coming: we know enough */
                        return 0;
                }
                op->overflow = true;
                return 0;
        }
        char *nb = realloc(op->buf, op->len + len + 1);
        if (!nb)
                return 0;
        memcpy(nb + op->len, b, len);
        op->buf = nb;
        op->len += len;
        op->buf[op->len] = 0;
        return len;
}

static void op_finish(RegistryOp *op, int r) {
        if (op->kind == OP_RESOLVE) {
                RegistryManifest *m = r >= 0 ? TAKE_PTR(op->m) : NULL;
                op->manifest_done(op, r, m, r < 0 ? &op->error : NULL, op->userdata);
        } else
                op->range_done(op, r, r >= 0 ? &op->probe : NULL, r < 0 ? &op->error : NULL, op->userdata);
        /* op may be gone now */
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

static int token_url(RegistryOp *op, const RegistryChallenge *c, char **ret_url, char **ret_form) {
        _cleanup_free_ char *scope_default = NULL;
        const char *scope = c->scope;
        CURL *e = op->easy;

        if (!scope) {
                if (asprintf(&scope_default, "repository:%s:pull", op->repository) < 0)
                        return -ENOMEM;
                scope = scope_default;
        }
        _cleanup_free_ char *es = curl_easy_escape(e, scope, 0);
        _cleanup_free_ char *ev = c->service ? curl_easy_escape(e, c->service, 0) : NULL;
        if (!es || (c->service && !ev))
                return -ENOMEM;
        if (op->identity_token) {
                /* OAuth2 refresh-token grant, as docker does with an identity token */
                _cleanup_free_ char *et = curl_easy_escape(e, op->identity_token, 0);
                if (!et || asprintf(ret_form, "grant_type=refresh_token&client_id=pullwatch&service=%s&scope=%s"
                                    "&refresh_token=%s", ev ?: "", es, et) < 0)
                        return -ENOMEM;
                return (*ret_url = strdup(c->realm)) ? 0 : -ENOMEM;
        }
        *ret_form = NULL;
        const char *sep = strchr(c->realm, '?') ? "&" : "?";
        int k = ev ? asprintf(ret_url, "%s%sservice=%s&scope=%s", c->realm, sep, ev, es) :
                     asprintf(ret_url, "%s%sscope=%s", c->realm, sep, es);
        if (k < 0)
                return -ENOMEM;
        return 0;
}

static int op_issue(RegistryOp *op, Step step, const RegistryChallenge *challenge) {
        _cleanup_free_ char *url = NULL, *form = NULL;
        const RegistryHop *hop = &op->hosts->hops[op->base_idx];
        const char *base = hop->root;
        CURL *e = NULL;
        int r;

        response_reset(op);
        if (op->headers) {
                curl_slist_free_all(op->headers);
                op->headers = NULL;
        }
        r = curl_glue_make_easy(NULL, &e);
        if (r < 0)
                return r;
        op->easy = e;
        op->step = step;
        switch (step) {
        case STEP_MANIFEST:
        case STEP_CHILD:
                r = asprintf(&url, "%s/%s/manifests/%s", base, op->repository,
                             step == STEP_CHILD ? op->child_digest : op->reference) < 0 ? -ENOMEM : 0;
                if (r >= 0 && !(op->headers = curl_slist_append(NULL, accept_manifests)))
                        r = -ENOMEM;
                break;
        case STEP_BLOB:
                r = asprintf(&url, "%s/%s/blobs/%s", base, op->repository, op->blob) < 0 ? -ENOMEM : 0;
                if (r >= 0 && !(op->headers = curl_slist_append(NULL, "Range: bytes=1-1")))
                        r = -ENOMEM;
                break;
        case STEP_TOKEN:
                r = token_url(op, challenge, &url, &form);
                break;
        }
        if (r < 0)
                goto fail;
        free(op->url);
        if (registry_url_strip_query(url, &op->url) < 0)
                op->url = NULL;

        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) (op->timeout / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, op) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, op) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, op->errbuf) != CURLE_OK)
                goto setopt_fail;
        /* the runtime's trust for this hop: its CA (one bundle per hop), client pair, skip_verify */
        if (hop->skip_verify) {
                if (curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK)
                        goto setopt_fail;
        } else if (hop->ca_files) {
                /* added to the system's roots, as dockerd and containerd do */
                if (curl_easy_setopt(e, CURLOPT_CAINFO, hop->ca_files[0]) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs") != CURLE_OK)
                        goto setopt_fail;
        }
        if (hop->client_cert && step != STEP_TOKEN) {
                if (curl_easy_setopt(e, CURLOPT_SSLCERT, hop->client_cert) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_SSLKEY, hop->client_key ?: hop->client_cert) != CURLE_OK)
                        goto setopt_fail;
        }
        if (op->headers && curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers) != CURLE_OK)
                goto setopt_fail;
        /* curl drops these on redirects to other hosts (blob stores, CDNs): keep it that way */
        if (curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L) != CURLE_OK)
                goto setopt_fail;
        if (step == STEP_TOKEN) {
                if (form) {
                        if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form) != CURLE_OK)
                                goto setopt_fail;
                } else if (op->username && op->password) {
                        if (curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC) != CURLE_OK ||
                            curl_easy_setopt(e, CURLOPT_USERNAME, op->username) != CURLE_OK ||
                            curl_easy_setopt(e, CURLOPT_PASSWORD, op->password) != CURLE_OK)
                                goto setopt_fail;
                }
        } else if (op->auth == AUTH_BASIC) {
                if (curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_USERNAME, op->username) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_PASSWORD, op->password ?: "") != CURLE_OK)
                        goto setopt_fail;
        } else if (op->auth == AUTH_BEARER) {
                if (curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, op->token) != CURLE_OK)
                        goto setopt_fail;
        }
        r = curl_glue_add(op->glue, e, on_done, op);
        if (r < 0)
                goto fail;
        return 0;
setopt_fail:
        r = -EIO; /* an option this libcurl does not take: nothing to send */
fail:
        curl_easy_cleanup(e);
        op->easy = NULL;
        return r;
}

/* Fill op->error (replacing a previous hop's) from the response at hand. */
static int op_error(RegistryOp *op, int r, int status, const char *message) {
        error_detail_done(&op->error);
        op->error.http_status = status;
        if (op->url)
                op->error.source = strdup(op->url);
        if (op->realm && (status == 401 || status == 403 || op->step == STEP_TOKEN))
                op->error.realm = strdup(op->realm);
        if (status > 0 && op->buf)
                (void) registry_parse_error_body(op->buf, op->len, &op->error); /* not JSON: the status says it */
        if (!op->error.message && message)
                op->error.message = strdup(message);
        if (status == 429 || status == 503)
                op->error.retry_after = registry_parse_retry_after(op->h_retry_after, (uint64_t) time(NULL));
        return r;
}

static int errno_from_status(int status) {
        switch (status) {
        case 401: return -EACCES;
        case 403: return -EPERM;
        case 404: return -ENOENT;
        case 429: return -EBUSY;
        default:  return -EIO;
        }
}

static int errno_from_curl(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:       return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:    return -ETIMEDOUT;
        case CURLE_TOO_MANY_REDIRECTS:    return -ELOOP;
        case CURLE_OUT_OF_MEMORY:         return -ENOMEM;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:    return -EKEYREJECTED;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:       return -EPROTO;
        default:                          return -EIO;
        }
}

/* The first hop from i on that may answer this op (hosts.toml capabilities), or n_hops. */
static size_t hop_usable(const RegistryOp *op, size_t i) {
        /* a tag needs "resolve"; blobs and digests need "pull" (containerd's resolver) */
        bool by_tag = op->kind == OP_RESOLVE && op->reference && !startswith(op->reference, "sha256:");
        for (; i < op->hosts->n_hops; i++)
                if (by_tag ? op->hosts->hops[i].resolve : op->hosts->hops[i].pull)
                        break;
        return i;
}

/* This hop failed: try the next one (a mirror falls back to the registry), or give up. A hop's HTTP
 * answer (429, 401...) stays the story when a later hop only fails to answer: containerd's resolver
 * keeps the first such error over later ones, and the http fallback of a loopback registry that
 * speaks TLS (moby's insecure-registry rule) can only fail on the wire. */
static void op_fail(RegistryOp *op, int r) {
        size_t next = op->first_hop_only ? op->hosts->n_hops : hop_usable(op, op->base_idx + 1);
        if (op->error.http_status > 0 && !op->answered.http_status && r != -ENOMEM) {
                if (error_detail_copy(&op->error, &op->answered) < 0)
                        r = -ENOMEM;
                op->answered_r = r;
        }
        if (next >= op->hosts->n_hops && r != -ENOMEM && !op->error.http_status && op->answered.http_status) {
                error_detail_move(&op->error, &op->answered);
                r = op->answered_r;
        }
        if (r != -ENOMEM && next < op->hosts->n_hops) {
                op->base_idx = next;
                op->m = registry_manifest_free(op->m);
                op->auth = AUTH_NONE;
                op->auth_tried = false;
                free(op->token);
                op->token = NULL;
                int k = op_issue(op, op->kind == OP_RESOLVE ? STEP_MANIFEST : STEP_BLOB, NULL);
                if (k >= 0)
                        return;
                r = op_error(op, k, 0, "cannot start request");
        }
        op_finish(op, r);
}

static int answer_challenge(RegistryOp *op) {
        RegistryChallenge c = {};
        int r;

        if (op->auth_tried || registry_parse_challenge(op->h_www_auth, &c) < 0)
                return -EACCES;
        op->auth_tried = true;
        free(op->realm);
        op->realm = c.realm ? strdup(c.realm) : NULL;
        if (c.scheme == REGISTRY_AUTH_BASIC) {
                registry_challenge_done(&c);
                if (!op->username)
                        return -EACCES; /* nothing to answer with */
                op->auth = AUTH_BASIC;
                return op_issue(op, op->step, NULL);
        }
        op->resume_step = op->step;
        r = op_issue(op, STEP_TOKEN, &c);
        registry_challenge_done(&c);
        return r;
}

static int manifest_received(RegistryOp *op, const char *base_host) {
        _cleanup_free_ char *computed = NULL, *child = NULL, *child_mt = NULL;
        int kind, r;

        if (op->overflow)
                return op_error(op, -EBADMSG, 200, "manifest larger than 4 MiB");
        r = registry_sha256_digest(op->buf ?: "", op->len, &computed);
        if (r < 0)
                return r;
        /* the body must be what the registry says it is, and what a digest reference names */
        if (op->h_digest && startswith(op->h_digest, "sha256:") && !streq(op->h_digest, computed))
                return op_error(op, -EBADMSG, 200, "Docker-Content-Digest does not match the manifest body");
        const char *expect = op->step == STEP_CHILD ? op->child_digest :
                             startswith(op->reference, "sha256:") ? op->reference : NULL;
        if (expect && !streq(expect, computed))
                return op_error(op, -EBADMSG, 200, "manifest body does not match the digest asked for");

        if (!op->m && !(op->m = calloc(1, sizeof(RegistryManifest))))
                return -ENOMEM;
        RegistryManifest *m = op->m;
        kind = registry_parse_manifest(op->buf, op->len, op->h_content_type, m);
        if (kind < 0)
                return op_error(op, kind, 200, kind == -EPROTONOSUPPORT ? "unsupported manifest media type" :
                                                                          "malformed manifest");
        if (op->step == STEP_CHILD) {
                if (kind == REGISTRY_OBJECT_INDEX)
                        return op_error(op, -EPROTONOSUPPORT, 200, "nested index");
                if (!(m->manifest_digest = strdup(op->child_digest)))
                        return -ENOMEM;
                return 1;
        }
        if (!(m->digest = strdup(op->h_digest && startswith(op->h_digest, "sha256:") ? op->h_digest : computed)) ||
            !(m->host = strdup(base_host)))
                return -ENOMEM;
        if (kind != REGISTRY_OBJECT_INDEX) {
                if (!(m->media_type = strdup(m->manifest_media_type)) || !(m->manifest_digest = strdup(m->digest)))
                        return -ENOMEM;
                return 1;
        }
        m->is_index = true;
        r = registry_parse_index(op->buf, op->len, op->platform, m, &child, &child_mt);
        if (r == -ENXIO) {
                m->platform_missing = true;
                return 1;
        }
        if (r < 0)
                return op_error(op, r, 200, "malformed index");
        free(op->child_digest);
        op->child_digest = TAKE_PTR(child);
        return op_issue(op, STEP_CHILD, NULL);
}

static int blob_received(RegistryOp *op, int status, const char *base_host, CURL *easy) {
        char *eff = NULL;
        long redirects = 0;

        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff);
        curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects);
        registry_range_probe_done(&op->probe);
        op->probe.http_status = status;
        op->probe.honoured = status == 206 && op->h_content_range;
        op->probe.redirects = (unsigned) redirects;
        if ((eff && (registry_url_strip_query(eff, &op->probe.url) < 0 ||
                     registry_url_host(eff, &op->probe.host) < 0)) ||
            !(op->probe.via = strdup(base_host)))
                return -ENOMEM;
        op->probe.via_mirror = op->hosts->hops[op->base_idx].mirror;
        return 1;
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        RegistryOp *op = userdata;
        _cleanup_free_ char *base_host = NULL;
        long status = 0;
        int r;

        op->easy = NULL;
        error_detail_done(&op->error); /* a previous hop's error is no longer the story */
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (note_try(op, easy, result, status) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && (op->stopped_reading || op->overflow))) {
                _cleanup_free_ char *m = NULL;
                const char *why = op->errbuf[0] ? op->errbuf : curl_easy_strerror(result);
                r = errno_from_curl(result);
                if ((r == -EKEYREJECTED || r == -EPROTO) && asprintf(&m, "TLS: %s", why) < 0)
                        m = NULL;
                r = op_error(op, r, 0, m ?: why);
                goto fail;
        }
        if (!(base_host = strdup(op->hosts->hops[op->base_idx].host))) {
                r = -ENOMEM;
                goto fail;
        }
        if (op->step == STEP_TOKEN) {
                _cleanup_free_ char *token = NULL;
                if (status != 200 || registry_parse_token(op->buf, op->len, &token) < 0) {
                        r = op_error(op, status == 200 ? -EBADMSG : errno_from_status(status), (int) status,
                                     status == 200 ? "token server sent no token" : "token request refused");
                        goto fail;
                }
                free(op->token);
                op->token = TAKE_PTR(token);
                op->auth = AUTH_BEARER;
                r = op_issue(op, op->resume_step, NULL);
        } else if (status == 401) {
                r = answer_challenge(op);
                if (r == -EACCES)
                        r = op_error(op, -EACCES, 401, op->auth_tried && (op->username || op->identity_token) ?
                                                               "credentials refused" : "authentication required");
        } else if (status < 200 || status >= 300) {
                r = op_error(op, errno_from_status((int) status), (int) status, "request failed");
        } else if (op->step == STEP_BLOB)
                r = blob_received(op, (int) status, base_host, easy);
        else
                r = manifest_received(op, base_host);
        curl_easy_cleanup(easy);
        easy = NULL;
        if (r == 0)
                return; /* next request in flight */
        if (r > 0) {
                op_finish(op, 0);
                return;
        }
fail:
        if (easy)
                curl_easy_cleanup(easy);
        if (!op->error.message && !op->error.http_status)
                op_error(op, r, 0, strerror(-r));
        op_fail(op, r);
}

static int op_new(CurlGlue *g, const RegistryTarget *t, OpKind kind, RegistryOp **ret) {
        RegistryOp *op;
        int r;

        if (!g || !t || !t->domain || !t->repository || (kind == OP_RESOLVE && !t->reference) ||
            strpbrk(t->repository, "?#% ") || (t->reference && strpbrk(t->reference, "/?#% ")))
                return -EINVAL;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->glue = g;
        op->kind = kind;
        op->timeout = t->timeout ?: 30 * USEC_PER_SEC;
        op->first_hop_only = t->first_hop_only;
        if (!(op->repository = strdup(t->repository)) ||
            (t->reference && !(op->reference = strdup(t->reference))) ||
            (t->platform && !(op->platform = strdup(t->platform))) ||
            (t->username && !(op->username = strdup(t->username))) ||
            (t->password && !(op->password = strdup(t->password))) ||
            (t->identity_token && !(op->identity_token = strdup(t->identity_token)))) {
                registry_op_free(op);
                return -ENOMEM;
        }
        r = registry_hosts_for(t->runtime, t->config, t->domain, &op->hosts);
        if (r >= 0 && (op->base_idx = hop_usable(op, 0)) == op->hosts->n_hops)
                r = -ENXIO; /* no hop may answer: containerd would fail the same way */
        if (r < 0) {
                registry_op_free(op);
                return r;
        }
        *ret = op;
        return 0;
}

int registry_resolve(CurlGlue *g, const RegistryTarget *t, registry_manifest_done_t done, void *userdata,
                     RegistryOp **ret) {
        RegistryOp *op = NULL;
        int r;

        if (!done || !ret)
                return -EINVAL;
        r = op_new(g, t, OP_RESOLVE, &op);
        if (r < 0)
                return r;
        op->manifest_done = done;
        op->userdata = userdata;
        r = op_issue(op, STEP_MANIFEST, NULL);
        if (r < 0)
                return registry_op_free(op), r;
        *ret = op;
        return 0;
}

int registry_probe_range(CurlGlue *g, const RegistryTarget *t, const char *blob_digest,
                         registry_range_done_t done, void *userdata, RegistryOp **ret) {
        RegistryOp *op = NULL;
        int r;

        if (!done || !ret || !blob_digest || !strchr(blob_digest, ':') || strpbrk(blob_digest, "/?#% "))
                return -EINVAL;
        r = op_new(g, t, OP_RANGE, &op);
        if (r < 0)
                return r;
        op->range_done = done;
        op->userdata = userdata;
        if (!(op->blob = strdup(blob_digest)))
                return registry_op_free(op), -ENOMEM;
        r = op_issue(op, STEP_BLOB, NULL);
        if (r < 0)
                return registry_op_free(op), r;
        *ret = op;
        return 0;
}
