/* runtime.h: the runtime driver table: everything that differs between runtimes (how one pulls, is watched,
 * extracts, keeps its registry settings and images, is worded in a diagnosis). Facts only, never a decision;
 * the rest of the tree asks a driver (probes/drivers/runtime_drivers.h picks it) and never its kind. */
#pragma once

#include "basic/error_detail.h"
#include "basic/phase.h"
#include "basic/unix_socket.h"
#include "probes/transport/curl_glue.h"
#include "config/config.h"
#include "probes/registry/registry_trust.h"
#include "probes/runtime/runtime_identity.h"

struct json_t;

typedef enum ErrorClass {
        ERROR_NONE,
        ERROR_TRANSIENT,  /* worth retrying: EOF, reset, 5xx, range refused, runtime's own give-up */
        ERROR_PERMANENT,  /* retrying cannot help: not found, unauthorized, no platform, bad reference */
        ERROR_CANCELLED,  /* we cut it */
        _ERROR_CLASS_MAX,
} ErrorClass;

const char *error_class_to_string(ErrorClass c);

/* error classifies the outcome; it is not an error detail. message stays the runtime's own text rather
 * than an ErrorDetail (basic/error_detail.h): a runtime's failure arrives as one sentence with no file,
 * position or status of its own, and pull_job.c reads that sentence for the failure kind and diagnoses. */
typedef struct PullOutcome {
        ErrorClass error;         /* ERROR_NONE on success */
        const char *message;      /* runtime's words, NULL on success */
        const char *digest;       /* image digest when known */
        /* The runtime's own answer to its pull call, for a caller that asked the runtime's API through
         * pullwatch (the CRI endpoint) to be answered with it instead of asking again: on success the
         * ref it named (CRI's image_ref), on failure its gRPC status and message, verbatim. NULL / 0
         * when the runtime's call is not one a caller makes (Docker's Engine API). */
        const char *answer_ref;
        int answer_status;        /* a GrpcStatus; 0 (OK) when none */
        const char *answer_message;
        /* The answer itself proves the image is in the runtime's store (CRI answers PullImage only
         * after the image is created): no confirming question follows. */
        bool stored;
} PullOutcome;

/* Where the runtime's main process is proven from (see probes/runtime/runtime_identity.h). */
typedef struct RuntimeProcess {
        const char *socket;
        const char *pidfile;            /* NULL when none is configured */
        const char *const *exe_names;   /* {"dockerd", NULL} */
        bool inprocess_extract;         /* it writes extracted files itself (containerd) */
} RuntimeProcess;

typedef struct PullCallbacks {
        /* A layer entered a phase or its bytes moved. current/total are bytes of that phase
         * (0 total when unknown). at is CLOCK_MONOTONIC. */
        void (*layer)(void *userdata, const char *layer, Phase phase, uint64_t current, uint64_t total,
                      usec_t at);
        /* Any message from the runtime at all (for peer policies and the resolve phase). */
        void (*activity)(void *userdata, const char *status, usec_t at);
        /* The runtime reported a retry of its own ("Retrying in N seconds"). */
        void (*runtime_retry)(void *userdata, const char *layer, const char *text, usec_t at);
        /* The pull runs through another runtime process whose children decompress the layers
         * (dockerd on the containerd image store: the containerd it pulls through). Optional. */
        void (*helper_runtime)(void *userdata, const RuntimeProcess *rp, const char *store);
        /* Exactly once, last. */
        void (*finished)(void *userdata, const PullOutcome *outcome);
} PullCallbacks;

typedef struct PullRequest {
        const char *image;        /* as the user wrote it */
        const char *platform;     /* "linux/amd64" or NULL */
        const char *namespace;    /* containerd only */
        const char *auth_user;    /* NULL when anonymous; never logged */
        const char *auth_password;
        const char *auth_server;
        const char *identity_token;
        const char *auth_header;  /* Docker's X-Registry-Auth value, derived from the above */
} PullRequest;

typedef struct RuntimePull RuntimePull;

/* One short question to the runtime in flight on the curl glue (runtime_op.h). done runs once, from the
 * event loop, with 0 or a negative errno and a text (see each question); the op frees itself after done
 * returns, so the owner forgets its pointer there. runtime_op_free() before that cancels it silently. */
typedef struct RuntimeOp RuntimeOp;
typedef void (*runtime_op_done_t)(RuntimeOp *op, int r, const char *text, void *userdata);
RuntimeOp *runtime_op_free(RuntimeOp *op);
static inline void runtime_op_freep(RuntimeOp **op) { runtime_op_free(*op); }

/* How a runtime is named in a diagnosis: where its files live and what the remedy says. Plain text;
 * diagnose.c (daemon/pull) puts it together. */
