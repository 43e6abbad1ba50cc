/* test_registry_trust.c: the registry as each runtime sees it: hosts.toml (order, capabilities, ca,
 * client, skip_verify, override_path; errors with file, line and field), dockerd's certs.d and
 * insecure rules, the /info and CRI config parsers, version ordering and the octet-stream gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "daemon/pull/diagnose.h"
#include "probes/registry/registry_trust.h"
#include "probes/drivers/runtime_drivers.h"
#include "test_files.h"

/* hosts_toml_parse() on text; on failure *ret_error (when given) is the detail's text, and the detail
 * names the file and a line. */
static RegistryHosts *parse(const char *text, char **ret_error) {
        static const char *const path = "/etc/containerd/certs.d/reg:5000/hosts.toml";
        RegistryHosts *h = calloc(1, sizeof(*h));
        ErrorDetail e = {};

        assert_non_null(h);
        if (hosts_toml_parse(path, text, h, "https://reg:5000", ret_error ? &e : NULL) < 0) {
                registry_hosts_free(h);
                if (ret_error) {
                        assert_string_equal(e.source, path);
                        assert_true(e.line > 0);
                        *ret_error = error_detail_format(&e);
                }
                error_detail_done(&e);
                return NULL;
        }
        assert_null(e.message);
        return h;
}

