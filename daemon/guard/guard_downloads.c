/* guard_downloads.c: the downloads of other clients' pulls, in one detector per runtime. containerd:
 * its content ingests, namespace by namespace (guard.namespaces), with the image once containerd
 * labels it; dockerd on its classic store: the GetImageBlob temp files it holds open, growing as bytes
 * arrive (the Engine API shows a pull's progress to no one but the client that started it). */
#include "daemon/guard/guard_internal.h"

#include "probes/host/open_files.h"

#include <inttypes.h>
#include <stdio.h>

/* Who starts the pulls that land in a containerd namespace. */
static const char *namespace_client(const char *ns) {
        if (streq(ns, "k8s.io"))
                return "cri";            /* kubelet */
        if (streq(ns, "moby"))
                return "engine-api";     /* a docker client, dockerd on the containerd image store */
        return "containerd-api";         /* ctr, nerdctl */
}

static GuardDownload *dl_find(GuardRuntime *rt, const char *id) {
        for (size_t i = 0; i < rt->n_dls; i++)
                if (streq(rt->dls[i].id, id))
                        return &rt->dls[i];
        return NULL;
}

static GuardDownload *dl_get(GuardRuntime *rt, const char *id, const char *client) {
        GuardDownload *d = dl_find(rt, id);
        if (d)
                return d;
        d = realloc(rt->dls, (rt->n_dls + 1) * sizeof(*d));
        if (!d)
                return NULL;
        rt->dls = d;
        d = &rt->dls[rt->n_dls];
        *d = (GuardDownload) { .id = strdup(id), .client = client };
        if (!d->id)
                return NULL;
        rt->n_dls++;
        rt->guard->stats.pulls_seen++;
        guard_seen(rt);
        return d;
}

static void dl_drop(GuardRuntime *rt, size_t i) {
        grpc_call_free(rt->dls[i].lookup);
        free(rt->dls[i].id);
        free(rt->dls[i].image);
        rt->dls[i] = rt->dls[--rt->n_dls];
}

const char *guard_downloads_image(const GuardRuntime *rt, const char *id) {
        for (size_t i = 0; i < rt->n_dls; i++)
                if (streq(rt->dls[i].id, id))
                        return rt->dls[i].image;
        return NULL;
}

/* The one image this runtime is pulling for someone else, when exactly one is in flight. */
const char *guard_only_image(const GuardRuntime *rt) {
        const char *img = NULL;
        for (size_t i = 0; i < detector_n_layers(rt->downloads); i++) {
                const char *m = guard_downloads_image(rt, detector_layer_at(rt->downloads, i)->id);
                if (!m)
                        continue;
                if (img && !streq(img, m))
                        return NULL;
                img = m;
        }
        return img;
}

bool guard_downloads_in_flight(const GuardRuntime *rt) {
        for (size_t i = 0; i < detector_n_layers(rt->downloads); i++) {
                const LayerTrack *t = detector_layer_at(rt->downloads, i);
                if (t->phase == PHASE_DOWNLOADING || t->phase == PHASE_RESOLVE)
                        return true;
        }
        return false;
}

/* ---- containerd: one namespace watcher each ---- */

typedef struct NsWatch {
        GuardRuntime *rt;
        const char *client;
} NsWatch;

static void on_layer(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                     uint64_t total, usec_t at) {
        NsWatch *w = userdata;
        GuardRuntime *rt = w->rt;
        GuardDownload *d = dl_get(rt, layer, w->client);

        if (!d)
                return;
        if (image && !streq_ptr(d->image, image)) {
                free(d->image);
                d->image = strdup(image);
                d->own = guard_is_own(rt, image);
        }
        (void) detector_layer(rt->downloads, layer, phase, current, total, at);
}

static void on_layer_gone(void *userdata, const char *image, const char *layer, bool done, usec_t at) {
        NsWatch *w = userdata;
        (void) detector_layer(w->rt->downloads, layer, PHASE_DONE, 0, 0, at);
}

