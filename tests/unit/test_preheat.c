/* test_preheat: the per-node splay (deterministic, in range, spread) and the scheduler driven through
 * real PullJobs against a fake RuntimeDriver defined here: concurrency, priority order, present images
 * not pulled, failures recorded, removed items forgotten (a running pull cancelled, nothing deleted),
 * an evicted image re-pulled at its recheck, no pulls while the runtime is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/preheat/preheat.h"
#include "probes/runtime/runtime_op.h"

/* ---- the fake runtime ---- */

#define FAKE_MAX 32

static struct Fake {
        char present[FAKE_MAX][128];
        size_t n_present;
        char started[FAKE_MAX][128];
        size_t n_started;
        unsigned running, max_running, cancelled;
        usec_t pull_time;
        int confirm_error;        /* != 0: the runtime does not answer presence checks */
        bool count_confirms;      /* count the checks in flight (a test that cancels none) */
        unsigned confirming, max_confirming; /* presence checks asked and not answered yet */
} fake;

struct RuntimePull {
        PullCallbacks cb;
        void *userdata;
        sd_event_source *timer;
        char image[128];
        bool done;
};

static bool fake_is_present(const char *image) {
        for (size_t i = 0; i < fake.n_present; i++)
                if (streq(fake.present[i], image))
                        return true;
        return false;
}

static void fake_set_present(const char *image, bool present) {
        for (size_t i = 0; i < fake.n_present; i++)
                if (streq(fake.present[i], image)) {
                        if (!present)
                                memmove(fake.present[i], fake.present[i + 1], (fake.n_present-- - i - 1) * sizeof(fake.present[0]));
                        return;
                }
        if (present && fake.n_present < FAKE_MAX)
                snprintf(fake.present[fake.n_present++], sizeof(fake.present[0]), "%s", image);
}

static int fake_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        RuntimePull *p = userdata;
        p->done = true;
        fake.running--;
        if (strstr(p->image, "missing")) {
                p->cb.finished(p->userdata, &(PullOutcome) { .error = ERROR_PERMANENT, .message = "manifest unknown" });
                return 0;
        }
        p->cb.layer(p->userdata, "0123456789ab", PHASE_DOWNLOADING, 10, 10, now_monotonic());
        p->cb.layer(p->userdata, "0123456789ab", PHASE_DONE, 0, 0, now_monotonic());
        fake_set_present(p->image, true);
        p->cb.finished(p->userdata, &(PullOutcome) { .error = ERROR_NONE, .digest = "sha256:feed" });
        return 0;
}

static int fake_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
                      void *userdata, RuntimePull **ret) {
        RuntimePull *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->cb = *cb;
        p->userdata = userdata;
        snprintf(p->image, sizeof p->image, "%s", req->image);
        assert_true(fake.n_started < FAKE_MAX);
        snprintf(fake.started[fake.n_started++], sizeof(fake.started[0]), "%s", req->image);
        fake.running++;
        fake.max_running = MAX(fake.max_running, fake.running);
        assert_int_equal(sd_event_add_time_relative(curl_glue_event(glue), &p->timer, CLOCK_MONOTONIC, fake.pull_time, 0,
                                                    fake_on_timer, p), 0);
        *ret = p;
        return 0;
}

static void fake_cancel(RuntimePull *p) {
        if (!p || p->done)
                return;
        p->done = true;
        fake.running--;
        fake.cancelled++;
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
}

static RuntimePull *fake_free(RuntimePull *p) {
        if (!p)
                return NULL;
        fake_cancel(p);
        sd_event_source_disable_unref(p->timer);
        free(p);
        return NULL;
}

typedef struct ConfirmCall {
        runtime_op_done_t done;
        void *userdata;
} ConfirmCall;

static void fake_confirmed(RuntimeOp *op, int r, const char *text, void *userdata) {
        ConfirmCall c = *(ConfirmCall *) userdata;
        free(userdata);
        fake.confirming--;
        c.done(op, r, text, c.userdata);
}

