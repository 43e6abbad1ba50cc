/* docker.c: the Docker Engine driver. Cancelling is closing the connection: dockerd then cancels the
 * pull's context unless another client waits on the same image. */
#include "probes/docker/docker.h"

#include <stdio.h>
#include "probes/containerd/containerd_lease.h"
#include "probes/docker/docker_ingest.h"
#include "probes/docker/docker_store.h"
#include "probes/docker/docker_stream.h"
#include "probes/runtime/runtime_op.h"

struct RuntimePull {
        CurlGlue *glue;
        CURL *easy;
        struct curl_slist *headers;
        DockerStream *stream;
        PullCallbacks cb;
        void *userdata;
        long http_status;
        char *error_body;         /* non-200 answers carry {"message": ...} */
        size_t error_len;
        char *error;              /* in-stream error */
        char *digest;
        bool finished;
        RuntimeOp *info_op;       /* /info, asked alongside the pull: which image store */
        char *containerd_socket;  /* the containerd this dockerd pulls through (containerd store) */
        DockerIngests *ingests;   /* ... and the partial downloads held there for the next attempt */
        char *docker_socket, *image;
        bool info_answered;
};

char *url_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0);
        char *r = e ? strdup(e) : NULL;
        curl_free(e);
        return r;
}

int docker_split_reference(const char *image, char **ret_from, char **ret_tag) {
        const char *slash = strrchr(image, '/');
        const char *name = slash ? slash + 1 : image;
        const char *at = strchr(name, '@');
        const char *colon = strchr(name, ':');
        _cleanup_free_ char *from = NULL, *tag = NULL;

        if (!*image || strchr(image, ' '))
                return -EINVAL;
        if (at) {
                from = strndup(image, (size_t) (at - image));
                tag = strdup(at + 1);
        } else if (colon) {
                from = strndup(image, (size_t) (colon - image));
                tag = strdup(colon + 1);
        } else {
                from = strdup(image);
                tag = strdup("latest");
        }
        if (!from || !tag)
                return -ENOMEM;
        if (!*from || !*tag)
                return -EINVAL;
        *ret_from = TAKE_PTR(from);
        *ret_tag = TAKE_PTR(tag);
        return 0;
}

static int on_message(json_t *msg, void *userdata) {
        RuntimePull *p = userdata;
        DockerMessage m;
        usec_t at = now_monotonic();

        if (docker_message_parse(msg, &m) < 0)
                return 0; /* an unknown but well-formed message is not worth failing a pull over */
        if (p->cb.activity)
                p->cb.activity(p->userdata, m.status ? m.status : m.error, at);
        switch (m.kind) {
        case DOCKER_MSG_LAYER:
                docker_ingests_layer(p->ingests, m.id);
                p->cb.layer(p->userdata, m.id, m.phase, m.current, m.total, at);
                break;
        case DOCKER_MSG_RETRY:
                if (p->cb.runtime_retry)
                        p->cb.runtime_retry(p->userdata, m.id, m.status, at);
                break;
        case DOCKER_MSG_IMAGE:
                if (m.digest) {
                        free(p->digest);
                        p->digest = strdup(m.digest);
                }
                break;
        case DOCKER_MSG_ERROR:
                if (!p->error)
                        p->error = strdup(m.error);
                break;
        default:
                break;
        }
        return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
        RuntimePull *p = userdata;
        size_t len = size * n;

        if (p->http_status == 0)
                curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &p->http_status);
        if (p->http_status != 200) {
                /* Error answers are one small JSON object; keep at most 64 KiB of it. */
                size_t keep = MIN(len, (size_t) 65536 - MIN(p->error_len, (size_t) 65536));
                char *b = realloc(p->error_body, p->error_len + keep + 1);
                if (!b)
                        return 0;
                memcpy(b + p->error_len, data, keep);
                p->error_len += keep;
                b[p->error_len] = 0;
                p->error_body = b;
                return len;
        }
        if (docker_stream_feed(p->stream, data, len) < 0)
                return 0; /* abort the transfer; finish reports the stream's error */
        return len;
}

