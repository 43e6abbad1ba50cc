/* test_alert_catalog: the alert table is well formed, systemd/pullwatch.catalog has exactly one
 * entry, with a Subject and a body, for every MESSAGE_ID in it (and none for ids it does not have),
 * and the ALERTS table of man/pullwatch.8.md agrees with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ctype.h>
#include <libgen.h>
#include <syslog.h>
#include <cmocka.h>

#include "daemon/agent/alert_catalog.h"
#include "daemon/pull/diagnose.h"

#define MAX_ENTRIES 64

typedef struct CatalogEntry {
        char id[33];
        unsigned line;
        bool has_subject, has_defined_by, has_support;
        bool defined_by_pullwatch;
        unsigned body_lines;            /* non-blank lines after the header */
} CatalogEntry;

static CatalogEntry entries[MAX_ENTRIES];
static size_t n_entries;

static bool is_hex32(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!isxdigit((unsigned char) s[n]) || isupper((unsigned char) s[n]))
                        return false;
        return n == 32;
}

/* A file of the source tree: from __FILE__ as the compiler saw it (relative to the repo root in
 * `make unit`), else upwards from the binary, which lives under the repo's build dir. */
static const char *repo_path(const char *rel, char *buf, size_t size) {
        char file[] = __FILE__;
        snprintf(buf, size, "%s/../../%s", dirname(file), rel);
        if (access(buf, R_OK) == 0)
                return buf;
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
                exe[n] = 0;
                for (char *d = dirname(exe); strlen(d) > 1; d = dirname(d)) {
                        snprintf(buf, size, "%s/%s", d, rel);
                        if (access(buf, R_OK) == 0)
                                return buf;
                }
        }
        return buf;
}

static const char *catalog_path(char *buf, size_t size) {
        const char *env = getenv("PULLWATCH_CATALOG");
        return env ?: repo_path("systemd/pullwatch.catalog", buf, size);
}

static char *strip(char *s) {
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        while (isspace((unsigned char) *s))
                s++;
        return s;
}

/* The grammar journald's catalog importer accepts: "-- <id> [lang]" starts an entry, then header
 * lines "Key: value" up to the first blank line, then the body up to the next "-- " line. '#' lines
 * outside entries are comments. */
static int parse_catalog(void **state) {
        char pathbuf[4096];
        const char *path = catalog_path(pathbuf, sizeof pathbuf);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                return -1;
        }

        char line[4096];
        unsigned lineno = 0;
        CatalogEntry *cur = NULL;
        bool in_header = false;

        n_entries = 0;
        while (fgets(line, sizeof line, f)) {
                lineno++;
                char *l = strip(line);

                if (strncmp(line, "-- ", 3) == 0) {
                        if (n_entries >= MAX_ENTRIES)
                                return -1;
                        cur = &entries[n_entries++];
                        *cur = (CatalogEntry) { .line = lineno };
                        char *id = strip(line + 3);
                        char *sp = strchr(id, ' ');
                        if (sp)
                                *sp = 0;        /* a language tag may follow */
                        snprintf(cur->id, sizeof cur->id, "%s", id);
                        if (strlen(id) != 32)
                                cur->id[0] = '!';       /* fails is_hex32 below */
                        in_header = true;
                        continue;
                }
                if (!cur)
                        continue;               /* preamble comments */
                if (in_header) {
                        if (*l == 0) {
                                in_header = false;
                                continue;
                        }
                        if (strncmp(l, "Subject:", 8) == 0 && *strip(l + 8))
                                cur->has_subject = true;
                        else if (strncmp(l, "Defined-By:", 11) == 0) {
                                cur->has_defined_by = true;
                                cur->defined_by_pullwatch = streq(strip(l + 11), "pullwatch");
                        } else if (strncmp(l, "Support:", 8) == 0 && *strip(l + 8))
                                cur->has_support = true;
                        continue;
                }
                if (*l)
                        cur->body_lines++;
        }
        *state = NULL;
        return 0;
}