static void on_error(void *userdata, int error, const char *message) {
        /* containerd down or restarting: its monitor in the agent says so; polling goes on */
}

static int containerd_start(GuardRuntime *rt) {
        const Config *c = rt->guard->config->config;
        static const ContainerdWatchCallbacks cb = { .layer = on_layer, .layer_gone = on_layer_gone, .error = on_error };
        size_t n = strv_length(c->guard.namespaces);

        rt->watches = calloc(n + 1, sizeof(ContainerdWatch *));
        rt->watch_ns = calloc(n + 1, sizeof(char *));
        if (!rt->watches || !rt->watch_ns)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                NsWatch *w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                *w = (NsWatch) { .rt = rt, .client = namespace_client(c->guard.namespaces[i]) };
                rt->watch_ns[i] = (char *) w; /* owned here: freed in guard_downloads_done() */
                int r = containerd_watch_new(rt->guard->glue, c, c->guard.namespaces[i], &cb, w, &rt->watches[i]);
                if (r < 0)
                        return r;
                rt->n_watches++;
        }
        return 0;
}

static int fd_pos(pid_t pid, int fd, uint64_t *ret);

/* ---- containerd: the layers it unpacks, from the blobs it holds open ---- */

#define CONTENT_BLOBS "/io.containerd.content.v1.content/blobs/sha256/"

static void lookup_next(GuardRuntime *rt, GuardDownload *d);

/* Content.Info in one namespace (probes/containerd): the blob is there, so is the pull that fetched it */
static void on_lookup(GrpcCall *call, GrpcReply *reply, void *userdata) {
        GuardRuntime *rt = userdata;
        GuardDownload *d = NULL;
        _cleanup_free_ char *image = NULL;
        int r;

        for (size_t i = 0; i < rt->n_dls; i++)
                if (rt->dls[i].lookup == call)
                        d = &rt->dls[i];
        if (!d)
                return;
        d->lookup = NULL; /* freed by its owner below, after this callback */
        r = containerd_reply_content_source(reply, &image);
        if (r >= 0) {
                const char *ns = rt->guard->config->config->guard.namespaces[d->lookup_ns];
                d->client = d->client ?: namespace_client(ns);
                if (!d->image)
                        d->image = TAKE_PTR(image);
                d->own = d->own || guard_is_own(rt, d->image);
        } else if (r == -ENOENT) {
                d->lookup_ns++;
                lookup_next(rt, d);
        }
        grpc_call_free(call);
}

static void lookup_next(GuardRuntime *rt, GuardDownload *d) {
        char *const *ns = rt->guard->config->config->guard.namespaces;
        RuntimeProcess p = {};

        if (!ns || d->lookup_ns >= strv_length(ns))
                return; /* in none of the namespaces watched: not one we can name */
        rt->driver->process(rt->guard->config->config, &p);
        if (containerd_content_info_start(rt->guard->glue, p.socket, ns[d->lookup_ns], d->id, on_lookup, rt,
                                          &d->lookup) < 0)
                d->lookup = NULL;
}

static void containerd_extracting(GuardRuntime *rt, usec_t now) {
        const RuntimeIdentity *id = runtime_liveness_identity(rt->liveness, NULL);
        const OpenFile *files = rt->files;
        size_t n = rt->fds_r >= 0 ? rt->n_files : 0;

        for (size_t i = 0; i < rt->n_dls; i++)
                rt->dls[i].seen = false;
        if (id && id->pid > 0)
                for (size_t i = 0; i < n; i++) {
                        const char *b = strstr(files[i].path, CONTENT_BLOBS);
                        char digest[80];
                        uint64_t pos = 0;
                        if (!b || strchr(b + strlen(CONTENT_BLOBS), '/'))
                                continue;
                        snprintf(digest, sizeof(digest), "sha256:%s", b + strlen(CONTENT_BLOBS));
                        GuardDownload *d = dl_get(rt, digest, NULL);
                        if (!d)
                                continue;
                        d->seen = true;
                        if (!d->extracting) {
                                d->extracting = true;
                                if (!d->client && !d->lookup)
                                        lookup_next(rt, d);
                        }
                        (void) fd_pos(id->pid, files[i].fd, &pos);
                        (void) detector_layer(rt->downloads, digest, PHASE_EXTRACTING, pos, files[i].size, now);
                }
        /* a blob closed again: unpacked (or given up) */
        for (size_t i = 0; i < rt->n_dls; i++)
                if (rt->dls[i].extracting && !rt->dls[i].seen) {
                        rt->dls[i].extracting = false;
                        (void) detector_layer(rt->downloads, rt->dls[i].id, PHASE_DONE, 0, 0, now);
                }
}

