/* test_credentials: docker config.json lookup (auth/username/identitytoken, docker's key matching, file
 * order, helpers), malformed files reported without secrets, and the X-Registry-Auth encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <jansson.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "probes/registry/credentials.h"

static char tmpdir[] = "/tmp/test_credentials.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes tmpdir/name; returns a malloc'ed path. */
static char *write_file(const char *name, const char *text) {
        char *path;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        return path;
}

/* base64("user:pa:ss"), base64("alice:s3cr3t"), base64("nocolon"), base64("user:") */
#define AUTH_USER_PASS "dXNlcjpwYTpzcw=="
#define AUTH_ALICE "YWxpY2U6czNjcjN0"
#define AUTH_NOCOLON "bm9jb2xvbg=="
#define AUTH_USER_ONLY "dXNlcjo="

/* credentials_lookup_full() with its ErrorDetail as the text callers print (NULL when none); the detail
 * must name the file it is about. */
static int lookup_full(char **files, const char *host, Credential **c, char **ret_text) {
        ErrorDetail e = {};
        int r = credentials_lookup_full(files, host, c, &e);

        if (e.source) {
                bool listed = false;
                for (char **f = files; *f; f++)
                        listed = listed || streq(*f, e.source);
                assert_true(listed);
        }
        *ret_text = e.message ? error_detail_format(&e) : NULL;
        error_detail_done(&e);
        return r;
}

static Credential *lookup_one(const char *json, const char *host) {
        char *path = write_file("config.json", json), *err = NULL;
        char *files[] = { path, NULL };
        Credential *c = NULL;
        int r = lookup_full(files, host, &c, &err);

        if (r < 0)
                fail_msg("lookup of %s: %d %s", host, r, err ?: "");
        assert_null(err);
        free(path);
        return c;
}

static void test_auth_field(void **state) {
        Credential *c = lookup_one("{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_USER_PASS "\"}}}", "ghcr.io");

        assert_non_null(c);
        assert_string_equal(c->username, "user");
        assert_string_equal(c->password, "pa:ss"); /* split at the first colon only */
        assert_null(c->identity_token);
        assert_string_equal(c->server, "ghcr.io");
        assert_null(credential_free(c));

        /* padding is optional in hand-written files */
        c = lookup_one("{\"auths\": {\"ghcr.io\": {\"auth\": \"dXNlcjpwYTpzcw\"}}}", "ghcr.io");
        assert_non_null(c);
        assert_string_equal(c->password, "pa:ss");
        credential_free(c);
}

static void test_username_password_fields(void **state) {
        Credential *c = lookup_one("{\"auths\": {\"registry.local:5000\": "
                                   "{\"username\": \"bob\", \"password\": \"hunter2\", \"email\": \"\"}}}",
                                   "registry.local:5000");

        assert_non_null(c);
        assert_string_equal(c->username, "bob");
        assert_string_equal(c->password, "hunter2");
        assert_string_equal(c->server, "registry.local:5000");
        credential_free(c);

        /* "auth" wins over the separate fields, as in docker's loader */
        c = lookup_one("{\"auths\": {\"r.io\": {\"auth\": \"" AUTH_ALICE "\", \"username\": \"bob\"}}}", "r.io");
        assert_string_equal(c->username, "alice");
        assert_string_equal(c->password, "s3cr3t");
        credential_free(c);
}

static void test_identity_token(void **state) {
        Credential *c = lookup_one("{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"" AUTH_USER_ONLY
                                   "\", \"identitytoken\": \"tok-123\"}}}",
                                   "https://index.docker.io/v1/");

        assert_non_null(c);
        assert_string_equal(c->username, "user");
        assert_string_equal(c->password, "");
        assert_string_equal(c->identity_token, "tok-123");
        assert_string_equal(c->server, "https://index.docker.io/v1/");
        credential_free(c);

        c = lookup_one("{\"auths\": {\"r.io\": {\"identitytoken\": \"t\"}}}", "r.io");
        assert_null(c->username);
        assert_null(c->password);
        assert_string_equal(c->identity_token, "t");
        credential_free(c);
}

