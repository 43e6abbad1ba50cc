/* curl_glue.c: libcurl's multi socket API on sd-event, after systemd's importd curl-util. */
#include "probes/transport/curl_glue.h"

#include <assert.h>
#include <stdlib.h>

typedef struct Transfer Transfer;
struct Transfer {
        CURL *easy;
        bool pending;             /* queued: added from inside a curl callback, not yet in the multi */
        curl_glue_done_t done;
        void *userdata;
        Transfer *prev, *next;
};

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *defer;
        bool finishing; /* curl_multi_cleanup calls back into us; ignore it */
        unsigned in_action; /* inside curl_multi_socket_action: curl refuses re-entrant calls */
        Transfer *transfers;
        CurlGlueAdopted *adopted;
        sd_event_source *settle;  /* exit_when_settled's deadline */
        int exit_code;
        void *share;
        void (*share_free)(void *obj);
};

static void transfer_unlink(CurlGlue *g, Transfer *t) {
        if (t->prev)
                t->prev->next = t->next;
        else
                g->transfers = t->next;
        if (t->next)
                t->next->prev = t->prev;
        free(t);
}

struct CurlGlueAdopted {
        void *obj;
        void (*free_fn)(void *obj);
        CurlGlueAdopted *prev, *next;
};

typedef struct SocketSource {
        sd_event_source *io;
} SocketSource;

static void glue_reap(CurlGlue *g) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(g->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *easy = msg->easy_handle;
                CURLcode result = msg->data.result;
                Transfer *t = NULL;
                /* a handle of ours always carries its Transfer; clearing it cannot fail */
                (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
                (void) curl_multi_remove_handle(g->multi, easy);
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                if (t) {
                        curl_glue_done_t done = t->done;
                        void *userdata = t->userdata;
                        transfer_unlink(g, t);
                        done(g, easy, result, userdata);
                }
        }
}

