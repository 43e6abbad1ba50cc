/* alert_catalog.h: the table of alert kinds pullwatch sends to journald, with their stable
 * MESSAGE_IDs, syslog priorities, names and summaries. Pure data and look-ups; it never logs. */
#pragma once

#include "basic/macro.h"

/* Order is not an interface: names and MESSAGE_IDs are. Append freely; never renumber an id. */
typedef enum AlertKind {
        ALERT_PULL_STALLED,             /* network phase without bytes; cancelled, retrying */
        ALERT_PULL_HUNG,                /* silent phase without liveness, or a livelock; retrying */
        ALERT_PULL_DEGRADED,            /* trickle below the floor rate; retrying */
        ALERT_PULL_FAILED_PERMANENT,    /* not found, unauthorized, no platform...: not retried */
        ALERT_PULL_FAILED,              /* attempts exhausted */
        ALERT_PULL_RECOVERED,           /* succeeded after one or more retries */
        ALERT_PREHEAT_COMPLETE,
        ALERT_LIST_INVALID,             /* preheat list rejected; last good list kept */
        ALERT_RUNTIME_UNREACHABLE,
        ALERT_RUNTIME_RECOVERED,
        ALERT_PREHEAT_EVICTED,          /* evicted twice within preheat.evict_window: re-pulls stopped */
        ALERT_DIAG_DECOMPRESSOR_HANG,   /* report 002 */
        ALERT_DIAG_MIDDLEBOX_TIMEOUT,   /* report 000 */
        ALERT_DIAG_RANGE_IGNORED,
        ALERT_DIAG_OCTET_STREAM_CONFIG, /* report 004 */
        ALERT_DIAG_SCHEMA1,
        ALERT_DIAG_NO_PLATFORM,
        ALERT_DIAG_AUTH,
        ALERT_DIAG_RATE_LIMITED,
        ALERT_DIAG_DISK_FULL,
        ALERT_DIAG_RUNTIME_UNVERIFIED,  /* no process proven to be the runtime */
        ALERT_DIAG_TLS_UNTRUSTED,       /* x509: the registry's certificate is not trusted */
        ALERT_DIAG_DISK_PRESSURE,       /* a pull not started: it would not fit or would trigger image GC */
        ALERT_DIAG_REGISTRY_SCHEME,     /* plain-http registry spoken to with HTTPS */
        ALERT_DIAG_CRI_PROGRESS_TIMEOUT, /* containerd's own progress timeout cancelled a live pull */
        ALERT_GUARD_HELPER_ENDED,  /* another client's pull: a proven hung helper of the runtime ended */
        ALERT_GUARD_CONNECTION_CUT, /* another client's pull: the runtime's stalled registry connection cut */
        ALERT_DIAG_MIRROR_UNRESPONSIVE, /* a mirror hop accepts connections and stays silent */
        ALERT_DIAG_MIRROR_REFUSED,      /* a mirror hop refuses connections */
        ALERT_PREHEAT_MIRROR_WAIT,      /* preheat waited preheat.mirror_wait for a node-local mirror */
        ALERT_GUARD_CUTS_STOPPED,       /* another client's download stalled again after every cut: left alone */
        _ALERT_KIND_MAX,
        _ALERT_KIND_INVALID = -EINVAL,
} AlertKind;

typedef struct AlertInfo {
        AlertKind kind;
        /* kebab-case, stable: the enum name without ALERT_ / ALERT_DIAG_, e.g. "pull-stalled",
         * "decompressor-hang". Used in --json, status, metrics labels and PULLWATCH_DIAGNOSIS. */
        const char *name;
        const char *message_id_field;   /* "MESSAGE_ID=<32 hex>", ready for sd_journal_sendv */
        int priority;                   /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO */
        const char *summary;            /* one line, no format directives; the catalog's Subject */
} AlertInfo;

/* NULL when k is out of range. */
const AlertInfo *alert_info(AlertKind k);

const char *alert_kind_to_string(AlertKind k);
AlertKind alert_kind_from_string(const char *s);

/* 32 lowercase hex digits; NULL when k is out of range. */
const char *alert_kind_message_id(AlertKind k);
/* Accepts the id with or without dashes, any case. */
AlertKind alert_kind_from_message_id(const char *id);

/* LOG_* value, or -EINVAL. */
int alert_kind_priority(AlertKind k);
/* "PRIORITY=4" style field for sd_journal_sendv; NULL when out of range. */
const char *alert_kind_priority_field(AlertKind k);

const char *alert_kind_summary(AlertKind k);

/* Diagnoses name a cause and its remedy; they go with PULLWATCH_DIAGNOSIS=<name>. */
static inline bool alert_kind_is_diagnosis(AlertKind k) {
        return (k >= ALERT_DIAG_DECOMPRESSOR_HANG && k <= ALERT_DIAG_CRI_PROGRESS_TIMEOUT) ||
               (k >= ALERT_DIAG_MIRROR_UNRESPONSIVE && k <= ALERT_DIAG_MIRROR_REFUSED);
}