static void test_key_matching(void **state) {
        static const struct { const char *key, *host; bool match; } t[] = {
                { "https://index.docker.io/v1/", "https://index.docker.io/v1/", true },
                { "index.docker.io", "https://index.docker.io/v1/", true },
                { "docker.io", "https://index.docker.io/v1/", true },
                { "https://index.docker.io/v2/", "https://index.docker.io/v1/", true },
                { "http://docker.io", "https://index.docker.io/v1/", true },
                { "registry-1.docker.io", "https://index.docker.io/v1/", true },
                { "ghcr.io", "https://index.docker.io/v1/", false },
                { "ghcr.io", "ghcr.io", true },
                { "https://ghcr.io", "ghcr.io", true },
                { "https://ghcr.io/v2/", "ghcr.io", true },
                { "http://ghcr.io/v1/", "ghcr.io", true },
                { "ghcr.io/", "ghcr.io", true },
                { "ghcr.io:443", "ghcr.io", false },
                { "foo.ghcr.io", "ghcr.io", false },
                { "https://ghcr.io.evil.com", "ghcr.io", false },
                { "localhost:5000", "localhost:5000", true },
                { "http://localhost:5000/v2/", "localhost:5000", true },
                { "localhost:5001", "localhost:5000", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char *json;
                Credential *c;

                assert_true(asprintf(&json, "{\"auths\": {\"%s\": {\"auth\": \"" AUTH_ALICE "\"}}}", t[i].key) > 0);
                c = lookup_one(json, t[i].host);
                if (t[i].match != (c != NULL))
                        fail_msg("key %s for %s: expected %s", t[i].key, t[i].host, t[i].match ? "a match" : "none");
                if (c)
                        assert_string_equal(c->server, t[i].host);
                credential_free(c);
                free(json);
        }
}

static void test_exact_key_preferred(void **state) {
        Credential *c = lookup_one("{\"auths\": {"
                                   "\"https://ghcr.io\": {\"username\": \"a\", \"password\": \"1\"},"
                                   "\"ghcr.io\": {\"username\": \"b\", \"password\": \"2\"}}}",
                                   "ghcr.io");
        assert_string_equal(c->username, "b");
        credential_free(c);

        /* an entry without a login (what credsStore leaves behind) does not count */
        c = lookup_one("{\"auths\": {\"ghcr.io\": {}, \"https://ghcr.io/v2/\": {\"username\": \"a\"}}}", "ghcr.io");
        assert_string_equal(c->username, "a");
        credential_free(c);
}

static void test_no_match(void **state) {
        char *missing, *err = NULL;
        Credential *c = (Credential *) 0x1;

        assert_null(lookup_one("{}", "ghcr.io"));
        assert_null(lookup_one("{\"auths\": {}}", "ghcr.io"));
        assert_null(lookup_one("{\"auths\": {\"ghcr.io\": {}}}", "ghcr.io"));
        assert_null(lookup_one("{\"auths\": {\"quay.io\": {\"auth\": \"" AUTH_ALICE "\"}}, \"HttpHeaders\": {}}",
                               "ghcr.io"));

        assert_true(asprintf(&missing, "%s/nope.json", tmpdir) > 0);
        {
                char *files[] = { missing, NULL };
                assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), 0);
                assert_null(c);
                assert_null(err);
        }
        c = (Credential *) 0x1;
        assert_int_equal(credentials_lookup(NULL, "ghcr.io", &c), 0);
        assert_null(c);
        {
                char *files[] = { NULL };
                c = (Credential *) 0x1;
                assert_int_equal(credentials_lookup(files, "ghcr.io", &c), 0);
                assert_null(c);
        }
        free(missing);
}

static void test_file_order(void **state) {
        char *none = write_file("none.json", "{\"auths\": {\"quay.io\": {\"auth\": \"" AUTH_ALICE "\"}}}");
        char *first = write_file("first.json", "{\"auths\": {\"ghcr.io\": {\"username\": \"first\", \"password\": \"x\"}}}");
        char *second = write_file("second.json", "{\"auths\": {\"ghcr.io\": {\"username\": \"second\"}}}");
        char *broken = write_file("broken.json", "{\"auths\": ");
        char *missing;
        Credential *c = NULL;

        assert_true(asprintf(&missing, "%s/missing.json", tmpdir) > 0);
        {
                char *files[] = { missing, none, second, first, NULL };
                assert_int_equal(credentials_lookup(files, "ghcr.io", &c), 0);
                assert_string_equal(c->username, "second");
                c = credential_free(c);
        }
        {
                /* the first match wins: a broken file after it is never read */
                char *files[] = { first, broken, NULL };
                assert_int_equal(credentials_lookup(files, "ghcr.io", &c), 0);
                assert_string_equal(c->username, "first");
                c = credential_free(c);
        }
        {
                /* ... but a broken file before it is an error, not skipped */
                char *files[] = { broken, first, NULL };
                assert_int_equal(credentials_lookup(files, "ghcr.io", &c), -EINVAL);
                assert_null(c);
        }
        free(none);
        free(first);
        free(second);
        free(broken);
        free(missing);
}

