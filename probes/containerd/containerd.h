/* containerd.h: owns the containerd probe's face: the CRI pull driver, the namespace watcher, error classes, one-shot questions.
 * Must not decide to cancel or retry (the pull job does) or log; its private parts stay in containerd_{content,track,model,unpack}.h.
 * The driver (containerd_driver) speaks CRI through probes/cri/; the one-shot questions fail with
 * ErrorDetail. It observes and reports facts. */
#pragma once

#include "probes/transport/grpc.h"
#include "probes/runtime/runtime.h"

/* containerd_driver (runtime.h) specifics: PullRequest.namespace and .platform are not honoured (CRI 1.6
 * has neither); auth goes as CRI AuthConfig without server_address; layer ids are full digests
 * ("sha256:..."); the outcome digest is the manifest digest; runtime_retry never fires (containerd
 * retries nothing visibly). A cancel or a transient failure keeps pullwatch's lease (so the next attempt
 * resumes); success and permanent failures delete it before finished is called. After the last attempt
 * fails transiently, call containerd_lease_release(). */

#define CONTAINERD_DEFAULT_SOCKET "/run/containerd/containerd.sock"
/* CRI's namespace. containerd 1.6's CRI plugin ignores the containerd-namespace header and always pulls
 * here, so the driver observes and leases in it whatever the config says. */
#define CONTAINERD_CRI_NAMESPACE "k8s.io"
#define CONTAINERD_LEASE_PREFIX "pullwatch-"
/* How long pullwatch's lease may keep partial downloads if pullwatch dies (containerd.io/gc.expire). */
#define CONTAINERD_LEASE_TTL (3600 * USEC_PER_SEC)

/* Error class of a finished PullImage (or any call; transport_error < 0 when no gRPC status came,
 * else status and the server's message): permanent for not found / unauthorized / no
 * matching platform / bad reference / not a containerd socket, transient otherwise. */
ErrorClass containerd_classify(int transport_error, GrpcStatus status, const char *message);
ErrorClass containerd_classify_message(GrpcStatus status, const char *message);

/* The id of pullwatch's lease for one image: "pullwatch-" + 16 hex of a hash of namespace and the
 * normalized reference, the same for every attempt (and every spelling of the image) so a retry finds
 * the partial ingests the last one left. */
int containerd_lease_id(const char *namespace, const char *image, char **ret);

/* ---- One-shot questions (each runs a private event loop; for the CLI). On failure ret_error (NULL
 * allowed) says what went wrong: "METHOD: NotFound: msg", or the transport's line naming the socket. */

/* containerd's version; -EPROTO with "... is not a containerd socket" for any other server. */
int containerd_version(const char *socket, char **ret_version, ErrorDetail *ret_error);
/* A Version reply read as containerd_version() reads it (for the same question asked on a loop). */
int containerd_version_error(const char *socket, const GrpcReply *reply, ErrorDetail *ret_error);

/* The same question on glue's event loop; done reads the answer with containerd_reply_version().
 * Free *ret (cancels, done not called) with grpc_call_free(). */
int containerd_version_start(CurlGlue *glue, const char *socket, grpc_done_t done, void *userdata, GrpcCall **ret);
/* The version in a Version reply ("v2.1.9", "1.6.20~ds1"), or NULL when containerd did not say. */
const char *containerd_reply_version(const GrpcReply *reply);
/* Content.Info of one blob in namespace on glue's loop (one key looked up, whatever the store holds);
 * done reads the answer with containerd_reply_content_source(). Free *ret (cancels, done not called)
 * with grpc_call_free(). */
int containerd_content_info_start(CurlGlue *glue, const char *socket, const char *namespace, const char *digest,
                                  grpc_done_t done, void *userdata, GrpcCall **ret);
/* A Content.Info reply: 0 with *ret_image "HOST/REPO" from the blob's distribution source label (NULL
 * when it carries none; free() it), -ENOENT when the namespace does not hold the blob, -EIO for another
 * status, the transport's errno when no status came. */
int containerd_reply_content_source(const GrpcReply *reply, char **ret_image);
/* CRI's image_pull_progress_timeout as containerd reports it (CRI Status, verbose: "5m0s", "0s"),
 * -ENODATA when the reply does not carry it (1.6 has no such setting; 2.1 does not report it). */
