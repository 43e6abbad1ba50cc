/* cli_daemon.c: `pullwatch daemon`, `pullwatch status` and the client half of `pullwatch pull` when
 * the daemon's control socket answers: the request goes over the socket and the events come back as
 * the same JSON lines `pull --json` prints, rendered here the way a standalone pull renders them. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon/agent/agent.h"
#include "daemon/cli/cli.h"
#include "daemon/agent/control.h"
#include "basic/escape.h"
#include "daemon/cli/render.h"
#include "daemon/preheat/state.h"
#include "probes/containerd/containerd.h"
#include "probes/docker/docker.h"
#include "probes/drivers/runtime_drivers.h"

#define STATUS_TIMEOUT_SEC 15

int cli_daemon(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(agent_freep) Agent *a = NULL;
        AgentOptions opts = { .machine_id_path = getenv("PULLWATCH_MACHINE_ID_FILE") };
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'f': opts.config_path = optarg; break;
                case 'h': printf("Usage: pullwatch daemon [--config F]\n"); return 0;
                default: return EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, "Usage: pullwatch daemon [--config F]\n");
                return EXIT_USAGE;
        }
        r = agent_new(&opts, &a);
        if (r == -EINVAL)
                return EXIT_USAGE; /* the config error is on stderr already */
        if (r < 0) {
                fprintf(stderr, "pullwatch: cannot start the daemon: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        r = agent_run(a);
        if (r < 0) {
                fprintf(stderr, "pullwatch: event loop failed: %s\n", strerror(-r));
                return EXIT_PULL_FAILED;
        }
        return 0;
}

/* Send one request line and hand back the stream of answer lines. */
static int control_request(const char *socket_path, json_t *req, usec_t timeout, FILE **ret) {
        _cleanup_free_ char *line = json_dumps(req, JSON_COMPACT);
        _cleanup_close_ int fd = -1;
        size_t len, off = 0;
        FILE *f;
        int r;

        if (!line)
                return -ENOMEM;
        r = control_connect(socket_path, &fd);
        if (r < 0)
                return r;
        if (timeout > 0) {
                struct timeval tv = { .tv_sec = (time_t) (timeout / USEC_PER_SEC) };
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        len = strlen(line);
        line[len++] = '\n'; /* replaces the NUL: written with its length */
        while (off < len) {
                ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) n;
        }
        f = fdopen(fd, "r");
        if (!f)
                return -errno;
        TAKE_FD(fd);
        *ret = f;
        return 0;
}

static const char *error_of(json_t *o) {
        return json_string_value(json_object_get(o, "error"));
}

int cli_pull_via_daemon(const Config *config, const char *image, const char *runtime, const char *platform,
                        const char *namespace, bool json) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        TtyView *view = NULL;
        size_t cap = 0;
        int r, exit_code = -1;

        if (!config->control_socket)
                return -ENOENT;
        req = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "cmd", "pull", "image", image, "runtime", runtime, "platform",
                        platform, "namespace", namespace);
        if (!req)
                return -ENOMEM;
        r = control_request(config->control_socket, req, 0, &f);
        if (r < 0)
                return r; /* no daemon here (or not ours to talk to): the caller pulls standalone */
        if (!json && tty_view_new(stdout, isatty(STDOUT_FILENO), &view) < 0)
                return EXIT_PULL_FAILED;
        while (exit_code < 0 && getline(&line, &cap, f) > 0) {
                _cleanup_(json_decrefp) json_t *o = json_loads(line, 0, NULL);
                PullEvent e;

                if (!o)
                        continue;
                if (error_of(o)) {
                        fprintf_line(stderr, "pullwatch: the daemon refused the pull: %s", error_of(o));
                        exit_code = streq_ptr(json_string_value(json_object_get(o, "code")), "bad-request") ? EXIT_USAGE
                                                                                                            : EXIT_PULL_FAILED;
                        break;
                }
                if (pull_event_from_json(o, &e) < 0)
                        continue;
                if (json) {
                        fputs(line, stdout);
                        fflush(stdout);
                } else
                        tty_view_event(view, &e, now_monotonic());
                if (e.kind == PULL_EVENT_RESULT)
                        exit_code = e.ok ? 0 : EXIT_PULL_FAILED;
        }
        tty_view_free(view);
        if (exit_code < 0) {
                fprintf(stderr, "pullwatch: the daemon closed the connection before the pull's result\n");
                exit_code = EXIT_PULL_FAILED;
        }
        return exit_code;
}

/* ---- status ---- */


static void human_ago(const char *ts, char *buf, size_t size) {
        uint64_t t, now = now_realtime();
        if (!ts || parse_timestamp(ts, &t) < 0) {
                snprintf(buf, size, "-");
                return;
        }
        uint64_t s = now > t ? (now - t) / USEC_PER_SEC : 0;
        if (s < 120)
                snprintf(buf, size, "%" PRIu64 "s ago", s);
        else if (s < 7200)
                snprintf(buf, size, "%" PRIu64 "m ago", s / 60);
        else if (s < 172800)
                snprintf(buf, size, "%" PRIu64 "h ago", s / 3600);
        else
                snprintf(buf, size, "%" PRIu64 "d ago", s / 86400);
}

