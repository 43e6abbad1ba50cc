/* test_containerd_config.c: containerd's config.toml as containerd 2.x's registry config_path source:
 * each config version's key, imports (globs, relative, later wins), every TOML form that must be
 * skipped without being mistaken for the key, errors naming file, line and field, the runtime's
 * --config from /proc/PID/cmdline, and the file read through the runtime's root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "probes/containerd/containerd_config.h"
#include "probes/registry/registry_trust.h"
#include "probes/drivers/runtime_drivers.h"
#include "test_files.h"

static char cp_buf[4096], from_buf[4096], err_buf[4096];

/* containerd_config_registry_path on tmpdir/name; results copied to the buffers ("" = NULL). */
static int lookup(const char *name) {
        _cleanup_free_ char *path = NULL, *cp = NULL, *from = NULL, *err = NULL;
        _cleanup_(error_detail_done) ErrorDetail e = {};
        assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
        int r = containerd_config_registry_path(NULL, path, &cp, &from, &e);
        if (r == -EINVAL) {
                assert_non_null(e.source); /* the file it could not read, the top one or an import */
                err = error_detail_format(&e);
        } else
                assert_null(e.message);
        snprintf(cp_buf, sizeof cp_buf, "%s", cp ?: "");
        /* names relative to tmpdir, so the expectations read plainly */
        snprintf(from_buf, sizeof from_buf, "%s", from ? from + strlen(tmpdir) + 1 : "");
        snprintf(err_buf, sizeof err_buf, "%s", err ? (startswith(err, tmpdir) ? err + strlen(tmpdir) + 1 : err) : "");
        return r;
}

static void test_versions(void **state) {
        /* version 3, as `containerd config default` of 2.1 writes it (literal strings) */
        write_file("v3.toml", "version = 3\nroot = '/var/lib/containerd'\nimports = []\n\n"
                              "[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    snapshotter = 'overlayfs'\n"
                              "    [plugins.'io.containerd.cri.v1.images'.pinned_images]\n      sandbox = 'registry.k8s.io/pause:3.10'\n"
                              "    [plugins.'io.containerd.cri.v1.images'.registry]\n      config_path = '/etc/containerd/certs.d'\n"
                              "  [plugins.'io.containerd.transfer.v1.local']\n    config_path = '/transfer/only'\n");
        assert_int_equal(lookup("v3.toml"), 0);
        assert_string_equal(cp_buf, "/etc/containerd/certs.d");
        assert_string_equal(from_buf, "v3.toml:11");

        /* version 2: the CRI plugin's key, here as a dotted key and an inline table; the v3 key is not read */
        write_file("v2.toml", "version = 2\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/not/v2\"\n"
                              "[plugins]\n  \"io.containerd.grpc.v1.cri\".registry = { config_path = \"/a:/b\", headers = {} }\n");
        assert_int_equal(lookup("v2.toml"), 0);
        assert_string_equal(cp_buf, "/a:/b");
        assert_string_equal(from_buf, "v2.toml:5");
        write_file("v2b.toml", "version = 2\nplugins.\"io.containerd.grpc.v1.cri\".registry.config_path = \"/dotted\"\n");
        assert_int_equal(lookup("v2b.toml"), 0);
        assert_string_equal(cp_buf, "/dotted");

        /* no version: 1, plugins.cri */
        write_file("v1.toml", "[plugins.cri.registry]\nconfig_path = \"/v1\"\n");
        assert_int_equal(lookup("v1.toml"), 0);
        assert_string_equal(cp_buf, "/v1");

        /* none, or '': no config_path (the caller keeps its default) */
        write_file("none.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = ''\n");
        assert_int_equal(lookup("none.toml"), 0);
        assert_string_equal(cp_buf, "");
        /* a key below the one read is not it */
        write_file("deeper.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry.config_path]\n  x = '/deeper'\n");
        assert_int_equal(lookup("deeper.toml"), 0);
        assert_string_equal(cp_buf, "");
        write_file("empty.toml", "");
        assert_int_equal(lookup("empty.toml"), 0);
        assert_string_equal(cp_buf, "");
        assert_int_equal(lookup("missing.toml"), -ENOENT);
}

static void test_skipped_forms(void **state) {
        /* strings, arrays and tables that look like the key but are not it */
        write_file("skip.toml",
                   "version = 3 # the version\n"
                   "oom_score = -999\nstart = 1979-05-27 07:32:00Z\nratio = 1.5e3\nflag = true\n"
                   "note = \"\"\"\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/in/a/string'\n\"\"\"\n"
                   "lit = '''a ''' \n"
                   "esc = \"tab\\t quote\\\" \\u00e9 \\U0001F600\"\n"
                   "quotes = \"\"\"a\"\"\"\"\"\n"
                   "nested = [[1, 2], ['x', \"]\"], { config_path = '/in/array' }]\n"
                   "multi = [\n  'a', # comment ]\n  'b',\n]\n"
                   "[[proxy_plugins]]\n  config_path = '/array/of/tables'\n"
                   "# [plugins.'io.containerd.cri.v1.images'.registry] config_path = '/comment'\n"
                   "[ plugins . 'io.containerd.cri.v1.images' . \"registry\" ]\n"
                   "  config_path = \"/etc/containerd/c\\u0065rts.d\"\n");
        assert_int_equal(lookup("skip.toml"), 0);
        assert_string_equal(cp_buf, "/etc/containerd/certs.d");
        assert_string_equal(from_buf, "skip.toml:22");
}

