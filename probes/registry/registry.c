/* registry.c: the registry probe's walk. One RegistryOp walks the hops (mirrors, then the registry),
 * answers auth challenges, follows an index to the platform's manifest, or probes a blob's Range
 * support; registry_request.c sends each request. */
#include "probes/registry/registry_op.h"

#include <time.h>

RegistryOp *registry_op_free(RegistryOp *op) {
        if (!op)
                return NULL;
        if (op->easy) {
                curl_glue_remove(op->glue, op->easy);
                curl_easy_cleanup(op->easy);
        }
        if (op->headers)
                curl_slist_free_all(op->headers);
        registry_op_response_reset(op);
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

static void op_finish(RegistryOp *op, int r) {
        if (op->kind == OP_RESOLVE) {
                RegistryManifest *m = r >= 0 ? TAKE_PTR(op->m) : NULL;
                op->manifest_done(op, r, m, r < 0 ? &op->error : NULL, op->userdata);
        } else if (op->kind == OP_RANGE)
                op->range_done(op, r, r >= 0 ? &op->probe : NULL, r < 0 ? &op->error : NULL, op->userdata);
        else
                op->ping_done(op, r, r < 0 ? &op->error : NULL, op->userdata);
        /* op may be gone now */
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

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
                int k = registry_op_issue(op, op->kind == OP_RESOLVE ? STEP_MANIFEST :
                                              op->kind == OP_RANGE ? STEP_BLOB : STEP_PING, NULL);
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
                return registry_op_issue(op, op->step, NULL);
        }
        op->resume_step = op->step;
        r = registry_op_issue(op, STEP_TOKEN, &c);
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
        return registry_op_issue(op, STEP_CHILD, NULL);
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
        if (registry_op_note_try(op, easy, result, status) < 0) {
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
        if (op->step == STEP_PING)
                r = 1; /* the hop answered: whatever it said (401 is a registry asking for a token) */
        else if (op->step == STEP_TOKEN) {
                _cleanup_free_ char *token = NULL;
                if (status != 200 || registry_parse_token(op->buf, op->len, &token) < 0) {
                        r = op_error(op, status == 200 ? -EBADMSG : errno_from_status(status), (int) status,
                                     status == 200 ? "token server sent no token" : "token request refused");
                        goto fail;
                }
                free(op->token);
                op->token = TAKE_PTR(token);
                op->auth = AUTH_BEARER;
                r = registry_op_issue(op, op->resume_step, NULL);
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

        if (!g || !t || !t->domain || (kind != OP_PING && !t->repository) || (kind == OP_RESOLVE && !t->reference) ||
            (t->repository && strpbrk(t->repository, "?#% ")) || (t->reference && strpbrk(t->reference, "/?#% ")))
                return -EINVAL;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->glue = g;
        op->on_done = on_done;
        op->kind = kind;
        op->timeout = t->timeout ?: 30 * USEC_PER_SEC;
        op->first_hop_only = t->first_hop_only;
        if ((t->repository && !(op->repository = strdup(t->repository))) ||
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
        r = registry_op_issue(op, STEP_MANIFEST, NULL);
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
        r = registry_op_issue(op, STEP_BLOB, NULL);
        if (r < 0)
                return registry_op_free(op), r;
        *ret = op;
        return 0;
}

int registry_ping(CurlGlue *g, const RegistryTarget *t, registry_ping_done_t done, void *userdata, RegistryOp **ret) {
        RegistryOp *op = NULL;
        int r;

        if (!done || !ret)
                return -EINVAL;
        r = op_new(g, t, OP_PING, &op);
        if (r < 0)
                return r;
        op->ping_done = done;
        op->userdata = userdata;
        r = registry_op_issue(op, STEP_PING, NULL);
        if (r < 0)
                return registry_op_free(op), r;
        *ret = op;
        return 0;
}