/* Answers from the loop, as a real runtime's presence check does; counts the checks in flight. */
static int fake_confirm(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
                        void *userdata, RuntimeOp **ret) {
        int r = fake.confirm_error ? fake.confirm_error : fake_is_present(req->image) ? 0 : -ENOENT;
        ConfirmCall *c;

        if (!fake.count_confirms)
                return runtime_op_result(glue, r, r >= 0 ? "sha256:feed" : NULL, done, userdata, ret);
        c = malloc(sizeof(*c));
        assert_non_null(c);
        *c = (ConfirmCall) { .done = done, .userdata = userdata };
        r = runtime_op_result(glue, r, r >= 0 ? "sha256:feed" : NULL, fake_confirmed, c, ret);
        if (r < 0) {
                free(c);
                return r;
        }
        fake.confirming++;
        fake.max_confirming = MAX(fake.max_confirming, fake.confirming);
        return r;
}

static const RuntimeDriver fake_driver = {
        .kind = RUNTIME_DOCKER, /* the scheduler's runtime kind; the driver is ours */
        .name = "docker",
        .start = fake_start,
        .cancel = fake_cancel,
        .free = fake_free,
        .confirm = fake_confirm,
};

/* ---- the world around one Preheat ---- */

typedef struct World {
        sd_event *event;
        CurlGlue *glue;
        SharedConfig *config;
        State *state;
        Preheat *preheat;
        unsigned results, changed, trouble, evicted;
        char *evicted_why;
} World;

static char tmpdir[] = "/tmp/test_preheat.XXXXXX";

static void on_event(void *userdata, const PullEvent *e) {
        World *w = userdata;
        w->results += e->kind == PULL_EVENT_RESULT;
}

static void on_changed(void *userdata) { ((World *) userdata)->changed++; }
static void on_trouble(void *userdata, RuntimeKind k) {
        assert_int_equal(k, RUNTIME_DOCKER);
        ((World *) userdata)->trouble++;
}

static void on_evicted(void *userdata, const char *image, const char *runtime, const char *why) {
        World *w = userdata;
        w->evicted++;
        free(w->evicted_why);
        w->evicted_why = strdup(why);
}

static void world_start(World *w, unsigned concurrency) {
        static const PreheatHooks hooks = { .pull_event = on_event, .changed = on_changed, .runtime_trouble = on_trouble,
                                            .evicted = on_evicted };
        const RuntimeDriver *drivers[_RUNTIME_KIND_MAX] = { [RUNTIME_DOCKER] = &fake_driver };
        Config *c;

        fake = (struct Fake) { .pull_time = 20 * USEC_PER_MSEC };
        *w = (World) {};
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(curl_glue_new(w->event, &w->glue), 0);
        assert_int_equal(config_new_default(&c), 0);
        c->runtime = RUNTIME_DOCKER;
        c->preheat.concurrency = concurrency;
        c->preheat.splay = 0;
        c->preheat.recheck = 0;
        c->preheat.evict_window = 2 * USEC_PER_SEC;
        /* no runtime to measure the image filesystem: a held image comes back after the window */
        free(c->docker_socket);
        c->docker_socket = strdup("/nonexistent/docker.sock");
        assert_int_equal(shared_config_new(c, &w->config), 0);
        assert_int_equal(state_new(tmpdir, &w->state), 0);
        assert_int_equal(preheat_new(w->event, w->glue, w->config, w->state, drivers, "0123456789abcdef", &hooks, w,
                                     &w->preheat), 0);
        preheat_set_registry_check(w->preheat, false);
}

static void world_stop(World *w) {
        w->preheat = preheat_free(w->preheat);
        shared_config_unref(w->config);
        state_free(w->state);
        free(w->evicted_why);
        curl_glue_free(w->glue);
        sd_event_unref(w->event);
}

static void set_list(World *w, const char *yaml) {
        _cleanup_preheat_list_ PreheatList *l = NULL;
        ErrorDetail err = {};
        int r = preheat_list_parse("test.yaml", yaml, strlen(yaml), &l, &err);
        if (r < 0)
                fail_msg("list: %s", err.message);
        assert_int_equal(preheat_set_list(w->preheat, l), 0);
}

static void run_until(World *w, bool (*done)(World *w), usec_t timeout) {
        usec_t end = now_monotonic() + timeout;
        while (!done(w)) {
                if (now_monotonic() > end)
                        fail_msg("timed out");
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
        }
}

static void run_for(World *w, usec_t t) {
        usec_t end = now_monotonic() + t;
        while (now_monotonic() < end)
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
}

static bool all_ready(World *w) { return preheat_complete(w->preheat); }

static unsigned count(World *w, PreheatState s) {
        unsigned c[_PREHEAT_STATE_MAX];
        preheat_counts(w->preheat, c);
        return c[s];
}

