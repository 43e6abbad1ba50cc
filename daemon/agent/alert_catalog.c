/* alert_catalog.c: the alert table. MESSAGE_IDs were generated once with `systemd-id128 new` and are
 * fixed forever: dashboards and journalctl MESSAGE_ID= filters depend on them. Each one has an entry in
 * systemd/pullwatch.catalog; tests/unit/test_alert_catalog.c keeps the two in step. */
#include <ctype.h>
#include <syslog.h>

#include "daemon/agent/alert_catalog.h"

#define ID(hex) "MESSAGE_ID=" hex
#define ID_PREFIX_LEN (sizeof("MESSAGE_ID=") - 1)

static const AlertInfo alert_table[_ALERT_KIND_MAX] = {
        [ALERT_PULL_STALLED] = {
                ALERT_PULL_STALLED, "pull-stalled", ID("f36e7887655d4e898f44005084b71ed4"), LOG_WARNING,
                "Image pull stalled: no bytes arrived in time; cancelled and retrying",
        },
        [ALERT_PULL_HUNG] = {
                ALERT_PULL_HUNG, "pull-hung", ID("b7f3a2156c4f47eeada9d1555a233838"), LOG_WARNING,
                "Image pull hung in a silent phase with no sign of work; cancelled and retrying",
        },
        [ALERT_PULL_DEGRADED] = {
                ALERT_PULL_DEGRADED, "pull-degraded", ID("6525f4db357141de8abcceb1d646b8fc"), LOG_WARNING,
                "Image pull degraded below the floor rate; retrying on a fresh connection",
        },
        [ALERT_PULL_FAILED_PERMANENT] = {
                ALERT_PULL_FAILED_PERMANENT, "pull-failed-permanent", ID("59e9a1ef15574b12aae5aa3abf65ce2b"),
                LOG_ERR, "Image pull failed with a permanent error; not retried",
        },
        [ALERT_PULL_FAILED] = {
                ALERT_PULL_FAILED, "pull-failed", ID("d2ec899af211496b8273af6a9f748756"), LOG_ERR,
                "Image pull failed after all attempts",
        },
        [ALERT_PULL_RECOVERED] = {
                ALERT_PULL_RECOVERED, "pull-recovered", ID("3cefa26f1c314af6826d209c63721f23"), LOG_NOTICE,
                "Image pull succeeded after retries",
        },
        [ALERT_PREHEAT_COMPLETE] = {
                ALERT_PREHEAT_COMPLETE, "preheat-complete", ID("b9497fbecb0a4529b4ad38d29170f11b"), LOG_INFO,
                "Every image in the preheat list is present",
        },
        [ALERT_LIST_INVALID] = {
                ALERT_LIST_INVALID, "list-invalid", ID("b727f8c32cc74941970739e0c681d642"), LOG_ERR,
                "Preheat list is invalid; the last good list stays in force",
        },
        [ALERT_RUNTIME_UNREACHABLE] = {
                ALERT_RUNTIME_UNREACHABLE, "runtime-unreachable", ID("848a36df92fa45d498949970891e25de"),
                LOG_ERR, "Container runtime unreachable; reconnecting with backoff",
        },
        [ALERT_RUNTIME_RECOVERED] = {
                ALERT_RUNTIME_RECOVERED, "runtime-recovered", ID("ce532b56ba40440484e837effba1c719"), LOG_INFO,
                "Container runtime reachable again",
        },
        [ALERT_PREHEAT_EVICTED] = {
                ALERT_PREHEAT_EVICTED, "preheat-evicted", ID("fb7ea850e43a4c29b9b032aec2c82654"), LOG_WARNING,
                "Preheated image evicted again by the image garbage collection; re-pulls stopped",
        },
        [ALERT_DIAG_DECOMPRESSOR_HANG] = {
                ALERT_DIAG_DECOMPRESSOR_HANG, "decompressor-hang", ID("68b0cfb7102247809926089a597b07b1"),
                LOG_WARNING, "Layer decompressor (unpigz) hung during extraction",
        },
        [ALERT_DIAG_MIDDLEBOX_TIMEOUT] = {
                ALERT_DIAG_MIDDLEBOX_TIMEOUT, "middlebox-timeout", ID("fdb14bf2dd8a431a93c53b59b22d7965"),
                LOG_WARNING, "Registry connections are cut at a fixed elapsed time by a proxy or load balancer",
        },
        [ALERT_DIAG_RANGE_IGNORED] = {
                ALERT_DIAG_RANGE_IGNORED, "range-ignored", ID("1ed7a0c0a2b74eb2abf653119d93d820"), LOG_WARNING,
                "Registry or mirror ignores Range requests; interrupted layers restart from zero",
        },
        [ALERT_DIAG_OCTET_STREAM_CONFIG] = {
                ALERT_DIAG_OCTET_STREAM_CONFIG, "octet-stream-config", ID("4e92a141ab484dd393802878632a8f50"),
                LOG_WARNING, "Image config has mediaType application/octet-stream, which containerd refuses",
        },
        [ALERT_DIAG_SCHEMA1] = {
                ALERT_DIAG_SCHEMA1, "schema1", ID("479a669a60ee43da8a91feaa8dcb4dfc"), LOG_WARNING,
                "Image has a deprecated schema 1 manifest that current runtimes refuse",
        },
        [ALERT_DIAG_NO_PLATFORM] = {
                ALERT_DIAG_NO_PLATFORM, "no-platform", ID("2ae31f022ab94bfb868d3c494d21c93a"), LOG_WARNING,
                "Image index has no manifest for this node's platform",
        },
        [ALERT_DIAG_AUTH] = {
                ALERT_DIAG_AUTH, "auth", ID("f9efe793e20b4e2d92e3efd29364f20a"), LOG_WARNING,
                "Registry refused the pull's credentials",
        },
        [ALERT_DIAG_RATE_LIMITED] = {
                ALERT_DIAG_RATE_LIMITED, "rate-limited", ID("7857321cb4d44063bdee7a9819c2efac"), LOG_WARNING,
                "Registry rate limit reached",
        },
        [ALERT_DIAG_DISK_FULL] = {
                ALERT_DIAG_DISK_FULL, "disk-full", ID("8c2d266fec204062af5615ad9f7f0033"), LOG_WARNING,
                "No space left on the container runtime's storage",
        },
        [ALERT_DIAG_RUNTIME_UNVERIFIED] = {
                ALERT_DIAG_RUNTIME_UNVERIFIED, "runtime-unverified", ID("d99fda5f42084337a59a1c9a56b50f2b"),
                LOG_WARNING, "No process proven to be the container runtime; helpers are not watched or signalled",
        },
        [ALERT_DIAG_TLS_UNTRUSTED] = {
                ALERT_DIAG_TLS_UNTRUSTED, "tls-untrusted", ID("6d26c73914ce4065bddef962dab889ea"), LOG_WARNING,
                "The registry's TLS certificate is not trusted by the container runtime",
        },
        [ALERT_DIAG_DISK_PRESSURE] = {
                ALERT_DIAG_DISK_PRESSURE, "disk-pressure", ID("60df0400a05f4e298945d5f6f563cc45"), LOG_WARNING,
                "Image pull not started: it would not fit on the image filesystem or would pass the image GC threshold",
        },
        [ALERT_DIAG_REGISTRY_SCHEME] = {
                ALERT_DIAG_REGISTRY_SCHEME, "registry-scheme", ID("8bf1c2f1feaa448bb13f123295a38d17"), LOG_WARNING,
                "The registry answers plain HTTP; the runtime speaks HTTPS to it",
        },
        [ALERT_DIAG_CRI_PROGRESS_TIMEOUT] = {
                ALERT_DIAG_CRI_PROGRESS_TIMEOUT, "cri-progress-timeout", ID("02adab8595d248e29efa25f04f420bd5"), LOG_WARNING,
                "containerd's image_pull_progress_timeout cancelled a pull pullwatch saw alive",
        },
        [ALERT_GUARD_HELPER_ENDED] = {
                ALERT_GUARD_HELPER_ENDED, "helper-ended", ID("a4c1f9b27d3e4f6a8b0c5d2e7f193846"), LOG_WARNING,
                "a hung helper of the runtime was ended in a pull another client started",
        },
        [ALERT_GUARD_CONNECTION_CUT] = {
                ALERT_GUARD_CONNECTION_CUT, "connection-cut", ID("5e8d2c4b9a7f41e3b6d0c8a2f4e17b95"), LOG_WARNING,
                "the runtime's stalled registry connection was cut in a pull another client started",
        },
        [ALERT_DIAG_MIRROR_UNRESPONSIVE] = {
                ALERT_DIAG_MIRROR_UNRESPONSIVE, "mirror-unresponsive", ID("f16c787e754f4d9e92600d05342105c9"), LOG_WARNING,
                "A registry mirror of the runtime accepts connections and never answers",
        },
        [ALERT_DIAG_MIRROR_REFUSED] = {
                ALERT_DIAG_MIRROR_REFUSED, "mirror-refused", ID("2de0e919a9bd4f1ba276f7fe2b19f1ee"), LOG_WARNING,
                "A registry mirror of the runtime refuses connections",
        },
        [ALERT_PREHEAT_MIRROR_WAIT] = {
                ALERT_PREHEAT_MIRROR_WAIT, "preheat-mirror-wait", ID("0634607b61d74ae09a4bc86a6d5aa6c2"), LOG_WARNING,
                "Preheat waited for the runtime's node-local mirror, which does not answer",
        },
        [ALERT_GUARD_CUTS_STOPPED] = {
                ALERT_GUARD_CUTS_STOPPED, "cuts-stopped", ID("c3b7e2a95d1f4c0e8a6b4d9f2e071c58"), LOG_WARNING,
                "pullwatch stopped cutting a download of another client's pull that stalls again after every cut",
        },
};

