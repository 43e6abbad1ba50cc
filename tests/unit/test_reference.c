/* test_reference: image references against docker/distribution's normalization (ParseNormalizedNamed
 * + TagNameOnly), from its own test tables: domain split, library/ prefix, tags, digests, rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "basic/reference.h"

#define HEX64 "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
#define HEX32 "86e0e091d0da6bde2456dbb48306f395"

typedef struct Valid {
        const char *input;
        const char *domain, *path, *tag, *digest;
        const char *full;
} Valid;

static const Valid valid[] = {
        { "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
        { "busybox:1.36", "docker.io", "library/busybox", "1.36", NULL, "docker.io/library/busybox:1.36" },
        { "library/busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
        { "docker.io/busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
        { "index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest" },
        { "index.docker.io/library/debian:12", "docker.io", "library/debian", "12", NULL,
          "docker.io/library/debian:12" },
        { "docker/docker", "docker.io", "docker/docker", "latest", NULL, "docker.io/docker/docker:latest" },
        { "docker.io/docker/docker", "docker.io", "docker/docker", "latest", NULL, "docker.io/docker/docker:latest" },
        { "library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL, "docker.io/library/foo/bar:latest" },
        { "127.0.0.1:5000/a/b:v1", "127.0.0.1:5000", "a/b", "v1", NULL, "127.0.0.1:5000/a/b:v1" },
        { "127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", "latest", NULL, "127.0.0.1:5000/debian:latest" },
        /* "host" has no '.' or ':' and is lowercase: a Docker Hub namespace, not a registry */
        { "host/a@sha256:" HEX64, "docker.io", "host/a", NULL, "sha256:" HEX64, "docker.io/host/a@sha256:" HEX64 },
        { "registry.local/a@sha256:" HEX64, "registry.local", "a", NULL, "sha256:" HEX64,
          "registry.local/a@sha256:" HEX64 },
        { "a:tag@sha256:" HEX64, "docker.io", "library/a", "tag", "sha256:" HEX64,
          "docker.io/library/a:tag@sha256:" HEX64 },
        { "busybox@sha256:" HEX64, "docker.io", "library/busybox", NULL, "sha256:" HEX64,
          "docker.io/library/busybox@sha256:" HEX64 },
        { "localhost/foo", "localhost", "foo", "latest", NULL, "localhost/foo:latest" },
        { "localhost:5000/foo:bar", "localhost:5000", "foo", "bar", NULL, "localhost:5000/foo:bar" },
        /* no '/': always a Hub name, so these are tags, not ports */
        { "localhost", "docker.io", "library/localhost", "latest", NULL, "docker.io/library/localhost:latest" },
        { "localhost:5000", "docker.io", "library/localhost", "5000", NULL, "docker.io/library/localhost:5000" },
        { "192.168.0.1", "docker.io", "library/192.168.0.1", "latest", NULL, "docker.io/library/192.168.0.1:latest" },
        { "192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", NULL, "docker.io/library/192.168.0.1:80" },
        { "192.168.0.2:25000/debian", "192.168.0.2:25000", "debian", "latest", NULL,
          "192.168.0.2:25000/debian:latest" },
        { "[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "latest", NULL, "[fc00::1]:5000/docker:latest" },
        { "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest",
          NULL, "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest" },
        { "[::1]/x", "[::1]", "x", "latest", NULL, "[::1]/x:latest" },
        /* an uppercase first component is taken as a registry name */
        { "Docker/docker", "Docker", "docker", "latest", NULL, "Docker/docker:latest" },
        { "FOO/bar", "FOO", "bar", "latest", NULL, "FOO/bar:latest" },
        { "example.com/private/moonbase", "example.com", "private/moonbase", "latest", NULL,
          "example.com/private/moonbase:latest" },
        { "example.com:8000/privatebase", "example.com:8000", "privatebase", "latest", NULL,
          "example.com:8000/privatebase:latest" },
        { "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", NULL, "xn--n3h.com:18080/foo:latest" },
        { "test_com/foo", "docker.io", "test_com/foo", "latest", NULL, "docker.io/test_com/foo:latest" },
        { "test-com:8080/foo", "test-com:8080", "foo", "latest", NULL, "test-com:8080/foo:latest" },
        { "docker---rules/docker", "docker.io", "docker---rules/docker", "latest", NULL,
          "docker.io/docker---rules/docker:latest" },
        { "dock__er/docker", "docker.io", "dock__er/docker", "latest", NULL, "docker.io/dock__er/docker:latest" },
        { "d/docker", "docker.io", "d/docker", "latest", NULL, "docker.io/d/docker:latest" },
        { "ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", "latest", NULL,
          "docker.io/library/ubuntu-12.04-base:latest" },
        { "docker.io/" HEX64, "docker.io", "library/" HEX64, "latest", NULL, "docker.io/library/" HEX64 ":latest" },
        { "busybox:LATEST_v1.2-rc", "docker.io", "library/busybox", "LATEST_v1.2-rc", NULL,
          "docker.io/library/busybox:LATEST_v1.2-rc" },
        { "busybox:_x", "docker.io", "library/busybox", "_x", NULL, "docker.io/library/busybox:_x" },
        { "ghcr.io/owner/repo:v1.2.3-rc.1_x", "ghcr.io", "owner/repo", "v1.2.3-rc.1_x", NULL,
          "ghcr.io/owner/repo:v1.2.3-rc.1_x" },
        { "r.io/a@sha512:" HEX64 HEX64, "r.io", "a", NULL, "sha512:" HEX64 HEX64, "r.io/a@sha512:" HEX64 HEX64 },
        { "r.io/a@sha384:" HEX64 HEX32, "r.io", "a", NULL, "sha384:" HEX64 HEX32, "r.io/a@sha384:" HEX64 HEX32 },
};

