/* runtime_describe.c: the runtimes' descriptions, asked on a thread off the loop and kept with their
 * time; see runtime_describe.h. The thread shares nothing with the loop while it runs: it gets the
 * driver and a reference to the config, and hands back a JSON object of its own. */
#include "daemon/agent/runtime_describe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "basic/macro.h"

typedef struct Described {
        json_t *what;             /* NULL: none yet */
        usec_t at;                /* CLOCK_MONOTONIC: when it answered */
        bool wanted;              /* asked while another ran: waits its turn */
        const RuntimeDriver *driver;
} Described;

struct RuntimeDescriber {
        sd_event_source *done_source;
        int efd;
        SharedConfig *config;     /* the newest asked with: the turns that wait use it */
        Described kinds[_RUNTIME_KIND_MAX];
        /* the one in flight: */
        bool running;
        pthread_t thread;
        RuntimeKind kind;
        const RuntimeDriver *driver;
        SharedConfig *job_config;
        json_t *result;           /* the thread's, until joined */
        int error;
};

static void *worker(void *userdata) {
        RuntimeDescriber *d = userdata;
        json_t *o = json_object();

        d->error = o ? d->driver->describe(d->job_config->config, o) : -ENOMEM;
        d->result = o;
        (void) eventfd_write(d->efd, 1);
        return NULL;
}

static void start_next(RuntimeDescriber *d) {
        sigset_t all, old;

        if (d->running || !d->config)
                return;
        for (RuntimeKind k = 0; k < _RUNTIME_KIND_MAX; k++) {
                Described *x = &d->kinds[k];
                if (!x->wanted)
                        continue;
                x->wanted = false;
                d->kind = k;
                d->driver = x->driver;
                d->job_config = shared_config_ref(d->config);
                d->result = NULL;
                d->error = 0;
                /* the thread takes no signal: the loop's signalfd must see them all */
                sigfillset(&all);
                pthread_sigmask(SIG_SETMASK, &all, &old);
                d->running = pthread_create(&d->thread, NULL, worker, d) == 0;
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (d->running)
                        return;
                d->job_config = shared_config_unref(d->job_config); /* no thread: not described */
        }
}

/* join the thread that ended and keep what it found */
static void finish(RuntimeDescriber *d) {
        Described *x;

        if (!d->running)
                return;
        (void) pthread_join(d->thread, NULL);
        d->running = false;
        d->job_config = shared_config_unref(d->job_config);
        x = &d->kinds[d->kind];
        /* what it found, as the CLI shows it: a describe may end in an error after some of it (containerd
         * 1.6 has no CRI progress timeout to report: -ENODATA after its version) */
        if (d->result && (d->error >= 0 || json_object_size(d->result) > 0)) {
                json_decref(x->what);
                x->what = TAKE_PTR(d->result);
                x->at = now_monotonic();
        }
        /* one that found nothing keeps its older description, if any, and is asked again at its next
         * ping */
        json_decref(d->result);
        d->result = NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RuntimeDescriber *d = userdata;
        eventfd_t v;

        (void) eventfd_read(d->efd, &v);
        finish(d);
        start_next(d);
        return 0;
}

int runtime_describer_new(sd_event *event, RuntimeDescriber **ret) {
        RuntimeDescriber *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->efd < 0) {
                r = -errno;
                runtime_describer_free(d);
                return r;
        }
        r = sd_event_add_io(event, &d->done_source, d->efd, EPOLLIN, on_done, d);
        if (r < 0) {
                runtime_describer_free(d);
                return r;
        }
        (void) sd_event_source_set_description(d->done_source, "runtime-describe");
        *ret = d;
        return 0;
}

RuntimeDescriber *runtime_describer_free(RuntimeDescriber *d) {
        if (!d)
                return NULL;
        finish(d);
        for (RuntimeKind k = 0; k < _RUNTIME_KIND_MAX; k++)
                json_decref(d->kinds[k].what);
        shared_config_unref(d->config);
        sd_event_source_disable_unref(d->done_source);
        if (d->efd >= 0)
                close(d->efd);
        free(d);
        return NULL;
}

void runtime_describer_ask(RuntimeDescriber *d, RuntimeKind k, const RuntimeDriver *driver, SharedConfig *config,
                           bool again) {
        Described *x;

        if (!d || k < 0 || k >= _RUNTIME_KIND_MAX || !driver || !driver->describe || !config)
                return;
        x = &d->kinds[k];
        if (!again && x->what && now_monotonic() < x->at + RUNTIME_DESCRIBE_MAX_AGE)
                return;
        if (d->running && d->kind == k && !again)
                return; /* being asked */
        x->wanted = true;
        x->driver = driver;
        if (d->config != config) {
                shared_config_unref(d->config);
                d->config = shared_config_ref(config);
        }
        start_next(d);
}

bool runtime_describer_add(RuntimeDescriber *d, RuntimeKind k, json_t *into) {
        const Described *x;
        const char *key;
        json_t *v;

        if (!d || k < 0 || k >= _RUNTIME_KIND_MAX || !d->kinds[k].what)
                return false;
        x = &d->kinds[k];
        json_object_foreach(x->what, key, v)
                json_object_set(into, key, v);
        json_object_set_new(into, "described_age_s", json_integer((json_int_t) ((now_monotonic() - x->at) / USEC_PER_SEC)));
        return true;
}