static void test_imports(void **state) {
        char main_text[1024];
        char d[4200];
        snprintf(d, sizeof d, "%s/conf.d", tmpdir);
        assert_int_equal(mkdir(d, 0755), 0);
        /* the main file sets one, imports override in glob order; an import's own import too */
        write_file("conf.d/10-a.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/from/a\"\n");
        write_file("conf.d/20-b.toml", "version = 3\nimports = ['../extra.toml']\n"
                                       "[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/from/b'\n");
        write_file("extra.toml", "version = 3\n\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/from/extra'\n");
        snprintf(main_text, sizeof main_text,
                 "version = 3\nimports = [\"conf.d/*.toml\", \"%s/nothing/*.toml\"]\n"
                 "[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/from/main'\n", tmpdir);
        write_file("main.toml", main_text);
        assert_int_equal(lookup("main.toml"), 0);
        assert_string_equal(cp_buf, "/from/extra");
        assert_string_equal(from_buf, "extra.toml:4");
        /* an import that cannot be read is an error naming it */
        write_file("conf.d/30-bad.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry\n");
        assert_int_equal(lookup("main.toml"), -EINVAL);
        assert_string_equal(err_buf, "conf.d/30-bad.toml:2: plugins.\"io.containerd.cri.v1.images\".registry: "
                                     "expected ']' to close the table header");
        /* a FIFO (or any non-regular file) is refused, never waited on */
        char fifo[4200];
        snprintf(fifo, sizeof fifo, "%s/fifo.toml", tmpdir);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(lookup("fifo.toml"), -EINVAL);
        assert_string_equal(err_buf, "fifo.toml: not a regular text file");
        unlink(fifo);
        /* a file importing itself is read once */
        write_file("self.toml", "version = 3\nimports = ['self.toml']\nplugins.'io.containerd.cri.v1.images'.registry.config_path = '/s'\n");
        assert_int_equal(lookup("self.toml"), 0);
        assert_string_equal(cp_buf, "/s");
}

static void test_errors(void **state) {
        static const struct {
                const char *text, *error;
        } cases[] = {
                { "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = \"/x\n",
                  "e.toml:3: plugins.\"io.containerd.cri.v1.images\".registry.config_path: unterminated string" },
                { "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n\nconfig_path = ['/x']\n",
                  "e.toml:4: plugins.\"io.containerd.cri.v1.images\".registry.config_path: expected a string" },
                { "version = 3\nplugins.'io.containerd.cri.v1.images'.registry.config_path = 7\n",
                  "e.toml:2: plugins.\"io.containerd.cri.v1.images\".registry.config_path: expected a string" },
                { "version = \"3\"\n", "e.toml:1: version: expected an integer" },
                { "version = 4\n", "e.toml:1: version: expected 1, 2 or 3" },
                { "imports = '/etc/x.toml'\n", "e.toml:1: imports: expected an array of file names" },
                { "imports = [1]\n", "e.toml:1: imports: expected an array of file names" },
                { "[grpc]\naddress\n", "e.toml:2: grpc.address: expected '=' after the key" },
                { "[grpc]\naddress = '/x' uid = 0\n", "e.toml:2: grpc.address: unexpected text after the value" },
                { "a = [1, 2\nb = 3\n", "e.toml:2: a: expected ',' or ']' in the array" },
                { "a = { b = 1\n", "e.toml:1: a: expected ',' or '}' in the inline table" },
                { "a = \"\\q\"\n", "e.toml:1: a: unsupported escape \\q" },
                { "a =\n", "e.toml:1: a: expected a value" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                write_file("e.toml", cases[i].text);
                assert_int_equal(lookup("e.toml"), -EINVAL);
                assert_string_equal(err_buf, cases[i].error);
        }
}

/* a fake /proc/PID: cmdline (NUL-separated), cwd link, root dir */
static const char *fake_proc(int pid, const char *cmdline, size_t len, const char *cwd) {
        static char base[4200];
        char p[4300];
        snprintf(base, sizeof base, "%s/proc/%d", tmpdir, pid);
        snprintf(p, sizeof p, "%s/proc", tmpdir);
        (void) mkdir(p, 0755);
        assert_true(mkdir(base, 0755) == 0 || errno == EEXIST);
        snprintf(p, sizeof p, "%s/cmdline", base);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(cmdline, 1, len, f), len);
        fclose(f);
        snprintf(p, sizeof p, "%s/cwd", base);
        unlink(p);
        assert_int_equal(symlink(cwd, p), 0);
        return base;
}

