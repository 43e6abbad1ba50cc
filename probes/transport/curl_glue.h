/* curl_glue.h: one CURLM driven by an sd_event loop (io sources per socket, one timer, a defer to
 * reap finished transfers). Owns the multi handle; the transfers and their meaning belong to callers. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>
#include "basic/macro.h"

typedef struct CurlGlue CurlGlue;

/* Called once per finished transfer (result is CURLE_OK or the failure). The easy handle is already
 * removed from the multi; the callback owns it from then on. */
typedef void (*curl_glue_done_t)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(sd_event *event, CurlGlue **ret);
CurlGlue *curl_glue_free(CurlGlue *g);
static inline void curl_glue_freep(CurlGlue **g) { curl_glue_free(*g); }

/* Start a transfer; done is called exactly once unless curl_glue_remove() comes first. Safe from
 * inside another transfer's callback (it is then added from the loop's next iteration). */
int curl_glue_add(CurlGlue *g, CURL *easy, curl_glue_done_t done, void *userdata);
/* Abort a transfer without calling done (closing its connection is how callers cancel). Not from
 * inside a transfer's own write/header callback: curl refuses re-entrant calls there. */
void curl_glue_remove(CurlGlue *g, CURL *easy);

/* Objects nobody else owns (fire-and-forget requests): curl_glue_free() frees those still there, so
 * an exit with one in flight neither leaks it nor calls it back. The object releases itself when done. */
typedef struct CurlGlueAdopted CurlGlueAdopted;
int curl_glue_adopt(CurlGlue *g, void *obj, void (*free_fn)(void *obj), CurlGlueAdopted **ret);
void curl_glue_release(CurlGlue *g, CurlGlueAdopted *a);
/* sd_event_exit(code) once no adopted object is left, or after timeout at the latest: a program on
 * its way out lets its fire-and-forget requests land. */
int curl_glue_exit_when_settled(CurlGlue *g, int code, usec_t timeout);

/* One object a layer above keeps for the glue's lifetime (runtime_op's shared answers); its free_fn
 * runs from curl_glue_free(), after the adopted objects are gone. */
void *curl_glue_share(CurlGlue *g);
void curl_glue_set_share(CurlGlue *g, void *obj, void (*free_fn)(void *obj));

sd_event *curl_glue_event(CurlGlue *g);
CURLM *curl_glue_multi(CurlGlue *g);

/* An easy handle with pullwatch's defaults (no signals, user agent, optional unix socket). */
int curl_glue_make_easy(const char *unix_socket, CURL **ret);

static inline void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}
#define _cleanup_curl_easy_ _cleanup_(curl_easy_cleanupp)
static inline void curl_slist_free_allp(struct curl_slist **l) {
        if (*l)
                curl_slist_free_all(*l);
}
#define _cleanup_curl_slist_ _cleanup_(curl_slist_free_allp)