static void finish(RuntimePull *p, ErrorClass error, const char *message) {
        PullOutcome o = { .error = error, .message = message, .digest = p->digest };
        if (p->finished)
                return;
        p->finished = true;
        /* keep the partial downloads only for a retry that may come */
        if (error != ERROR_TRANSIENT && !p->info_answered)
                /* over before /info answered: an earlier attempt's lease may be there all the same */
                (void) docker_abandon(p->glue, &(Config) { .docker_socket = p->docker_socket },
                                      &(PullRequest) { .image = p->image });
        p->ingests = docker_ingests_free(p->ingests, error != ERROR_TRANSIENT);
        p->cb.finished(p->userdata, &o);
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        RuntimePull *p = userdata;
        char buf[512];

        if (p->http_status == 0)
                curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &p->http_status);
        if (result == CURLE_OK && p->http_status == 200)
                (void) docker_stream_finish(p->stream);

        if (p->http_status != 0 && p->http_status != 200) {
                _cleanup_(json_decrefp) json_t *j = p->error_body ? json_loads(p->error_body, 0, NULL) : NULL;
                const char *m = json_string_value(json_object_get(j, "message"));
                snprintf(buf, sizeof(buf), "dockerd answered HTTP %ld: %s", p->http_status,
                         m ? m : "(no message)");
                finish(p, p->http_status >= 500 && !m ? ERROR_TRANSIENT : docker_classify_error(m ? m : buf), buf);
        } else if (docker_stream_error(p->stream)) {
                snprintf(buf, sizeof(buf), "%s", docker_stream_error(p->stream));
                finish(p, ERROR_TRANSIENT, buf);
        } else if (p->error)
                finish(p, docker_classify_error(p->error), p->error);
        else if (result != CURLE_OK) {
                snprintf(buf, sizeof(buf), "connection to dockerd lost: %s", curl_easy_strerror(result));
                finish(p, ERROR_TRANSIENT, buf);
        } else
                finish(p, ERROR_NONE, NULL);
}

/* /info's answer as "containerd-socket\nnamespace" when dockerd is on the containerd image store (1),
 * or 0. */
static int info_parse(const char *arg, int r, long status, const char *body, char **ret_text) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        DockerStore s = {};

        if (r < 0 || status != 200 || !(j = json_loads(body, 0, NULL)))
                return r < 0 ? r : -EIO;
        r = docker_store_from_info(j, &s);
        if (r < 0)
                return r;
        r = s.containerd && s.containerd_address && s.containerd_namespace;
        if (r && asprintf(ret_text, "%s\n%s", s.containerd_address, s.containerd_namespace) < 0)
                r = -ENOMEM;
        docker_store_done(&s);
        return r;
}

static void on_info(RuntimeOp *op, int r, const char *text, void *userdata) {
        RuntimePull *p = userdata;
        const char *nl = text ? strchr(text, '\n') : NULL;

        p->info_op = NULL; /* freed by its owner, the glue, after this returns */
        p->info_answered = r >= 0;
        if (r <= 0 || !nl || p->finished)
                return;
        free(p->containerd_socket);
        p->containerd_socket = strndup(text, (size_t) (nl - text));
        if (!p->containerd_socket)
                return;
        (void) docker_ingests_start(p->ingests, p->containerd_socket, nl + 1);
        if (p->cb.helper_runtime)
                p->cb.helper_runtime(p->userdata,
                                     &(RuntimeProcess) { .socket = p->containerd_socket,
                                                         .exe_names = runtime_exe_names_containerd,
                                                         .inprocess_extract = true },
                                     "containerd");
}