static void test_file_of(void **state) {
        char proc[4200];
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        snprintf(proc, sizeof proc, "%s/proc", tmpdir);

        static const char c1[] = "/usr/bin/containerd\0--log-level\0debug\0--config\0/x/c.toml\0";
        fake_proc(41, c1, sizeof c1 - 1, "/");
        assert_int_equal(containerd_config_file_of(proc, 41, &a), 0);
        assert_string_equal(a, "/x/c.toml");

        static const char c2[] = "containerd\0-c=rel.toml\0";
        fake_proc(42, c2, sizeof c2 - 1, "/var/lib/k");
        assert_int_equal(containerd_config_file_of(proc, 42, &b), 0);
        assert_string_equal(b, "/var/lib/k/rel.toml");

        /* no flag (a word that is not one ends the global flags): the default */
        static const char c3[] = "containerd\0--address=/s\0publish\0--config\0/not/global\0";
        fake_proc(43, c3, sizeof c3 - 1, "/");
        assert_int_equal(containerd_config_file_of(proc, 43, &c), 0);
        assert_string_equal(c, "/etc/containerd/config.toml");

        static const char c4[] = "containerd\0-config\0/go/flag.toml\0";
        fake_proc(44, c4, sizeof c4 - 1, "/");
        assert_int_equal(containerd_config_file_of(proc, 44, &d), 0);
        assert_string_equal(d, "/go/flag.toml");
        assert_int_equal(containerd_config_file_of(proc, 45, &d), -ENOENT);
}

static void test_runtime_root(void **state) {
        /* the file is read below the runtime's root and named as the runtime names it */
        char root[4200], p[4300];
        snprintf(root, sizeof root, "%s/proc/41/root", tmpdir);
        const char *dirs[] = { "", "/etc", "/etc/containerd" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(p, sizeof p, "%s%s", root, dirs[i]);
                assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
        }
        write_file("proc/41/root/etc/containerd/config.toml",
                   "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n");
        RuntimeRegistry rt = {};
        assert_int_equal(runtime_driver_get(RUNTIME_CONTAINERD)->registry_defaults(&rt, NULL), 0);
        assert_int_equal(runtime_registry_read_containerd_config(&rt, root, "/etc/containerd/config.toml"), 0);
        assert_string_equal(rt.certs_dir, "/etc/containerd/certs.d:/etc/docker/certs.d");
        assert_string_equal(rt.certs_dir_from, "/etc/containerd/config.toml:3");
        assert_null(rt.error);

        /* the hosts dir found there is what registry_hosts_for reads, and its source says so */
        write_file("proc/41/root/etc/containerd/config.toml", "");
        snprintf(p, sizeof p, "%s/hd", tmpdir);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/hd/reg:5000", tmpdir);
        assert_int_equal(mkdir(p, 0755), 0);
        write_file("hd/reg:5000/hosts.toml", "server = \"https://reg:5000\"\nca = \"/pki/ca.pem\"\n");
        snprintf(p, sizeof p, "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '%s/hd'\n", tmpdir);
        write_file("proc/41/root/etc/containerd/config.toml", p);
        assert_int_equal(runtime_registry_read_containerd_config(&rt, root, "/etc/containerd/config.toml"), 0);
        RegistryHosts *h = NULL;
        assert_int_equal(registry_hosts_for(&rt, NULL, "reg:5000", &h), 0);
        assert_string_equal(h->ca_where, "/pki/ca.pem");
        assert_non_null(strstr(h->source, "(config_path from /etc/containerd/config.toml:3)"));
        assert_null(h->error);
        registry_hosts_free(h);

        /* a file it cannot read: the error reaches the hosts (status shows it), the dir stays */
        write_file("proc/41/root/etc/containerd/config.toml", "version = 3\n[plugins\n");
        assert_int_equal(runtime_registry_read_containerd_config(&rt, root, "/etc/containerd/config.toml"), -EINVAL);
        assert_string_equal(rt.error, "/etc/containerd/config.toml:2: plugins: expected ']' to close the table header");
        assert_int_equal(registry_hosts_for(&rt, NULL, "reg:5000", &h), 0);
        assert_string_equal(h->error, rt.error);
        registry_hosts_free(h);
        /* missing: -ENOENT, nothing changed */
        assert_int_equal(runtime_registry_read_containerd_config(&rt, root, "/etc/containerd/other.toml"), -ENOENT);
        runtime_registry_done(&rt);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_skipped_forms),
                cmocka_unit_test(test_imports),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_file_of),
                cmocka_unit_test(test_runtime_root),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
