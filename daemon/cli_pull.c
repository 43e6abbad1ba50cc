/* cli_pull.c: `pullwatch pull` and `check-config`: options over the config file, one PullJob on an
 * sd-event loop, events rendered as JSON lines or a live terminal view. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "daemon/cli.h"
#include "daemon/escape.h"
#include "daemon/liveness.h"
#include "daemon/pull_job.h"
#include "daemon/render.h"
#include "probes/runtime_op.h"
#include "probes/docker.h"
#include "probes/credentials.h"
#include "probes/reference.h"

int cli_load_config(const char *path, Config **ret) {
        ConfigError err = {};
        int r = config_load(path ? path : PULLWATCH_DEFAULT_CONFIG, path == NULL, ret, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = config_error_format(&err);
                fprintf_line(stderr, "pullwatch: %s", msg ? msg : strerror(-r));
                config_error_done(&err);
                return EXIT_USAGE;
        }
        return 0;
}

int cli_set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

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
        PullJob *j = userdata;
        pull_job_abort(j, si->ssi_signo == SIGINT ? "interrupted" : "terminated");
        return 0;
}

static int pull_usage(void) {
        fprintf(stderr, "Usage: pullwatch pull [--runtime auto|docker|containerd] [--docker-socket P]\n"
                        "       [--containerd-socket P] [--namespace NS] [--platform OS/ARCH] [--config F]\n"
                        "       [--json] IMAGE\n");
        return EXIT_USAGE;
}

static const RuntimeDriver *pick_driver(Config *config, char **ret_error) {
        if (config->runtime == RUNTIME_DOCKER)
                return &docker_driver;
        if (config->runtime == RUNTIME_CONTAINERD)
                return &containerd_driver;
        /* auto: containerd when its socket answers (kubelet's runtime), else Docker. */
        if (containerd_driver.ping && containerd_driver.ping(config, NULL) >= 0)
                return &containerd_driver;
        return &docker_driver;
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
        _cleanup_(pull_job_freep) PullJob *job = NULL;
        _cleanup_free_ char *error = NULL;
        const char *config_path = NULL, *runtime = NULL, *dsock = NULL, *csock = NULL, *ns = NULL, *platform = NULL;
        RuntimeLiveness *liveness = NULL;
        PullCli cli = { .exit_code = EXIT_PULL_FAILED };
        const RuntimeDriver *driver;
        PullRequest req = {};
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
        req.image = argv[optind];

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
        req.platform = config->platform;
        req.namespace = config->containerd_namespace;

        /* Credentials for the image's registry; a problem with them is said, then the pull goes
         * anonymously (public images still work, private ones fail with the registry's own words). */
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_(credential_freep) Credential *cred = NULL;
        _cleanup_secret_free_ char *auth_header = NULL;
        r = reference_parse(req.image, &ref);
        if (r < 0) {
                fprintf_line(stderr, "pullwatch: \"%s\" is not a valid image reference", req.image);
                return EXIT_USAGE;
        }
        {
                _cleanup_free_ char *cred_error = NULL;
                r = credentials_lookup_full(config->credentials, reference_registry_host(ref), &cred, &cred_error);
                if (r < 0)
                        fprintf_line(stderr, "pullwatch: credentials: %s; pulling anonymously",
                                     cred_error ? cred_error : strerror(-r));
        }
        if (cred) {
                req.auth_user = cred->username;
                req.auth_password = cred->password;
                req.identity_token = cred->identity_token;
                req.auth_server = cred->server;
                if (credential_to_docker_auth_header(cred, &auth_header) >= 0)
                        req.auth_header = auth_header;
        }

        /* Through the daemon when it answers, so the pull is watched and alerted like its own; a socket
         * given on the command line names a runtime only a standalone pull can honour. */
        if (!dsock && !csock) {
                r = cli_pull_via_daemon(config, req.image, runtime, platform, ns, cli.json);
                if (r >= 0)
                        return r;
        }

        driver = pick_driver(config, &error);
        if (driver->ping && driver->ping(config, &error) < 0) {
                fprintf_line(stderr, "pullwatch: %s", error ? error : "runtime unreachable");
                return EXIT_PULL_FAILED;
        }

        r = sd_event_default(&event);
        if (r >= 0)
                r = curl_glue_new(event, &glue);
        if (r < 0) {
                fprintf(stderr, "pullwatch: cannot set up the event loop: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        r = pull_job_new(event, glue, config, driver, &req, on_event, &cli, &job);
        if (r < 0) {
                fprintf(stderr, "pullwatch: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        if (runtime_liveness_new_for(driver, config, &liveness) >= 0) {
                LivenessSource src = runtime_liveness_source(liveness);
                _cleanup_free_ char *root = NULL, *driver_name = NULL, *dir = NULL;
                if (driver == &docker_driver && docker_info(config->docker_socket, &root, &driver_name) >= 0 && root &&
                    streq_ptr(driver_name, "overlay2") && asprintf(&dir, "%s/overlay2", root) >= 0)
                        (void) runtime_liveness_watch_disk(liveness, dir, "diff");
                pull_job_set_liveness(job, &src);
        }
        if (!cli.json && tty_view_new(stdout, isatty(STDOUT_FILENO), &cli.view) < 0)
                return EXIT_PULL_FAILED;

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sd_event_add_signal(event, NULL, SIGINT, on_signal, job);
        sd_event_add_signal(event, NULL, SIGTERM, on_signal, job);

        cli.event = event;
        cli.glue = glue;
        cli.started = now_monotonic();
        r = pull_job_start(job);
        if (r < 0) {
                fprintf_line(stderr, "pullwatch: cannot start the pull of %s: %s", req.image, strerror(-r));
                cli.exit_code = r == -EINVAL ? EXIT_USAGE : EXIT_PULL_FAILED;
        } else
                sd_event_loop(event);

        job = pull_job_free(job);
        runtime_liveness_free(liveness);
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