/* Indexed by LOG_* (0..7). */
static const char *const priority_fields[] = {
        "PRIORITY=0", "PRIORITY=1", "PRIORITY=2", "PRIORITY=3",
        "PRIORITY=4", "PRIORITY=5", "PRIORITY=6", "PRIORITY=7",
};

const AlertInfo *alert_info(AlertKind k) {
        return k >= 0 && k < _ALERT_KIND_MAX ? &alert_table[k] : NULL;
}

const char *alert_kind_to_string(AlertKind k) {
        const AlertInfo *a = alert_info(k);
        return a ? a->name : NULL;
}

AlertKind alert_kind_from_string(const char *s) {
        if (!s)
                return _ALERT_KIND_INVALID;
        for (int i = 0; i < _ALERT_KIND_MAX; i++)
                if (streq(alert_table[i].name, s))
                        return (AlertKind) i;
        return _ALERT_KIND_INVALID;
}

const char *alert_kind_message_id(AlertKind k) {
        const AlertInfo *a = alert_info(k);
        return a ? a->message_id_field + ID_PREFIX_LEN : NULL;
}

AlertKind alert_kind_from_message_id(const char *id) {
        char norm[33];
        size_t n = 0;

        if (!id)
                return _ALERT_KIND_INVALID;
        /* Also the dashed UUID form that `journalctl --list-catalog` and sd_id128 print. */
        for (const char *p = id; *p; p++) {
                if (*p == '-')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= 32)
                        return _ALERT_KIND_INVALID;
                norm[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != 32)
                return _ALERT_KIND_INVALID;
        norm[n] = 0;

        for (int i = 0; i < _ALERT_KIND_MAX; i++)
                if (streq(alert_table[i].message_id_field + ID_PREFIX_LEN, norm))
                        return (AlertKind) i;
        return _ALERT_KIND_INVALID;
}

int alert_kind_priority(AlertKind k) {
        const AlertInfo *a = alert_info(k);
        return a ? a->priority : -EINVAL;
}

const char *alert_kind_priority_field(AlertKind k) {
        const AlertInfo *a = alert_info(k);
        if (!a || a->priority < 0 || (size_t) a->priority >= ELEMENTSOF(priority_fields))
                return NULL;
        return priority_fields[a->priority];
}

const char *alert_kind_summary(AlertKind k) {
        const AlertInfo *a = alert_info(k);
        return a ? a->summary : NULL;
}