int docker_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
                        void *userdata, RuntimePull **ret) {
        _cleanup_free_ char *from = NULL, *tag = NULL, *efrom = NULL, *etag = NULL, *eplat = NULL, *url = NULL;
        RuntimePull *p;
        int r;

        r = docker_split_reference(req->image, &from, &tag);
        if (r < 0)
                return r;
        efrom = url_escape(from);
        etag = url_escape(tag);
        if (req->platform)
                eplat = url_escape(req->platform);
        if (!efrom || !etag || (req->platform && !eplat))
                return -ENOMEM;
        if (asprintf(&url, "http://localhost/images/create?fromImage=%s&tag=%s%s%s", efrom, etag,
                     eplat ? "&platform=" : "", eplat ? eplat : "") < 0)
                return -ENOMEM;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->glue = glue;
        p->cb = *cb;
        p->userdata = userdata;
        p->docker_socket = strdup(config->docker_socket);
        p->image = strdup(req->image);
        r = p->docker_socket && p->image ? docker_stream_new(on_message, p, &p->stream) : -ENOMEM;
        if (r >= 0)
                r = docker_ingests_new(glue, req->image, &p->ingests);
        if (r >= 0)
                r = curl_glue_make_easy(config->docker_socket, &p->easy);
        if (r < 0) {
                docker_free(p);
                return r;
        }
        if (req->auth_header) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "X-Registry-Auth: %s", req->auth_header) < 0) {
                        docker_free(p);
                        return -ENOMEM;
                }
                p->headers = curl_slist_append(p->headers, h);
                explicit_bzero(h, strlen(h));
        }
        if (curl_easy_setopt(p->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, "") != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE, 0L) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p) != CURLE_OK)
                r = -EIO;
        else
                r = curl_glue_add(glue, p->easy, on_done, p);
        if (r < 0) {
                docker_free(p);
                return r;
        }
        /* On the containerd image store the layers are decompressed by containerd's children: say
         * which containerd, so liveness watches it too, and hold the partial downloads there. Asked
         * alongside the pull, never before it. */
        (void) runtime_op_http_shared(glue, config->docker_socket, "/info", RUNTIME_OP_SETTINGS_TTL, info_parse, NULL, on_info,
                                      p, &p->info_op);
        *ret = p;
        return 0;
}

void docker_expect_layers(RuntimePull *p, const char *const *digests, size_t n) {
        for (size_t i = 0; p && i < n; i++)
                docker_ingests_expect(p->ingests, digests[i]);
}

void docker_cancel(RuntimePull *p) {
        if (!p || !p->easy)
                return;
        curl_glue_remove(p->glue, p->easy);
        curl_easy_cleanup(p->easy); /* closes the connection: dockerd cancels the pull */
        p->easy = NULL;
        p->finished = true;
        p->ingests = docker_ingests_free(p->ingests, false); /* the retry resumes them */
}

RuntimePull *docker_free(RuntimePull *p) {
        if (!p)
                return NULL;
        docker_cancel(p);
        p->info_op = runtime_op_free(p->info_op);
        docker_ingests_free(p->ingests, false);
        free(p->containerd_socket);
        free(p->docker_socket);
        free(p->image);
        curl_slist_free_all(p->headers);
        docker_stream_free(p->stream);
        free(p->error_body);
        free(p->error);
        free(p->digest);
        free(p);
        return NULL;
}

void docker_process(const Config *config, RuntimeProcess *ret) {
        *ret = (RuntimeProcess) { .socket = config->docker_socket, .pidfile = config->docker_pidfile,
                                  .exe_names = runtime_exe_names_docker };
}

static int json_answer(int r, long status, const char *body, json_t **ret) {
        if (r < 0)
                return r;
        if (status == 404)
                return -ENOENT;
        if (status != 200)
                return -EIO;
        *ret = json_loads(body, 0, NULL);
        return *ret ? 0 : -EBADMSG;
}