static void check_malformed(const char *json, const char *expected_suffix) {
        char *path = write_file("bad.json", json), *err = NULL, *expected;
        char *files[] = { path, NULL };
        Credential *c = NULL;

        assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), -EINVAL);
        assert_null(c);
        assert_non_null(err);
        assert_true(asprintf(&expected, "%s: %s", path, expected_suffix) > 0);
        if (!streq(err, expected))
                fail_msg("got \"%s\", expected \"%s\"", err, expected);
        /* no secret in any message */
        assert_null(strstr(err, "s3cr3t"));
        assert_null(strstr(err, AUTH_ALICE));
        assert_null(strstr(err, "SECRETTOKEN"));
        free(expected);
        free(err);
        free(path);
}

static void test_malformed(void **state) {
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_ALICE "\"}}, SECRETTOKEN",
                        "malformed JSON at line 1 column 64");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"password\": \"s3cr3t\",\n \"x\" SECRETTOKEN}}}",
                        "malformed JSON at line 2 column 16");
        check_malformed("", "malformed JSON at line 1 column 0");
        check_malformed("[\"s3cr3t\"]", "expected a JSON object at the top level");
        check_malformed("{\"auths\": [\"s3cr3t\"]}", "\"auths\" is not an object");
        check_malformed("{\"auths\": {\"ghcr.io\": \"s3cr3t\"}}", "auths[\"ghcr.io\"] is not an object");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": 5}}}", "auths[\"ghcr.io\"].auth is not a string");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"password\": [\"s3cr3t\"]}}}",
                        "auths[\"ghcr.io\"].password is not a string");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": \"s3cr3t!!\"}}}",
                        "auths[\"ghcr.io\"].auth is not valid base64");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_NOCOLON "\"}}}",
                        "auths[\"ghcr.io\"].auth is not the base64 of user:password");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": \"dXNlcgBwOnE=\"}}}", /* "user\0p:q" */
                        "auths[\"ghcr.io\"].auth is not the base64 of user:password");
        /* a bad entry for another registry still makes the file wrong, as it does for docker */
        check_malformed("{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_ALICE "\"}, \"quay.io\": {\"auth\": \"%%%\"}}}",
                        "auths[\"quay.io\"].auth is not valid base64");
        check_malformed("{\"credsStore\": 5}", "\"credsStore\" is not a string");
        check_malformed("{\"credHelpers\": [\"gcr\"]}", "\"credHelpers\" is not an object");
        check_malformed("{\"auths\": {\"ghcr.io\": {\"password\": \"s3cr3t\\u0000\"}}}",
                        "malformed JSON at line 1 column 49");
}

static void test_not_a_file(void **state) {
        char *err = NULL;
        char *files[] = { tmpdir, NULL };
        Credential *c = NULL;

        assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), -EINVAL);
        assert_non_null(strstr(err, "not a regular file"));
        free(err);
        assert_int_equal(lookup_full(files, "", &c, &err), -EINVAL);
        free(err);
}

static void test_helpers(void **state) {
        char *store = write_file("store.json", "{\"auths\": {\"ghcr.io\": {}}, \"credsStore\": \"desktop\"}");
        char *helper = write_file("helper.json", "{\"credHelpers\": {\"https://ghcr.io\": \"gcr\"}}");
        char *plain = write_file("plain.json", "{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_ALICE "\"}}}");
        char *both = write_file("both.json",
                                "{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_ALICE "\"}}, \"credsStore\": \"desktop\"}");
        char *err = NULL, *expected;
        Credential *c = NULL;

        {
                char *files[] = { store, NULL };
                assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), -EOPNOTSUPP);
                assert_null(c);
                assert_true(asprintf(&expected, "%s: the login for ghcr.io is kept by docker-credential-desktop "
                                     "(credsStore), which pullwatch does not run; add an \"auths\" entry to one of "
                                     "the credentials files", store) > 0);
                assert_string_equal(err, expected);
                free(expected);
                free(err);
        }
        {
                char *files[] = { helper, NULL };
                assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), -EOPNOTSUPP);
                assert_non_null(strstr(err, "docker-credential-gcr (credHelpers)"));
                free(err);
                /* a helper for another registry is no concern of this lookup */
                assert_int_equal(lookup_full(files, "quay.io", &c, &err), 0);
                assert_null(c);
                assert_null(err);
        }
        {
                /* an auths entry with a login wins over the store */
                char *files[] = { both, NULL };
                assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), 0);
                assert_string_equal(c->username, "alice");
                c = credential_free(c);
        }
        {
                /* a helper in the first file does not hide a login in the second */
                char *files[] = { store, plain, NULL };
                assert_int_equal(lookup_full(files, "ghcr.io", &c, &err), 0);
                assert_string_equal(c->username, "alice");
                c = credential_free(c);
                assert_null(err);
        }
        {
                char *files[] = { store, NULL };
                assert_int_equal(credentials_lookup(files, "ghcr.io", &c), -EOPNOTSUPP);
        }
        free(store);
        free(helper);
        free(plain);
        free(both);
}