int containerd_cri_progress_timeout(const char *socket, char **ret_value, ErrorDetail *ret_error);
/* The same from the info["config"] JSON of a verbose CRI Status (exposed for tests). */
int containerd_cri_config_progress_timeout(const char *config_json, char **ret_value);
/* What is wrong with that setting on this containerd, NULL when nothing known: 0 turns the check
 * off before 2.0 and hangs pulls in 2.x (#14158); under 5m cancels silent verify/commit phases
 * (1.7.0-1.7.9 shipped 1m; #9369). */
const char *containerd_progress_timeout_warning(const char *value, const char *version);
/* The major version of a containerd version string ("v2.1.9" -> 2, "1.7.24~ds1" -> 1); -EINVAL. */
int containerd_version_major(const char *version);
/* CRI ImageStatus: -ENOENT when the image is absent. *ret_digest is the repo digest
 * ("sha256:...", from repo_digests) when known, else the image id (config digest). */
int containerd_image_status(const char *socket, const char *image, char **ret_digest, char **ret_id,
                            ErrorDetail *ret_error);
/* Images.Get: the image's labels as "key=value" strings (for tests and status). */
int containerd_image_labels(const char *socket, const char *namespace, const char *name, char ***ret_labels,
                            ErrorDetail *ret_error);
/* The label containerd's CRI plugin reads to report an image as pinned (1.6.22+, 1.7.0+); set and
 * removed with containerd_image_label_start() (containerd_label.h). */
#define CONTAINERD_PINNED_LABEL "io.cri-containerd.pinned"
#define CONTAINERD_PINNED_VALUE "pinned"
/* Drop pullwatch's lease for image (after the last attempt failed, so partial data may be collected). */
int containerd_lease_release(const char *socket, const char *namespace, const char *image, ErrorDetail *ret_error);
/* Ids of pullwatch's leases left in namespace (for tests and `status`). */
int containerd_leases_list(const char *socket, const char *namespace, char ***ret_ids, ErrorDetail *ret_error);

/* ---- Watching pulls pullwatch did not start ---- */

typedef struct ContainerdWatch ContainerdWatch;

typedef struct ContainerdWatchCallbacks {
        /* A layer's phase or bytes moved. image is "host/repo@sha256:<manifest>" once the layer's image is
         * known (after its first blob is committed), NULL before. layer is "sha256:...". */
        void (*layer)(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                      uint64_t total, usec_t at);
        /* The layer left our view: done, or its ingest vanished without content (pull cancelled/failed). */
        void (*layer_gone)(void *userdata, const char *image, const char *layer, bool done, usec_t at);
        /* Polling failed (socket gone, not containerd); polling goes on at the slow interval. */
        void (*error)(void *userdata, int error, const char *message);
} ContainerdWatchCallbacks;

/* Polls config's containerd socket in namespace (NULL: config's, else k8s.io); owns and cancels nothing. */
int containerd_watch_new(CurlGlue *glue, const Config *config, const char *namespace,
                         const ContainerdWatchCallbacks *cb, void *userdata, ContainerdWatch **ret);
ContainerdWatch *containerd_watch_free(ContainerdWatch *w);
static inline void containerd_watch_freep(ContainerdWatch **w) { containerd_watch_free(*w); }

/* Poll statistics, for `make bench` (containerd CPU per call) and tests. */
typedef struct ContainerdPollStats {
        uint64_t polls;           /* poll rounds */
        uint64_t calls;           /* gRPC calls issued by polling */
        usec_t busy;              /* summed wall time of those calls */
} ContainerdPollStats;
void containerd_watch_stats(const ContainerdWatch *w, ContainerdPollStats *ret);
/* Same for a pull started by containerd_driver. */
void containerd_pull_stats(const RuntimePull *p, ContainerdPollStats *ret);

/* The CRI pull driver's operations (runtime.h); containerd_driver (probes/drivers/containerd_driver.c)
 * lists them. */
int cd_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
             void *userdata, RuntimePull **ret);
void cd_cancel(RuntimePull *p);
RuntimePull *cd_pull_free(RuntimePull *p);
void cd_process(const Config *config, RuntimeProcess *ret);
int cd_confirm(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
               void *userdata, RuntimeOp **ret);
int cd_ping_async(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                  RuntimeOp **ret);
int cd_ping(const Config *config, ErrorDetail *ret_error);
int cd_abandon(CurlGlue *glue, const Config *config, const PullRequest *req);
void cd_expect(RuntimePull *p, const char *manifest_digest);
void cd_expect_layers(RuntimePull *p, const char *const *digests, size_t n);