static char *ping_error(const char *socket, int r) {
        char *s = NULL;
        const char *why = r == -ENOENT        ? "no such socket"
                          : r == -ECONNREFUSED ? "connection refused"
                          : r == -EPROTO       ? "it answers, but is not the Docker Engine API"
                          : r == -ETIMEDOUT    ? "no answer within 10s"
                                               : strerror(-r);
        return asprintf(&s, "cannot reach dockerd at %s: %s", socket, why) < 0 ? NULL : s;
}

static int version_parse(json_t *j, char **ret_version, char **ret_api);
static int inspect_parse(json_t *j, const char *image, char **ret_id, char **ret_repo_digest);

static int confirm_parse(const char *image, int r, long status, const char *body, char **ret_text) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        if (r == -ENOENT)
                r = -ENXIO; /* no socket: that says nothing about the image */
        r = json_answer(r, status, body, &j);
        if (r >= 0)
                r = inspect_parse(j, image, NULL, ret_text);
        else if (r != -ENOENT && asprintf(ret_text, "dockerd did not say whether %s is present: %s", image,
                                          strerror(-r)) < 0)
                *ret_text = NULL;
        return r;
}

int docker_confirm(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
                          void *userdata, RuntimeOp **ret) {
        _cleanup_free_ char *e = url_escape(req->image), *path = NULL;
        if (!e || asprintf(&path, "/images/%s/json", e) < 0)
                return -ENOMEM;
        return runtime_op_http(glue, config->docker_socket, path, confirm_parse, req->image, done, userdata, ret);
}

static int ping_parse(const char *socket, int r, long status, const char *body, char **ret_text) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        if (r >= 0 && status != 200)
                r = -EPROTO; /* an HTTP server, but /version is not dockerd's (404 is not "no socket") */
        else
                r = json_answer(r, status, body, &j);
        if (r == -EBADMSG)
                r = -EPROTO;
        if (r >= 0)
                r = version_parse(j, NULL, NULL);
        if (r < 0)
                *ret_text = ping_error(socket, r);
        return r;
}

int docker_ping_async(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                             RuntimeOp **ret) {
        /* joins a /version in flight, never takes an older answer: a ping says whether dockerd answers now */
        return runtime_op_http_shared(glue, config->docker_socket, "/version", 0, ping_parse, config->docker_socket,
                                      done, userdata, ret);
}

int docker_ping(const Config *config, ErrorDetail *ret_error) {
        _cleanup_free_ char *version = NULL, *api = NULL, *why = NULL;
        int r = docker_version(config->docker_socket, &version, &api);
        if (r < 0 && ret_error && (why = ping_error(config->docker_socket, r)))
                (void) error_detail_setf(ret_error, r, "%s", why);
        return r;
}

static int abandon_parse(const char *image, int r, long status, const char *body, char **ret_text) {
        _cleanup_free_ char *where = NULL;
        r = info_parse(NULL, r, status, body, &where);
        if (r > 0 && asprintf(ret_text, "%s\n%s", where, image) < 0)
                r = -ENOMEM;
        return r;
}

static void on_abandon_info(RuntimeOp *op, int r, const char *text, void *userdata) {
        _cleanup_free_ char *socket = NULL, *ns = NULL;
        const char *a = text ? strchr(text, '\n') : NULL, *b = a ? strchr(a + 1, '\n') : NULL;

        if (r <= 0 || !b)
                return; /* the classic store keeps nothing of ours */
        socket = strndup(text, (size_t) (a - text));
        ns = strndup(a + 1, (size_t) (b - a - 1));
        if (socket && ns)
                (void) cd_lease_abandon(userdata, socket, ns, b + 1);
}

/* The job gave up: drop the lease holding its partial downloads in the containerd dockerd pulls
 * through (asked again: the pull that learned it may be gone). */
int docker_abandon(CurlGlue *glue, const Config *config, const PullRequest *req) {
        return runtime_op_http_shared(glue, config->docker_socket, "/info", RUNTIME_OP_SETTINGS_TTL, abandon_parse,
                                      req->image, on_abandon_info, glue, NULL);
}

