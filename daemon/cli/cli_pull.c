/* cli_pull.c: `pullwatch pull` and `check-config`: options over the config file, then the pull through
 * the daemon when one answers, else one watched_pull (the daemon's pipeline) on an sd-event loop;
 * events rendered as JSON lines or a live terminal view. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "daemon/cli/cli.h"
#include "basic/escape.h"
#include "daemon/cli/render.h"
#include "daemon/pull/watched_pull.h"
#include "probes/runtime/runtime_op.h"
#include "probes/docker/docker.h"
#include "probes/drivers/runtime_drivers.h"
#include "basic/reference.h"

typedef struct PullCli {
        sd_event *event;
        CurlGlue *glue;
        bool json;
        usec_t started;
        TtyView *view;
        int exit_code;
} PullCli;

static void on_event(PullJob *j, const PullEvent *e, void *userdata) {
        PullCli *c = userdata;
        usec_t now = now_monotonic();

        if (c->json) {
                json_t *o = pull_event_to_json(e, (double) (now - c->started) / USEC_PER_SEC);
                char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
                if (s) {
                        fputs(s, stdout);
                        fputc('\n', stdout);
                        fflush(stdout);
                }
                free(s);
                json_decref(o);
        } else
                tty_view_event(c->view, e, now);
        if (e->kind == PULL_EVENT_RESULT) {
                c->exit_code = e->ok ? 0 : EXIT_PULL_FAILED;
                /* a failed pull's lease release may still be on its way to containerd */
                (void) curl_glue_exit_when_settled(c->glue, 0, RUNTIME_OP_TIMEOUT);
        }
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        WatchedPull *p = userdata;
        watched_pull_abort(p, si->ssi_signo == SIGINT ? "interrupted" : "terminated");
        return 0;
}

static int pull_usage(void) {
        fprintf(stderr, "Usage: pullwatch pull [--runtime auto|docker|containerd] [--docker-socket P]\n"
                        "       [--containerd-socket P] [--namespace NS] [--platform OS/ARCH] [--config F]\n"
                        "       [--json] IMAGE\n");
        return EXIT_USAGE;
}

static const RuntimeDriver *pick_driver(Config *config) {
        const RuntimeDriver *d = runtime_driver_get(config->runtime), *first = runtime_driver_auto_probe();

        if (d)
                return d;
        /* auto: the runtime kubelet talks to when its socket answers (containerd), else the fallback */
        if (first->ping && first->ping(config, NULL) >= 0)
                return first;
        return runtime_driver_auto_fallback();
}

