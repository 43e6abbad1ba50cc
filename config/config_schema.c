/* config_schema.c: every pullwatch.yaml key once, and the per-type parse, check, free, compare and
 * dump that the loader and config_dump() share; the runtime-kind names. */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>

#include "config/config_schema.h"
#include "config/config_yaml.h"

/* The runtime names, as the config, the preheat list and --runtime spell them. */
static const char *const runtime_kind_table[_RUNTIME_KIND_MAX] = {
        [RUNTIME_AUTO] = "auto",
        [RUNTIME_DOCKER] = "docker",
        [RUNTIME_CONTAINERD] = "containerd",
};

const char *runtime_kind_to_string(RuntimeKind k) {
        if (k < 0 || k >= _RUNTIME_KIND_MAX)
                return NULL;
        return runtime_kind_table[k];
}

RuntimeKind runtime_kind_from_string(const char *s) {
        return string_table_lookup(runtime_kind_table, _RUNTIME_KIND_MAX, s);
}

#define FIELD(c, o, T) ((T *) ((char *) (c) + (o)->offset))
#define CFIELD(c, o, T) ((const __typeof__(T) *) ((const char *) (c) + (o)->offset))

#define OPT(k, t, field, d, fl, ch, h) \
        { .key = k, .type = CONFIG_TYPE_##t, .offset = offsetof(Config, field), .def = d, .flags = fl, \
          .check = CONFIG_CHECK_##ch, .help = h }
#define LIST(k, field, dl, ch, h) \
        { .key = k, .type = CONFIG_TYPE_STRV, .offset = offsetof(Config, field), .def_list = dl, \
          .check = CONFIG_CHECK_##ch, .help = h }

static const char *const default_guard_namespaces[] = { "k8s.io", "moby", "default", NULL };

static const char *const default_credentials[] = {
        "/root/.docker/config.json",
        "/var/lib/kubelet/config.json",
        NULL,
};

/* Grouped by section: config_dump() opens a section whenever the prefix changes. */
const ConfigOption config_options[] = {
        OPT("runtime", RUNTIME, runtime, "auto", 0, NONE,
            "runtime to drive: auto (containerd when its socket exists, else docker), docker or containerd"),
        OPT("docker.socket", STRING, docker_socket, "/var/run/docker.sock", 0, ABSOLUTE_PATH,
            "Docker Engine API socket"),
        OPT("docker.pidfile", STRING_OPT, docker_pidfile, "/var/run/docker.pid", 0, ABSOLUTE_PATH,
            "dockerd's pid file, to find the process the liveness probes watch"),
        OPT("docker.certs_dir", STRING, docker_certs_dir, "/etc/docker/certs.d", 0, ABSOLUTE_PATH,
            "where dockerd reads each registry's CA and client certificates (<host:port>/ca.crt)"),
        OPT("containerd.socket", STRING, containerd_socket, "/run/containerd/containerd.sock", 0, ABSOLUTE_PATH,
            "containerd's gRPC socket"),
        OPT("containerd.namespace", STRING, containerd_namespace, "k8s.io", 0, NAMESPACE,
            "namespace pulls go to; k8s.io is the one kubelet sees"),
        OPT("containerd.pidfile", STRING_OPT, containerd_pidfile, NULL, 0, ABSOLUTE_PATH,
            "containerd's pid file; null = find the process by its socket"),
        OPT("containerd.hosts_dir", STRING, containerd_hosts_dir, "/etc/containerd/certs.d", 0, ABSOLUTE_PATH,
            "containerd's registry config_path (hosts.toml per host), used when neither CRI Status (1.x) nor containerd's own config file (2.x) names one"),
        LIST("credentials", credentials, default_credentials, ABSOLUTE_PATH,
             "docker config.json files with registry credentials, the first with an entry wins"),
        OPT("platform", STRING_OPT, platform, NULL, 0, PLATFORM,
            "platform to pull, like linux/arm64; null = the runtime's own"),
        OPT("preheat.list", STRING, preheat.list, "/etc/pullwatch/preheat.yaml", 0, ABSOLUTE_PATH,
            "YAML list of images to keep pulled, reloaded when it changes"),
        OPT("preheat.concurrency", UNSIGNED, preheat.concurrency, "2", CONFIG_NONZERO, NONE,
            "preheat pulls running at once on this node"),
        OPT("preheat.splay", DURATION, preheat.splay, "2m", 0, NONE,
            "random delay up to this before each preheat round, so a fleet does not pull at once"),
        OPT("preheat.recheck", DURATION, preheat.recheck, "30m", 0, NONE,
            "how often preheated images are checked for eviction or a moved tag; 0s = never"),
        OPT("preheat.evict_window", DURATION, preheat.evict_window, "1h", CONFIG_NONZERO, NONE,
            "an image evicted twice within this stops being re-pulled until disk usage falls below the low threshold"),
        OPT("preheat.pin", BOOL, preheat.pin, "false", 0, NONE,
            "containerd: label preheated images io.cri-containerd.pinned=pinned so kubelet's image GC keeps them"),
        OPT("preheat.mirror_wait", DURATION, preheat.mirror_wait, "5m", CONFIG_NONZERO, NONE,
            "a preheat pull waits for the runtime's node-local first mirror; after this long it says so in journald"),
        OPT("preheat.mirror_fallback", BOOL, preheat.mirror_fallback, "false", 0, NONE,
            "after preheat.mirror_wait, pull anyway (past the mirror, from the origin); false = keep waiting"),
        OPT("kubelet.image_gc_high_threshold", UNSIGNED, kubelet.image_gc_high_threshold, "85",
            CONFIG_NONZERO | CONFIG_PERCENT, NONE,
            "kubelet's imageGCHighThresholdPercent: a pull that would push the image filesystem past it is not started"),
        OPT("kubelet.image_gc_low_threshold", UNSIGNED, kubelet.image_gc_low_threshold, "80", CONFIG_PERCENT, NONE,
            "kubelet's imageGCLowThresholdPercent: evicted images are tried again once usage is below it"),
        OPT("state_dir", STRING, state_dir, "/var/lib/pullwatch", 0, ABSOLUTE_PATH,
            "where state survives restarts"),
        OPT("control_socket", STRING, control_socket, "/run/pullwatch/control.sock", 0, ABSOLUTE_PATH,
            "socket that pullwatch status and pullwatch pull talk to (root only)"),
        OPT("guard.enabled", BOOL, guard.enabled, "true", 0, NONE,
            "watch every pull on the node, other clients' too (kubelet's, docker pull, ctr)"),
        OPT("guard.act", BOOL, guard.act, "true", 0, NONE,
            "on other clients' pulls, end a proven hung helper and cut a stalled registry connection; false = report only"),
        LIST("guard.namespaces", guard.namespaces, default_guard_namespaces, NAMESPACE,
             "containerd namespaces whose pulls are watched (kubelet's k8s.io, dockerd's moby, ctr's default)"),
        OPT("cri.listen", STRING_OPT, cri_listen, "/run/pullwatch/cri.sock", 0, ABSOLUTE_PATH,
            "socket where pullwatch serves CRI's ImageService to kubelet (its imageServiceEndpoint); null = only when socket-activated"),
        OPT("metrics.textfile", STRING_OPT, metrics_textfile, NULL, 0, ABSOLUTE_PATH,
            "Prometheus file for node_exporter's textfile collector; null = no metrics"),
        OPT("alerts.rate_limit", DURATION, alert_rate_limit, "10m", 0, NONE,
            "at most one alert per image and kind in this interval; 0s = no limit"),
        OPT("watchdog.sample_interval", DURATION, watchdog.sample_interval, "2s", CONFIG_NONZERO, NONE,
            "how often probes sample and the detector judges"),
        OPT("watchdog.network_stall", DURATION, watchdog.network_stall, "60s",
            CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE, NONE,
            "resolving or downloading with no new bytes this long is a stall"),
        OPT("watchdog.silent_min", DURATION, watchdog.silent_min, "2m", CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE,
            NONE, "smallest budget of a silent phase (verify, extract, register)"),
        OPT("watchdog.silent_min_rate", SIZE, watchdog.silent_min_rate, "20MiB", CONFIG_NONZERO, NONE,
            "bytes per second: a silent phase gets max(silent_min, layer size / this)"),
        OPT("watchdog.hang_quiet", DURATION, watchdog.hang_quiet, "2m", CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE,
            NONE, "silent phase with no CPU, I/O or disk growth this long is hung"),
        OPT("watchdog.livelock_window", DURATION, watchdog.livelock_window, "5m",
            CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE, NONE,
            "CPU burning with no output this long is a livelock (hung)"),
        OPT("watchdog.trickle_rate", SIZE, watchdog.trickle_rate, "32KiB", CONFIG_NONZERO, NONE,
            "bytes per second below which a download is degraded ..."),
        OPT("watchdog.trickle_window", DURATION, watchdog.trickle_window, "5m",
            CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE, NONE, "... when it stays below for this long"),
        OPT("watchdog.waiting_max", DURATION, watchdog.waiting_max, "2m", CONFIG_NONZERO | CONFIG_AT_LEAST_SAMPLE,
            NONE, "a layer left waiting this long while nothing in its pull moves is stuck"),
        OPT("retry.attempts", UNSIGNED, retry.attempts, "5", CONFIG_NONZERO, NONE,
            "attempts per pull, the first included"),
        OPT("retry.backoff", DURATION, retry.backoff, "2s", 0, NONE,
            "delay before the first retry, doubled each time, with jitter"),
        OPT("retry.backoff_max", DURATION, retry.backoff_max, "5m", 0, NONE, "the delay never exceeds this"),
        LIST("registry.insecure", registry.insecure, NULL, HOST_PORT,
             "registries (host or host:port) spoken to over plain HTTP; loopback always is"),
        LIST("registry.mirrors", registry.mirrors, NULL, URL,
             "mirror base URLs tried before the registry itself"),
};

const size_t config_options_count = ELEMENTSOF(config_options);

const ConfigOption *config_option_find(const char *key) {
        for (size_t i = 0; i < config_options_count; i++)
                if (streq(config_options[i].key, key))
                        return &config_options[i];
        return NULL;
}

bool config_section_exists(const char *prefix) {
        size_t n = strlen(prefix);

        for (size_t i = 0; i < config_options_count; i++)
                if (strncmp(config_options[i].key, prefix, n) == 0 && config_options[i].key[n] == '.')
                        return true;
        return false;
}

static const char *check_expected(ConfigCheck c) {
        switch (c) {
        case CONFIG_CHECK_ABSOLUTE_PATH:
                return "an absolute path";
        case CONFIG_CHECK_NAMESPACE:
                return "a containerd namespace like k8s.io (letters and digits joined by '.', '_' or '-')";
        case CONFIG_CHECK_PLATFORM:
                return "a platform like linux/amd64 or linux/arm64/v8";
        case CONFIG_CHECK_HOST_PORT:
                return "a registry host like registry.local or 10.0.0.5:5000";
        case CONFIG_CHECK_URL:
                return "an http:// or https:// URL";
        default:
                return "a string";
        }
}

const char *config_option_expected_item(const ConfigOption *o) {
        return check_expected(o->check);
}

const char *config_option_expected(const ConfigOption *o) {
        switch (o->type) {
        case CONFIG_TYPE_DURATION:
                return "a duration like 90s, 5m or 1h30m";
        case CONFIG_TYPE_SIZE:
                return "a size like 64KiB, 20MiB or 1GB";
        case CONFIG_TYPE_UNSIGNED:
                return "a whole number like 2";
        case CONFIG_TYPE_RUNTIME:
                return "one of auto, docker, containerd";
        case CONFIG_TYPE_BOOL:
                return "true or false";
        case CONFIG_TYPE_STRV:
                switch (o->check) {
                case CONFIG_CHECK_ABSOLUTE_PATH:
                        return "an absolute path or a list of them";
                case CONFIG_CHECK_HOST_PORT:
                        return "a list of registry hosts like registry.local or 10.0.0.5:5000";
                case CONFIG_CHECK_URL:
                        return "a list of http:// or https:// URLs";
                case CONFIG_CHECK_NAMESPACE:
                        return "a list of containerd namespaces like k8s.io";
                default:
                        return "a string or a list of strings";
                }
        default:
                return check_expected(o->check);
        }
}

static int bad_value(ErrorDetail *ret_error, int r, const char *expected, const char *s, const char *why) {
        _cleanup_free_ char *q = config_quote(s);

        if (!q)
                return -ENOMEM;
        return error_detail_setf(ret_error, r, "expected %s, got %s%s", expected, q, why ?: "");
}

static bool url_is_valid(const char *s) {
        const char *host;

        if (startswith(s, "https://"))
                host = s + 8;
        else if (startswith(s, "http://"))
                host = s + 7;
        else
                return false;
        if (*host == 0 || *host == '/')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7F)
                        return false;
        return true;
}

static bool check_passes(ConfigCheck c, const char *s) {
        switch (c) {
        case CONFIG_CHECK_ABSOLUTE_PATH:
                return s[0] == '/';
        case CONFIG_CHECK_NAMESPACE:
                return config_namespace_is_valid(s);
        case CONFIG_CHECK_PLATFORM:
                return config_platform_is_valid(s);
        case CONFIG_CHECK_HOST_PORT:
                return config_host_port_is_valid(s);
        case CONFIG_CHECK_URL:
                return url_is_valid(s);
        default:
                return *s != 0;
        }
}

int config_option_check_item(const ConfigOption *o, const char *s, ErrorDetail *ret_error) {
        if (!check_passes(o->check, s))
                return bad_value(ret_error, -EINVAL, check_expected(o->check), s, NULL);
        return 0;
}

int config_option_set(Config *c, const ConfigOption *o, const char *s, ErrorDetail *ret_error) {
        const char *nonzero = NULL;
        int r;


        switch (o->type) {
        case CONFIG_TYPE_STRING:
        case CONFIG_TYPE_STRING_OPT: {
                char *copy;

                r = config_option_check_item(o, s, ret_error);
                if (r < 0)
                        return r;
                copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
                free(*FIELD(c, o, char *));
                *FIELD(c, o, char *) = copy;
                return 0;
        }
        case CONFIG_TYPE_DURATION: {
                usec_t u;

                r = parse_duration(s, &u);
                if (r == -ERANGE)
                        return bad_value(ret_error, r, config_option_expected(o), s, " (too large)");
                if (r < 0)
                        return bad_value(ret_error, r, config_option_expected(o), s, NULL);
                if (u == USEC_INFINITY)
                        return bad_value(ret_error, -EINVAL, "a finite duration", s, NULL);
                if (u == 0 && (o->flags & CONFIG_NONZERO)) {
                        nonzero = "a duration greater than 0";
                        break;
                }
                *FIELD(c, o, usec_t) = u;
                return 0;
        }
        case CONFIG_TYPE_SIZE: {
                uint64_t b;

                r = parse_size(s, &b);
                if (r == -ERANGE)
                        return bad_value(ret_error, r, config_option_expected(o), s, " (too large)");
                if (r < 0)
                        return bad_value(ret_error, r, config_option_expected(o), s, NULL);
                if (b == 0 && (o->flags & CONFIG_NONZERO)) {
                        nonzero = "a size greater than 0";
                        break;
                }
                *FIELD(c, o, uint64_t) = b;
                return 0;
        }
        case CONFIG_TYPE_UNSIGNED: {
                long long v;

                r = config_parse_integer(s, 0, UINT_MAX, &v);
                if (r == -ERANGE)
                        return bad_value(ret_error, r, config_option_expected(o), s, " (too large)");
                if (r < 0)
                        return bad_value(ret_error, r, config_option_expected(o), s, NULL);
                if (v == 0 && (o->flags & CONFIG_NONZERO)) {
                        nonzero = (o->flags & CONFIG_PERCENT) ? "a percentage from 1 to 100" : "a number greater than 0";
                        break;
                }
                if (v > 100 && (o->flags & CONFIG_PERCENT))
                        return bad_value(ret_error, -ERANGE,
                                         (o->flags & CONFIG_NONZERO) ? "a percentage from 1 to 100"
                                                                     : "a percentage from 0 to 100",
                                         s, NULL);
                *FIELD(c, o, unsigned) = (unsigned) v;
                return 0;
        }
        case CONFIG_TYPE_RUNTIME: {
                RuntimeKind k = runtime_kind_from_string(s);

                if (k < 0)
                        return bad_value(ret_error, -EINVAL, config_option_expected(o), s, NULL);
                *FIELD(c, o, RuntimeKind) = k;
                return 0;
        }
        case CONFIG_TYPE_BOOL:
                if (streq(s, "true"))
                        *FIELD(c, o, bool) = true;
                else if (streq(s, "false"))
                        *FIELD(c, o, bool) = false;
                else
                        return bad_value(ret_error, -EINVAL, config_option_expected(o), s, NULL);
                return 0;
        case CONFIG_TYPE_STRV:
        default:
                return -EINVAL; /* lists go through config_option_set_strv() */
        }

        return bad_value(ret_error, -EINVAL, nonzero, s, NULL);
}

void config_option_unset(Config *c, const ConfigOption *o) {
        if (o->type == CONFIG_TYPE_STRING_OPT) {
                free(*FIELD(c, o, char *));
                *FIELD(c, o, char *) = NULL;
        }
}

void config_option_set_strv(Config *c, const ConfigOption *o, char **l) {
        strv_free(*FIELD(c, o, char **));
        *FIELD(c, o, char **) = l;
}

void config_option_free(Config *c, const ConfigOption *o) {
        if (o->type == CONFIG_TYPE_STRING || o->type == CONFIG_TYPE_STRING_OPT) {
                free(*FIELD(c, o, char *));
                *FIELD(c, o, char *) = NULL;
        } else if (o->type == CONFIG_TYPE_STRV)
                config_option_set_strv(c, o, NULL);
}

bool config_option_equal(const Config *a, const Config *b, const ConfigOption *o) {
        switch (o->type) {
        case CONFIG_TYPE_STRING:
        case CONFIG_TYPE_STRING_OPT:
                return streq_ptr(*CFIELD(a, o, char *), *CFIELD(b, o, char *));
        case CONFIG_TYPE_STRV: {
                char *const *x = *CFIELD(a, o, char **), *const *y = *CFIELD(b, o, char **);
                size_t n = strv_length(x);

                if (n != strv_length(y))
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!streq(x[i], y[i]))
                                return false;
                return true;
        }
        case CONFIG_TYPE_DURATION:
                return *CFIELD(a, o, usec_t) == *CFIELD(b, o, usec_t);
        case CONFIG_TYPE_SIZE:
                return *CFIELD(a, o, uint64_t) == *CFIELD(b, o, uint64_t);
        case CONFIG_TYPE_UNSIGNED:
                return *CFIELD(a, o, unsigned) == *CFIELD(b, o, unsigned);
        case CONFIG_TYPE_RUNTIME:
                return *CFIELD(a, o, RuntimeKind) == *CFIELD(b, o, RuntimeKind);
        case CONFIG_TYPE_BOOL:
                return *CFIELD(a, o, bool) == *CFIELD(b, o, bool);
        }
        return false;
}