typedef struct Invalid {
        const char *input;
        const char *reason; /* NULL: any */
} Invalid;

static const Invalid invalid[] = {
        { "", "reference is empty" },
        { "https://github.com/docker/docker", "invalid registry host" },
        { "docker/Docker", "repository name must be lowercase" },
        { "Busybox", "repository name must be lowercase" },
        { "docker.io/docker/Docker", "repository name must be lowercase" },
        { "-docker", NULL },
        { "-docker/docker", NULL },
        { "-docker.io/docker/docker", "invalid registry host" },
        { "docker///docker", NULL },
        { "docker.io/docker///docker", NULL },
        { "[fc00::1]", NULL },
        { "[fc00::1]:5000", NULL },
        { "fc00::1:5000/debian", "invalid registry host" },
        { "[fe80::1%eth0]:5000/debian", "invalid registry host" },
        { "[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid registry host" },
        { HEX64, "a 64-character hexadecimal string is an image ID, not a reference" },
        { "docker-/docker", NULL },
        { "-docker-/docker", NULL },
        { "____/____", NULL },
        { "_docker/_docker", NULL },
        { "dock..er/docker", NULL },
        { "dock_.er/docker", NULL },
        { "dock-.er/docker", NULL },
        { "dock___er/docker", NULL },
        { "docker/", NULL },
        { "busybox/", NULL },
        { "busybox:", "invalid tag (at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-')" },
        { "busybox:-x", NULL },
        { "busybox:.x", NULL },
        { "busybox:a+b", NULL },
        { "busybox:1:2", NULL },
        { "busybox latest", NULL },
        { "busybox@sha256:abc", "invalid digest (expected sha256: and 64 lowercase hex digits)" },
        { "busybox@sha256:" HEX32 "86E0E091D0DA6BDE2456DBB48306F395", NULL },
        { "busybox@sha256:" HEX64 "0", NULL },
        { "busybox@md5:" HEX32, "unsupported digest algorithm (sha256, sha384 or sha512)" },
        { "busybox@sha256:" HEX64 "@x", NULL },
        { "busybox@", NULL },
        { "busybox@:" HEX64, NULL },
        { "busybox@1sha:" HEX64, NULL },
        { "busybox@sha256", NULL },
        { "host:/a", "invalid registry host" },
        { "host:abc/a", "invalid registry host" },
        { "a.-b.com/x", "invalid registry host" },
        { "a..b/x", "invalid registry host" },
        { ":tag", NULL },
        { "@sha256:" HEX64, NULL },
        { "/busybox", NULL },
        { "registry.local//a", NULL },
        { "busybox\n", NULL },
        { "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_"
          "because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_"
          "255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
          "repository name must not be more than 255 characters" },
};

