/* test_registry_live.c: the registry probe against real docker-registry processes this test starts
 * on free loopback ports (plain, htpasswd, token auth with tests/bed/tokenserver.py), plus a tiny
 * in-process server for the answers a real registry never gives (Range ignored, 429). Images are
 * pushed here with plain libcurl. Without docker-registry every test skips, loudly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/pull/diagnose.h"
#include "probes/registry/registry.h"
#include "probes/registry/registry_trust.h"

#define USER "puller"
#define PASS "s3cret-Pa55"
#define REFRESH "refresh-t0ken"
#define SERVICE "pullwatch-test"

extern char **environ;

static char dir[] = "/tmp/pullwatch-registry-test.XXXXXX";
static pid_t pids[4];
static size_t n_pids;
static int plain_port, basic_port, token_port, tokensrv_port, fake_port, dead_port;
static bool have_registry, have_basic, have_token;
static char *d_layer, *d_config, *d_config_arm, *d_m1, *d_m3, *d_m4;
static int fake_fd = -1;
static pthread_t fake_thread;

static int free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static bool have_program(const char *name) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
        return system(cmd) == 0;
}

static pid_t spawn(char *const argv[], const char *log) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -1;
        pids[n_pids++] = pid;
        return pid;
}

/* ---- blocking libcurl helpers for pushing ---- */

typedef struct Resp {
        long status;
        char *body;
        size_t len;
        char location[2048];
} Resp;

static size_t resp_write(char *b, size_t s, size_t n, void *u) {
        Resp *r = u;
        r->body = realloc(r->body, r->len + s * n + 1);
        memcpy(r->body + r->len, b, s * n);
        r->len += s * n;
        r->body[r->len] = 0;
        return s * n;
}

static size_t resp_header(char *b, size_t s, size_t n, void *u) {
        Resp *r = u;
        if (n * s > 10 && strncasecmp(b, "Location:", 9) == 0) {
                size_t l = strcspn(b + 10, "\r\n");
                if (l < sizeof(r->location)) {
                        memcpy(r->location, b + 10, l);
                        r->location[l] = 0;
                }
        }
        return s * n;
}

typedef struct Auth {
        const char *userpwd;
        const char *bearer;
} Auth;

static long http(const char *method, const char *url, const char *ctype, const void *body, size_t len,
                 const Auth *auth, Resp *out) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        char ct[256];

        *out = (Resp) {};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, resp_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, resp_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len);
        }
        if (ctype) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
                h = curl_slist_append(h, ct);
        }
        if (auth && auth->bearer) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
                curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, auth->bearer);
        } else if (auth && auth->userpwd) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERPWD, auth->userpwd);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return out->status;
}

static bool wait_http(int port) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/", port);
        for (int i = 0; i < 200; i++) {
                Resp r;
                long s = http("GET", url, NULL, NULL, 0, NULL, &r);
                free(r.body);
                if (s == 200 || s == 401)
                        return true;
                usleep(50 * 1000);
        }
        return false;
}

