/* cli_watch.c: `pullwatch watch`: every pull in containerd's namespace (kubelet's included) through
 * the same detector, reported and never cancelled: these pulls belong to someone else. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "daemon/agent/alerts.h"
#include "daemon/cli/cli.h"
#include "daemon/pull/detector.h"
#include "basic/escape.h"
#include "daemon/pull/liveness.h"
#include "daemon/cli/render.h"
#include "probes/containerd/containerd.h"
#include "probes/drivers/runtime_drivers.h"

typedef struct LayerImage {
        char *layer, *image;
        Verdict reported;
        Phase phase;
} LayerImage;

typedef struct Watch {
        sd_event *event;
        const Config *config;
        Detector *detector;
        RuntimeLiveness *liveness;
        Alerts *alerts;           /* verdicts to journald, PULLWATCH_IMAGE included */
        LayerImage *layers;
        size_t n_layers;
        bool json;
        usec_t started;
        char *last_error;
} Watch;

static LayerImage *layer_get(Watch *w, const char *layer) {
        for (size_t i = 0; i < w->n_layers; i++)
                if (streq(w->layers[i].layer, layer))
                        return &w->layers[i];
        LayerImage *n = realloc(w->layers, (w->n_layers + 1) * sizeof(*n));
        if (!n)
                return NULL;
        w->layers = n;
        n = &w->layers[w->n_layers];
        *n = (LayerImage) { .layer = strdup(layer), .reported = VERDICT_PROGRESSING, .phase = _PHASE_INVALID };
        if (!n->layer)
                return NULL;
        w->n_layers++;
        return n;
}

static void print_event(Watch *w, const PullEvent *e) {
        if (w->alerts && e->kind == PULL_EVENT_VERDICT)
                (void) alerts_pull_event(w->alerts, e, now_monotonic());
        if (w->json) {
                json_t *o = pull_event_to_json(e, (double) (now_monotonic() - w->started) / USEC_PER_SEC);
                char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(o);
        } else if (e->kind == PULL_EVENT_VERDICT)
                fprintf_line(stdout, "%s %s %s: %s (%s)", e->image ? e->image : "(image not known yet)", e->layer,
                             verdict_to_string(e->verdict), e->evidence ? e->evidence : "", phase_to_string(e->phase));
        else if (e->kind == PULL_EVENT_PHASE)
                fprintf_line(stdout, "%s %s: %s", e->image ? e->image : "(image not known yet)", e->layer, phase_to_string(e->phase));
        fflush(stdout);
}

static void on_layer(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                     uint64_t total, usec_t at) {
        Watch *w = userdata;
        LayerImage *li = layer_get(w, layer);

        (void) detector_layer(w->detector, layer, phase, current, total, at);
        if (!li)
                return;
        if (image && !streq_ptr(li->image, image)) {
                free(li->image);
                li->image = strdup(image);
        }
        if (li->phase != phase) {
                li->phase = phase;
                print_event(w, &(PullEvent) { .kind = PULL_EVENT_PHASE, .image = li->image, .runtime = "containerd",
                                              .layer = layer, .phase = phase, .current = current, .total = total,
                                              .observed = at });
        }
}

static void on_layer_gone(void *userdata, const char *image, const char *layer, bool done, usec_t at) {
        Watch *w = userdata;
        /* Gone without content means its pull was cancelled or failed: not ours to judge further. */
        (void) detector_layer(w->detector, layer, PHASE_DONE, 0, 0, at);
        on_layer(w, image, layer, PHASE_DONE, 0, 0, at);
}

static void on_error(void *userdata, int error, const char *message) {
        Watch *w = userdata;
        if (!streq_ptr(w->last_error, message)) {
                fprintf_line(stderr, "pullwatch: %s", message ? message : strerror(-error));
                free(w->last_error);
                w->last_error = message ? strdup(message) : NULL;
        }
}