static void print_layers(json_t *pull) {
        json_t *l;
        size_t i;

        if (!pull)
                return;
        fprintf_line(stdout, "    attempt %" JSON_INTEGER_FORMAT ", %.0fs", json_integer_value(json_object_get(pull, "attempt")),
                     json_number_value(json_object_get(pull, "elapsed_s")));
        json_array_foreach(json_object_get(pull, "layers"), i, l) {
                char cur[32], tot[32];
                format_bytes_human((uint64_t) json_integer_value(json_object_get(l, "current")), cur, sizeof(cur));
                format_bytes_human((uint64_t) json_integer_value(json_object_get(l, "total")), tot, sizeof(tot));
                fprintf_line(stdout, "    %-14.14s %-12s %10s / %-10s %s%s%s", json_string_value(json_object_get(l, "id")) ?: "-",
                             json_string_value(json_object_get(l, "phase")) ?: "-", cur, tot,
                             json_string_value(json_object_get(l, "verdict")) ?: "-",
                             json_string_value(json_object_get(l, "evidence")) ? ": " : "",
                             json_string_value(json_object_get(l, "evidence")) ?: "");
        }
}

/* Each reachable runtime's version and settings: what its driver describes. The daemon answers them
 * from what the runtime told it ("described_age_s" ago); this client asks a runtime itself only when
 * the daemon had nothing of it yet (just started, or an older pullwatch). */
static void add_runtime_versions(const Config *config, json_t *runtimes) {
        json_t *v;
        const char *key;

        json_object_foreach(runtimes, key, v) {
                const RuntimeDriver *d = runtime_driver_by_name(key);

                if (!json_is_true(json_object_get(v, "up")) || json_object_get(v, "described_age_s"))
                        continue;
                if (d && d->describe)
                        (void) d->describe(config, v);
        }
}

