/* preflight.h: what the registry says about an image, asked alongside the first attempt so it adds
 * no latency: manifest-level diagnoses before the runtime fails on them, and the Range probe that
 * names the hop when a resumed download is refused. Owns its registry ops; decides nothing. */
#pragma once

#include "daemon/pull/diagnose.h"
#include "daemon/pull/registry_seen.h"
#include "probes/transport/curl_glue.h"
#include "probes/runtime/runtime.h"

typedef struct Preflight Preflight;

/* A diagnosis found (text handed over, free it). */
typedef void (*preflight_diag_t)(Preflight *p, Diagnosis d, char *text, void *userdata);

int preflight_new(CurlGlue *glue, const Config *config, RuntimeKind runtime, const PullRequest *req,
                  preflight_diag_t cb, void *userdata, Preflight **ret);
Preflight *preflight_free(Preflight *p);

/* The image manifest the reference resolves to now (an index's platform manifest), once the registry
 * answered; NULL before or when it could not be asked. */
const char *preflight_manifest_digest(const Preflight *p);
/* That manifest's layer digests (n of them), in manifest order; NULL while preflight_manifest_digest()
 * is. */
const char *const *preflight_layer_digests(const Preflight *p, size_t *ret_n);
/* Called once when the registry resolved the reference (preflight_manifest_digest() then answers). */
typedef void (*preflight_resolved_t)(Preflight *p, void *userdata);
void preflight_on_resolved(Preflight *p, preflight_resolved_t resolved);
/* Called once the manifest look-up ends: m is NULL when the registry did not give one. */
typedef void (*preflight_manifest_t)(Preflight *p, const RegistryManifest *m, void *userdata);
void preflight_set_manifest_cb(Preflight *p, preflight_manifest_t cb);

/* Where the probe of the registry is recorded (its owner's table; NULL: nowhere). Before start. */
void preflight_set_registry_seen(Preflight *p, RegistrySeen *seen);

/* Resolve the manifest now; diagnoses arrive through cb. */
int preflight_start(Preflight *p);
/* A download was (or may have been) refused its Range: probe a layer blob (digest, or the biggest
 * known when NULL) and name the hop that ignores Range. fallback (handed over, may be NULL) is
 * reported when the probe cannot tell; nothing is reported when Range is honoured and no fallback. */
void preflight_probe_range(Preflight *p, const char *digest, char *fallback);
/* The mirror the manifest look-up found silent or refusing connections (host[:port]), or NULL. */
const char *preflight_mirror_hop(const Preflight *p);
/* The hop the Range probe caught answering 200 (host[:port]), or NULL. */
const char *preflight_range_hop(const Preflight *p);
/* The registry asked us to wait (429 with Retry-After): how long, from when it said so; 0 = no. */
usec_t preflight_retry_after(const Preflight *p, usec_t now);
/* Resolving (the runtime's settings, then the manifest) is still under way. */
bool preflight_busy(const Preflight *p);
/* Called once resolving is over, whatever it found (after any diagnosis it reported). */
typedef void (*preflight_idle_t)(Preflight *p, void *userdata);
void preflight_set_idle_callback(Preflight *p, preflight_idle_t cb);
/* Where the runtime reads the registry's CA from (file or dir), once its settings are known; or NULL. */
const char *preflight_ca_where(const Preflight *p);
/* The registry host[:port] of the image. */
const char *preflight_host(const Preflight *p);
/* The manifest's layer digest whose short form (12 hex) is short_id, or NULL. */
const char *preflight_layer_digest(const Preflight *p, const char *short_id);
