/* registry_op.h: the registry probe's one op, shared by registry.c (the walk over the hops, the
 * answers, the public calls) and registry_request.c (one request on the wire: its URL, headers, trust
 * and what comes back). Private to probes/registry; calls run registry.c -> registry_request.c. */
#pragma once

#include "probes/registry/registry.h"

typedef enum OpKind { OP_RESOLVE, OP_RANGE, OP_PING } OpKind;
typedef enum Step { STEP_MANIFEST, STEP_CHILD, STEP_BLOB, STEP_TOKEN, STEP_PING } Step;
typedef enum AuthMode { AUTH_NONE, AUTH_BASIC, AUTH_BEARER } AuthMode;

struct RegistryOp {
        CurlGlue *glue;
        OpKind kind;
        char *repository, *reference, *platform, *blob;
        char *username, *password, *identity_token;
        usec_t timeout;
        bool first_hop_only;
        RegistryHosts *hosts;
        size_t base_idx;            /* the hop in use */

        Step step, resume_step;
        char *child_digest;
        AuthMode auth;
        char *token;
        bool auth_tried;
        char *realm;

        CURL *easy;
        struct curl_slist *headers;
        char *url;                  /* of the request in flight, query cut */
        char *buf;
        size_t len;
        bool overflow, stopped_reading;
        char *h_content_type, *h_digest, *h_www_auth, *h_retry_after, *h_content_range;
        char errbuf[CURL_ERROR_SIZE];

        RegistryManifest *m;
        RegistryRangeProbe probe;
        ErrorDetail error;
        ErrorDetail answered;       /* the first hop's error that came with an HTTP answer */
        int answered_r;
        RegistryHopTry *tries;      /* one per hop asked, the last one the hop in use */
        size_t n_tries;

        curl_glue_done_t on_done;   /* registry.c's: what each request's answer goes to */
        registry_manifest_done_t manifest_done;
        registry_range_done_t range_done;
        registry_ping_done_t ping_done;
        void *userdata;
};

/* registry_request.c */
/* Forget the last response's headers and body. */
void registry_op_response_reset(RegistryOp *op);
/* Record the outcome of the hop in use from the request that ended (op->tries). */
int registry_op_note_try(RegistryOp *op, CURL *easy, CURLcode result, long status);
/* Send the request of step to the hop in use (challenge: the one a token answers); its end goes to
 * op->on_done. */
int registry_op_issue(RegistryOp *op, Step step, const RegistryChallenge *challenge);