static const char *target_state(World *w, const char *image) {
        json_t *arr = preheat_status_json(w->preheat), *v;
        static char buf[32];
        size_t i;
        buf[0] = 0;
        json_array_foreach(arr, i, v)
                if (streq(json_string_value(json_object_get(v, "image")), image))
                        snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(v, "state")));
        json_decref(arr);
        return buf;
}

/* ---- splay ---- */

static void test_splay(void **s) {
        usec_t splay = 120 * USEC_PER_SEC, lo = USEC_INFINITY, hi = 0;
        unsigned differ = 0;

        assert_true(preheat_splay_delay("id", "img", 0) == 0);
        assert_true(preheat_splay_delay("a1b2", "reg.local/app:v1", splay) == preheat_splay_delay("a1b2", "reg.local/app:v1", splay));
        /* the two inputs do not run together */
        assert_true(preheat_splay_delay("ab", "c", splay) != preheat_splay_delay("a", "bc", splay));
        for (unsigned i = 0; i < 1000; i++) {
                char img[64], id[40];
                snprintf(img, sizeof img, "reg/app%u:v1", i);
                snprintf(id, sizeof id, "%032x", i * 2654435761u);
                usec_t d = preheat_splay_delay("3d1219c7c4c5404aaa1f6d2a48adfda4", img, splay);
                assert_true(d < splay);
                lo = MIN(lo, d);
                hi = MAX(hi, d);
                /* a fleet: the same image lands at different times on different nodes */
                differ += preheat_splay_delay(id, "reg.local/app:v1", splay) != preheat_splay_delay("3d1219c7c4c5404aaa1f6d2a48adfda4", "reg.local/app:v1", splay);
        }
        assert_true(lo < splay / 20 && hi > splay - splay / 20);
        assert_true(differ > 990);
        /* spread: ten buckets of 100 nodes each hold between 60 and 140 */
        unsigned buckets[10] = {};
        for (unsigned i = 0; i < 1000; i++) {
                char id[40];
                snprintf(id, sizeof id, "node-%u", i);
                buckets[preheat_splay_delay(id, "reg.local/app:v1", splay) * 10 / splay]++;
        }
        for (unsigned b = 0; b < 10; b++)
                assert_true(buckets[b] >= 60 && buckets[b] <= 140);
}

/* ---- scheduler ---- */

static void test_concurrency_and_priority(void **s) {
        World w;
        char summary[128];

        world_start(&w, 2);
        set_list(&w, "- reg.local/a:v1\n"
                     "- image: reg.local/b:v1\n  priority: 5\n"
                     "- reg.local/c:v1\n"
                     "- image: reg.local/d:v1\n  priority: 10\n"
                     "- reg.local/e:v1\n");
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.n_started, 5);
        assert_int_equal(fake.max_running, 2);
        /* priority first, then list order */
        assert_string_equal(fake.started[0], "reg.local/d:v1");
        assert_string_equal(fake.started[1], "reg.local/b:v1");
        assert_string_equal(fake.started[2], "reg.local/a:v1");
        assert_string_equal(fake.started[3], "reg.local/c:v1");
        assert_string_equal(fake.started[4], "reg.local/e:v1");
        assert_int_equal(w.results, 5);
        assert_int_equal(preheat_summary(w.preheat, summary, sizeof summary), 0);
        assert_string_equal(summary, "preheat 5/5 ready, 0 pulling, 0 failed");
        const StateEntry *e = state_find(w.state, "reg.local/b:v1", "docker");
        assert_non_null(e);
        assert_string_equal(e->digest, "sha256:feed");
        assert_int_equal(e->attempts, 1);
        assert_true(e->last_success > 0);
        assert_true(w.state->dirty);
        world_stop(&w);
}

static void test_concurrency_one(void **s) {
        World w;
        world_start(&w, 1);
        set_list(&w, "- reg.local/a:v1\n- reg.local/b:v1\n- reg.local/c:v1\n");
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.max_running, 1);
        world_stop(&w);
}

static void test_present_not_pulled(void **s) {
        World w;
        world_start(&w, 2);
        fake_set_present("reg.local/a:v1", true);
        fake_set_present("reg.local/b:v1", true);
        set_list(&w, "- reg.local/a:v1\n- reg.local/b:v1\n");
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.n_started, 0);
        assert_non_null(state_find(w.state, "reg.local/a:v1", "docker"));
        assert_string_equal(state_find(w.state, "reg.local/a:v1", "docker")->digest, "sha256:feed");
        world_stop(&w);
}