static char *push_blob(int port, const char *repo, const void *data, size_t len, const Auth *auth) {
        char url[512], put[4096];
        char *d = NULL;
        Resp r;

        assert_int_equal(registry_sha256_digest(data, len, &d), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/%s/blobs/uploads/", port, repo);
        assert_int_equal(http("POST", url, NULL, "", 0, auth, &r), 202);
        free(r.body);
        if (r.location[0] == '/')
                snprintf(put, sizeof(put), "http://127.0.0.1:%d%s%sdigest=%s", port, r.location,
                         strchr(r.location, '?') ? "&" : "?", d);
        else
                snprintf(put, sizeof(put), "%s%sdigest=%s", r.location, strchr(r.location, '?') ? "&" : "?", d);
        long s = http("PUT", put, "application/octet-stream", data, len, auth, &r);
        if (s != 201)
                fail_msg("blob PUT: %ld %s", s, r.body ?: "");
        free(r.body);
        return d;
}

static char *push_manifest(int port, const char *repo, const char *ref, const char *mt, const char *json,
                           const Auth *auth) {
        char url[512], *d = NULL;
        Resp r;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/%s/manifests/%s", port, repo, ref);
        long s = http("PUT", url, mt, json, strlen(json), auth, &r);
        if (s != 201)
                fail_msg("manifest PUT %s: %ld %s", ref, s, r.body ?: "");
        free(r.body);
        assert_int_equal(registry_sha256_digest(json, strlen(json), &d), 0);
        return d;
}

static char layer[16384];

/* v1 (schema 2), octet (old config type), oci + arm (OCI), multi (index of both), armonly. */
static void push_images(int port, const Auth *auth) {
        static const char cfg[] = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                                  "\"diff_ids\":[]},\"config\":{}}";
        static const char cfg_arm[] = "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\",\"rootfs\":"
                                      "{\"type\":\"layers\",\"diff_ids\":[]},\"config\":{}}";
        char m[2048];

        for (size_t i = 0; i < sizeof(layer); i++)
                layer[i] = (char) (i * 7 + 3);
        free(d_layer), free(d_config), free(d_config_arm);
        d_layer = push_blob(port, "test/app", layer, sizeof(layer), auth);
        d_config = push_blob(port, "test/app", cfg, strlen(cfg), auth);
        d_config_arm = push_blob(port, "test/app", cfg_arm, strlen(cfg_arm), auth);

#define MANIFEST(mt, cmt, cd, csize)                                                                           \
        snprintf(m, sizeof(m),                                                                                   \
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","    \
                 "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","  \
                 "\"digest\":\"%s\",\"size\":%zu}]}",                                                             \
                 mt, cmt, cd, (size_t) (csize), d_layer, sizeof(layer))

        MANIFEST(REGISTRY_MT_DOCKER_MANIFEST, REGISTRY_MT_DOCKER_CONFIG, d_config, strlen(cfg));
        free(d_m1);
        d_m1 = push_manifest(port, "test/app", "v1", REGISTRY_MT_DOCKER_MANIFEST, m, auth);
        MANIFEST(REGISTRY_MT_DOCKER_MANIFEST, REGISTRY_MT_OCTET_STREAM, d_config, strlen(cfg));
        free(push_manifest(port, "test/app", "octet", REGISTRY_MT_DOCKER_MANIFEST, m, auth));
        MANIFEST(REGISTRY_MT_OCI_MANIFEST, REGISTRY_MT_OCI_CONFIG, d_config, strlen(cfg));
        free(d_m3);
        d_m3 = push_manifest(port, "test/app", "oci", REGISTRY_MT_OCI_MANIFEST, m, auth);
        size_t m3_len = strlen(m);
        MANIFEST(REGISTRY_MT_OCI_MANIFEST, REGISTRY_MT_OCI_CONFIG, d_config_arm, strlen(cfg_arm));
        free(d_m4);
        d_m4 = push_manifest(port, "test/app", "arm", REGISTRY_MT_OCI_MANIFEST, m, auth);
        size_t m4_len = strlen(m);
#undef MANIFEST
        snprintf(m, sizeof(m),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}",
                 REGISTRY_MT_OCI_INDEX, REGISTRY_MT_OCI_MANIFEST, d_m3, m3_len, REGISTRY_MT_OCI_MANIFEST, d_m4, m4_len);
        free(push_manifest(port, "test/app", "multi", REGISTRY_MT_OCI_INDEX, m, auth));
        snprintf(m, sizeof(m),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}",
                 REGISTRY_MT_OCI_INDEX, REGISTRY_MT_OCI_MANIFEST, d_m4, m4_len);
        free(push_manifest(port, "test/app", "armonly", REGISTRY_MT_OCI_INDEX, m, auth));
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static int start_registry(const char *name, const char *auth_yaml) {
        char cfg[256], log[256], text[4096];
        int port = free_port();

        snprintf(cfg, sizeof(cfg), "%s/%s.yml", dir, name);
        snprintf(log, sizeof(log), "%s/%s.log", dir, name);
        snprintf(text, sizeof(text),
                 "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                 "storage:\n  filesystem:\n    rootdirectory: %s/%s-data\n  delete:\n    enabled: true\n"
                 "http:\n  addr: 127.0.0.1:%d\n  secret: pullwatch-test\n%s",
                 dir, name, port, auth_yaml);
        write_file(cfg, text);
        char *argv[] = { "docker-registry", "serve", cfg, NULL };
        if (spawn(argv, log) < 0 || !wait_http(port))
                fail_msg("%s registry did not come up; see %s", name, log);
        return port;
}