static void glue_add_pending(CurlGlue *g) {
        for (Transfer *t = g->transfers, *next; t; t = next) {
                next = t->next;
                if (!t->pending)
                        continue;
                t->pending = false;
                if (curl_multi_add_handle(g->multi, t->easy) != CURLM_OK) {
                        /* Report it like any failed transfer, from here, outside curl. */
                        curl_glue_done_t done = t->done;
                        void *userdata = t->userdata;
                        CURL *easy = t->easy;
                        (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                        transfer_unlink(g, t);
                        done(g, easy, CURLE_FAILED_INIT, userdata);
                        return; /* the list may have changed under us; the next defer goes on */
                }
        }
}

static int on_defer(sd_event_source *s, void *userdata) {
        CurlGlue *g = userdata;
        glue_add_pending(g);
        glue_reap(g);
        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static void glue_kick(CurlGlue *g) {
        /* Reap from a defer source so done callbacks never run inside curl's own callbacks. */
        (void) sd_event_source_set_enabled(g->defer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlGlue *g = userdata;
        int action = 0, running;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;
        g->in_action++;
        /* a failure shows in the transfers' results, which the reap reports */
        (void) curl_multi_socket_action(g->multi, fd, action, &running);
        g->in_action--;
        glue_kick(g);
        return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlGlue *g = userp;
        SocketSource *ss = socketp;
        uint32_t events = 0;

        if (g->finishing)
                return 0;
        if (what == CURL_POLL_REMOVE) {
                if (ss) {
                        (void) sd_event_source_disable_unref(ss->io);
                        free(ss);
                        (void) curl_multi_assign(g->multi, fd, NULL);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (ss) {
                if (sd_event_source_set_io_events(ss->io, events) < 0)
                        return -1;
                if (sd_event_source_set_enabled(ss->io, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }
        ss = calloc(1, sizeof(*ss));
        if (!ss)
                return -1;
        if (sd_event_add_io(g->event, &ss->io, fd, events, on_io, g) < 0) {
                free(ss);
                return -1;
        }
        (void) sd_event_source_set_description(ss->io, "curl-io");
        if (curl_multi_assign(g->multi, fd, ss) != CURLM_OK) {
                (void) sd_event_source_disable_unref(ss->io);
                free(ss);
                return -1;
        }
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;
        int running;
        g->in_action++;
        (void) curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        g->in_action--;
        glue_kick(g);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        CurlGlue *g = userp;
        if (g->finishing)
                return 0;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(g->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        /* 0 is curl's "act now": due at once, so the next loop iteration runs it (rounded up it was a
         * 999 µs sleep, and a forwarded call passes through several). Any other timeout is rounded up:
         * waking a hair early makes curl spin. */
        usec_t usec = timeout_ms == 0 ? 0 : (usec_t) timeout_ms * USEC_PER_MSEC + USEC_PER_MSEC - 1;
        if (sd_event_source_set_time_relative(g->timer, usec) < 0)
                return -1;
        return sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int curl_glue_new(sd_event *event, CurlGlue **ret) {
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        int r;

        assert(event);
        assert(ret);
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->multi = curl_multi_init();
        if (!g->multi)
                return -ENOMEM;
        /* Accuracy 1 µs: 0 would mean sd-event's default slack of 250 ms on every curl timeout. */
        r = sd_event_add_time(event, &g->timer, CLOCK_MONOTONIC, USEC_INFINITY, 1, on_timer, g);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(event, &g->defer, on_defer, g);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->timer, "curl-timer");
        (void) sd_event_source_set_description(g->defer, "curl-reap");
        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK)
                return -EIO;
        *ret = TAKE_PTR(g);
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;
        /* Before finishing: their free removes their transfers the ordinary way. */
        while (g->adopted) {
                CurlGlueAdopted *a = g->adopted;
                a->free_fn(a->obj); /* calls curl_glue_release(g, a) */
                if (g->adopted == a)
                        curl_glue_release(g, a);
        }
        if (g->share && g->share_free)
                g->share_free(g->share);
        g->share = NULL;
        g->finishing = true;
        if (g->multi) {
                /* Transfers still attached: drop them without callbacks; their owners are gone. */
                while (g->transfers) {
                        (void) curl_multi_remove_handle(g->multi, g->transfers->easy);
                        (void) curl_easy_setopt(g->transfers->easy, CURLOPT_PRIVATE, NULL);
                        transfer_unlink(g, g->transfers);
                }
                curl_multi_cleanup(g->multi);
        }
        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->defer);
        sd_event_source_disable_unref(g->settle);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

int curl_glue_add(CurlGlue *g, CURL *easy, curl_glue_done_t done, void *userdata) {
        Transfer *t;

        assert(g);
        assert(easy);
        assert(done);
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->easy = easy;
        t->done = done;
        t->userdata = userdata;
        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK) {
                free(t);
                return -EIO;
        }
        if (g->in_action) {
                /* Called from a transfer's callback (a write callback that starts a probe): curl
                 * would answer CURLM_RECURSIVE_API_CALL, so add it from the defer source. */
                t->pending = true;
                glue_kick(g);
        } else if (curl_multi_add_handle(g->multi, easy) != CURLM_OK) {
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                free(t);
                return -EIO;
        }
        t->next = g->transfers;
        if (t->next)
                t->next->prev = t;
        g->transfers = t;
        return 0;
}

void curl_glue_remove(CurlGlue *g, CURL *easy) {
        Transfer *t = NULL;
        if (!g || !easy)
                return;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        if (!t || !t->pending)
                (void) curl_multi_remove_handle(g->multi, easy);
        (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (t)
                transfer_unlink(g, t);
}

int curl_glue_adopt(CurlGlue *g, void *obj, void (*free_fn)(void *obj), CurlGlueAdopted **ret) {
        CurlGlueAdopted *a;

        assert(g);
        assert(free_fn);
        assert(ret);
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        *a = (CurlGlueAdopted) { .obj = obj, .free_fn = free_fn, .next = g->adopted };
        if (a->next)
                a->next->prev = a;
        g->adopted = a;
        *ret = a;
        return 0;
}

void curl_glue_release(CurlGlue *g, CurlGlueAdopted *a) {
        if (!g || !a)
                return;
        if (a->prev)
                a->prev->next = a->next;
        else
                g->adopted = a->next;
        if (a->next)
                a->next->prev = a->prev;
        free(a);
        if (!g->adopted && g->settle && !g->finishing)
                (void) sd_event_exit(g->event, g->exit_code);
}

static int on_settle_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;
        return sd_event_exit(g->event, g->exit_code);
}

int curl_glue_exit_when_settled(CurlGlue *g, int code, usec_t timeout) {
        int r;

        assert(g);
        g->exit_code = code;
        if (!g->adopted)
                return sd_event_exit(g->event, code);
        if (g->settle)
                return 0;
        r = sd_event_add_time_relative(g->event, &g->settle, CLOCK_MONOTONIC, timeout, 0, on_settle_timeout, g);
        if (r < 0)
                return sd_event_exit(g->event, code);
        (void) sd_event_source_set_description(g->settle, "curl-settle");
        return 0;
}

void *curl_glue_share(CurlGlue *g) { return g->share; }

void curl_glue_set_share(CurlGlue *g, void *obj, void (*free_fn)(void *obj)) {
        g->share = obj;
        g->share_free = free_fn;
}

sd_event *curl_glue_event(CurlGlue *g) { return g->event; }
CURLM *curl_glue_multi(CurlGlue *g) { return g->multi; }

int curl_glue_make_easy(const char *unix_socket, CURL **ret) {
        _cleanup_curl_easy_ CURL *c = NULL;

        assert(ret);
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        if (curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "pullwatch/" PULLWATCH_VERSION) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK)
                return -EIO;
        if (unix_socket && curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket) != CURLE_OK)
                return -EINVAL;
        /* A runtime's socket: one connection per request, never reused. Measured with libcurl 7.88
         * on dockerd's containerd store: a retry's pull and the /info asked beside it swapped answers
         * (the pull "succeeded" with /info's body, /info got the pull's stream), so two requests had
         * shared one connection. Suspected, not proven: every http://localhost connection lands in
         * one pool whatever its socket, containerd's HTTP/2 calls included. A unix connection costs
         * the runtime well under 1 ms. */
        if (unix_socket && (curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
                            curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK))
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}
