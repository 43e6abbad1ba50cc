/* test_alerts: journald records built field by field (without sending), the pull-event to alert
 * mapping, and the rate limit per image (or key) and kind, through a capturing sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>
#include <cmocka.h>

#include "daemon/agent/alerts.h"

typedef struct Capture {
        unsigned n;
        char last[4096];
} Capture;

static int capture_sink(const struct iovec *iov, size_t n, void *userdata) {
        Capture *c = userdata;
        size_t off = 0;
        c->n++;
        c->last[0] = 0;
        for (size_t i = 0; i < n && off + iov[i].iov_len + 2 < sizeof(c->last); i++) {
                memcpy(c->last + off, iov[i].iov_base, iov[i].iov_len);
                off += iov[i].iov_len;
                c->last[off++] = '\n';
                c->last[off] = 0;
        }
        return 0;
}

static void assert_field(const AlertRecord *r, const char *field, const char *want) {
        size_t len;
        const char *v = alert_record_get(r, field, &len);
        if (!want) {
                assert_null(v);
                return;
        }
        assert_non_null(v);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(v, want, len);
}

static void test_record_fields(void **s) {
        AlertRecord r;
        AlertFields f = { .image = "reg/app:v1", .runtime = "docker", .layer = "0123456789ab", .phase = "downloading",
                          .verdict = "stalled", .evidence = "no bytes for 61s\nat 40%", .attempt = 2 };
        char id[64];

        assert_int_equal(alert_record_build(ALERT_PULL_STALLED, &f, "Pull of reg/app:v1 stalled.", &r), 0);
        snprintf(id, sizeof id, "%s", alert_kind_message_id(ALERT_PULL_STALLED));
        assert_field(&r, "SYSLOG_IDENTIFIER", "pullwatch");
        assert_field(&r, "MESSAGE_ID", id);
        assert_field(&r, "PRIORITY", "4");
        assert_field(&r, "MESSAGE", "Pull of reg/app:v1 stalled.");
        assert_field(&r, "PULLWATCH_IMAGE", "reg/app:v1");
        assert_field(&r, "PULLWATCH_RUNTIME", "docker");
        assert_field(&r, "PULLWATCH_LAYER", "0123456789ab");
        assert_field(&r, "PULLWATCH_PHASE", "downloading");
        assert_field(&r, "PULLWATCH_VERDICT", "stalled");
        assert_field(&r, "PULLWATCH_ATTEMPT", "2");
        assert_field(&r, "PULLWATCH_EVIDENCE", "no bytes for 61s\nat 40%"); /* fields keep the raw bytes */
        assert_field(&r, "PULLWATCH_DIAGNOSIS", NULL);
        assert_field(&r, "PULLWATCH_ALERT", "pull-stalled");
        alert_record_done(&r);

        /* unset fields are left out, the summary stands in for a missing message */
        assert_int_equal(alert_record_build(ALERT_LIST_INVALID, NULL, NULL, &r), 0);
        assert_field(&r, "MESSAGE", alert_kind_summary(ALERT_LIST_INVALID));
        assert_field(&r, "PRIORITY", "3");
        assert_field(&r, "PULLWATCH_IMAGE", NULL);
        assert_field(&r, "PULLWATCH_ATTEMPT", NULL);
        assert_int_equal(r.n, 5);
        alert_record_done(&r);

        /* preheat's wait for a node-local mirror: the hop, how long, and what comes next */
        f = (AlertFields) { .image = "reg/app:v1", .runtime = "containerd", .hop = "127.0.0.1:30020",
                            .waited_sec = 12, .next = "wait" };
        assert_int_equal(alert_record_build(ALERT_PREHEAT_MIRROR_WAIT, &f, "m", &r), 0);
        assert_field(&r, "PULLWATCH_ALERT", "preheat-mirror-wait");
        assert_field(&r, "PULLWATCH_HOP", "127.0.0.1:30020");
        assert_field(&r, "PULLWATCH_WAITED_SEC", "12");
        assert_field(&r, "PULLWATCH_NEXT", "wait");
        alert_record_done(&r);

        /* MESSAGE is a line journalctl prints: untrusted text in it cannot start a line of its own */
        f.evidence = "denied\n<0>forged \033[31m";
        assert_int_equal(alert_record_build(ALERT_PULL_FAILED, &f, "<2>Pull of x failed: denied\n<0>forged \033[31m", &r), 0);
        assert_field(&r, "MESSAGE", "\\x3c2>Pull of x failed: denied\\n<0>forged \\x1b[31m");
        assert_field(&r, "PULLWATCH_EVIDENCE", "denied\n<0>forged \033[31m");
        alert_record_done(&r);

        assert_int_equal(alert_record_build(_ALERT_KIND_MAX, &f, "x", &r), -EINVAL);
        assert_int_equal(alert_record_build((AlertKind) -1, &f, "x", &r), -EINVAL);
}