/* ---- an HTTP server that ignores Range and rate-limits, for the hops real registries are not ---- */

static void *fake_serve(void *arg) {
        for (;;) {
                int c = accept4(fake_fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return NULL;
                char req[8192];
                size_t n = 0;
                ssize_t k;
                while (n < sizeof(req) - 1 && (k = recv(c, req + n, sizeof(req) - 1 - n, 0)) > 0) {
                        n += k;
                        req[n] = 0;
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[n] = 0;
                char head[512];
                static char big[1 << 20];
                if (strstr(req, "/ratelimited/")) {
                        static const char body[] = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}";
                        snprintf(head, sizeof(head), "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                                 "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                 strlen(body), body);
                        (void) send(c, head, strlen(head), MSG_NOSIGNAL);
                } else if (strstr(req, "/blobs/")) {
                        /* a proxy that drops Range: the whole blob, 200 */
                        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 "Content-Length: %zu\r\nConnection: close\r\n\r\n", sizeof(big));
                        (void) send(c, head, strlen(head), MSG_NOSIGNAL);
                        (void) send(c, big, sizeof(big), MSG_NOSIGNAL);
                } else {
                        snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        (void) send(c, head, strlen(head), MSG_NOSIGNAL);
                }
                close(c);
        }
}

static void start_fake(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        fake_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(fake_fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fake_fd, 16), 0);
        assert_int_equal(getsockname(fake_fd, (struct sockaddr *) &a, &l), 0);
        fake_port = ntohs(a.sin_port);
        assert_int_equal(pthread_create(&fake_thread, NULL, fake_serve, NULL), 0);
}

static char *token_for_push(void) {
        char url[512], *tok = NULL;
        Resp r;
        Auth a = { .userpwd = USER ":" PASS };
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/token?service=" SERVICE "&scope=repository:test/app:pull,push",
                 tokensrv_port);
        assert_int_equal(http("GET", url, NULL, NULL, 0, &a, &r), 200);
        assert_int_equal(registry_parse_token(r.body, r.len, &tok), 0);
        free(r.body);
        return tok;
}

