/* cdpull: drives containerd_driver (or the watcher) alone against a containerd socket and prints what it
 * observes, one line per event. For developing and measuring the containerd probes by hand:
 *   cdpull [-s SOCKET] [-c BYTES | -t SECONDS] [-d SECONDS] [-k] IMAGE
 *       pull; -c cancels attempt 1 once a layer has BYTES, -t once a downloading layer got no byte for
 *       SECONDS (a stall); then -d waits and a second attempt runs; -k keeps the lease at the end
 *   cdpull [-s SOCKET] -w SECONDS                         watch every pull in k8s.io
 *   cdpull [-s SOCKET] -v | -i IMAGE | -l                 version / ImageStatus / leases */
#include <getopt.h>
#include <inttypes.h>
#include "probes/containerd/containerd.h"
#include "probes/drivers/runtime_drivers.h"

typedef struct Ctx {
        sd_event *event;
        CurlGlue *glue;
        Config config;
        RuntimePull *pull;
        const char *image;
        uint64_t cancel_after;
        usec_t stall_after, last_move;
        char ids[64][80];           /* layers seen, whether downloading, and their offsets */
        bool downloading[64];
        uint64_t offsets[64];
        usec_t t0;
        int attempt, result;
        bool cancelled;
} Ctx;

static double secs(Ctx *c, usec_t at) { return (double) (at - c->t0) / 1e6; }

static usec_t now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static int on_cancel_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void on_layer(void *userdata, const char *layer, Phase phase, uint64_t current, uint64_t total, usec_t at) {
        Ctx *c = userdata;
        printf("%8.3f attempt=%d layer=%.19s phase=%s %" PRIu64 "/%" PRIu64 "\n", secs(c, at), c->attempt, layer,
               phase_to_string(phase), current, total);
        size_t i;
        for (i = 0; i < 64 && c->ids[i][0] && strcmp(c->ids[i], layer) != 0; i++)
                ;
        if (i < 64) {
                if (!c->ids[i][0] || c->offsets[i] != current)
                        c->last_move = at;
                snprintf(c->ids[i], sizeof(c->ids[i]), "%s", layer);
                c->downloading[i] = phase == PHASE_DOWNLOADING;
                c->offsets[i] = current;
        }
        if (c->cancel_after && c->attempt == 1 && !c->cancelled && phase == PHASE_DOWNLOADING &&
            current >= c->cancel_after) {
                c->cancelled = true;
                /* from the loop, not inside the driver's callback */
                sd_event_add_time_relative(c->event, NULL, CLOCK_MONOTONIC, 0, 0, on_cancel_timer, c);
        }
}

static void on_activity(void *userdata, const char *what, usec_t at) {}

/* -t: a downloading layer without a byte for stall_after, as the detector would judge it */
static int on_stall_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Ctx *c = userdata;
        bool downloading = false;
        for (size_t i = 0; i < 64 && c->ids[i][0]; i++)
                downloading = downloading || c->downloading[i];
        if (c->attempt == 1 && !c->cancelled && downloading && c->last_move && now() - c->last_move > c->stall_after) {
                printf("%8.3f attempt=1 stalled: no byte for %.1fs\n", secs(c, now()), (double) c->stall_after / 1e6);
                c->cancelled = true;
                return on_cancel_timer(s, usec, c);
        }
        if (c->attempt == 1 && !c->cancelled)
                sd_event_add_time_relative(c->event, NULL, CLOCK_MONOTONIC, 250 * USEC_PER_MSEC, 0, on_stall_check, c);
        return 0;
}

static int start_attempt(Ctx *c);

static void on_finished(void *userdata, const PullOutcome *o) {
        Ctx *c = userdata;
        printf("%8.3f attempt=%d finished error=%s digest=%s message=%s\n", secs(c, now()), c->attempt,
               error_class_to_string(o->error), o->digest ?: "-", o->message ?: "-");
        c->result = o->error == ERROR_NONE ? 0 : 1;
        sd_event_exit(c->event, 0);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Ctx *c = userdata;
        if (start_attempt(c) < 0)
                sd_event_exit(c->event, 1);
        return 0;
}

static usec_t retry_delay;

static int on_cancel_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Ctx *c = userdata;
        ContainerdPollStats st;
        containerd_pull_stats(c->pull, &st);
        printf("%8.3f attempt=%d cancel (polls=%" PRIu64 " calls=%" PRIu64 " busy=%" PRIu64 "us)\n", secs(c, now()),
               c->attempt, st.polls, st.calls, st.busy);
        containerd_driver.cancel(c->pull);
        c->pull = containerd_driver.free(c->pull);
        sd_event_add_time_relative(c->event, NULL, CLOCK_MONOTONIC, retry_delay, 0, on_retry_timer, c);
        return 0;
}