static void test_priorities(void **s) {
        AlertRecord r;
        static const struct { AlertKind k; const char *p; } want[] = {
                { ALERT_PULL_HUNG, "4" }, { ALERT_PULL_FAILED, "3" }, { ALERT_PULL_FAILED_PERMANENT, "3" },
                { ALERT_PULL_RECOVERED, "5" }, { ALERT_PREHEAT_COMPLETE, "6" }, { ALERT_DIAG_DECOMPRESSOR_HANG, "4" },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                assert_int_equal(alert_record_build(want[i].k, NULL, "m", &r), 0);
                assert_field(&r, "PRIORITY", want[i].p);
                alert_record_done(&r);
        }
}

static void test_event_mapping(void **s) {
        static const struct {
                PullEvent e;
                int want;
        } cases[] = {
                { { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_STALLED }, ALERT_PULL_STALLED },
                { { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_HUNG }, ALERT_PULL_HUNG },
                { { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_DEGRADED }, ALERT_PULL_DEGRADED },
                { { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_SILENT_ALIVE }, -ENODATA },
                { { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_PROGRESSING }, -ENODATA },
                { { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = "decompressor-hang" }, ALERT_DIAG_DECOMPRESSOR_HANG },
                { { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = "middlebox-timeout" }, ALERT_DIAG_MIDDLEBOX_TIMEOUT },
                { { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = "octet-stream-config" }, ALERT_DIAG_OCTET_STREAM_CONFIG },
                { { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = "not-found" }, -ENODATA },
                { { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = "pull-stalled" }, -ENODATA }, /* not a diagnosis */
                { { .kind = PULL_EVENT_RESULT, .ok = true, .attempt = 1 }, -ENODATA },
                { { .kind = PULL_EVENT_RESULT, .ok = true, .attempt = 3 }, ALERT_PULL_RECOVERED },
                { { .kind = PULL_EVENT_RESULT, .error = ERROR_PERMANENT, .attempt = 1 }, ALERT_PULL_FAILED_PERMANENT },
                { { .kind = PULL_EVENT_RESULT, .error = ERROR_TRANSIENT, .attempt = 5 }, ALERT_PULL_FAILED },
                { { .kind = PULL_EVENT_RESULT, .error = ERROR_CANCELLED, .attempt = 1 }, -ENODATA },
                { { .kind = PULL_EVENT_PROGRESS }, -ENODATA },
                { { .kind = PULL_EVENT_RETRY }, -ENODATA },
                { { .kind = PULL_EVENT_ACTION, .verdict = VERDICT_STALLED }, -ENODATA },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(alert_kind_for_pull_event(&cases[i].e), cases[i].want);
}

static void test_event_fields(void **s) {
        PullEvent v = { .kind = PULL_EVENT_VERDICT, .image = "reg/app:v1", .runtime = "containerd", .attempt = 1,
                        .layer = "abcdef012345", .phase = PHASE_EXTRACTING, .verdict = VERDICT_HUNG,
                        .evidence = "no output, CPU or disk growth for 121s" };
        PullEvent d = { .kind = PULL_EVENT_DIAGNOSIS, .image = "reg/app:v1", .runtime = "docker", .attempt = 2,
                        .diagnosis = "decompressor-hang", .remedy = "unpigz hung; set MOBY_DISABLE_PIGZ=true." };
        PullEvent f = { .kind = PULL_EVENT_RESULT, .image = "reg/app:v1", .runtime = "docker", .attempt = 5,
                        .error = ERROR_TRANSIENT, .reason = "gave up after 5 attempts: EOF", .diagnosis = "middlebox-timeout" };
        _cleanup_free_ char *m = NULL;
        AlertFields af;
        AlertKind k;

        assert_int_equal(alert_for_pull_event(&v, &k, &af, &m), 0);
        assert_int_equal(k, ALERT_PULL_HUNG);
        assert_string_equal(af.phase, "extracting");
        assert_string_equal(af.verdict, "hung");
        assert_string_equal(af.layer, "abcdef012345");
        assert_string_equal(af.evidence, v.evidence);
        assert_int_equal(af.attempt, 1);
        assert_non_null(strstr(m, "reg/app:v1"));
        assert_non_null(strstr(m, "extracting"));
        assert_null(strchr(m, '\n'));
        free(m);
        m = NULL;

        assert_int_equal(alert_for_pull_event(&d, &k, &af, &m), 0);
        assert_int_equal(k, ALERT_DIAG_DECOMPRESSOR_HANG);
        assert_string_equal(af.diagnosis, "decompressor-hang");
        assert_non_null(strstr(m, "MOBY_DISABLE_PIGZ=true"));
        free(m);
        m = NULL;

        assert_int_equal(alert_for_pull_event(&f, &k, &af, &m), 0);
        assert_int_equal(k, ALERT_PULL_FAILED);
        assert_string_equal(af.diagnosis, "middlebox-timeout");
        assert_non_null(strstr(m, "5 attempts"));
}

static void test_rate_limit(void **s) {
        _cleanup_(alerts_freep) Alerts *a = NULL;
        Capture c = {};
        AlertFields x = { .image = "x:1" }, y = { .image = "y:1" }, keyed = { .image = "x:1", .rate_key = "list: err A" };
        usec_t t = 1000 * USEC_PER_SEC, lim = 600 * USEC_PER_SEC;

        assert_int_equal(alerts_new(lim, &a), 0);
        alerts_set_sink(a, capture_sink, &c);
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "one", t), 1);
        assert_non_null(strstr(c.last, "MESSAGE=one\n"));
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "two", t + USEC_PER_SEC), 0);  /* same image+kind */
        assert_int_equal(alerts_send(a, ALERT_PULL_HUNG, &x, "three", t + USEC_PER_SEC), 1);    /* other kind */
        /* other image, same cause within the minute: held for the cause's summary (test_aggregate) */
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &y, "four", t + USEC_PER_SEC), 0);
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &keyed, "five", t + USEC_PER_SEC), 1); /* other key */
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "six", t + lim - 1), 0);
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "seven", t + lim), 1);          /* window over */
        assert_int_equal(c.n, 5); /* one, three, five, the minute's summary (four), seven */
        assert_non_null(strstr(c.last, "MESSAGE=seven\n"));

        /* no image at all: one key for the kind */
        assert_int_equal(alerts_send(a, ALERT_RUNTIME_UNREACHABLE, NULL, "down", t), 1);
        assert_int_equal(alerts_send(a, ALERT_RUNTIME_UNREACHABLE, NULL, "down", t + 1), 0);

        /* 0 = no limit */
        alerts_set_rate_limit(a, 0);
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "a", t + lim), 1);
        assert_int_equal(alerts_send(a, ALERT_PULL_STALLED, &x, "b", t + lim), 1);
}