/* YAML double-quoted scalar: every string survives, whatever characters it holds. */
static void dump_string(const char *s, FILE *f) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;

                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch == '\n')
                        fputs("\\n", f);
                else if (ch == '\t')
                        fputs("\\t", f);
                else if (ch < 0x20 || ch == 0x7F)
                        fprintf(f, "\\x%02X", ch);
                else if (ch == 0xC2 && (unsigned char) s[1] >= 0x80 && (unsigned char) s[1] <= 0x9F) {
                        /* C1 controls: a YAML reader refuses them raw, and takes NEL (U+0085) for a line break */
                        fprintf(f, "\\x%02X", (unsigned char) s[1]);
                        s++;
                } else if ((ch == 0xE2 && (unsigned char) s[1] == 0x80 && ((unsigned char) s[2] & 0xFE) == 0xA8) ||
                           (ch == 0xEF && (((unsigned char) s[1] == 0xBB && (unsigned char) s[2] == 0xBF) ||
                                           ((unsigned char) s[1] == 0xBF && ((unsigned char) s[2] & 0xFE) == 0xBE)))) {
                        /* U+2028/U+2029 are line breaks to YAML too; U+FEFF, U+FFFE, U+FFFF it refuses raw */
                        fprintf(f, "\\u%04X",
                                (ch & 0x0F) << 12 | ((unsigned char) s[1] & 0x3F) << 6 | ((unsigned char) s[2] & 0x3F));
                        s += 2;
                } else
                        fputc(ch, f);
        }
        fputc('"', f);
}

