/* state_writer.c: one worker thread writes state.json's text (temp, fsync, rename, fsync the
 * directory); the loop hears of each finished write through an eventfd. The loop builds the text, so
 * the worker shares nothing with the State. */
#include "daemon/preheat/state_writer.h"
#include "daemon/preheat/state.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct StateWriter {
        StateWriterDone done;
        void *userdata;
        sd_event_source *done_source;
        int efd;
        bool have_thread;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;      /* a text to write, quit, or a write ended */
        /* under lock: */
        char *path, *text;        /* waiting for the worker */
        bool writing;             /* the worker holds a text */
        bool quit;
        bool have_result;         /* a finished write the loop has not been told of */
        int result;
        char *result_path;
};

static void *worker(void *userdata) {
        StateWriter *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->text && !w->quit)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (!w->text)
                        break; /* quit, and nothing left to write */
                char *path = w->path, *text = w->text;
                w->path = w->text = NULL;
                w->writing = true;
                pthread_mutex_unlock(&w->lock);

                int r = state_write_text(path, text);
                free(text);

                pthread_mutex_lock(&w->lock);
                w->writing = false;
                free(w->result_path);
                w->result_path = path;
                w->result = r;
                w->have_result = true;
                pthread_cond_broadcast(&w->cond);
                (void) eventfd_write(w->efd, 1);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StateWriter *w = userdata;
        eventfd_t v;
        char *path = NULL;
        int r = 0;
        bool have;

        (void) eventfd_read(w->efd, &v);
        pthread_mutex_lock(&w->lock);
        have = w->have_result;
        if (have) {
                r = w->result;
                path = w->result_path;
                w->result_path = NULL;
                w->have_result = false;
        }
        pthread_mutex_unlock(&w->lock);
        if (have && w->done)
                w->done(r, path, w->userdata);
        free(path);
        return 0;
}

int state_writer_new(sd_event *event, StateWriterDone done, void *userdata, StateWriter **ret) {
        StateWriter *w = calloc(1, sizeof(*w));
        sigset_t all, old;
        int r;

        if (!w)
                return -ENOMEM;
        w->efd = -1;
        w->done = done;
        w->userdata = userdata;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                state_writer_free(w);
                return r;
        }
        r = sd_event_add_io(event, &w->done_source, w->efd, EPOLLIN, on_done, w);
        if (r < 0) {
                state_writer_free(w);
                return r;
        }
        (void) sd_event_source_set_description(w->done_source, "state-writer");
        /* the worker takes no signal: the loop's signalfd must see them all */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        w->have_thread = pthread_create(&w->thread, NULL, worker, w) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        *ret = w;
        return 0;
}

int state_writer_submit(StateWriter *w, char *path, char *text) {
        if (!w->have_thread) {
                int r = state_write_text(path, text);
                free(path);
                free(text);
                return r;
        }
        pthread_mutex_lock(&w->lock);
        free(w->path);
        free(w->text);
        w->path = path;
        w->text = text;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

int state_writer_sync(StateWriter *w) {
        char *path, *text;
        int r;

        pthread_mutex_lock(&w->lock);
        while (w->writing)
                pthread_cond_wait(&w->cond, &w->lock);
        path = w->path;
        text = w->text;
        w->path = w->text = NULL;
        r = w->have_result ? w->result : 0;
        pthread_mutex_unlock(&w->lock);
        if (text)
                r = state_write_text(path, text);
        free(path);
        free(text);
        return r;
}

bool state_writer_busy(StateWriter *w) {
        bool b;
        pthread_mutex_lock(&w->lock);
        b = w->writing || w->text;
        pthread_mutex_unlock(&w->lock);
        return b;
}

StateWriter *state_writer_free(StateWriter *w) {
        if (!w)
                return NULL;
        if (w->have_thread) {
                pthread_mutex_lock(&w->lock);
                w->quit = true; /* the worker writes what waits, then ends */
                pthread_cond_broadcast(&w->cond);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
        }
        (void) state_writer_sync(w);
        sd_event_source_disable_unref(w->done_source);
        if (w->efd >= 0)
                close(w->efd);
        free(w->result_path);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}