typedef struct RuntimeWording {
        const char *process;            /* the process a user knows: "dockerd" */
        const char *config_section;     /* pullwatch.yaml's section for it: "docker" (docker.pidfile) */
        const char *storage_root;       /* "/var/lib/docker" */
        const char *ca_dir;             /* its certs.d root, "/etc/docker/certs.d/" (host follows) */
        const char *ca_file;            /* after the host: "/ca.crt" */
        const char *ca_remedy;          /* how the CA is put there: " (no restart needed)" */
        const char *octet_skipper;      /* who skips a config of mediaType application/octet-stream */
        const char *octet_remedy;       /* and what to do about it */
        bool octet_config_refused;      /* its unpacker refuses such a config on the versions that
                                         * diagnose_octet_applies() names (a manifest shows it early) */
        const char *scheme_remedy;      /* HTTPS spoken to a plain-HTTP registry; {host} stands for host:port */
        const char *igzip_remedy;       /* the igzip helper hung */
        const char *pigz_remedy;        /* pigz (or docker-untar) hung */
        const char *mirror_where;       /* where its mirrors are listed: "registry-mirrors in daemon.json" */
        const char *mirror_silent;      /* what it does with a mirror that accepts and stays silent */
        const char *mirror_silent_store; /* the same on the containerd image store (dockerd resolving
                                          * through containerd); NULL: as mirror_silent */
        const char *mirror_refused;     /* what it does with a mirror that refuses connections */
        const char *mirror_remedy;      /* how a mirror is repaired or removed */
} RuntimeWording;

typedef struct RuntimeDriver {
        RuntimeKind kind;
        const char *name;               /* as config and the control socket spell it */
        const RuntimeWording *wording;
        /* Wants Docker's X-Registry-Auth header built from the credentials (PullRequest.auth_header). */
        bool auth_header;
        /* Keeps what an earlier attempt fetched: the disk gate counts only what is not stored yet. */
        bool keeps_partial;
        /* Its image labels can pin a preheated image against its own garbage collection. */
        bool pin_labels;
        /* Cancels a pull of its own when no bytes move for a while (CRI image_pull_progress_timeout):
         * a failure pullwatch did not cause may be that setting. */
        bool cancels_stalled;
        /* Shows any client's pull to a watcher (`pullwatch watch`): its content store is readable by all. */
        bool watchable;
        /* Where its registry settings live, before it answered: which hosts files it reads
         * (RegistryHopStyle, registry_trust.h), their directory, the ranges it treats as insecure. */
        int (*registry_defaults)(RuntimeRegistry *rt, const Config *config);
        /* Where it extracts a layer, asked on the loop: done gets the directory whose per-layer
         * extract_subdir grows while a layer is unpacked. NULL: no disk-growth target (yet). */
        int (*extraction_dir)(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                              RuntimeOp **ret);
        const char *extract_subdir;
        /* What `pullwatch status` shows of it beside "up": its version and settings, asked by the CLI
         * (blocking, short), as members of into. 0 or -errno (into keeps what was found). Optional. */
        int (*describe)(const Config *config, struct json_t *into);
        /* Where its images live (its image filesystem): done gets the directory. */
        int (*imagefs_dir)(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                           RuntimeOp **ret);
        /* Start the pull; callbacks arrive from the event loop. */
        int (*start)(CurlGlue *glue, const Config *config, const PullRequest *req,
                     const PullCallbacks *cb, void *userdata, RuntimePull **ret);
        /* Cut the pull (closes its connection / resets its stream). No callback follows. */
        void (*cancel)(RuntimePull *p);
        RuntimePull *(*free)(RuntimePull *p);
        /* What identifies the runtime's main process (for probes and the kill path). */
        void (*process)(const Config *config, RuntimeProcess *ret);
        /* Is the image there? done gets 0 with its digest as text (may be NULL), -ENOENT when the
         * runtime says it is not, another -errno (with a one-line reason) when the runtime did not say
         * (-ENXIO: no socket; -ETIMEDOUT: no answer within RUNTIME_OP_TIMEOUT). */
        int (*confirm)(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
                       void *userdata, RuntimeOp **ret);
        /* Does the runtime answer on its socket? done gets 0, or -errno with a one-line reason. */
        int (*ping_async)(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                          RuntimeOp **ret);
        /* The same, blocking (the CLI only: the daemon never blocks on a runtime); the reason in
         * ret_error (may be NULL). */
        int (*ping)(const Config *config, ErrorDetail *ret_error);
        /* The pull job gave up on this image (last attempt failed, or shutdown): drop whatever the
         * driver kept for a resume. Fire and forget: the request belongs to the glue. Optional. */
        int (*abandon)(CurlGlue *glue, const Config *config, const PullRequest *req);
        /* The registry says the reference resolves to this image manifest now: follow only it (a
         * driver that must pick the pull's manifest out of the runtime's store). Optional. */
        void (*expect)(RuntimePull *p, const char *manifest_digest);
        /* ... and that manifest's layers (compressed digests, in manifest order), before the runtime
         * may have started any of them (a driver that keeps partial downloads for a retry). Optional. */
        void (*expect_layers)(RuntimePull *p, const char *const *digests, size_t n);
} RuntimeDriver;