static void test_pull_event_through_rate_limit(void **s) {
        _cleanup_(alerts_freep) Alerts *a = NULL;
        Capture c = {};
        PullEvent v = { .kind = PULL_EVENT_VERDICT, .image = "reg/app:v1", .runtime = "docker", .attempt = 1,
                        .layer = "abcdef012345", .phase = PHASE_DOWNLOADING, .verdict = VERDICT_STALLED, .evidence = "no bytes for 7s" };
        PullEvent p = { .kind = PULL_EVENT_PROGRESS, .image = "reg/app:v1" };

        assert_int_equal(alerts_new(60 * USEC_PER_SEC, &a), 0);
        alerts_set_sink(a, capture_sink, &c);
        assert_int_equal(alerts_pull_event(a, &p, 1), 0);
        assert_int_equal(alerts_pull_event(a, &v, 1), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_VERDICT=stalled\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_PHASE=downloading\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_ATTEMPT=1\n"));
        v.attempt = 2; /* the next attempt stalls too: within the window, one alert is enough */
        assert_int_equal(alerts_pull_event(a, &v, 2 * USEC_PER_SEC), 0);
        assert_int_equal(c.n, 1);
}

/* Another client's pull whose image is not known: a mirror diagnosis counts per runtime and hop.
 * The same mirror failing in front of containerd and then of dockerd is two alerts (two remedies);
 * another mirror is another alert; the same one again within the window is not. */
static void test_guard_rate_key(void **s) {
        _cleanup_(alerts_freep) Alerts *a = NULL;
        Capture c = {};
        PullEvent e = { .kind = PULL_EVENT_DIAGNOSIS, .client = "cri", .runtime = "containerd",
                        .diagnosis = "mirror-unresponsive", .hop = "127.0.0.1:5001", .remedy = "repair the mirror" };

        assert_int_equal(alerts_new(600 * USEC_PER_SEC, &a), 0);
        alerts_set_sink(a, capture_sink, &c);
        assert_int_equal(alerts_pull_event(a, &e, 1), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_HOP=127.0.0.1:5001\n"));
        assert_int_equal(alerts_pull_event(a, &e, 2 * USEC_PER_SEC), 0);
        e.runtime = "docker";
        e.client = "engine-api";
        assert_int_equal(alerts_pull_event(a, &e, 3 * USEC_PER_SEC), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_RUNTIME=docker\n"));
        e.hop = "127.0.0.1:5002";
        assert_int_equal(alerts_pull_event(a, &e, 4 * USEC_PER_SEC), 1);
        assert_int_equal(c.n, 3);
}

/* Another client's pull whose image is known (range-ignored, the guard's Range probe of a layer in
 * flight): a hop's diagnosis still counts per runtime and hop, not per image, and is not held for the
 * per-image aggregate: the same hop under another image within the window is not sent again, another
 * hop is, at once. */
static void test_guard_hop_with_image(void **s) {
        _cleanup_(alerts_freep) Alerts *a = NULL;
        Capture c = {};
        PullEvent e = { .kind = PULL_EVENT_DIAGNOSIS, .client = "cri", .runtime = "containerd",
                        .diagnosis = "range-ignored", .hop = "127.0.0.1:5001", .image = "reg:5000/app@sha256:aa",
                        .remedy = "enable Range support on 127.0.0.1:5001" };

        assert_int_equal(alerts_new(600 * USEC_PER_SEC, &a), 0);
        alerts_set_sink(a, capture_sink, &c);
        assert_int_equal(alerts_pull_event(a, &e, 1), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_HOP=127.0.0.1:5001\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_IMAGE=reg:5000/app@sha256:aa\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_OWNER=other\n"));
        e.image = "reg:5000/other@sha256:bb";
        assert_int_equal(alerts_pull_event(a, &e, 2 * USEC_PER_SEC), 0);
        e.hop = "127.0.0.1:5002";
        assert_int_equal(alerts_pull_event(a, &e, 3 * USEC_PER_SEC), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_HOP=127.0.0.1:5002\n"));
        assert_int_equal(c.n, 2);
}

/* A bad list: 200 images fail the same way (not found) within seconds. The journal gets the first
 * one as it is, then one summary per minute naming the count and the first few images; another cause
 * keeps its own entry; a quiet minute ends the aggregate, and the next failure is sent at once again. */
static void test_aggregate(void **s) {
        _cleanup_(alerts_freep) Alerts *a = NULL;
        Capture c = {};
        usec_t t = 1000 * USEC_PER_SEC;
        char img[64], id[64];
        PullEvent e = { .kind = PULL_EVENT_RESULT, .runtime = "docker", .attempt = 1, .ok = false,
                        .error = ERROR_PERMANENT, .reason = "manifest unknown", .diagnosis = "not-found" };

        assert_int_equal(alerts_new(600 * USEC_PER_SEC, &a), 0);
        alerts_set_sink(a, capture_sink, &c);
        for (unsigned i = 0; i < 200; i++) {
                snprintf(img, sizeof img, "reg/missing%u:v1", i);
                e.image = img;
                assert_int_equal(alerts_pull_event(a, &e, t + i * 100 * USEC_PER_MSEC), i == 0);
        }
        assert_int_equal(c.n, 1);
        assert_non_null(strstr(c.last, "PULLWATCH_IMAGE=reg/missing0:v1\n"));
        assert_null(strstr(c.last, "PULLWATCH_COUNT="));

        /* another cause in the same minute: its own first entry */
        e.image = "reg/private:v1";
        e.diagnosis = "auth";
        assert_int_equal(alerts_pull_event(a, &e, t + 30 * USEC_PER_SEC), 1);
        assert_int_equal(c.n, 2);

        alerts_flush(a, t + ALERTS_AGGREGATE_WINDOW - 1); /* not yet */
        assert_int_equal(c.n, 2);
        alerts_flush(a, t + ALERTS_AGGREGATE_WINDOW);
        assert_int_equal(c.n, 3); /* the not-found summary; the auth minute held nothing */
        snprintf(id, sizeof id, "MESSAGE_ID=%s\n", alert_kind_message_id(ALERT_PULL_FAILED_PERMANENT));
        assert_non_null(strstr(c.last, id));
        assert_non_null(strstr(c.last, "PULLWATCH_COUNT=199\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_IMAGES=reg/missing1:v1 reg/missing2:v1 reg/missing3:v1\n"));
        assert_non_null(strstr(c.last, "PULLWATCH_DIAGNOSIS=not-found\n"));
        assert_null(strstr(c.last, "PULLWATCH_IMAGE="));
        assert_non_null(strstr(c.last, "199 more pulls"));

        /* the cause goes on into the next minute: held again, one summary at its end */
        e.diagnosis = "not-found";
        e.image = "reg/missing200:v1";
        assert_int_equal(alerts_pull_event(a, &e, t + 70 * USEC_PER_SEC), 0);
        alerts_flush(a, t + 2 * ALERTS_AGGREGATE_WINDOW);
        assert_int_equal(c.n, 4);
        assert_non_null(strstr(c.last, "PULLWATCH_COUNT=1\n"));
        /* a quiet minute ends it: the next failure is news again */
        alerts_flush(a, t + 3 * ALERTS_AGGREGATE_WINDOW);
        assert_int_equal(c.n, 4);
        e.image = "reg/missing201:v1";
        assert_int_equal(alerts_pull_event(a, &e, t + 3 * ALERTS_AGGREGATE_WINDOW + 1), 1);
        assert_non_null(strstr(c.last, "PULLWATCH_IMAGE=reg/missing201:v1\n"));

        /* rate_limit 0: every alert as it comes */
        alerts_set_rate_limit(a, 0);
        e.image = "reg/missing202:v1";
        assert_int_equal(alerts_pull_event(a, &e, t + 3 * ALERTS_AGGREGATE_WINDOW + 2), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_fields),
                cmocka_unit_test(test_priorities),
                cmocka_unit_test(test_event_mapping),
                cmocka_unit_test(test_event_fields),
                cmocka_unit_test(test_rate_limit),
                cmocka_unit_test(test_pull_event_through_rate_limit),
                cmocka_unit_test(test_guard_rate_key),
                cmocka_unit_test(test_guard_hop_with_image),
                cmocka_unit_test(test_aggregate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