const GuardDownload *guard_downloads_only(const GuardRuntime *rt) {
        const GuardDownload *found = NULL;
        for (size_t i = 0; i < rt->n_dls; i++) {
                const LayerTrack *t = detector_find(rt->downloads, rt->dls[i].id);
                if (!t || t->phase == PHASE_DONE || !rt->dls[i].client)
                        continue;
                if (found && !streq(found->client, rt->dls[i].client))
                        return NULL;
                found = found ?: &rt->dls[i];
        }
        return found;
}

const GuardDownload *guard_downloads_extracting(const GuardRuntime *rt) {
        const GuardDownload *found = NULL;
        for (size_t i = 0; i < rt->n_dls; i++) {
                const LayerTrack *t = detector_find(rt->downloads, rt->dls[i].id);
                if (!t || t->phase != PHASE_EXTRACTING)
                        continue;
                if (found)
                        return NULL;
                found = &rt->dls[i];
        }
        return found;
}

/* ---- dockerd: its blob temp files ---- */

/* The file offset of pid's fd: dockerd writes a blob at its end while it downloads, then seeks back
 * to 0 and hands the file to extraction (pull_v2.go), which reads it from there. */
static int fd_pos(pid_t pid, int fd, uint64_t *ret) {
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int) pid, fd);
        FILE *f = fopen(path, "re");
        int r = -ENODATA;
        if (!f)
                return -errno;
        while (fgets(buf, sizeof(buf), f))
                if (sscanf(buf, "pos: %" SCNu64, ret) == 1) {
                        r = 0;
                        break;
                }
        fclose(f);
        return r;
}

static void docker_sample(GuardRuntime *rt, usec_t now) {
        const RuntimeIdentity *id = runtime_liveness_identity(rt->liveness, NULL);
        const OpenFile *files = rt->files;
        size_t n = rt->n_files;

        if (!id || id->pid <= 0 || rt->fds_r < 0)
                return;
        for (size_t i = 0; i < rt->n_dls; i++)
                rt->dls[i].seen = false;
        for (size_t i = 0; i < n; i++) {
                char idbuf[64];
                const char *base = strrchr(files[i].path, '/');
                /* the walk is shared with the connections' part: every file; the blob temp files only */
                if (!startswith(base ? base + 1 : files[i].path, OPEN_FILES_DOCKER_BLOB_PREFIX))
                        continue;
                snprintf(idbuf, sizeof(idbuf), "%s", base ? base + 1 : files[i].path);
                GuardDownload *d = dl_get(rt, idbuf, rt->client);
                if (!d)
                        continue;
                d->seen = true;
                d->own = guard_is_own(rt, NULL); /* a temp file does not say whose it is */
                uint64_t pos = 0;
                /* written at its end: downloading; read from before it: downloaded, extracting or
                 * waiting for its turn (the helpers' judge watches that) */
                bool writing = fd_pos(id->pid, files[i].fd, &pos) < 0 || pos >= files[i].size;
                (void) detector_layer(rt->downloads, idbuf, writing ? PHASE_DOWNLOADING : PHASE_EXTRACTING,
                                      writing ? files[i].size : pos, writing ? 0 : files[i].size, now);
        }
        for (size_t i = 0; i < rt->n_dls;) {
                if (rt->dls[i].seen) {
                        i++;
                        continue;
                }
                /* closed: downloaded (dockerd verifies and registers it) or given up; either way not ours */
                if (rt->dls[i].was_downloading)
                        rt->finished++;
                (void) detector_layer(rt->downloads, rt->dls[i].id, PHASE_DONE, 0, 0, now);
                dl_drop(rt, i);
        }
}