static int start_attempt(Ctx *c) {
        PullRequest req = { .image = c->image };
        PullCallbacks cb = { .layer = on_layer, .activity = on_activity, .finished = on_finished };
        c->attempt++;
        memset(c->ids, 0, sizeof(c->ids));
        printf("%8.3f attempt=%d start\n", secs(c, now()), c->attempt);
        int r = containerd_driver.start(c->glue, &c->config, &req, &cb, c, &c->pull);
        if (r < 0)
                fprintf(stderr, "start: %s\n", strerror(-r));
        return r;
}

static void w_layer(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                    uint64_t total, usec_t at) {
        Ctx *c = userdata;
        printf("%8.3f watch image=%s layer=%.19s phase=%s %" PRIu64 "/%" PRIu64 "\n", secs(c, at), image ?: "?",
               layer, phase_to_string(phase), current, total);
}

static void w_gone(void *userdata, const char *image, const char *layer, bool done, usec_t at) {
        Ctx *c = userdata;
        printf("%8.3f watch image=%s layer=%.19s gone done=%d\n", secs(c, at), image ?: "?", layer, done);
}

static void w_error(void *userdata, int error, const char *message) {
        printf("watch error %d: %s\n", error, message);
}

int main(int argc, char **argv) {
        Ctx c = { .t0 = now() };
        const char *socket = "/run/containerd/containerd.sock";
        char *msg = NULL, *s1 = NULL, *s2 = NULL;
        ErrorDetail e = {};
        int opt, r, watch = 0, keep = 0;
        char mode = 'p';

        setvbuf(stdout, NULL, _IOLBF, 0);
        while ((opt = getopt(argc, argv, "s:c:t:d:w:kvi:l")) >= 0)
                switch (opt) {
                case 's': socket = optarg; break;
                case 'c': c.cancel_after = strtoull(optarg, NULL, 10); break;
                case 't': c.stall_after = (usec_t) (atof(optarg) * 1e6); break;
                case 'd': retry_delay = (usec_t) (atof(optarg) * 1e6); break;
                case 'w': watch = atoi(optarg); mode = 'w'; break;
                case 'k': keep = 1; break;
                case 'v': case 'l': mode = (char) opt; break;
                case 'i': mode = (char) opt; c.image = optarg; break;
                default: return 2;
                }
        switch (mode) {
        case 'v':
                r = containerd_version(socket, &s1, &e);
                msg = error_detail_format(&e);
                printf("%s\n", r < 0 ? msg : s1);
                goto out;
        case 'i':
                r = containerd_image_status(socket, c.image, &s1, &s2, &e);
                msg = error_detail_format(&e);
                printf(r < 0 ? "%s\n" : "digest=%s id=%s\n", r < 0 ? msg : s1, s2);
                goto out;
        case 'l': {
                char **ids = NULL;
                r = containerd_leases_list(socket, CONTAINERD_CRI_NAMESPACE, &ids, &e);
                msg = error_detail_format(&e);
                if (r < 0)
                        printf("%s\n", msg);
                for (char **i = ids; i && *i; i++)
                        printf("lease %s\n", *i);
                strv_free(ids);
                goto out;
        }
        default:
                break;
        }
        if (mode == 'p' && optind >= argc)
                return 2;
        c.image = argv[optind];
        c.config.containerd_socket = (char *) socket;
        if (sd_event_default(&c.event) < 0 || curl_glue_new(c.event, &c.glue) < 0)
                return 1;
        if (mode == 'w') {
                ContainerdWatch *w = NULL;
                ContainerdWatchCallbacks cb = { .layer = w_layer, .layer_gone = w_gone, .error = w_error };
                ContainerdPollStats st;
                r = containerd_watch_new(c.glue, &c.config, NULL, &cb, &c, &w);
                if (r < 0)
                        return 1;
                sd_event_add_time_relative(c.event, NULL, CLOCK_MONOTONIC, (usec_t) watch * USEC_PER_SEC, 0, NULL,
                                           NULL);
                sd_event_loop(c.event);
                containerd_watch_stats(w, &st);
                printf("polls=%" PRIu64 " calls=%" PRIu64 " busy=%" PRIu64 "us\n", st.polls, st.calls, st.busy);
                containerd_watch_free(w);
        } else {
                ContainerdPollStats st;
                if (start_attempt(&c) < 0)
                        return 1;
                if (c.stall_after)
                        sd_event_add_time_relative(c.event, NULL, CLOCK_MONOTONIC, 250 * USEC_PER_MSEC, 0,
                                                   on_stall_check, &c);
                sd_event_loop(c.event);
                containerd_pull_stats(c.pull, &st);
                printf("polls=%" PRIu64 " calls=%" PRIu64 " busy=%" PRIu64 "us\n", st.polls, st.calls, st.busy);
                containerd_driver.free(c.pull);
                if (!keep && containerd_lease_release(socket, CONTAINERD_CRI_NAMESPACE, c.image, &e) < 0) {
                        msg = error_detail_format(&e);
                        printf("release: %s\n", msg);
                }
        }
        curl_glue_free(c.glue);
        sd_event_unref(c.event);
        return c.result;
out:
        free(msg);
        error_detail_done(&e);
        free(s1);
        free(s2);
        return r < 0 ? 1 : 0;
}
