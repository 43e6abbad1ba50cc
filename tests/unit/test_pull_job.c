/* Unit tests: the attempt's order against a fake RuntimeDriver and a fake liveness source. The runtime's
 * request goes out before the work that need not delay it: the liveness baseline (finding the runtime's
 * process in /proc) comes after the loop has sent the request, and still before the first sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/pull/pull_job.h"

static struct Fake {
        unsigned seq;          /* a clock of events in the order they happened */
        unsigned started, sent, baseline, samples;
        unsigned results;
} fake;

struct RuntimePull {
        sd_event_source *send; /* as curl's: the request goes out from the loop, at normal priority */
};

static int fake_send(sd_event_source *s, void *userdata) {
        fake.sent = ++fake.seq;
        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static int fake_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
                      void *userdata, RuntimePull **ret) {
        RuntimePull *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        fake.started = ++fake.seq;
        assert_int_equal(sd_event_add_defer(curl_glue_event(glue), &p->send, fake_send, p), 0);
        *ret = p;
        return 0;
}

static void fake_cancel(RuntimePull *p) {}

static RuntimePull *fake_free(RuntimePull *p) {
        if (p)
                sd_event_source_disable_unref(p->send);
        free(p);
        return NULL;
}

static const RuntimeDriver fake_driver = {
        .kind = RUNTIME_DOCKER,
        .name = "docker",
        .start = fake_start,
        .cancel = fake_cancel,
        .free = fake_free,
};

static int fake_sample(void *userdata, usec_t now, LivenessDelta *ret) {
        *ret = (LivenessDelta) {};
        if (!fake.baseline)
                fake.baseline = ++fake.seq;
        else
                fake.samples++;
        return 0;
}

static void on_event(PullJob *j, const PullEvent *e, void *userdata) {
        fake.results += e->kind == PULL_EVENT_RESULT;
}

static void test_baseline_after_the_request(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        _cleanup_(pull_job_freep) PullJob *j = NULL;
        Config *c = NULL;

        fake = (struct Fake) {};
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(curl_glue_new(e, &g), 0);
        assert_int_equal(config_new_default(&c), 0);
        /* no registry to probe (an unparsable reference): the attempt starts at once */
        assert_int_equal(pull_job_new(e, g, c, &fake_driver, &(PullRequest) { .image = "Not A Reference" }, on_event,
                                      NULL, &j), 0);
        pull_job_set_liveness(j, &(LivenessSource) { .sample = fake_sample });
        assert_int_equal(pull_job_start(j), 0);
        assert_int_equal(fake.started, 1);
        assert_int_equal(fake.baseline, 0); /* not in front of the request */
        for (unsigned i = 0; i < 100 && !fake.baseline; i++)
                assert_true(sd_event_run(e, 0) >= 0);
        assert_true(fake.sent > fake.started);
        assert_true(fake.baseline > fake.sent);
        assert_int_equal(fake.samples, 0); /* a baseline, not a sample */
        pull_job_abort(j, "test over");
        assert_int_equal(fake.results, 1);
        j = pull_job_free(j);
        config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_baseline_after_the_request),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
