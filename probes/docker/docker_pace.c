/* docker_pace.c: see docker_pace.h. libcurl allows curl_easy_pause() from inside the write callback: the
 * data of that call is taken, anything after it is held and handed over on the resume. */
#include "probes/docker/docker_pace.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "basic/macro.h"

typedef struct PaceLayer {
        char *id;
        Phase phase;
} PaceLayer;

struct DockerPace {
        sd_event *event;
        CURL *easy;
        sd_event_source *timer;
        docker_pace_failed_t failed;
        void *userdata;
        PaceLayer *layers;
        size_t n_layers, allocated;
        bool paused, resuming, end_near;
        unsigned pauses;
};

static int on_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        DockerPace *p = userdata;
        CURLcode c;

        if (!p->paused)
                return 0;
        p->paused = false;
        p->resuming = true; /* what was held is handed over inside the call: not paused again there */
        c = curl_easy_pause(p->easy, CURLPAUSE_CONT);
        p->resuming = false;
        if (c != CURLE_OK && p->failed)
                p->failed(p->userdata, c);
        return 0;
}

int docker_pace_new(sd_event *event, CURL *easy, docker_pace_failed_t failed, void *userdata, DockerPace **ret) {
        DockerPace *p;
        int r;

        assert(event && easy && ret);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (DockerPace) { .event = event, .easy = easy, .failed = failed, .userdata = userdata };
        r = sd_event_add_time(event, &p->timer, CLOCK_MONOTONIC, USEC_INFINITY, 10 * 1000, on_resume, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        if (r < 0) {
                docker_pace_free(p);
                return r;
        }
        (void) sd_event_source_set_description(p->timer, "docker-pace");
        *ret = p;
        return 0;
}

DockerPace *docker_pace_free(DockerPace *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->timer);
        for (size_t i = 0; i < p->n_layers; i++)
                free(p->layers[i].id);
        free(p->layers);
        free(p);
        return NULL;
}

int docker_pace_layer(DockerPace *p, const char *id, Phase phase) {
        if (!p || !id || phase < 0)
                return 0;
        for (size_t i = 0; i < p->n_layers; i++)
                if (streq(p->layers[i].id, id)) {
                        p->layers[i].phase = phase;
                        return 0;
                }
        if (p->n_layers == p->allocated) {
                size_t a = MAX(p->allocated * 2, (size_t) 8);
                PaceLayer *l = reallocarray(p->layers, a, sizeof(*l));
                if (!l)
                        return -ENOMEM;
                p->layers = l;
                p->allocated = a;
        }
        p->layers[p->n_layers].id = strdup(id);
        if (!p->layers[p->n_layers].id)
                return -ENOMEM;
        p->layers[p->n_layers++].phase = phase;
        return 0;
}

void docker_pace_end_near(DockerPace *p) {
        if (p)
                p->end_near = true;
}

/* Worth a pause while more is to come than the result: a layer still to download, or two not done.
 * The last layer extracting alone is read as it comes, so its "Pull complete", the digest and the
 * end of the stream are not held back. */
static bool worth_pausing(const DockerPace *p) {
        size_t open = 0, downloading = 0;

        if (p->end_near)
                return false;
        for (size_t i = 0; i < p->n_layers; i++) {
                open += p->layers[i].phase != PHASE_DONE;
                downloading += p->layers[i].phase == PHASE_DOWNLOADING;
        }
        return open >= 2 || downloading > 0;
}

void docker_pace_after_write(DockerPace *p) {
        if (!p || p->paused || p->resuming || !worth_pausing(p))
                return;
        if (sd_event_source_set_time_relative(p->timer, DOCKER_PACE_USEC) < 0 ||
            sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT) < 0)
                return; /* no timer to resume: keep reading */
        if (curl_easy_pause(p->easy, CURLPAUSE_RECV) != CURLE_OK) {
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
                return;
        }
        p->paused = true;
        p->pauses++;
}

unsigned docker_pace_pauses(const DockerPace *p) { return p ? p->pauses : 0; }