static const CatalogEntry *find_entry(const char *id, unsigned *ret_count) {
        const CatalogEntry *found = NULL;
        unsigned count = 0;
        for (size_t i = 0; i < n_entries; i++)
                if (streq(entries[i].id, id)) {
                        found = found ?: &entries[i];
                        count++;
                }
        *ret_count = count;
        return found;
}

static void test_table_well_formed(void **state) {
        for (int k = 0; k < _ALERT_KIND_MAX; k++) {
                const AlertInfo *a = alert_info(k);
                assert_non_null(a);
                assert_int_equal(a->kind, k);

                /* kebab-case: [a-z0-9] words joined by single dashes */
                assert_non_null(a->name);
                assert_true(a->name[0] && islower((unsigned char) a->name[0]));
                for (const char *p = a->name; *p; p++) {
                        assert_true(islower((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '-');
                        if (*p == '-')
                                assert_true(p[1] && p[1] != '-');
                }
                assert_int_equal(alert_kind_from_string(a->name), k);
                assert_string_equal(alert_kind_to_string(k), a->name);

                const char *id = alert_kind_message_id(k);
                assert_non_null(id);
                assert_true(is_hex32(id));
                assert_string_equal(a->message_id_field + strlen("MESSAGE_ID="), id);
                assert_int_equal(strncmp(a->message_id_field, "MESSAGE_ID=", 11), 0);
                assert_int_equal(alert_kind_from_message_id(id), k);

                /* printf-free, one line, something to say */
                assert_non_null(a->summary);
                assert_true(strlen(a->summary) > 10);
                assert_null(strchr(a->summary, '%'));
                assert_null(strchr(a->summary, '\n'));
                assert_string_equal(alert_kind_summary(k), a->summary);

                char want[16];
                snprintf(want, sizeof want, "PRIORITY=%d", a->priority);
                assert_string_equal(alert_kind_priority_field(k), want);
                assert_int_equal(alert_kind_priority(k), a->priority);
        }
}

static void test_ids_and_names_unique(void **state) {
        for (int i = 0; i < _ALERT_KIND_MAX; i++)
                for (int j = i + 1; j < _ALERT_KIND_MAX; j++) {
                        assert_string_not_equal(alert_kind_message_id(i), alert_kind_message_id(j));
                        assert_string_not_equal(alert_kind_to_string(i), alert_kind_to_string(j));
                }
}

static void test_priorities(void **state) {
        static const struct {
                AlertKind kind;
                int priority;
        } want[] = {
                { ALERT_PULL_STALLED, LOG_WARNING },
                { ALERT_PULL_HUNG, LOG_WARNING },
                { ALERT_PULL_DEGRADED, LOG_WARNING },
                { ALERT_PULL_FAILED_PERMANENT, LOG_ERR },
                { ALERT_PULL_FAILED, LOG_ERR },
                { ALERT_PULL_RECOVERED, LOG_NOTICE },
                { ALERT_PREHEAT_COMPLETE, LOG_INFO },
                { ALERT_LIST_INVALID, LOG_ERR },
                { ALERT_RUNTIME_UNREACHABLE, LOG_ERR },
                { ALERT_RUNTIME_RECOVERED, LOG_INFO },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_int_equal(alert_kind_priority(want[i].kind), want[i].priority);
        for (int k = 0; k < _ALERT_KIND_MAX; k++)
                if (alert_kind_is_diagnosis(k))
                        assert_int_equal(alert_kind_priority(k), LOG_WARNING);
        assert_false(alert_kind_is_diagnosis(ALERT_RUNTIME_RECOVERED));
        assert_true(alert_kind_is_diagnosis(ALERT_DIAG_DECOMPRESSOR_HANG));
        assert_true(alert_kind_is_diagnosis(ALERT_DIAG_DISK_FULL));
}

static void test_lookups_reject(void **state) {
        assert_null(alert_info(_ALERT_KIND_MAX));
        assert_null(alert_info(-1));
        assert_null(alert_kind_to_string(_ALERT_KIND_MAX));
        assert_null(alert_kind_message_id(-1));
        assert_null(alert_kind_priority_field(_ALERT_KIND_MAX));
        assert_null(alert_kind_summary(_ALERT_KIND_MAX));
        assert_int_equal(alert_kind_priority(_ALERT_KIND_MAX), -EINVAL);
        assert_int_equal(alert_kind_from_string(NULL), -EINVAL);
        assert_int_equal(alert_kind_from_string(""), -EINVAL);
        assert_int_equal(alert_kind_from_string("PULL-STALLED"), -EINVAL);
        assert_int_equal(alert_kind_from_message_id(NULL), -EINVAL);
        assert_int_equal(alert_kind_from_message_id(""), -EINVAL);
        assert_int_equal(alert_kind_from_message_id("00000000000000000000000000000000"), -EINVAL);
        assert_int_equal(alert_kind_from_message_id("f36e7887655d4e898f44005084b71ed"), -EINVAL);
        assert_int_equal(alert_kind_from_message_id("f36e7887655d4e898f44005084b71ed4a"), -EINVAL);
        assert_int_equal(alert_kind_from_message_id("g36e7887655d4e898f44005084b71ed4"), -EINVAL);
}

static void test_message_id_forms(void **state) {
        /* `journalctl --list-catalog` prints plain hex; sd_id128 and uuidgen print the dashed form. */
        assert_int_equal(alert_kind_from_message_id("f36e7887655d4e898f44005084b71ed4"), ALERT_PULL_STALLED);
        assert_int_equal(alert_kind_from_message_id("F36E7887-655D-4E89-8F44-005084B71ED4"), ALERT_PULL_STALLED);
        assert_string_equal(alert_kind_to_string(ALERT_DIAG_DECOMPRESSOR_HANG), "decompressor-hang");
        assert_string_equal(alert_kind_to_string(ALERT_PULL_FAILED_PERMANENT), "pull-failed-permanent");
}

static void test_catalog_has_every_kind_once(void **state) {
        assert_true(n_entries > 0);
        for (int k = 0; k < _ALERT_KIND_MAX; k++) {
                unsigned count;
                const CatalogEntry *e = find_entry(alert_kind_message_id(k), &count);
                if (count != 1)
                        fail_msg("%s (%s): %u catalog entries, want 1", alert_kind_to_string(k),
                                 alert_kind_message_id(k), count);
                if (!e->has_subject || !e->has_defined_by || !e->defined_by_pullwatch || !e->has_support)
                        fail_msg("%s: catalog line %u lacks Subject, Defined-By: pullwatch or Support",
                                 alert_kind_to_string(k), e->line);
                if (e->body_lines < 3)
                        fail_msg("%s: catalog line %u: body has %u lines; say what happened, why it "
                                 "matters and what to do", alert_kind_to_string(k), e->line, e->body_lines);
        }
}

static void test_catalog_ids_valid_and_known(void **state) {
        for (size_t i = 0; i < n_entries; i++) {
                if (!is_hex32(entries[i].id))
                        fail_msg("catalog line %u: id is not 32 lowercase hex", entries[i].line);
                if (alert_kind_from_message_id(entries[i].id) < 0)
                        fail_msg("catalog line %u: %s has no alert kind", entries[i].line, entries[i].id);
                for (size_t j = i + 1; j < n_entries; j++)
                        if (streq(entries[i].id, entries[j].id))
                                fail_msg("catalog lines %u and %u: duplicate id", entries[i].line,
                                         entries[j].line);
        }
        assert_int_equal(n_entries, _ALERT_KIND_MAX);
}

/* journalctl replaces @FIELD@ with the entry's field; a misspelt one would print its bare name. */
static void test_catalog_fields_known(void **state) {
        static const char *const known[] = {
                "PULLWATCH_IMAGE", "PULLWATCH_RUNTIME", "PULLWATCH_LAYER", "PULLWATCH_PHASE",
                "PULLWATCH_VERDICT", "PULLWATCH_ATTEMPT", "PULLWATCH_EVIDENCE", "PULLWATCH_DIAGNOSIS",
                "PULLWATCH_CLIENT", "PULLWATCH_HOP", "PULLWATCH_WAITED_SEC", "PULLWATCH_NEXT",
        };
        char pathbuf[4096], line[4096];
        _cleanup_fclose_ FILE *f = fopen(catalog_path(pathbuf, sizeof pathbuf), "re");
        unsigned lineno = 0;
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
                lineno++;
                if (line[0] == '#')
                        continue;
                for (char *p = strchr(line, '@'); p; p = strchr(p + 1, '@')) {
                        size_t k = strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
                        if (k == 0 || p[k + 1] != '@')
                                continue;
                        bool ok = false;
                        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                                if (strlen(known[i]) == k && strncmp(known[i], p + 1, k) == 0)
                                        ok = true;
                        if (!ok)
                                fail_msg("catalog line %u: unknown field @%.*s@", lineno, (int) k, p + 1);
                        p += k + 1;
                }
        }
}

/* pullwatch(8) documents the table; its ALERTS rows must say what the code says. */
static void test_man_page_table(void **state) {
        char pathbuf[4096], line[4096];
        _cleanup_fclose_ FILE *f = fopen(repo_path("man/pullwatch.8.md", pathbuf, sizeof pathbuf), "re");
        unsigned seen[_ALERT_KIND_MAX] = {};
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
                char name[64], id[64], prio[32];
                if (sscanf(line, "| %63s | %63s | %31s |", name, id, prio) != 3)
                        continue;
                AlertKind k = alert_kind_from_string(name);
                if (k < 0)
                        continue;
                seen[k]++;
                if (!streq(id, alert_kind_message_id(k)))
                        fail_msg("pullwatch.8.md: %s has id %s, code says %s", name, id, alert_kind_message_id(k));
                const char *want = alert_kind_priority(k) == LOG_ERR       ? "err"
                                   : alert_kind_priority(k) == LOG_WARNING ? "warning"
                                   : alert_kind_priority(k) == LOG_NOTICE  ? "notice"
                                                                           : "info";
                if (!streq(prio, want))
                        fail_msg("pullwatch.8.md: %s has priority %s, code says %s", name, prio, want);
        }
        for (int k = 0; k < _ALERT_KIND_MAX; k++)
                if (seen[k] != 1)
                        fail_msg("pullwatch.8.md: %s listed %u times in ALERTS", alert_kind_to_string(k), seen[k]);
}

/* PULLWATCH_DIAGNOSIS carries diagnose.c's names; each must have its alert kind (and catalog entry)
 * under the same name. not-found has none of its own: it is reported as pull-failed-permanent. */
static void test_diagnoses_have_alert_kinds(void **state) {
        for (int d = 0; d < _DIAGNOSIS_MAX; d++) {
                const char *name = diagnosis_to_string(d);
                assert_non_null(name);
                if (d == DIAG_NONE || d == DIAG_NOT_FOUND)
                        continue;
                AlertKind k = alert_kind_from_string(name);
                if (k < 0 || !alert_kind_is_diagnosis(k))
                        fail_msg("diagnosis %s has no diagnosis alert kind", name);
        }
        for (int k = 0; k < _ALERT_KIND_MAX; k++)
                if (alert_kind_is_diagnosis(k) && diagnosis_from_string(alert_kind_to_string(k)) < 0)
                        fail_msg("alert kind %s is no diagnosis of diagnose.c", alert_kind_to_string(k));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_well_formed),
                cmocka_unit_test(test_ids_and_names_unique),
                cmocka_unit_test(test_priorities),
                cmocka_unit_test(test_lookups_reject),
                cmocka_unit_test(test_message_id_forms),
                cmocka_unit_test(test_catalog_has_every_kind_once),
                cmocka_unit_test(test_catalog_ids_valid_and_known),
                cmocka_unit_test(test_catalog_fields_known),
                cmocka_unit_test(test_man_page_table),
                cmocka_unit_test(test_diagnoses_have_alert_kinds),
        };
        return cmocka_run_group_tests_name("alert_catalog", tests, parse_catalog, NULL);
}
