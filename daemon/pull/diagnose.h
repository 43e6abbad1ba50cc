/* diagnose.h: names known pull-failure signatures and their remedies from the facts handed in.
 * Pure: no I/O, no clock, no logging; callers decide what to report and where. */
#pragma once

#include <sys/types.h>

#include "config/config.h"
#include "probes/registry/registry.h"

typedef enum Diagnosis {
        DIAG_NONE,
        DIAG_OCTET_STREAM_CONFIG, /* config mediaType application/octet-stream on containerd */
        DIAG_SCHEMA1,             /* Docker schema 1 manifest */
        DIAG_NO_PLATFORM,         /* index without the platform asked for */
        DIAG_RANGE_IGNORED,       /* a hop answers Range with 200 */
        DIAG_MIDDLEBOX_TIMEOUT,   /* connections cut at a similar elapsed time */
        DIAG_DECOMPRESSOR_HANG,   /* unpigz & co. asleep or spinning without output */
        DIAG_AUTH,                /* 401/403, denied, authentication required */
        DIAG_RATE_LIMITED,        /* 429, toomanyrequests */
        DIAG_DISK_FULL,           /* ENOSPC on the runtime's root */
        DIAG_NOT_FOUND,           /* no such repository, tag or manifest */
        DIAG_RUNTIME_UNVERIFIED,  /* no process proven to be the runtime: blind to helpers, signals none */
        DIAG_TLS_UNTRUSTED,       /* x509/TLS: the registry's certificate is not trusted by the runtime */
        DIAG_DISK_PRESSURE,       /* the image does not fit, or would pass kubelet's image GC high threshold */
        DIAG_REGISTRY_SCHEME,     /* plain-http registry, the runtime speaks HTTPS to it */
        DIAG_CRI_PROGRESS_TIMEOUT, /* containerd's own image_pull_progress_timeout cancelled a live pull */
        DIAG_MIRROR_UNRESPONSIVE, /* a mirror hop accepts connections and never answers */
        DIAG_MIRROR_REFUSED,      /* a mirror hop refuses connections */
        _DIAGNOSIS_MAX,
        _DIAGNOSIS_INVALID = -EINVAL,
} Diagnosis;

/* Stable kebab-case names for --json and PULLWATCH_DIAGNOSIS: "octet-stream-config", ... */
const char *diagnosis_to_string(Diagnosis d);
Diagnosis diagnosis_from_string(const char *s);
/* Retrying cannot help (rebuild, credentials, platform, name); rate limits and cuts can. */
bool diagnosis_is_permanent(Diagnosis d);

/* Every diagnose_*() returns a Diagnosis (DIAG_NONE when nothing is recognized) or -ENOMEM. When
 * ret_text is non-NULL it receives one sentence, the finding and its remedy (NULL for DIAG_NONE). */

/* dockerd's and containerd's error strings (both forms for either runtime: dockerd with the
 * containerd image store speaks containerd's); the kind shapes the remedy. */
int diagnose_runtime_error(RuntimeKind runtime, const char *error_text, char **ret_text);

/* Before the pull: octet-stream config, schema 1, missing platform, checked against the runtime's
 * version ("1.6.20~ds1", "v2.1.9"; NULL = unknown, assume it applies): octet-stream-config only where
 * containerd refuses it (1.4.0 up to, not including, 2.1.0). */
int diagnose_manifest(RuntimeKind runtime, const char *version, const RegistryManifest *m, char **ret_text);
/* containerd releases that refuse an application/octet-stream config: [1.4.0, 2.1.0). */
bool diagnose_octet_applies(const char *containerd_version);

/* The runtime (or the probe with the runtime's trust) met a certificate it does not trust. host is
 * the registry host[:port], ca_where the file or dir the runtime reads that host's CA from (NULL =
 * the runtime's default place), detail the TLS error. probe: said of pullwatch's probe, not a pull. */
int diagnose_tls(RuntimeKind runtime, const char *host, const char *ca_where, const char *detail, bool probe,
                 char **ret_text);

/* No process could be proven to be the runtime (why: what was tried). */
int diagnose_runtime_unverified(RuntimeKind runtime, const char *why, char **ret_text);

