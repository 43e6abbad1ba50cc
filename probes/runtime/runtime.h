/* runtime.h: the interface every runtime driver (Docker Engine, containerd CRI) implements to start,
 * observe and cancel one pull. Drivers report facts (phases, bytes, errors); they never decide. */
#pragma once

#include "basic/error_detail.h"
#include "basic/phase.h"
#include "basic/unix_socket.h"
#include "probes/transport/curl_glue.h"
#include "config/config.h"
#include "probes/runtime/runtime_identity.h"

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

typedef struct RuntimeDriver {
        const char *name;
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

extern const RuntimeDriver docker_driver;
extern const RuntimeDriver containerd_driver;