static size_t collect(char *data, size_t size, size_t n, void *userdata) {
        char **buf = userdata;
        size_t len = size * n, old = *buf ? strlen(*buf) : 0;
        if (old + len > 4 * 1024 * 1024)
                return 0;
        char *b = realloc(*buf, old + len + 1);
        if (!b)
                return 0;
        memcpy(b + old, data, len);
        b[old + len] = 0;
        *buf = b;
        return len;
}

int http_unix_request(const char *socket, const char *method, const char *path, usec_t timeout,
                      long *ret_status, char **ret_body) {
        _cleanup_curl_easy_ CURL *c = NULL;
        _cleanup_free_ char *url = NULL, *body = NULL;
        CURLcode cr;
        int r;

        r = curl_glue_make_easy(socket, &c);
        if (r < 0)
                return r;
        if (asprintf(&url, "http://localhost%s", path) < 0)
                return -ENOMEM;
        if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) (timeout / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &body) != CURLE_OK)
                return -EIO;
        cr = curl_easy_perform(c);
        if (cr == CURLE_COULDNT_CONNECT) {
                if (access(socket, F_OK) < 0)
                        return -ENOENT;
                return -ECONNREFUSED;
        }
        if (cr == CURLE_OPERATION_TIMEDOUT)
                return -ETIMEDOUT;
        if (cr != CURLE_OK)
                return -EIO;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
        if (ret_body)
                *ret_body = body ? TAKE_PTR(body) : strdup("");
        return 0;
}

static int get_json(const char *socket, const char *path, json_t **ret) {
        _cleanup_free_ char *body = NULL;
        long status = 0;
        int r = http_unix_request(socket, "GET", path, 10 * USEC_PER_SEC, &status, &body);
        return json_answer(r, status, body, ret);
}

static int dup_field(json_t *j, const char *key, char **ret) {
        const char *s = json_string_value(json_object_get(j, key));
        if (!ret)
                return 0;
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

int docker_version(const char *socket, char **ret_version, char **ret_api) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = get_json(socket, "/version", &j);
        return r < 0 ? r : version_parse(j, ret_version, ret_api);
}

static int version_parse(json_t *j, char **ret_version, char **ret_api) {
        int r;
        if (!json_string_value(json_object_get(j, "ApiVersion")))
                return -EPROTO; /* something answers HTTP there, but not dockerd */
        r = dup_field(j, "Version", ret_version);
        return r < 0 ? r : dup_field(j, "ApiVersion", ret_api);
}

int docker_info(const char *socket, char **ret_root_dir, char **ret_driver) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = get_json(socket, "/info", &j);
        if (r < 0)
                return r;
        r = dup_field(j, "DockerRootDir", ret_root_dir);
        return r < 0 ? r : dup_field(j, "Driver", ret_driver);
}

int docker_store_query(const char *socket, DockerStore *ret) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = get_json(socket, "/info", &j);
        return r < 0 ? r : docker_store_from_info(j, ret);
}

/* GET /images/{name}/json's answer: the image id and the digest for this repository when present. */
static int inspect_parse(json_t *j, const char *image, char **ret_id, char **ret_repo_digest) {
        _cleanup_free_ char *from = NULL, *tag = NULL;
        json_t *v;
        size_t i;
        int r;

        r = dup_field(j, "Id", ret_id);
        if (r < 0 || !ret_repo_digest)
                return r;
        *ret_repo_digest = NULL;
        if (docker_split_reference(image, &from, &tag) < 0)
                return 0;
        /* RepoDigests hold "name@sha256:..."; the one for this repository is the pulled digest. */
        json_array_foreach(json_object_get(j, "RepoDigests"), i, v) {
                const char *s = json_string_value(v);
                const char *at = s ? strchr(s, '@') : NULL;
                if (at && (size_t) (at - s) == strlen(from) && strncmp(s, from, strlen(from)) == 0) {
                        *ret_repo_digest = strdup(at + 1);
                        break;
                }
        }
        return 0;
}