int cli_pull(int argc, char **argv) {
        static const struct option options[] = {
                { "runtime", required_argument, NULL, 'r' },
                { "docker-socket", required_argument, NULL, 'd' },
                { "containerd-socket", required_argument, NULL, 'c' },
                { "namespace", required_argument, NULL, 'n' },
                { "platform", required_argument, NULL, 'p' },
                { "config", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_config_ Config *config = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *glue = NULL;
        _cleanup_(shared_config_unrefp) SharedConfig *shared = NULL;
        _cleanup_(watched_pull_freep) WatchedPull *pull = NULL;
        _cleanup_(error_detail_done) ErrorDetail error = {};
        const char *config_path = NULL, *runtime = NULL, *dsock = NULL, *csock = NULL, *ns = NULL, *platform = NULL;
        PullCli cli = { .exit_code = EXIT_PULL_FAILED };
        const RuntimeDriver *driver;
        const char *image;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r': runtime = optarg; break;
                case 'd': dsock = optarg; break;
                case 'c': csock = optarg; break;
                case 'n': ns = optarg; break;
                case 'p': platform = optarg; break;
                case 'f': config_path = optarg; break;
                case 'j': cli.json = true; break;
                case 'h': pull_usage(); return 0;
                default: return pull_usage();
                }
        if (optind != argc - 1)
                return pull_usage();
        image = argv[optind];

        r = cli_load_config(config_path, &config);
        if (r != 0)
                return r;
        if (runtime) {
                RuntimeKind k = runtime_kind_from_string(runtime);
                if (k < 0) {
                        fprintf(stderr, "pullwatch: --runtime: expected auto, docker or containerd, got \"%s\"\n", runtime);
                        return EXIT_USAGE;
                }
                config->runtime = k;
        }
        if ((dsock && cli_set_string(&config->docker_socket, dsock) < 0) ||
            (csock && cli_set_string(&config->containerd_socket, csock) < 0) ||
            (ns && cli_set_string(&config->containerd_namespace, ns) < 0) ||
            (platform && cli_set_string(&config->platform, platform) < 0))
                return EXIT_PULL_FAILED;

        /* The image reference is checked here, before any runtime is asked. */
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        r = reference_parse(image, &ref);
        if (r < 0) {
                fprintf_line(stderr, "pullwatch: \"%s\" is not a valid image reference", image);
                return EXIT_USAGE;
        }

        /* Through the daemon when it answers, so the pull is watched and alerted like its own; a socket
         * given on the command line names a runtime only a standalone pull can honour. */
        if (!dsock && !csock) {
                r = cli_pull_via_daemon(config, image, runtime, platform, ns, cli.json);
                if (r >= 0)
                        return r;
        }

        driver = pick_driver(config);
        if (driver->ping && driver->ping(config, &error) < 0) {
                fprintf_line(stderr, "pullwatch: %s", error.message ? error.message : "runtime unreachable");
                return EXIT_PULL_FAILED;
        }

        r = sd_event_default(&event);
        if (r >= 0)
                r = curl_glue_new(event, &glue);
        if (r < 0) {
                fprintf(stderr, "pullwatch: cannot set up the event loop: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        /* The pipeline the daemon's pulls run: credentials, pull job, liveness and disk probes. */
        r = shared_config_new(TAKE_PTR(config), &shared);
        if (r >= 0)
                r = watched_pull_new(event, glue, shared, driver, &(WatchedPullSpec) { .image = image }, on_event, &cli,
                                     &pull);
        if (r < 0) {
                fprintf(stderr, "pullwatch: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        /* a problem with the credentials is said, then the pull goes anonymously (public images still
         * work, private ones fail with the registry's own words) */
        if (watched_pull_credential_warning(pull))
                fprintf_line(stderr, "pullwatch: credentials: %s; pulling anonymously", watched_pull_credential_warning(pull));
        if (!cli.json && tty_view_new(stdout, isatty(STDOUT_FILENO), &cli.view) < 0)
                return EXIT_PULL_FAILED;

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) cli_add_signal(event, SIGINT, "pull-sigint", on_signal, pull);
        (void) cli_add_signal(event, SIGTERM, "pull-sigterm", on_signal, pull);

        cli.event = event;
        cli.glue = glue;
        cli.started = now_monotonic();
        r = watched_pull_start(pull);
        if (r < 0) {
                fprintf_line(stderr, "pullwatch: cannot start the pull of %s: %s", image, strerror(-r));
                cli.exit_code = r == -EINVAL ? EXIT_USAGE : EXIT_PULL_FAILED;
        } else
                sd_event_loop(event);

        pull = watched_pull_free(pull);
        tty_view_free(cli.view);
        return cli.exit_code;
}

int cli_check_config(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_config_ Config *config = NULL;
        const char *path = NULL;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'f': path = optarg; break;
                case 'h': printf("Usage: pullwatch check-config [--config F]\n"); return 0;
                default: return EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, "Usage: pullwatch check-config [--config F]\n");
                return EXIT_USAGE;
        }
        r = cli_load_config(path, &config);
        if (r != 0)
                return r;
        printf("# %s\n", config->path ? config->path : "built-in defaults (no config file)");
        return config_dump(config, stdout) < 0 ? EXIT_PULL_FAILED : 0;
}
