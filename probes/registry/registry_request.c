/* registry_request.c: one request of a registry op on the wire: its URL, Accept and Range headers,
 * the runtime's trust for the hop, the credentials in curl options only (never in headers or
 * messages), the headers and body that come back, and what the hop did (connected, answered, silent). */
#include "probes/registry/registry_op.h"

#include <stddef.h>

/* A range probe reads this much at most: enough for a 206 of one byte, and a 200 is cut here. */
#define RANGE_BODY_MAX 4096
#define ERROR_BODY_MAX (64U * 1024U)

static const char accept_manifests[] =
        "Accept: " REGISTRY_MT_DOCKER_MANIFEST ", " REGISTRY_MT_DOCKER_LIST ", " REGISTRY_MT_OCI_MANIFEST
        ", " REGISTRY_MT_OCI_INDEX ", " REGISTRY_MT_SCHEMA1_SIGNED ", " REGISTRY_MT_SCHEMA1;

void registry_op_response_reset(RegistryOp *op) {
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

/* The outcome of the hop in use, from its latest request: a later request of the same hop (token,
 * child manifest) replaces the entry. */
int registry_op_note_try(RegistryOp *op, CURL *easy, CURLcode result, long status) {
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
                registry_op_response_reset(op);
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
                     op->step == STEP_TOKEN || op->step == STEP_PING ? ERROR_BODY_MAX : REGISTRY_MANIFEST_MAX;

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

int registry_op_issue(RegistryOp *op, Step step, const RegistryChallenge *challenge) {
        _cleanup_free_ char *url = NULL, *form = NULL;
        const RegistryHop *hop = &op->hosts->hops[op->base_idx];
        const char *base = hop->root;
        CURL *e = NULL;
        int r;

        registry_op_response_reset(op);
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
        case STEP_PING:
                r = asprintf(&url, "%s/", base) < 0 ? -ENOMEM : 0;
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
        r = curl_glue_add(op->glue, e, op->on_done, op);
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