/* A long list: the runtime gets a few presence checks at a time, not one per item at once (2,000 of them
 * held 40 MiB), and every item still ends ready. */
static void test_presence_checks_bounded(void **s) {
        World w;
        char yaml[30 * 32] = "", summary[128];

        world_start(&w, 2);
        fake.count_confirms = true;
        for (unsigned i = 0; i < 30; i++) {
                char image[24];
                snprintf(image, sizeof image, "reg.local/i%u:v1", i);
                strcat(strcat(strcat(yaml, "- "), image), "\n");
                if (i % 2)
                        fake_set_present(image, true); /* half present: checked, never pulled */
        }
        set_list(&w, yaml);
        run_until(&w, all_ready, 10 * USEC_PER_SEC);
        assert_in_range(fake.max_confirming, 1, 8);
        assert_int_equal(fake.confirming, 0);
        assert_int_equal(fake.n_started, 15);
        assert_int_equal(preheat_summary(w.preheat, summary, sizeof summary), 0);
        assert_string_equal(summary, "preheat 30/30 ready, 0 pulling, 0 failed");
        world_stop(&w);
}

static bool settled(World *w) { return count(w, PREHEAT_PULLING) == 0 && count(w, PREHEAT_QUEUED) == 0 && count(w, PREHEAT_WAITING) == 0; }

static void test_failure_then_removed(void **s) {
        World w;
        char summary[128];

        world_start(&w, 2);
        set_list(&w, "- reg.local/ok:v1\n- reg.local/missing:v1\n");
        run_until(&w, settled, 5 * USEC_PER_SEC);
        assert_string_equal(target_state(&w, "reg.local/missing:v1"), "failed");
        assert_false(preheat_complete(w.preheat));
        assert_int_equal(preheat_summary(w.preheat, summary, sizeof summary), 0);
        assert_string_equal(summary, "preheat 1/2 ready, 0 pulling, 1 failed");
        assert_string_equal(state_find(w.state, "reg.local/missing:v1", "docker")->last_error, "manifest unknown");
        /* forgotten once removed from the list; the other item and the node's images stay */
        set_list(&w, "- reg.local/ok:v1\n");
        assert_null(state_find(w.state, "reg.local/missing:v1", "docker"));
        assert_non_null(state_find(w.state, "reg.local/ok:v1", "docker"));
        assert_true(fake_is_present("reg.local/ok:v1"));
        assert_true(preheat_complete(w.preheat));
        /* removing the last item removes nothing from the node either */
        set_list(&w, "");
        assert_true(fake_is_present("reg.local/ok:v1"));
        assert_int_equal(preheat_counts(w.preheat, (unsigned[_PREHEAT_STATE_MAX]) {}), 0);
        world_stop(&w);
}

/* Removals between kept items, several at once, and a "both" item cut back to one runtime. */
static void test_remove_between_kept(void **s) {
        World w;
        const RuntimeDriver *drivers[_RUNTIME_KIND_MAX] = { [RUNTIME_DOCKER] = &fake_driver, [RUNTIME_CONTAINERD] = &fake_driver };

        world_start(&w, 2);
        /* the fake serves both runtimes: same image set, which is all presence checks need */
        w.preheat = preheat_free(w.preheat);
        assert_int_equal(preheat_new(w.event, w.glue, w.config, w.state, drivers, "id", NULL, NULL, &w.preheat), 0);
        preheat_set_registry_check(w.preheat, false);
        for (const char *c = "abcde"; *c; c++) {
                char img[32];
                snprintf(img, sizeof img, "reg.local/%c:v1", *c);
                fake_set_present(img, true);
        }
        set_list(&w, "- reg.local/a:v1\n- image: reg.local/b:v1\n  runtime: both\n- reg.local/c:v1\n- reg.local/d:v1\n- reg.local/e:v1\n");
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(preheat_counts(w.preheat, (unsigned[_PREHEAT_STATE_MAX]) {}), 6);
        assert_non_null(state_find(w.state, "reg.local/b:v1", "containerd"));
        set_list(&w, "- reg.local/a:v1\n- image: reg.local/b:v1\n  runtime: docker\n- reg.local/e:v1\n");
        assert_int_equal(preheat_counts(w.preheat, (unsigned[_PREHEAT_STATE_MAX]) {}), 3);
        assert_true(preheat_complete(w.preheat));
        assert_null(state_find(w.state, "reg.local/b:v1", "containerd"));
        assert_non_null(state_find(w.state, "reg.local/b:v1", "docker"));
        assert_null(state_find(w.state, "reg.local/c:v1", "docker"));
        assert_null(state_find(w.state, "reg.local/d:v1", "docker"));
        assert_non_null(state_find(w.state, "reg.local/e:v1", "docker"));
        assert_int_equal(fake.n_started, 0);
        world_stop(&w);
}

