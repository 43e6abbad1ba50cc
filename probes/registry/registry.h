/* registry.h: owns the registry v2 probe: manifests (auth, mirrors, platform), a blob's Range support, ErrorDetail failures.
 * Must not log, let a credential out, or judge (daemon/diagnose does); it reports facts only. */
#pragma once

#include "probes/transport/curl_glue.h"
#include "probes/registry/credentials.h"
#include "basic/reference.h"
#include "config/config.h"
#include "probes/registry/registry_trust.h"

#define REGISTRY_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REGISTRY_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define REGISTRY_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define REGISTRY_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define REGISTRY_MT_SCHEMA1         "application/vnd.docker.distribution.manifest.v1+json"
#define REGISTRY_MT_SCHEMA1_SIGNED  "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define REGISTRY_MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define REGISTRY_MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define REGISTRY_MT_OCTET_STREAM    "application/octet-stream"

/* Manifests larger than this are refused (containerd's limit too). */
#define REGISTRY_MANIFEST_MAX (4U * 1024U * 1024U)

/* What to ask for. Strings are copied by the async calls; the caller keeps ownership. */
typedef struct RegistryTarget {
        const char *domain;         /* as in the reference: "docker.io", "reg.example.com:5000" */
        const char *repository;     /* "library/redis" */
        const char *reference;      /* tag, or "sha256:…" */
        const char *platform;       /* "os/arch[/variant]"; NULL = this host's */
        const char *username;       /* NULL = anonymous. Credentials are never logged or copied */
        const char *password;       /* into errors. */
        const char *identity_token; /* OAuth2 refresh token (docker login's identitytoken) */
        const RegistryConfig *config; /* insecure hosts, mirrors; NULL = none */
        const RuntimeRegistry *runtime; /* the runtime's hosts, schemes and trust; NULL = config only */
        usec_t timeout;             /* per HTTP request; 0 = 30 s */
        bool first_hop_only;        /* ask the first hop that may answer, never the ones after it */
} RegistryTarget;

/* t from a parsed reference, credentials (may be NULL) and config (may be NULL: no mirrors, no
 * insecure hosts); platform NULL = the config's, else the host's. t borrows every string. */
void registry_target_init(RegistryTarget *t, const ImageRef *ref, const Credential *cred, const Config *c,
                          const char *platform);

typedef struct RegistryLayer {
        char *digest;
        char *media_type;           /* NULL for schema 1 */
        uint64_t size;              /* 0 when the manifest does not say (schema 1) */
} RegistryLayer;

typedef struct RegistryManifest {
        char *digest;               /* what the reference resolves to (a manifest or an index) */
        char *media_type;           /* of that object */
        bool is_index;
        char *manifest_digest;      /* the image manifest chosen; == digest unless is_index */
        char *manifest_media_type;
        int schema_version;         /* of the image manifest: 1 or 2 */
        char *config_media_type;    /* NULL for schema 1 */
        char *config_digest;
        uint64_t config_size;
        RegistryLayer *layers;
        size_t n_layers;
        bool platform_missing;      /* index without the platform asked for: no manifest chosen */
        char *chosen_platform;      /* "linux/arm64/v8", the platform asked for when missing */
        char **platforms;           /* an index's platforms, in its order; NULL otherwise */
        char *host;                 /* hop that answered: a mirror's or the registry's host[:port] */
} RegistryManifest;

RegistryManifest *registry_manifest_free(RegistryManifest *m);
static inline void registry_manifest_freep(RegistryManifest **m) { registry_manifest_free(*m); }
#define _cleanup_registry_manifest_ _cleanup_(registry_manifest_freep)

typedef struct RegistryRangeProbe {
        int http_status;            /* of the hop that answered the blob GET: 206, or 200 */
        bool honoured;              /* 206 with a Content-Range */
        char *url;                  /* that hop's URL, query cut (presigned URLs carry secrets) */
        char *host;                 /* that hop's host[:port] */
        char *via;                  /* mirror or registry asked first, host[:port] */
        unsigned redirects;         /* between via and host */
        bool via_mirror;            /* via is a mirror of the runtime's, not the registry itself */
} RegistryRangeProbe;

void registry_range_probe_done(RegistryRangeProbe *p);