static int group_setup(void **state) {
        char path[256], yaml[2048];

        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        start_fake();
        dead_port = free_port();
        if (!have_program("docker-registry"))
                return 0; /* every registry test skips */
        assert_non_null(mkdtemp(dir));
        plain_port = start_registry("plain", "");
        push_images(plain_port, NULL);
        have_registry = true;

        /* htpasswd (bcrypt): from htpasswd(1) or Python's crypt */
        snprintf(path, sizeof(path), "%s/htpasswd", dir);
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 "(htpasswd -nbB -C 4 %s %s 2>/dev/null || python3 -W ignore -c 'import crypt,sys; "
                 "print(sys.argv[1]+\":\"+crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' %s %s) "
                 "> %s && grep -q '^%s:' %s", USER, PASS, USER, PASS, path, USER, path);
        if (system(cmd) == 0) {
                snprintf(yaml, sizeof(yaml), "auth:\n  htpasswd:\n    realm: pullwatch-basic\n    path: %s\n", path);
                basic_port = start_registry("basic", yaml);
                Auth a = { .userpwd = USER ":" PASS };
                push_images(basic_port, &a);
                have_basic = true;
        }

        /* token auth: a self-signed cert whose key signs the tokens */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 "
                 "-subj /CN=pullwatch-token >openssl.log 2>&1", dir);
        if (have_program("openssl") && have_program("python3") && system(cmd) == 0) {
                char key[256], cert[256], portfile[256], log[256];
                snprintf(key, sizeof(key), "%s/key.pem", dir);
                snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
                snprintf(portfile, sizeof(portfile), "%s/tokenserver.port", dir);
                snprintf(log, sizeof(log), "%s/tokenserver.log", dir);
                char *argv[] = { "python3", "tests/bed/tokenserver.py", "--key", key, "--cert", cert,
                                 "--issuer", "pullwatch-tokenserver", "--user", USER, "--password", PASS,
                                 "--refresh-token", REFRESH, "--port-file", portfile, NULL };
                assert_true(spawn(argv, log) > 0);
                for (int i = 0; i < 200 && !tokensrv_port; i++) {
                        FILE *f = fopen(portfile, "re");
                        if (f) {
                                if (fscanf(f, "%d", &tokensrv_port) != 1)
                                        tokensrv_port = 0;
                                fclose(f);
                        }
                        if (!tokensrv_port)
                                usleep(50 * 1000);
                }
                if (!tokensrv_port)
                        fail_msg("token server did not come up; see %s", log);
                snprintf(yaml, sizeof(yaml),
                         "auth:\n  token:\n    realm: http://127.0.0.1:%d/token\n    service: " SERVICE "\n"
                         "    issuer: pullwatch-tokenserver\n    rootcertbundle: %s\n", tokensrv_port, cert);
                token_port = start_registry("token", yaml);
                char *tok = token_for_push();
                Auth a = { .bearer = tok };
                push_images(token_port, &a);
                free(tok);
                have_token = true;
        }
        return 0;
}

static int group_teardown(void **state) {
        char cmd[512];
        for (size_t i = 0; i < n_pids; i++) {
                kill(pids[i], SIGTERM);
                waitpid(pids[i], NULL, 0);
        }
        if (fake_fd >= 0) {
                shutdown(fake_fd, SHUT_RDWR);
                close(fake_fd);
                pthread_join(fake_thread, NULL);
        }
        if (have_registry && !getenv("PULLWATCH_KEEP_TMP")) {
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                (void) system(cmd);
        }
        free(d_layer), free(d_config), free(d_config_arm), free(d_m1), free(d_m3), free(d_m4);
        curl_global_cleanup();
        return 0;
}