int guard_downloads_start(GuardRuntime *rt) {
        /* a runtime whose pulls its API shows (containerd's content ingests) is asked; the other
         * (dockerd, which shows a pull to no one but its client) is read from the files it holds */
        if (rt->driver->watchable)
                return containerd_start(rt);
        rt->client = "engine-api";
        return 0;
}

/* The first stalled download not acted on in this stall, for guard_conns.c. */
GuardDownload *guard_downloads_stalled(GuardRuntime *rt, const LayerTrack **ret_track) {
        for (size_t i = 0; i < detector_n_layers(rt->downloads); i++) {
                const LayerTrack *t = detector_layer_at(rt->downloads, i);
                GuardDownload *d = dl_find(rt, t->id);
                if (!d || d->own)
                        continue;
                if (t->verdict != VERDICT_STALLED) {
                        d->acted = false; /* moving again: a later stall is a new one */
                        continue;
                }
                if (d->acted || (t->phase != PHASE_DOWNLOADING && t->phase != PHASE_RESOLVE))
                        continue;
                *ret_track = t;
                return d;
        }
        return NULL;
}

void guard_downloads_sample(GuardRuntime *rt, usec_t now) {
        rt->finished_before = rt->finished;
        rt->finished = 0;
        if (!rt->n_watches)
                docker_sample(rt, now);
        else
                containerd_extracting(rt, now);
        detector_evaluate(rt->downloads, now);
        for (size_t i = 0; i < rt->n_dls; i++) {
                const LayerTrack *t = detector_find(rt->downloads, rt->dls[i].id);
                bool downloading = t && (t->phase == PHASE_DOWNLOADING || t->phase == PHASE_RESOLVE);
                /* a containerd ingest that ended is committed or dropped, which it does not say: only
                 * the blob read back for extraction tells a finished one */
                if (rt->dls[i].was_downloading && t && t->phase == PHASE_EXTRACTING)
                        rt->finished++;
                rt->dls[i].was_downloading = downloading;
        }
        for (size_t i = 0; i < detector_n_layers(rt->downloads); i++) {
                LayerTrack *t = (LayerTrack *) detector_layer_at(rt->downloads, i);
                GuardDownload *d = dl_find(rt, t->id);
                if (!t->verdict_changed || !d || d->own)
                        continue;
                /* a stall is reported with its connection (guard_conns.c); silent phases are the helpers'
                 * judge's: bytes are not their life */
                if (t->verdict != VERDICT_DEGRADED || (t->phase != PHASE_DOWNLOADING && t->phase != PHASE_RESOLVE))
                        continue;
                rt->guard->stats.verdicts++;
                guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .image = d->image, .client = d->client,
                                              .layer = t->id, .phase = t->phase, .verdict = t->verdict,
                                              .evidence = t->evidence, .current = t->current, .total = t->total });
        }
        /* a containerd ingest that finished is gone from its watch; forget what the detector is done with */
        for (size_t i = 0; i < rt->n_dls;) {
                const LayerTrack *t = detector_find(rt->downloads, rt->dls[i].id);
                if (rt->n_watches && (!t || t->phase == PHASE_DONE) && !rt->dls[i].extracting && !rt->dls[i].lookup)
                        dl_drop(rt, i);
                else
                        i++;
        }
}

void guard_downloads_done(GuardRuntime *rt) {
        for (size_t i = 0; i < rt->n_watches; i++)
                containerd_watch_free(rt->watches[i]);
        for (size_t i = 0; rt->watch_ns && rt->watch_ns[i]; i++)
                free(rt->watch_ns[i]);
        free(rt->watches);
        free(rt->watch_ns);
        while (rt->n_dls)
                dl_drop(rt, rt->n_dls - 1);
        free(rt->dls);
}