static void test_hosts_toml(void **state) {
        _cleanup_free_ char *err = NULL;
        RegistryHosts *h = parse("# mirrors first, in file order\n"
                                 "server = \"https://reg:5000\"\n"
                                 "ca = \"/pki/root.pem\"\n\n"
                                 "[host.\"http://cache:5001\"]\n"
                                 "  capabilities = [\"pull\", \"resolve\"]  # the cache\n"
                                 "  skip_verify = true\n"
                                 "[host.\"https://mirror.example/v2/proxy\"]\n"
                                 "  capabilities = [\n    \"pull\",\n  ]\n"
                                 "  override_path = true\n"
                                 "  ca = [\"mirror-ca.crt\"]\n"
                                 "  client = [[\"/pki/c.cert\", \"/pki/c.key\"]]\n"
                                 "  [host.\"https://mirror.example/v2/proxy\".header]\n"
                                 "    x-custom = [\"a\"]\n",
                                 &err);
        assert_non_null(h);
        assert_int_equal(h->n_hops, 3);
        assert_string_equal(h->hops[0].root, "http://cache:5001/v2");
        assert_true(h->hops[0].resolve && h->hops[0].pull && h->hops[0].skip_verify);
        assert_string_equal(h->hops[1].root, "https://mirror.example/v2/proxy");
        assert_true(h->hops[1].pull && !h->hops[1].resolve);
        assert_string_equal(h->hops[1].ca_files[0], "/etc/containerd/certs.d/reg:5000/mirror-ca.crt");
        assert_string_equal(h->hops[1].client_cert, "/pki/c.cert");
        assert_string_equal(h->hops[1].client_key, "/pki/c.key");
        assert_string_equal(h->hops[2].root, "https://reg:5000/v2");
        assert_string_equal(h->hops[2].ca_files[0], "/pki/root.pem");
        assert_true(h->hops[2].resolve && h->hops[2].pull);
        registry_hosts_free(h);

        /* no server: the default host closes the list */
        h = parse("[host.\"https://m:1\"]\n", NULL);
        assert_int_equal(h->n_hops, 2);
        assert_string_equal(h->hops[1].root, "https://reg:5000/v2");
        registry_hosts_free(h);

        static const struct {
                const char *text, *error;
        } bad[] = {
                { "server = \"https://a\"\nsevrer = \"x\"\n", "hosts.toml:2: sevrer: unknown field" },
                { "[host.\"https://m\"]\nskip_verify = \"yes\"\n", "hosts.toml:2: skip_verify: expected true or false" },
                { "capabilities = [\"pull\", \"fetch\"]\n", "hosts.toml:1: capabilities: expected \"pull\"" },
                { "[mirrors]\n", "hosts.toml:1: mirrors: unknown table" },
                { "[host.\"m:5000\"]\n", "hosts.toml:1: host: table name must be a URL" },
                { "server = \"https://a\n", "hosts.toml:1: server: unterminated string" },
                { "\n\nca = { file = \"x\" }\n", "hosts.toml:3: ca: expected a string" },
                { "server = \"https://a\" extra\n", "hosts.toml:1: unexpected text" },
                /* strings and keys through basic/toml.c, as in containerd's config.toml */
                { "\n[host.\"https://m\"]\n  ca = \"/etc/\\q.pem\"\n", "hosts.toml:3: ca: unsupported escape \\q" },
                { "server = \"\"\"https://a\n", "hosts.toml:2: server: unterminated string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e = NULL;
                assert_null(parse(bad[i].text, &e));
                if (!e || !strstr(e, bad[i].error))
                        fail_msg("case %zu: %s, expected %s", i, e ?: "(no error)", bad[i].error);
        }
}

static void test_containerd_hosts(void **state) {
        RuntimeRegistry rt = {};
        RegistryHosts *h = NULL;
        char dir[256], path[300];

        assert_int_equal(runtime_driver_get(RUNTIME_CONTAINERD)->registry_defaults(&rt, NULL), 0);
        free(rt.certs_dir);
        rt.certs_dir = strdup(tmpdir);
        /* from CRI Status verbose: registry.configPath wins over the default */
        assert_int_equal(runtime_registry_parse_cri_config(&rt, "{\"registry\":{\"configPath\":\"/x\"}}"), 0);
        assert_string_equal(rt.certs_dir, "/x");
        assert_int_equal(runtime_registry_parse_cri_config(&rt, "{\"registry\":{}}"), -ENOENT);
        free(rt.certs_dir);
        rt.certs_dir = strdup(tmpdir);

        /* no hosts.toml: localhost is plain http on 1.6, https then http from 1.7 */
        rt.version = strdup("1.6.20~ds1");
        assert_int_equal(registry_hosts_for(&rt, NULL, "127.0.0.1:5000", &h), 0);
        assert_int_equal(h->n_hops, 1);
        assert_string_equal(h->hops[0].root, "http://127.0.0.1:5000/v2");
        h = registry_hosts_free(h);
        free(rt.version);
        rt.version = strdup("v2.1.9");
        assert_int_equal(registry_hosts_for(&rt, NULL, "127.0.0.1:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        assert_string_equal(h->hops[0].root, "https://127.0.0.1:5000/v2");
        assert_string_equal(h->hops[1].root, "http://127.0.0.1:5000/v2");
        h = registry_hosts_free(h);

        /* a hosts.toml makes loopback https when it says so, with its CA */
        snprintf(dir, sizeof dir, "%s/127.0.0.1:5000", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        snprintf(path, sizeof path, "127.0.0.1:5000/hosts.toml");
        write_file(path, "server = \"https://127.0.0.1:5000\"\nca = \"ca.crt\"\n");
        assert_int_equal(registry_hosts_for(&rt, NULL, "127.0.0.1:5000", &h), 0);
        assert_int_equal(h->n_hops, 1);
        assert_string_equal(h->hops[0].root, "https://127.0.0.1:5000/v2");
        assert_false(h->hops[0].mirror);
        assert_true(strstr(h->ca_where, "127.0.0.1:5000/ca.crt") != NULL);
        assert_true(startswith(h->source, "hosts.toml "));
        h = registry_hosts_free(h);

        /* a broken one is reported and the defaults are used */
        write_file(path, "server = 5\n");
        assert_int_equal(registry_hosts_for(&rt, NULL, "127.0.0.1:5000", &h), 0);
        assert_non_null(h->error);
        assert_true(strstr(h->error, "hosts.toml:1: server:") != NULL);
        assert_int_equal(h->n_hops, 2);
        h = registry_hosts_free(h);

        /* remote hosts are https only */
        assert_int_equal(registry_hosts_for(&rt, NULL, "reg.example:443", &h), 0);
        assert_int_equal(h->n_hops, 1);
        assert_string_equal(h->hops[0].root, "https://reg.example:443/v2");
        registry_hosts_free(h);
        runtime_registry_done(&rt);
}

static void test_docker_hosts(void **state) {
        RuntimeRegistry rt = {};
        RegistryHosts *h = NULL;
        char dir[256];
        Config c = { .docker_certs_dir = tmpdir };

        assert_int_equal(runtime_driver_get(RUNTIME_DOCKER)->registry_defaults(&rt, &c), 0);
        /* 127.0.0.0/8 is insecure by default: https without verification, then http */
        assert_int_equal(registry_hosts_for(&rt, NULL, "127.0.0.1:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        assert_string_equal(h->hops[0].root, "https://127.0.0.1:5000/v2");
        assert_true(h->hops[0].skip_verify);
        assert_string_equal(h->hops[1].root, "http://127.0.0.1:5000/v2");
        h = registry_hosts_free(h);
        assert_int_equal(registry_hosts_for(&rt, NULL, "localhost:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        h = registry_hosts_free(h);

        /* certs.d/<host:port>: .crt files are CAs, a .cert with its .key a client pair; https only */
        snprintf(dir, sizeof dir, "%s/10.1.2.3:5000", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        write_file("10.1.2.3:5000/ca.crt", "x");
        write_file("10.1.2.3:5000/client.cert", "x");
        write_file("10.1.2.3:5000/client.key", "x");
        assert_int_equal(registry_hosts_for(&rt, NULL, "10.1.2.3:5000", &h), 0);
        assert_int_equal(h->n_hops, 1);
        assert_false(h->hops[0].skip_verify);
        assert_true(strstr(h->hops[0].ca_files[0], "10.1.2.3:5000/ca.crt") != NULL);
        assert_true(strstr(h->hops[0].client_key, "10.1.2.3:5000/client.key") != NULL);
        assert_true(strstr(h->ca_where, "10.1.2.3:5000/ca.crt") != NULL);
        h = registry_hosts_free(h);

        /* /info: mirrors (docker.io only), insecure CIDRs and index configs */
        assert_int_equal(runtime_registry_parse_docker_info(&rt,
                "{\"RegistryConfig\":{\"InsecureRegistryCIDRs\":[\"127.0.0.0/8\",\"10.0.0.0/8\"],"
                "\"IndexConfigs\":{\"docker.io\":{\"Secure\":true},\"reg.lan:5000\":{\"Secure\":false}},"
                "\"Mirrors\":[\"http://127.0.0.1:6000/\"]}}"), 0);
        assert_int_equal(registry_hosts_for(&rt, NULL, "docker.io", &h), 0);
        assert_int_equal(h->n_hops, 2);
        assert_string_equal(h->hops[0].root, "http://127.0.0.1:6000/v2");
        assert_true(h->hops[0].mirror);
        assert_string_equal(h->hops[1].root, "https://registry-1.docker.io/v2");
        h = registry_hosts_free(h);
        assert_int_equal(registry_hosts_for(&rt, NULL, "reg.lan:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        assert_true(h->hops[0].skip_verify);
        h = registry_hosts_free(h);
        assert_int_equal(registry_hosts_for(&rt, NULL, "10.9.9.9:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        h = registry_hosts_free(h);
        assert_int_equal(registry_hosts_for(&rt, NULL, "reg.example", &h), 0);
        assert_int_equal(h->n_hops, 1);
        h = registry_hosts_free(h);

        /* certs.d/<host>/hosts.toml: read only on the containerd image store (measured on 28.5.2: a
         * name that does not resolve pulled through the server its hosts.toml named) */
        snprintf(dir, sizeof dir, "%s/alias.lan:5000", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        write_file("alias.lan:5000/hosts.toml", "server = \"https://10.1.2.3:5000\"\n"
                                               "[host.\"https://10.1.2.3:5000\"]\n  ca = \"/x/ca.crt\"\n");
        assert_int_equal(registry_hosts_for(&rt, NULL, "alias.lan:5000", &h), 0);
        assert_string_equal(h->hops[0].root, "https://alias.lan:5000/v2");
        h = registry_hosts_free(h);
        assert_int_equal(runtime_registry_parse_docker_info(&rt,
                "{\"RegistryConfig\":{\"InsecureRegistryCIDRs\":[\"127.0.0.0/8\",\"10.0.0.0/8\"]},"
                "\"DriverStatus\":[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]}"), 0);
        assert_true(rt.containerd_store);
        assert_int_equal(registry_hosts_for(&rt, NULL, "alias.lan:5000", &h), 0);
        assert_string_equal(h->hops[0].root, "https://10.1.2.3:5000/v2");
        assert_string_equal(h->hops[0].ca_files[0], "/x/ca.crt");
        assert_non_null(strstr(h->source, "containerd image store"));
        /* [host] and server: two hosts, into which moby merges nothing (10.0.0.0/8 is insecure) */
        assert_int_equal(h->n_hops, 2);
        assert_false(h->hops[0].skip_verify);
        h = registry_hosts_free(h);
        /* the server alone: one host, insecure by moby's rules: verification off, then http */
        write_file("alias.lan:5000/hosts.toml", "server = \"https://10.1.2.3:5000\"\n");
        assert_int_equal(registry_hosts_for(&rt, NULL, "alias.lan:5000", &h), 0);
        assert_int_equal(h->n_hops, 2);
        assert_string_equal(h->hops[0].root, "https://10.1.2.3:5000/v2");
        assert_true(h->hops[0].skip_verify);
        assert_string_equal(h->hops[1].root, "http://10.1.2.3:5000/v2");
        registry_hosts_free(h);
        runtime_registry_done(&rt);
}

/* The registries a runtime has hops of its own for: each hosts dir with a hosts.toml, on every
 * config_path root, once; _default and dirs without hosts.toml are not registries; dockerd's mirrors
 * are docker.io's. */
static void test_hosts_domains(void **state) {
        RuntimeRegistry rt = {};
        char **l = NULL, root2[300], path[400], both[700];

        snprintf(root2, sizeof root2, "%s/second", tmpdir);
        assert_int_equal(runtime_driver_get(RUNTIME_CONTAINERD)->registry_defaults(&rt, NULL), 0);
        free(rt.certs_dir);
        snprintf(both, sizeof both, "%s/domains:%s", tmpdir, root2);
        rt.certs_dir = strdup(both);
        snprintf(path, sizeof path, "%s/domains", tmpdir);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(mkdir(root2, 0755), 0);
        const char *dirs[] = { "domains/reg:5000", "domains/_default", "domains/certs-only", "second/reg:5000", "second/other" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof path, "%s/%s", tmpdir, dirs[i]);
                assert_int_equal(mkdir(path, 0755), 0);
                if (i == 2)
                        continue;
                snprintf(path, sizeof path, "%s/%s/hosts.toml", tmpdir, dirs[i]);
                FILE *f = fopen(path, "we");
                assert_non_null(f);
                fputs("server = \"https://x\"\n", f);
                fclose(f);
        }
        assert_int_equal(registry_hosts_domains(&rt, &l), 0);
        assert_non_null(l);
        size_t n = 0, reg = 0, other = 0;
        for (; l[n]; n++) {
                reg += streq(l[n], "reg:5000");
                other += streq(l[n], "other");
        }
        assert_int_equal(n, 2);
        assert_int_equal(reg, 1);
        assert_int_equal(other, 1);
        strv_free(l);
        runtime_registry_done(&rt);

        /* dockerd: registry-mirrors are docker.io's; a missing certs.d is no error */
        assert_int_equal(runtime_driver_get(RUNTIME_DOCKER)->registry_defaults(&rt, NULL), 0);
        assert_int_equal(registry_hosts_domains(&rt, &l), 0);
        assert_null(l);
        assert_int_equal(registry_strv_push(&rt.mirrors, "http://127.0.0.1:30020"), 0);
        assert_int_equal(registry_hosts_domains(&rt, &l), 0);
        assert_non_null(l);
        assert_string_equal(l[0], "docker.io");
        assert_null(l[1]);
        strv_free(l);
        runtime_registry_done(&rt);
}

static void test_versions(void **state) {
        assert_int_equal(runtime_version_cmp("1.6.20~ds1", 1, 7, 0), -1);
        assert_int_equal(runtime_version_cmp("v2.1.9", 2, 1, 0), 1);
        assert_int_equal(runtime_version_cmp("1.7.24", 1, 7, 24), 0);
        assert_int_equal(runtime_version_cmp("20.10.24+dfsg1", 20, 10, 0), 1);
        assert_int_equal(runtime_version_cmp(NULL, 1, 0, 0), -EINVAL);
        assert_int_equal(runtime_version_cmp("devel", 1, 0, 0), -EINVAL);

        /* versions as containerd's Version service reports them on the rows of the field */
        assert_true(diagnose_octet_applies("1.6.20~ds1"));
        assert_true(diagnose_octet_applies("1.7.24"));
        assert_true(diagnose_octet_applies("v2.0.5"));
        assert_false(diagnose_octet_applies("v2.1.9"));
        assert_false(diagnose_octet_applies("2.2.0"));
        assert_false(diagnose_octet_applies("1.3.4"));
        assert_true(diagnose_octet_applies(NULL));

        RegistryManifest m = { .config_media_type = (char *) "application/octet-stream", .schema_version = 2 };
        _cleanup_free_ char *t = NULL;
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, "v2.1.9", &m, &t), DIAG_NONE);
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, "1.7.24", &m, &t), DIAG_OCTET_STREAM_CONFIG);
        assert_true(strstr(t, "this is 1.7.24") != NULL);
}

static void test_tls_diagnosis(void **state) {
        _cleanup_free_ char *t = NULL, *u = NULL;
        const char *docker_err = "Get \"https://10.1.2.3:5000/v2/\": x509: certificate signed by unknown authority";
        assert_int_equal(diagnose_runtime_error(RUNTIME_DOCKER, docker_err, &t), DIAG_TLS_UNTRUSTED);
        assert_true(strstr(t, "x509: certificate signed by unknown authority") != NULL);
        assert_true(strstr(t, "/etc/docker/certs.d/") != NULL);
        assert_true(diagnosis_is_permanent(DIAG_TLS_UNTRUSTED));
        assert_int_equal(diagnose_tls(RUNTIME_CONTAINERD, "10.1.2.3:5000", "/etc/containerd/certs.d/10.1.2.3:5000/hosts.toml",
                                      "TLS: SSL certificate problem: unable to get local issuer certificate", true, &u),
                         DIAG_TLS_UNTRUSTED);
        assert_true(startswith(u, "registry probe unavailable: TLS: "));
        assert_true(strstr(u, "containerd reads the CA for 10.1.2.3:5000 from /etc/containerd/certs.d/10.1.2.3:5000/hosts.toml") != NULL);
        assert_string_equal(diagnosis_to_string(DIAG_TLS_UNTRUSTED), "tls-untrusted");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hosts_toml),
                cmocka_unit_test(test_containerd_hosts),
                cmocka_unit_test(test_docker_hosts),
                cmocka_unit_test(test_hosts_domains),
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_tls_diagnosis),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