#define NEED(x)                                                                     \
        do {                                                                        \
                if (!(x)) {                                                         \
                        print_message("skip: %s unavailable\n", #x);                \
                        skip();                                                     \
                }                                                                   \
        } while (0)

typedef struct Tgt {
        char domain[64];
        RegistryTarget t;
} Tgt;

static RegistryTarget *tgt(Tgt *x, int port, const char *repo, const char *ref) {
        snprintf(x->domain, sizeof(x->domain), "127.0.0.1:%d", port);
        x->t = (RegistryTarget) { .domain = x->domain, .repository = repo, .reference = ref,
                                  .timeout = 10 * USEC_PER_SEC };
        return &x->t;
}

/* Whatever failed, the error text carries no secret. */
static void no_secret(const ErrorDetail *e) {
        char *s = error_detail_format(e);
        assert_non_null(s);
        assert_null(strstr(s, PASS));
        assert_null(strstr(s, REFRESH));
        free(s);
}

static void test_resolve_tag_and_digest(void **state) {
        RegistryManifest *m = NULL;
        ErrorDetail e = {};
        Tgt x;

        NEED(have_registry);
        assert_int_equal(registry_resolve_sync(tgt(&x, plain_port, "test/app", "v1"), 0, &m, &e), 0);
        assert_string_equal(m->digest, d_m1);
        assert_string_equal(m->media_type, REGISTRY_MT_DOCKER_MANIFEST);
        assert_false(m->is_index);
        assert_string_equal(m->manifest_digest, d_m1);
        assert_int_equal(m->schema_version, 2);
        assert_string_equal(m->config_media_type, REGISTRY_MT_DOCKER_CONFIG);
        assert_string_equal(m->config_digest, d_config);
        assert_int_equal(m->n_layers, 1);
        assert_string_equal(m->layers[0].digest, d_layer);
        assert_int_equal(m->layers[0].size, sizeof(layer));
        assert_string_equal(m->host, x.domain);
        registry_manifest_free(m);
        m = NULL;

        /* by digest: the body is checked against it */
        assert_int_equal(registry_resolve_sync(tgt(&x, plain_port, "test/app", d_m1), 0, &m, &e), 0);
        assert_string_equal(m->digest, d_m1);
        registry_manifest_free(m);
        m = NULL;

        assert_int_equal(registry_resolve_sync(tgt(&x, plain_port, "test/app", "nope"), 0, &m, &e), -ENOENT);
        assert_null(m);
        assert_int_equal(e.http_status, 404);
        assert_string_equal(e.code, "MANIFEST_UNKNOWN");
        assert_non_null(strstr(e.source, "/v2/test/app/manifests/nope"));
        assert_int_equal(diagnose_registry_error(-ENOENT, &e, NULL), DIAG_NOT_FOUND);
        error_detail_done(&e);

        assert_int_equal(registry_resolve_sync(tgt(&x, plain_port, "test/nothere", "v1"), 0, &m, &e), -ENOENT);
        /* registry 2.8 on a filesystem says MANIFEST_UNKNOWN for an unknown repository too */
        assert_true(streq(e.code, "NAME_UNKNOWN") || streq(e.code, "MANIFEST_UNKNOWN"));
        error_detail_done(&e);

        /* nobody listening */
        assert_int_equal(registry_resolve_sync(tgt(&x, dead_port, "test/app", "v1"), 0, &m, &e), -ECONNREFUSED);
        assert_int_equal(e.http_status, 0);
        assert_non_null(e.message);
        error_detail_done(&e);
}

static void test_octet_stream_before_pull(void **state) {
        RegistryManifest *m = NULL;
        char *t = NULL;
        Tgt x;

        NEED(have_registry);
        assert_int_equal(registry_resolve_sync(tgt(&x, plain_port, "test/app", "octet"), 0, &m, NULL), 0);
        assert_string_equal(m->config_media_type, REGISTRY_MT_OCTET_STREAM);
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, m, &t), DIAG_OCTET_STREAM_CONFIG);
        assert_non_null(strstr(t, d_config));
        free(t);
        assert_int_equal(diagnose_manifest(RUNTIME_DOCKER, NULL, m, NULL), DIAG_NONE);
        registry_manifest_free(m);
}

static void test_index_platforms(void **state) {
        RegistryManifest *m = NULL;
        char *t = NULL;
        Tgt x;

        NEED(have_registry);
        tgt(&x, plain_port, "test/app", "multi");
        x.t.platform = "linux/arm64";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, NULL), 0);
        assert_true(m->is_index);
        assert_string_equal(m->media_type, REGISTRY_MT_OCI_INDEX);
        assert_string_equal(m->manifest_digest, d_m4);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_OCI_MANIFEST);
        assert_string_equal(m->chosen_platform, "linux/arm64/v8");
        assert_string_equal(m->config_digest, d_config_arm);
        assert_int_equal(strv_length(m->platforms), 2);
        registry_manifest_free(m);

        x.t.platform = "linux/amd64";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, NULL), 0);
        assert_string_equal(m->manifest_digest, d_m3);
        assert_string_equal(m->config_digest, d_config);
        registry_manifest_free(m);

        tgt(&x, plain_port, "test/app", "armonly");
        x.t.platform = "linux/amd64";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, NULL), 0);
        assert_true(m->platform_missing);
        assert_null(m->manifest_digest);
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, m, &t), DIAG_NO_PLATFORM);
        assert_non_null(strstr(t, "no linux/amd64 entry (it has: linux/arm64/v8)"));
        free(t);
        registry_manifest_free(m);
}