static void print_status(json_t *o) {
        json_t *v, *list = json_object_get(o, "list");
        const char *key;
        size_t i;

        fprintf_line(stdout, "pullwatch %s (pid %" JSON_INTEGER_FORMAT ", %s): %s", json_string_value(json_object_get(o, "version")) ?: "?",
                     json_integer_value(json_object_get(o, "pid")), json_string_value(json_object_get(o, "state")) ?: "?",
                     json_string_value(json_object_get(o, "summary")) ?: "");
        json_object_foreach(json_object_get(o, "runtimes"), key, v) {
                json_t *up = json_object_get(v, "up");
                const char *version = json_string_value(json_object_get(v, "version"));
                const char *api = json_string_value(json_object_get(v, "api_version"));
                fprintf_line(stdout, "runtime %s: %s%s%s%s%s%s%s%s", key,
                       json_is_null(up) ? "unknown" : json_is_true(up) ? "up" : "unreachable",
                       version ? ", version " : "", version ?: "", api ? " (API " : "", api ?: "", api ? ")" : "",
                       json_string_value(json_object_get(v, "error")) ? ": " : "",
                       json_string_value(json_object_get(v, "error")) ?: "");
                if (json_string_value(json_object_get(v, "store"))) {
                        const char *drv = json_string_value(json_object_get(v, "storage_driver"));
                        const char *addr = json_string_value(json_object_get(v, "containerd_address"));
                        const char *ns = json_string_value(json_object_get(v, "containerd_namespace"));
                        fprintf_line(stdout, "    image store: %s%s%s%s%s%s%s%s",
                                     json_string_value(json_object_get(v, "store")), drv ? " (" : "", drv ?: "",
                                     drv ? ")" : "", addr ? ", through containerd at " : "", addr ?: "",
                                     ns ? ", namespace " : "", ns ?: "");
                }
                if (json_string_value(json_object_get(v, "image_pull_progress_timeout")))
                        fprintf_line(stdout, "    image_pull_progress_timeout %s",
                               json_string_value(json_object_get(v, "image_pull_progress_timeout")));
                if (json_string_value(json_object_get(v, "warning")))
                        fprintf_line(stdout, "    WARNING: %s", json_string_value(json_object_get(v, "warning")));
                json_t *proc = json_object_get(v, "process");
                if (json_integer_value(json_object_get(proc, "pid")) > 0)
                        fprintf_line(stdout, "    process: pid %" JSON_INTEGER_FORMAT " %s (from %s)", json_integer_value(json_object_get(proc, "pid")),
                                     json_string_value(json_object_get(proc, "exe")) ?: "?",
                                     json_string_value(json_object_get(proc, "source")) ?: "?");
                else if (proc)
                        fprintf_line(stdout, "    process: NOT VERIFIED, helpers are neither watched nor signalled: %s",
                                     json_string_value(json_object_get(proc, "error")) ?: "?");
        }
        fprintf_line(stdout, "list %s: %" JSON_INTEGER_FORMAT " item(s)%s%s", json_string_value(json_object_get(list, "path")) ?: "-",
                     json_integer_value(json_object_get(list, "items")), json_is_true(json_object_get(list, "valid")) ? "" : "; INVALID, last good list kept: ",
                     json_string_value(json_object_get(list, "error")) ?: "");
        printf("\n%-44s %-10s %-8s %-19s %-9s %s\n", "IMAGE", "RUNTIME", "STATE", "DIGEST", "LAST PULL", "ATTEMPTS");
        json_array_foreach(json_object_get(o, "preheat"), i, v) {
                const char *digest = json_string_value(json_object_get(v, "digest"));
                const char *last = json_string_value(json_object_get(v, "last_success"));
                char ago[32], dshort[20];
                snprintf(dshort, sizeof(dshort), "%s", digest ? digest : "-");
                human_ago(last ? last : json_string_value(json_object_get(v, "last_attempt")), ago, sizeof(ago));
                fprintf_line(stdout, "%-44s %-10s %-8s %-19s %-9s %" JSON_INTEGER_FORMAT "", json_string_value(json_object_get(v, "image")) ?: "-",
                             json_string_value(json_object_get(v, "runtime")) ?: "-",
                             json_string_value(json_object_get(v, "state")) ?: "-", dshort, ago,
                             json_integer_value(json_object_get(v, "attempts")));
                if (json_string_value(json_object_get(v, "error")))
                        fprintf_line(stdout, "    %s", json_string_value(json_object_get(v, "error")));
                print_layers(json_object_get(v, "pull"));
        }
        if (json_array_size(json_object_get(o, "pulls")) > 0) {
                printf("\nPULLS ON REQUEST\n");
                json_array_foreach(json_object_get(o, "pulls"), i, v) {
                        fprintf_line(stdout, "%-44s %-10s", json_string_value(json_object_get(v, "image")) ?: "-",
                                     json_string_value(json_object_get(v, "runtime")) ?: "-");
                        print_layers(v);
                }
        }
        if (json_array_size(json_object_get(o, "registries")) > 0) {
                printf("\nREGISTRIES (as the runtime sees them)\n");
                json_array_foreach(json_object_get(o, "registries"), i, v) {
                        const char *err = json_string_value(json_object_get(v, "error"));
                        const char *serr = json_string_value(json_object_get(v, "settings_error"));
                        printf("%-30s %-10s %s\n", json_string_value(json_object_get(v, "host")) ?: "-",
                               json_string_value(json_object_get(v, "runtime")) ?: "-",
                               json_string_value(json_object_get(v, "settings")) ?: "-");
                        if (serr)
                                printf("    settings unreadable: %s\n", serr);
                        if (json_is_true(json_object_get(v, "reached")))
                                printf("    probe reached it via %s\n", json_string_value(json_object_get(v, "via")) ?: "?");
                        else
                                printf("    registry probe unavailable: %s\n", err ?: "no answer");
                }
        }
}

int cli_status(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_config_ Config *config = NULL;
        _cleanup_(json_decrefp) json_t *req = NULL, *o = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        const char *path = NULL;
        bool json = false;
        size_t cap = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'f': path = optarg; break;
                case 'j': json = true; break;
                case 'h': printf("Usage: pullwatch status [--json] [--config F]\n"); return 0;
                default: return EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, "Usage: pullwatch status [--json] [--config F]\n");
                return EXIT_USAGE;
        }
        r = cli_load_config(path, &config);
        if (r != 0)
                return r;
        req = json_pack("{s:s}", "cmd", "status");
        r = req ? control_request(config->control_socket, req, STATUS_TIMEOUT_SEC * USEC_PER_SEC, &f) : -ENOMEM;
        if (r < 0) {
                fprintf_line(stderr, "pullwatch: no daemon answers on %s: %s", config->control_socket,
                             r == -ENOENT ? "no such socket" : strerror(-r));
                return EXIT_PULL_FAILED;
        }
        if (getline(&line, &cap, f) <= 0 || !(o = json_loads(line, 0, NULL))) {
                fprintf(stderr, "pullwatch: the daemon on %s gave no status\n", config->control_socket);
                return EXIT_PULL_FAILED;
        }
        if (error_of(o)) {
                fprintf_line(stderr, "pullwatch: the daemon refused: %s", error_of(o));
                return EXIT_PULL_FAILED;
        }
        add_runtime_versions(config, json_object_get(o, "runtimes"));
        if (json) {
                if (json_dumpf(o, stdout, JSON_COMPACT) < 0)
                        return EXIT_PULL_FAILED;
                putchar('\n');
        } else
                print_status(o);
        return 0;
}