static int on_sample(sd_event_source *s, uint64_t usec, void *userdata) {
        Watch *w = userdata;
        usec_t now = now_monotonic();

        if (w->liveness) {
                LivenessDelta lv;
                if (runtime_liveness_sample(w->liveness, now, &lv) >= 0)
                        detector_liveness(w->detector, &lv);
        }
        detector_evaluate(w->detector, now);
        for (size_t i = 0; i < detector_n_layers(w->detector); i++) {
                const LayerTrack *t = detector_layer_at(w->detector, i);
                LayerImage *li = layer_get(w, t->id);
                if (!li || li->reported == t->verdict)
                        continue;
                li->reported = t->verdict;
                if (t->verdict == VERDICT_DONE)
                        continue;
                print_event(w, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .image = li->image, .runtime = "containerd",
                                              .layer = t->id, .phase = t->phase, .verdict = t->verdict,
                                              .evidence = t->evidence, .current = t->current, .total = t->total });
        }
        (void) sd_event_source_set_time_relative(s, w->config->watchdog.sample_interval);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int cli_watch(int argc, char **argv) {
        static const struct option options[] = {
                { "runtime", required_argument, NULL, 'r' },
                { "containerd-socket", required_argument, NULL, 'c' },
                { "namespace", required_argument, NULL, 'n' },
                { "config", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        static const ContainerdWatchCallbacks callbacks = {
                .layer = on_layer, .layer_gone = on_layer_gone, .error = on_error,
        };
        _cleanup_config_ Config *config = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        sd_event_source *sample = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *glue = NULL;
        _cleanup_(containerd_watch_freep) ContainerdWatch *cw = NULL;
        _cleanup_(error_detail_done) ErrorDetail error = {};
        const char *path = NULL, *runtime = NULL, *csock = NULL, *ns = NULL;
        Watch w = {};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r': runtime = optarg; break;
                case 'c': csock = optarg; break;
                case 'n': ns = optarg; break;
                case 'f': path = optarg; break;
                case 'j': w.json = true; break;
                case 'h': printf("Usage: pullwatch watch [--runtime containerd] [--containerd-socket P] [--config F] [--json]\n"); return 0;
                default: return EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, "Usage: pullwatch watch [--runtime containerd] [--containerd-socket P] [--config F] [--json]\n");
                return EXIT_USAGE;
        }
        r = cli_load_config(path, &config);
        if (r != 0)
                return r;
        if ((csock && cli_set_string(&config->containerd_socket, csock) < 0) ||
            (ns && cli_set_string(&config->containerd_namespace, ns) < 0))
                return EXIT_PULL_FAILED;
        const RuntimeDriver *asked = runtime ? runtime_driver_by_name(runtime) : NULL;
        if (runtime && runtime_kind_from_string(runtime) != RUNTIME_AUTO && (!asked || !asked->watchable)) {
                /* The Engine API streams a pull's progress only to the client that started it. */
                fprintf(stderr, "pullwatch: watch works on containerd only: dockerd shows a pull's progress to no one but "
                                "the client that started it; pull through `pullwatch pull` or the daemon instead\n");
                return EXIT_USAGE;
        }
        if (containerd_driver.ping(config, &error) < 0) {
                fprintf_line(stderr, "pullwatch: %s", error.message ? error.message : "containerd unreachable");
                return EXIT_PULL_FAILED;
        }

        w.config = config;
        w.started = now_monotonic();
        r = sd_event_default(&event);
        if (r >= 0)
                r = curl_glue_new(event, &glue);
        if (r >= 0)
                r = detector_new(&config->watchdog, now_monotonic(), &w.detector);
        if (r >= 0)
                r = containerd_watch_new(glue, config, config->containerd_namespace, &callbacks, &w, &cw);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &sample, CLOCK_MONOTONIC, config->watchdog.sample_interval,
                                               10 * USEC_PER_MSEC, on_sample, &w);
        if (r >= 0) {
                (void) sd_event_source_set_description(sample, "watch-sample");
                r = sd_event_source_set_floating(sample, true);
                sample = sd_event_source_unref(sample);
        }
        if (r < 0) {
                fprintf(stderr, "pullwatch: cannot start watching: %s\n", strerror(-r));
                detector_free(w.detector);
                return EXIT_PULL_FAILED;
        }
        (void) runtime_liveness_new_for(&containerd_driver, config, &w.liveness);
        (void) alerts_new(config->alert_rate_limit, &w.alerts);

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) cli_add_signal(event, SIGINT, "watch-sigint", NULL, NULL);
        (void) cli_add_signal(event, SIGTERM, "watch-sigterm", NULL, NULL);
        /* from here on every byte containerd writes is this watch's evidence: an ingest last written
         * before now reads as waiting (maybe where an earlier attempt left it) until it moves */
        fprintf(stderr, "pullwatch: watching containerd namespace %s on %s\n",
                config->containerd_namespace ?: CONTAINERD_CRI_NAMESPACE,
                config->containerd_socket ?: CONTAINERD_DEFAULT_SOCKET);
        r = sd_event_loop(event);

        cw = containerd_watch_free(cw);
        detector_free(w.detector);
        runtime_liveness_free(w.liveness);
        alerts_free(w.alerts);
        for (size_t i = 0; i < w.n_layers; i++) {
                free(w.layers[i].layer);
                free(w.layers[i].image);
        }
        free(w.layers);
        free(w.last_error);
        return r < 0 ? EXIT_PULL_FAILED : 0;
}