static void test_range_honoured(void **state) {
        RegistryRangeProbe p = {};
        Tgt x;

        NEED(have_registry);
        /* registry 2.8 serves filesystem blobs with http.ServeContent: Range gives 206 */
        assert_int_equal(registry_probe_range_sync(tgt(&x, plain_port, "test/app", NULL), d_layer, 0, &p, NULL), 0);
        assert_int_equal(p.http_status, 206);
        assert_true(p.honoured);
        assert_string_equal(p.host, x.domain);
        assert_string_equal(p.via, x.domain);
        assert_int_equal(diagnose_range_probe(&p, NULL), DIAG_NONE);
        registry_range_probe_done(&p);
}

static void test_range_ignored(void **state) {
        RegistryRangeProbe p = {};
        char *t = NULL;
        Tgt x;

        NEED(fake_port > 0);
        assert_int_equal(registry_probe_range_sync(tgt(&x, fake_port, "test/app", NULL),
                                                   "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                                   0, &p, NULL), 0);
        assert_int_equal(p.http_status, 200);
        assert_false(p.honoured);
        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_RANGE_IGNORED);
        assert_non_null(strstr(t, x.domain));
        free(t);
        registry_range_probe_done(&p);
}

static void test_rate_limited(void **state) {
        RegistryManifest *m = NULL;
        ErrorDetail e = {};
        char *t = NULL;
        Tgt x;

        NEED(fake_port > 0);
        assert_int_equal(registry_resolve_sync(tgt(&x, fake_port, "ratelimited/app", "v1"), 0, &m, &e), -EBUSY);
        assert_int_equal(e.http_status, 429);
        assert_string_equal(e.code, "TOOMANYREQUESTS");
        assert_int_equal(e.retry_after, 7);
        assert_int_equal(diagnose_registry_error(-EBUSY, &e, &t), DIAG_RATE_LIMITED);
        assert_non_null(strstr(t, "retry after 7s"));
        free(t);
        error_detail_done(&e);
}

/* A hop that answered (429 from a hosts.toml mirror) stays the error when the next hop only fails on
 * the wire (the server refuses connections): containerd's resolver reports the first such answer, and
 * the https-then-http fallback of a loopback registry on TLS meets the same case. */
static void test_answer_outlives_later_hop(void **state) {
        char hdir[] = "/tmp/pw-regtest.XXXXXX", path[512], domain[64];
        RuntimeRegistry rt = { .kind = RUNTIME_CONTAINERD, .hop_style = REGISTRY_HOPS_HOSTS_TOML, .certs_dir = hdir,
                               .from_runtime = true };
        RegistryManifest *m = NULL;
        ErrorDetail e = {};
        FILE *f;

        NEED(fake_port > 0);
        assert_non_null(mkdtemp(hdir));
        snprintf(domain, sizeof(domain), "127.0.0.1:%d", dead_port);
        snprintf(path, sizeof(path), "%s/%s", hdir, domain);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%s/hosts.toml", hdir, domain);
        assert_non_null(f = fopen(path, "w"));
        fprintf(f, "server = \"http://%s\"\n\n[host.\"http://127.0.0.1:%d\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                domain, fake_port);
        fclose(f);
        RegistryTarget t = { .domain = domain, .repository = "ratelimited/app", .reference = "v1", .runtime = &rt,
                             .timeout = 10 * USEC_PER_SEC };
        assert_int_equal(registry_resolve_sync(&t, 0, &m, &e), -EBUSY);
        assert_int_equal(e.http_status, 429);
        assert_int_equal(e.retry_after, 7);
        error_detail_done(&e);
        unlink(path);
        snprintf(path, sizeof(path), "%s/%s", hdir, domain);
        rmdir(path);
        rmdir(hdir);
}

static void test_mirrors(void **state) {
        char m1[64], m2[64];
        char *mirrors[] = { m1, m2, NULL };
        RegistryConfig c = { .mirrors = mirrors };
        RegistryManifest *m = NULL;
        RegistryRangeProbe p = {};
        RegistryTarget t = { .domain = "docker.io", .repository = "test/app", .reference = "v1", .config = &c,
                             .timeout = 10 * USEC_PER_SEC };

        NEED(have_registry);
        /* the first mirror is down, the second is our registry: Docker Hub itself is never asked */
        snprintf(m1, sizeof(m1), "http://127.0.0.1:%d", dead_port);
        snprintf(m2, sizeof(m2), "127.0.0.1:%d/", plain_port);
        assert_int_equal(registry_resolve_sync(&t, 0, &m, NULL), 0);
        assert_string_equal(m->digest, d_m1);
        snprintf(m1, sizeof(m1), "127.0.0.1:%d", plain_port);
        assert_string_equal(m->host, m1);
        registry_manifest_free(m);
        assert_int_equal(registry_probe_range_sync(&t, d_layer, 0, &p, NULL), 0);
        assert_string_equal(p.via, m1);
        assert_true(p.honoured);
        registry_range_probe_done(&p);
}

typedef struct Pending {
        int left;
        sd_event *event;
        int r_tag, r_multi, r_range;
        char *digest;
        bool honoured;
} Pending;

static void async_tag_done(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *u) {
        Pending *p = u;
        p->r_tag = r;
        if (m)
                p->digest = strdup(m->digest);
        registry_manifest_free(m);
        registry_op_free(op); /* freeing from the callback is allowed */
        if (--p->left == 0)
                sd_event_exit(p->event, 0);
}

static void async_multi_done(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *u) {
        Pending *p = u;
        p->r_multi = r;
        registry_manifest_free(m);
        registry_op_free(op);
        if (--p->left == 0)
                sd_event_exit(p->event, 0);
}

static void async_range_done(RegistryOp *op, int r, RegistryRangeProbe *probe, const ErrorDetail *e, void *u) {
        Pending *p = u;
        p->r_range = r;
        p->honoured = probe && probe->honoured;
        registry_op_free(op);
        if (--p->left == 0)
                sd_event_exit(p->event, 0);
}

static void never_called(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *u) {
        fail_msg("callback after registry_op_free");
}

static void test_async_parallel(void **state) {
        sd_event *event = NULL;
        CurlGlue *g = NULL;
        RegistryOp *a = NULL, *b = NULL, *c = NULL, *cancelled = NULL;
        Pending p = { .left = 3 };
        Tgt x, y;

        NEED(have_registry);
        assert_int_equal(sd_event_new(&event), 0);
        p.event = event;
        assert_int_equal(curl_glue_new(event, &g), 0);
        assert_int_equal(registry_resolve(g, tgt(&x, plain_port, "test/app", "v1"), async_tag_done, &p, &a), 0);
        tgt(&y, plain_port, "test/app", "multi");
        y.t.platform = "linux/arm64/v8";
        assert_int_equal(registry_resolve(g, &y.t, async_multi_done, &p, &b), 0);
        assert_int_equal(registry_probe_range(g, &x.t, d_layer, async_range_done, &p, &c), 0);
        assert_int_equal(registry_resolve(g, &x.t, never_called, NULL, &cancelled), 0);
        registry_op_free(cancelled);
        assert_int_equal(sd_event_loop(event), 0);
        assert_int_equal(p.r_tag, 0);
        assert_int_equal(p.r_multi, 0);
        assert_int_equal(p.r_range, 0);
        assert_true(p.honoured);
        assert_string_equal(p.digest, d_m1);
        free(p.digest);
        curl_glue_free(g);
        sd_event_unref(event);
        assert_int_equal(registry_resolve(NULL, &x.t, never_called, NULL, &a), -EINVAL);
        x.t.reference = "../../x";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &(RegistryManifest *) { NULL }, NULL), -EINVAL);
}