/* base64url with padding, as the engine decodes it */
static char *decode_url64(const char *s) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(s), len = 0;
        char *out = calloc(1, n + 1);
        uint32_t acc = 0;
        unsigned bits = 0;

        assert_int_equal(n % 4, 0);
        for (size_t i = 0; i < n && s[i] != '='; i++) {
                const char *p = strchr(a, s[i]);
                if (!p || !*p)
                        fail_msg("'%c' is not base64url", s[i]);
                acc = (acc << 6) | (uint32_t) (p - a);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[len++] = (char) ((acc >> bits) & 0xFF);
                }
        }
        return out;
}

static void test_docker_auth_header(void **state) {
        Credential c = { .username = (char *) "u", .password = (char *) "p", .server = (char *) "ghcr.io" };
        char *h = NULL, *json;

        assert_int_equal(credential_to_docker_auth_header(&c, &h), 0);
        json = decode_url64(h);
        assert_string_equal(json, "{\"username\":\"u\",\"password\":\"p\",\"serveraddress\":\"ghcr.io\"}");
        assert_string_equal(h, "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJzZXJ2ZXJhZGRyZXNzIjoiZ2hjci5pbyJ9");
        free(json);
        h = credential_secret_free(h);

        /* the URL alphabet: '>' and '?' bytes give '+' and '/' in the standard one */
        c.password = (char *) ">>>???";
        assert_int_equal(credential_to_docker_auth_header(&c, &h), 0);
        assert_null(strchr(h, '+'));
        assert_null(strchr(h, '/'));
        json = decode_url64(h);
        assert_string_equal(json, "{\"username\":\"u\",\"password\":\">>>???\",\"serveraddress\":\"ghcr.io\"}");
        free(json);
        h = credential_secret_free(h);

        /* escaping survives a real JSON parser */
        c.username = (char *) "we\"ird\\";
        c.password = (char *) "p\nw\x01 ü";
        assert_int_equal(credential_to_docker_auth_header(&c, &h), 0);
        json = decode_url64(h);
        {
                json_error_t je;
                json_t *j = json_loads(json, 0, &je);
                assert_non_null(j);
                assert_string_equal(json_string_value(json_object_get(j, "username")), "we\"ird\\");
                assert_string_equal(json_string_value(json_object_get(j, "password")), "p\nw\x01 ü");
                assert_string_equal(json_string_value(json_object_get(j, "serveraddress")), "ghcr.io");
                json_decref(j);
        }
        free(json);
        h = credential_secret_free(h);

        /* an identity token replaces username and password */
        c = (Credential) { .username = (char *) "u", .identity_token = (char *) "tok",
                           .server = (char *) "https://index.docker.io/v1/" };
        assert_int_equal(credential_to_docker_auth_header(&c, &h), 0);
        json = decode_url64(h);
        assert_string_equal(json, "{\"identitytoken\":\"tok\",\"serveraddress\":\"https://index.docker.io/v1/\"}");
        free(json);
        h = credential_secret_free(h);

        /* padding is kept: older engines decode with base64.URLEncoding, which needs it */
        c = (Credential) { .username = (char *) "a", .password = (char *) "b" };
        assert_int_equal(credential_to_docker_auth_header(&c, &h), 0);
        json = decode_url64(h);
        assert_string_equal(json, "{\"username\":\"a\",\"password\":\"b\"}");
        assert_string_equal(h + strlen(h) - 2, "==");
        free(json);
        credential_secret_free(h);
}

static void test_credential_free(void **state) {
        Credential *c = calloc(1, sizeof(Credential));

        assert_null(credential_free(NULL));
        assert_null(credential_secret_free(NULL));
        c->password = strdup("x");
        assert_null(credential_free(c));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auth_field),
                cmocka_unit_test(test_username_password_fields),
                cmocka_unit_test(test_identity_token),
                cmocka_unit_test(test_key_matching),
                cmocka_unit_test(test_exact_key_preferred),
                cmocka_unit_test(test_no_match),
                cmocka_unit_test(test_file_order),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_not_a_file),
                cmocka_unit_test(test_helpers),
                cmocka_unit_test(test_docker_auth_header),
                cmocka_unit_test(test_credential_free),
        };

        return cmocka_run_group_tests_name("credentials", tests, setup, teardown);
}