static void test_valid_references(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                const Valid *t = &valid[i];
                ImageRef *r = NULL;
                char *full = NULL;
                const char *why = NULL;

                if (reference_parse_reason(t->input, &r, &why) != 0)
                        fail_msg("\"%s\" rejected: %s", t->input, why);
                if (!streq(r->domain, t->domain) || !streq(r->path, t->path) || !streq_ptr(r->tag, t->tag) ||
                    !streq_ptr(r->digest, t->digest))
                        fail_msg("\"%s\": got %s | %s | %s | %s", t->input, r->domain, r->path, r->tag ?: "(null)",
                                 r->digest ?: "(null)");
                assert_int_equal(reference_to_string(r, &full), 0);
                if (!streq(full, t->full))
                        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", t->input, full, t->full);

                /* the normalized form is a fixed point */
                ImageRef *again = NULL;
                char *full2 = NULL;
                assert_int_equal(reference_parse(full, &again), 0);
                assert_int_equal(reference_to_string(again, &full2), 0);
                assert_string_equal(full, full2);
                free(full2);
                reference_free(again);

                free(full);
                assert_null(reference_free(r));
        }
}

static void test_invalid_references(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                const Invalid *t = &invalid[i];
                ImageRef *r = NULL;
                const char *why = NULL;
                int ret = reference_parse_reason(t->input, &r, &why);

                if (ret != -EINVAL || r)
                        fail_msg("\"%s\" accepted (%d)", t->input, ret);
                assert_non_null(why);
                if (t->reason && !streq(why, t->reason))
                        fail_msg("\"%s\": reason \"%s\", expected \"%s\"", t->input, why, t->reason);
                assert_int_equal(reference_parse(t->input, &r), -EINVAL);
        }
        assert_int_equal(reference_parse(NULL, &(ImageRef *) { NULL }), -EINVAL);
}

static void test_length_limits(void **state) {
        char name[400], tag[200];
        ImageRef *r = NULL;

        /* path: at most 255 characters */
        memset(name, 0, sizeof name);
        strcpy(name, "registry.local/");
        memset(name + strlen(name), 'a', 255);
        assert_int_equal(reference_parse(name, &r), 0);
        assert_int_equal(strlen(r->path), 255);
        r = reference_free(r);
        strcat(name, "a");
        assert_int_equal(reference_parse(name, &r), -EINVAL);

        /* tag: at most 128 characters */
        memset(tag, 0, sizeof tag);
        memset(tag, 'v', 128);
        snprintf(name, sizeof name, "busybox:%s", tag);
        assert_int_equal(reference_parse(name, &r), 0);
        assert_int_equal(strlen(r->tag), 128);
        r = reference_free(r);
        strcat(name, "v");
        assert_int_equal(reference_parse(name, &r), -EINVAL);
}

static void test_repository_and_registry_host(void **state) {
        static const struct { const char *in, *repo, *host; } t[] = {
                { "busybox", "docker.io/library/busybox", "https://index.docker.io/v1/" },
                { "index.docker.io/foo/bar:1", "docker.io/foo/bar", "https://index.docker.io/v1/" },
                { "ghcr.io/a/b@sha256:" HEX64, "ghcr.io/a/b", "ghcr.io" },
                { "localhost:5000/a", "localhost:5000/a", "localhost:5000" },
                { "[::1]:5000/a:v", "[::1]:5000/a", "[::1]:5000" },
                { "registry-1.docker.io/library/x", "registry-1.docker.io/library/x", "registry-1.docker.io" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                ImageRef *r = NULL;
                char *repo = NULL;

                assert_int_equal(reference_parse(t[i].in, &r), 0);
                assert_int_equal(reference_repository(r, &repo), 0);
                assert_string_equal(repo, t[i].repo);
                assert_string_equal(reference_registry_host(r), t[i].host);
                free(repo);
                reference_free(r);
        }
        assert_null(reference_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_references),
                cmocka_unit_test(test_invalid_references),
                cmocka_unit_test(test_length_limits),
                cmocka_unit_test(test_repository_and_registry_host),
        };

        return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}