/* A failed call's detail is an ErrorDetail (basic/error_detail.h): source is the request's URL (query cut;
 * no credentials), http_status (0 when no HTTP answer came), code the registry's (MANIFEST_UNKNOWN,
 * UNAUTHORIZED, DENIED, TOOMANYREQUESTS, ...; NULL when none), message the registry's, curl's or ours,
 * realm the auth realm when a challenge was involved, retry_after the seconds from Retry-After (429/503).
 * error_detail_format(): "https://h/v2/r/manifests/t: HTTP 404 MANIFEST_UNKNOWN: manifest unknown". */

/* Asynchronous calls on a CurlGlue. done runs once from the event loop, unless registry_op_free()
 * comes first; it may free the op. r is 0 or a negative errno: -ENOENT (not found), -EACCES (401),
 * -EPERM (403), -EBUSY (429), -EBADMSG (bad or mismatching manifest), -EPROTONOSUPPORT (unknown
 * media type), -EKEYREJECTED (TLS: the hop's certificate is not trusted), -EPROTO (TLS handshake
 * failed), -EHOSTUNREACH/-ECONNREFUSED/-ETIMEDOUT/-EIO (transport). e is valid during the call
 * and filled whenever r < 0. */
typedef struct RegistryOp RegistryOp;

/* m is handed over (free with registry_manifest_free) and non-NULL iff r >= 0. */
typedef void (*registry_manifest_done_t)(RegistryOp *op, int r, RegistryManifest *m,
                                         const ErrorDetail *e, void *userdata);
/* p is valid during the call (steal its strings if needed) and meaningful iff r >= 0. */
typedef void (*registry_range_done_t)(RegistryOp *op, int r, RegistryRangeProbe *p,
                                      const ErrorDetail *e, void *userdata);

int registry_resolve(CurlGlue *g, const RegistryTarget *t, registry_manifest_done_t done,
                     void *userdata, RegistryOp **ret);
/* GET the blob with Range: bytes=1-1 from the first hop that has it (mirrors, then the registry),
 * following redirects, and stop reading after a few KiB whatever comes back. */
int registry_probe_range(CurlGlue *g, const RegistryTarget *t, const char *blob_digest,
                         registry_range_done_t done, void *userdata, RegistryOp **ret);
/* GET the API root (/v2/) of each hop in turn until one answers, whatever it answers (200, 401):
 * which hops take a connection and answer, for a registry whose image is not known. repository and
 * reference in t may be NULL. r < 0 when no hop answered. */
typedef void (*registry_ping_done_t)(RegistryOp *op, int r, const ErrorDetail *e, void *userdata);
int registry_ping(CurlGlue *g, const RegistryTarget *t, registry_ping_done_t done, void *userdata, RegistryOp **ret);
/* What each hop the op asked did, in the order asked: one entry per hop, its last request's outcome. */
typedef enum RegistryHopOutcome {
        REGISTRY_HOP_ANSWERED,      /* an HTTP answer came (any status) */
        REGISTRY_HOP_REFUSED,       /* the connection was refused */
        REGISTRY_HOP_SILENT,        /* connected, then no answer until the request's timeout */
        REGISTRY_HOP_FAILED,        /* anything else: name resolution, TLS, a connect that timed out */
        _REGISTRY_HOP_OUTCOME_MAX,
} RegistryHopOutcome;

typedef struct RegistryHopTry {
        const char *host;           /* host[:port]; owned by the op */
        bool mirror;
        RegistryHopOutcome outcome;
        int http_status;            /* of the answer; 0 when none came */
        usec_t elapsed;             /* of the hop's last request, connect included */
} RegistryHopTry;

/* The hops op asked so far: valid until the op is freed (so inside done). */
const RegistryHopTry *registry_op_tries(const RegistryOp *op, size_t *ret_n);

/* Cancels a running op without calling done. */
RegistryOp *registry_op_free(RegistryOp *op);
static inline void registry_op_freep(RegistryOp **op) { registry_op_free(*op); }

/* Synchronous wrappers for the CLI: a private sd_event loop until done or timeout (0 = 2 min).
 * ret_error may be NULL; when given it is filled on failure and must be error_detail_done(). */
int registry_resolve_sync(const RegistryTarget *t, usec_t timeout, RegistryManifest **ret,
                          ErrorDetail *ret_error);