/* pulling, and past the disk gate (it asks the runtime where its images are first): the runtime has it */
static bool one_pulling(World *w) { return count(w, PREHEAT_PULLING) == 1 && fake.running == 1; }

static void test_removed_while_pulling(void **s) {
        World w;

        world_start(&w, 2);
        fake.pull_time = 30 * USEC_PER_SEC;
        set_list(&w, "- reg.local/slow:v1\n");
        run_until(&w, one_pulling, 5 * USEC_PER_SEC);
        assert_int_equal(fake.running, 1);
        set_list(&w, "");
        assert_int_equal(fake.running, 0);
        assert_int_equal(fake.cancelled, 1);
        assert_int_equal(w.results, 1); /* a cancelled result, not a failure */
        assert_null(state_find(w.state, "reg.local/slow:v1", "docker"));
        run_for(&w, 100 * USEC_PER_MSEC);
        assert_int_equal(fake.n_started, 1);
        world_stop(&w);
}

static bool settled_or_two_pulling(World *w) { return count(w, PREHEAT_PULLING) == 2 && fake.running == 2; }

static bool one_started(World *w) { return fake.n_started >= 1 && all_ready(w); }
static bool two_started(World *w) { return fake.n_started >= 2 && all_ready(w); }
static bool one_evicted(World *w) { return w->evicted >= 1; }

static void test_evicted_image_repulled_at_recheck(void **s) {
        World w;
        usec_t t0;

        world_start(&w, 2);
        set_list(&w, "- image: reg.local/a:v1\n  recheck: 250ms\n- reg.local/b:v1\n");
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.n_started, 2);
        fake.n_started = 0;
        fake_set_present("reg.local/a:v1", false); /* docker rmi, kubelet's GC */
        fake_set_present("reg.local/b:v1", false); /* no recheck for b (preheat.recheck 0): not noticed */
        t0 = now_monotonic();
        run_until(&w, one_started, 5 * USEC_PER_SEC);
        assert_true(now_monotonic() - t0 >= 200 * USEC_PER_MSEC); /* at the recheck, not before */
        assert_string_equal(fake.started[0], "reg.local/a:v1");
        run_for(&w, 400 * USEC_PER_MSEC);
        assert_int_equal(fake.n_started, 1); /* present again: rechecks find it, nothing more is pulled */
        assert_int_equal(w.evicted, 0);
        /* evicted again within preheat.evict_window: churn with the image GC, re-pulls stop */
        fake_set_present("reg.local/a:v1", false);
        run_until(&w, one_evicted, 5 * USEC_PER_SEC);
        assert_string_equal(target_state(&w, "reg.local/a:v1"), "evicted");
        assert_int_equal(fake.n_started, 1);
        assert_int_equal(w.evicted, 1);
        assert_non_null(strstr(w.evicted_why, "evicted twice within"));
        assert_non_null(strstr(w.evicted_why, "image garbage collection"));
        char summary[128];
        assert_int_equal(preheat_summary(w.preheat, summary, sizeof(summary)), 0);
        assert_non_null(strstr(summary, "1 evicted"));
        /* the disk cannot be measured here: tried again once the window has passed */
        run_until(&w, two_started, 5 * USEC_PER_SEC);
        assert_string_equal(fake.started[1], "reg.local/a:v1");
        assert_int_equal(w.evicted, 1);
        world_stop(&w);
}

static void test_runtime_down(void **s) {
        World w;

        world_start(&w, 2);
        preheat_set_runtime_up(w.preheat, RUNTIME_DOCKER, false);
        set_list(&w, "- reg.local/a:v1\n");
        run_for(&w, 200 * USEC_PER_MSEC);
        assert_int_equal(fake.n_started, 0);
        assert_string_equal(target_state(&w, "reg.local/a:v1"), "waiting");
        preheat_set_runtime_up(w.preheat, RUNTIME_DOCKER, true);
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.n_started, 1);
        world_stop(&w);
}