char *config_option_to_string(const Config *c, const ConfigOption *o) {
        char *s = NULL;

        switch (o->type) {
        case CONFIG_TYPE_DURATION:
                return format_duration(*CFIELD(c, o, usec_t));
        case CONFIG_TYPE_SIZE:
                return format_size(*CFIELD(c, o, uint64_t));
        case CONFIG_TYPE_UNSIGNED:
                return asprintf(&s, "%u", *CFIELD(c, o, unsigned)) < 0 ? NULL : s;
        case CONFIG_TYPE_RUNTIME:
                return strdup(runtime_kind_to_string(*CFIELD(c, o, RuntimeKind)) ?: "invalid");
        case CONFIG_TYPE_BOOL:
                return strdup(*CFIELD(c, o, bool) ? "true" : "false");
        default:
                return strdup(*CFIELD(c, o, char *) ?: "null");
        }
}

int config_option_dump(const Config *c, const ConfigOption *o, unsigned indent, FILE *f) {
        switch (o->type) {
        case CONFIG_TYPE_STRING:
        case CONFIG_TYPE_STRING_OPT: {
                const char *s = *CFIELD(c, o, char *);

                if (!s)
                        fputs(" null\n", f);
                else {
                        fputc(' ', f);
                        dump_string(s, f);
                        fputc('\n', f);
                }
                return 0;
        }
        case CONFIG_TYPE_STRV: {
                char *const *l = *CFIELD(c, o, char **);

                if (strv_length(l) == 0) {
                        fputs(" []\n", f);
                        return 0;
                }
                fputc('\n', f);
                for (; *l; l++) {
                        fprintf(f, "%*s  - ", (int) indent, "");
                        dump_string(*l, f);
                        fputc('\n', f);
                }
                return 0;
        }
        default: {
                _cleanup_free_ char *s = config_option_to_string(c, o);

                if (!s)
                        return -ENOMEM;
                fprintf(f, " %s\n", s);
                return 0;
        }
        }
}
