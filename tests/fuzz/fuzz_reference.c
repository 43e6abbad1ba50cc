/* fuzz_reference: image references (from the preheat list, the control socket, the command line) and
 * the duration and size values of the config. A reference that parses prints to one that parses to
 * the same thing; a duration or size formats to a string that parses back to the same value. */
#include "tests/fuzz/fuzz_util.h"
#include "basic/reference.h"
#include "config/config.h"

static void reference(const char *s) {
        ImageRef *r = NULL, *r2 = NULL;
        const char *why = NULL;
        char *str = NULL, *str2 = NULL, *repo = NULL;

        if (reference_parse_reason(s, &r, &why) < 0) {
                FUZZ_CHECK(!r && why);
                return;
        }
        FUZZ_CHECK(r->domain && r->path && (r->tag || r->digest));
        FUZZ_CHECK(reference_to_string(r, &str) == 0);
        FUZZ_CHECK(reference_repository(r, &repo) == 0);
        FUZZ_CHECK(reference_registry_host(r));
        if (reference_parse(str, &r2) < 0) {
                fprintf(stderr, "'%s' printed as '%s', which does not parse\n", s, str);
                abort();
        }
        FUZZ_CHECK(reference_to_string(r2, &str2) == 0);
        FUZZ_CHECK(streq(str, str2));
        FUZZ_CHECK(streq(r->domain, r2->domain) && streq(r->path, r2->path));
        FUZZ_CHECK(streq_ptr(r->tag, r2->tag) && streq_ptr(r->digest, r2->digest));
        free(str);
        free(str2);
        free(repo);
        reference_free(r);
        reference_free(r2);
}

static void units(const char *s) {
        usec_t u, u2;
        uint64_t b, b2;
        char *f;

        if (parse_duration(s, &u) == 0) {
                f = format_duration(u);
                FUZZ_CHECK(f);
                FUZZ_CHECK(parse_duration(f, &u2) == 0);
                FUZZ_CHECK(u == u2);
                free(f);
        }
        if (parse_size(s, &b) == 0) {
                f = format_size(b);
                FUZZ_CHECK(f);
                FUZZ_CHECK(parse_size(f, &b2) == 0);
                FUZZ_CHECK(b == b2);
                free(f);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        reference(s);
        units(s);
        free(s);
        return 0;
}