static void test_basic_auth(void **state) {
        RegistryManifest *m = NULL;
        ErrorDetail e = {};
        RegistryRangeProbe p = {};
        Tgt x;

        NEED(have_basic);
        assert_int_equal(registry_resolve_sync(tgt(&x, basic_port, "test/app", "v1"), 0, &m, &e), -EACCES);
        assert_int_equal(e.http_status, 401);
        assert_string_equal(e.realm, "pullwatch-basic");
        assert_int_equal(diagnose_registry_error(-EACCES, &e, NULL), DIAG_AUTH);
        error_detail_done(&e);

        x.t.username = USER;
        x.t.password = "wrong-" PASS;
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), -EACCES);
        no_secret(&e);
        error_detail_done(&e);

        x.t.password = PASS;
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), 0);
        assert_string_equal(m->digest, d_m1);
        registry_manifest_free(m);
        assert_int_equal(registry_probe_range_sync(&x.t, d_layer, 0, &p, NULL), 0);
        assert_true(p.honoured);
        registry_range_probe_done(&p);
}

static void test_token_auth(void **state) {
        RegistryManifest *m = NULL;
        ErrorDetail e = {};
        char realm[128], *t = NULL;
        Tgt x;

        NEED(have_token);
        snprintf(realm, sizeof(realm), "http://127.0.0.1:%d/token", tokensrv_port);

        /* anonymous: a token that grants nothing, then 401 from the registry, with the realm named */
        assert_int_equal(registry_resolve_sync(tgt(&x, token_port, "test/app", "v1"), 0, &m, &e), -EACCES);
        assert_int_equal(e.http_status, 401);
        assert_string_equal(e.code, "UNAUTHORIZED");
        assert_string_equal(e.realm, realm);
        assert_int_equal(diagnose_registry_error(-EACCES, &e, &t), DIAG_AUTH);
        assert_non_null(strstr(t, realm));
        free(t);
        error_detail_done(&e);

        /* wrong password: the token server refuses */
        x.t.username = USER;
        x.t.password = "wrong-" PASS;
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), -EACCES);
        assert_int_equal(e.http_status, 401);
        assert_string_equal(e.realm, realm);
        no_secret(&e);
        error_detail_done(&e);

        /* credentials from config.json: basic auth to the realm, bearer to the registry */
        x.t.password = PASS;
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), 0);
        assert_string_equal(m->digest, d_m1);
        registry_manifest_free(m);
        x.t.reference = "multi";
        x.t.platform = "linux/arm64";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), 0);
        assert_string_equal(m->manifest_digest, d_m4);
        registry_manifest_free(m);

        /* an identity token (docker login's refresh token): the OAuth2 POST, answered with access_token */
        x.t.username = NULL;
        x.t.password = NULL;
        x.t.identity_token = REFRESH;
        x.t.reference = "v1";
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), 0);
        assert_string_equal(m->digest, d_m1);
        registry_manifest_free(m);
        x.t.identity_token = "stale-" REFRESH;
        assert_int_equal(registry_resolve_sync(&x.t, 0, &m, &e), -EACCES);
        no_secret(&e);
        error_detail_done(&e);

        RegistryRangeProbe p = {};
        x.t.identity_token = NULL;
        x.t.username = USER;
        x.t.password = PASS;
        assert_int_equal(registry_probe_range_sync(&x.t, d_layer, 0, &p, NULL), 0);
        assert_true(p.honoured);
        registry_range_probe_done(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_resolve_tag_and_digest),
                cmocka_unit_test(test_octet_stream_before_pull),
                cmocka_unit_test(test_index_platforms),
                cmocka_unit_test(test_range_honoured),
                cmocka_unit_test(test_range_ignored),
                cmocka_unit_test(test_rate_limited),
                cmocka_unit_test(test_answer_outlives_later_hop),
                cmocka_unit_test(test_mirrors),
                cmocka_unit_test(test_async_parallel),
                cmocka_unit_test(test_basic_auth),
                cmocka_unit_test(test_token_auth),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