/* A range probe answered 200: names the hop, and says so when it is a mirror. */
int diagnose_range_probe(const RegistryRangeProbe *p, char **ret_text);

/* A failed registry call (r from registry_*): auth, rate limit, not found. */
int diagnose_registry_error(int r, const ErrorDetail *e, char **ret_text);

typedef enum AttemptFailure {
        ATTEMPT_NONE,             /* succeeded, or still running */
        ATTEMPT_RESET,            /* connection reset by peer, broken pipe */
        ATTEMPT_EOF,              /* unexpected EOF: the body ended early */
        ATTEMPT_TRANSIENT,        /* 5xx, timeouts, anything else worth a retry */
        ATTEMPT_OTHER,
} AttemptFailure;

typedef struct DiagAttempt {
        AttemptFailure failure;
        usec_t elapsed;           /* from this attempt's body (or layer download) start to the failure */
} DiagAttempt;

/* Classify a runtime's error text for the attempt history. */
AttemptFailure attempt_failure_from_text(const char *text);

/* Two or more consecutive cuts (reset or EOF) whose elapsed times agree within 15 % (at least 5 s)
 * name a middlebox timeout, with their median. History is oldest first; the newest match wins. */
#define DIAG_MIDDLEBOX_MIN (2 * USEC_PER_SEC) /* cuts sooner than this are not idle timeouts */
int diagnose_attempts(const DiagAttempt *attempts, size_t n, char **ret_text);
/* The median of that run, or 0 when the cuts do not agree. */
usec_t diagnose_attempts_cut(const DiagAttempt *attempts, size_t n);
/* Both at once: connections cut after cut and Range ignored by hop (NULL: not named). No transfer
 * that needs longer than cut can finish through it: DIAG_MIDDLEBOX_TIMEOUT with that sentence and
 * the remedy. layer, size and bytes_at_cut (0: unknown) estimate what the layer needs. */
int diagnose_unpassable_hop(usec_t cut, const char *hop, const char *layer, uint64_t size, uint64_t bytes_at_cut,
                            char **ret_text);

/* A CRI pull that containerd cancelled itself (error_text: PullImage's grpc-message, "failed to pull
 * and unpack image ...: context canceled", or #13909's "failed to extract layer ... context canceled")
 * while pullwatch, which did not cancel it, saw it alive (alive: what it saw, e.g. "layer X extracting,
 * unpigz busy"; NULL = no such evidence: DIAG_NONE). progress_timeout: the effective setting when
 * known (NULL: not known). Names image_pull_progress_timeout and its remedy. */
int diagnose_cri_cancel(const char *error_text, const char *alive, const char *progress_timeout, char **ret_text);

/* A decompression helper (comm, pid) that slept, or spun (burned CPU) without output, for quiet. */
int diagnose_decompressor(RuntimeKind runtime, const char *comm, pid_t pid, bool spinning, usec_t quiet,
                          char **ret_text);

/* diagnose_mirror.c: the hops the registry probe asked, in its order (registry_op_tries()): the first
 * mirror that accepted the connection and stayed silent (DIAG_MIRROR_UNRESPONSIVE) or refused it
 * (DIAG_MIRROR_REFUSED), for how long, whether the hop after it answered, what the runtime does about
 * such a mirror and the remedy. source: what lists the mirror ("hosts.toml /etc/containerd/certs.d/h/hosts.toml"; NULL: the
 * runtime's usual place). */
int diagnose_mirror_hops(RuntimeKind runtime, const RegistryHopTry *tries, size_t n, const char *source,
                         char **ret_text);
/* The same for a runtime whose settings say containerd_store (dockerd on the containerd image store,
 * RuntimeRegistry.containerd_store): what it does with a silent mirror is containerd's resolver's. */
int diagnose_mirror_hops_store(RuntimeKind runtime, bool containerd_store, const RegistryHopTry *tries, size_t n,
                               const char *source, char **ret_text);
/* The mirror hop diagnose_mirror_hops() named (host[:port], into tries), or NULL. */
const char *diagnose_mirror_hop(const RegistryHopTry *tries, size_t n);