/* A runtime that does not answer presence checks is asked once, not once per image: each check
 * blocks the loop until its timeout. */
static void test_runtime_trouble(void **s) {
        World w;

        world_start(&w, 2);
        fake.confirm_error = -ETIMEDOUT;
        set_list(&w, "- reg.local/a:v1\n- reg.local/b:v1\n- reg.local/c:v1\n");
        run_for(&w, 300 * USEC_PER_MSEC);
        assert_int_equal(w.trouble, 1);
        assert_int_equal(fake.n_started, 0);
        assert_int_equal(count(&w, PREHEAT_WAITING), 3);
        /* the owner's ping says it answers again */
        fake.confirm_error = 0;
        preheat_set_runtime_up(w.preheat, RUNTIME_DOCKER, true);
        run_until(&w, all_ready, 5 * USEC_PER_SEC);
        assert_int_equal(fake.n_started, 3);
        world_stop(&w);
}

static void test_stop_cancels(void **s) {
        World w;

        world_start(&w, 2);
        fake.pull_time = 30 * USEC_PER_SEC;
        set_list(&w, "- reg.local/a:v1\n- reg.local/b:v1\n- reg.local/c:v1\n");
        run_until(&w, settled_or_two_pulling, 5 * USEC_PER_SEC);
        preheat_stop(w.preheat, "test");
        assert_int_equal(fake.running, 0);
        run_for(&w, 100 * USEC_PER_MSEC);
        assert_int_equal(fake.n_started, 2); /* nothing starts after stop */
        world_stop(&w);
}

static void test_unsupported_runtime(void **s) {
        World w;
        world_start(&w, 2);
        set_list(&w, "- image: reg.local/a:v1\n  runtime: containerd\n- image: reg.local/b:v1\n  runtime: both\n");
        run_until(&w, settled, 5 * USEC_PER_SEC);
        json_t *arr = preheat_status_json(w.preheat);
        assert_int_equal(json_array_size(arr), 3); /* both = one target per runtime */
        json_decref(arr);
        assert_int_equal(count(&w, PREHEAT_FAILED), 2);
        assert_int_equal(count(&w, PREHEAT_READY), 1);
        assert_int_equal(fake.n_started, 1);
        world_stop(&w);
}

/* A large list's status is capped: those not ready come first, list order kept, the rest counted. */
static void test_status_capped(void **s) {
        World w;
        size_t omitted = 99;
        json_t *arr;

        world_start(&w, 2);
        set_list(&w, "- image: reg.local/a:v1\n  runtime: containerd\n- image: reg.local/b:v1\n  runtime: both\n");
        run_until(&w, settled, 5 * USEC_PER_SEC); /* a/containerd failed, b/docker ready, b/containerd failed */
        arr = preheat_status_json_capped(w.preheat, 2, &omitted);
        assert_int_equal(json_array_size(arr), 2);
        assert_int_equal(omitted, 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "image")), "reg.local/a:v1");
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "state")), "failed");
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "runtime")), "containerd");
        json_decref(arr);
        arr = preheat_status_json_capped(w.preheat, 3, &omitted); /* fits: all, in list order */
        assert_int_equal(json_array_size(arr), 3);
        assert_int_equal(omitted, 0);
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "state")), "ready");
        json_decref(arr);
        arr = preheat_status_json_capped(w.preheat, 0, &omitted);
        assert_int_equal(json_array_size(arr), 0);
        assert_int_equal(omitted, 3);
        json_decref(arr);
        world_stop(&w);
}

static int setup(void **s) { return mkdtemp(tmpdir) ? 0 : -1; }
static int teardown(void **s) { return rmdir(tmpdir); }

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_splay),
                cmocka_unit_test(test_concurrency_and_priority),
                cmocka_unit_test(test_concurrency_one),
                cmocka_unit_test(test_present_not_pulled),
                cmocka_unit_test(test_failure_then_removed),
                cmocka_unit_test(test_remove_between_kept),
                cmocka_unit_test(test_removed_while_pulling),
                cmocka_unit_test(test_evicted_image_repulled_at_recheck),
                cmocka_unit_test(test_runtime_down),
                cmocka_unit_test(test_runtime_trouble),
                cmocka_unit_test(test_stop_cancels),
                cmocka_unit_test(test_unsupported_runtime),
                cmocka_unit_test(test_status_capped),
                cmocka_unit_test(test_presence_checks_bounded),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