int registry_probe_range_sync(const RegistryTarget *t, const char *blob_digest, usec_t timeout,
                              RegistryRangeProbe *ret, ErrorDetail *ret_error);

/* --- pure helpers (registry_parse.c, registry_host.c), exported for the tests and for other probes --- */

typedef enum RegistryAuthScheme {
        REGISTRY_AUTH_NONE,
        REGISTRY_AUTH_BASIC,
        REGISTRY_AUTH_BEARER,
} RegistryAuthScheme;

typedef struct RegistryChallenge {
        RegistryAuthScheme scheme;
        char *realm;
        char *service;
        char *scope;
        char *error;                /* Bearer error="insufficient_scope" etc. */
} RegistryChallenge;

void registry_challenge_done(RegistryChallenge *c);
/* Parse one WWW-Authenticate value (several challenges allowed; Bearer preferred over Basic).
 * Quoted values with escapes and commas are handled. -EINVAL when no Basic/Bearer challenge. */
int registry_parse_challenge(const char *header, RegistryChallenge *ret);

/* The object kind of a manifest body: media type from the header, else from the body. */
typedef enum RegistryObject {
        REGISTRY_OBJECT_MANIFEST,   /* schema 2 or OCI image manifest */
        REGISTRY_OBJECT_INDEX,      /* manifest list or OCI index */
        REGISTRY_OBJECT_SCHEMA1,
        _REGISTRY_OBJECT_MAX,
} RegistryObject;

/* Fills the image-manifest fields of m (manifest_media_type, schema_version, config, layers), or
 * for an index only m->media_type. Returns the object kind, -EBADMSG on bad JSON or fields,
 * -EPROTONOSUPPORT on an unknown media type. */
int registry_parse_manifest(const char *body, size_t size, const char *content_type,
                            RegistryManifest *m);
/* Choose want ("os/arch[/variant]", NULL = host's) in an index: ret_digest and ret_media_type of
 * the entry, its platform in m->chosen_platform, all entries' platforms into m->platforms.
 * -ENXIO when absent (m->chosen_platform is then the normalized want), -EBADMSG on bad JSON. */
int registry_parse_index(const char *body, size_t size, const char *want, RegistryManifest *m,
                         char **ret_digest, char **ret_media_type);
/* {"errors":[{"code":..,"message":..}]}: the first error's code and message into e (replacing those two
 * parts only); -EBADMSG, e untouched, when not that shape. */
int registry_parse_error_body(const char *body, size_t size, ErrorDetail *e);
/* {"token":..} or {"access_token":..}. */
int registry_parse_token(const char *body, size_t size, char **ret_token);

/* Normalized platform: "linux/amd64", "linux/arm64/v8", "linux/arm/v7". -EINVAL when malformed. */
int registry_platform_normalize(const char *s, char **ret);
int registry_platform_format(const char *os, const char *arch, const char *variant, char **ret);
int registry_host_platform(char **ret);
bool registry_platform_match(const char *want, const char *os, const char *arch, const char *variant);

/* Registry API host for a reference domain ("docker.io" -> "registry-1.docker.io"). */
const char *registry_api_host(const char *domain);
bool registry_host_is_loopback(const char *hostport);
/* A loopback address, "localhost", or an address of one of this node's interfaces (getifaddrs): a
 * mirror on this node, as a P2P mirror is. Names other than localhost are not resolved: false. */
bool registry_host_is_node_local(const char *hostport);
bool registry_host_is_insecure(const RegistryConfig *c, const char *hostport);
/* Base URLs to try, in order: for docker.io the mirrors first, then the registry. Scheme is https
 * unless the entry says so, or the host is insecure or loopback. */
int registry_base_urls(const RegistryConfig *c, const char *domain, char ***ret);
/* host[:port] of a URL, and the URL without query and fragment. */
int registry_url_host(const char *url, char **ret);
int registry_url_strip_query(const char *url, char **ret);
/* Retry-After as delta seconds or HTTP-date relative to now_sec (seconds since the epoch). */
uint64_t registry_parse_retry_after(const char *v, uint64_t now_sec);

/* "sha256:<hex>" of data. */
int registry_sha256_digest(const void *data, size_t size, char **ret);
