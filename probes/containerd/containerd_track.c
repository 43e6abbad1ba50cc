/* containerd_track.c: the poll loop. One round: ListStatuses (in-flight ingests: bytes), Content.Info
 * (Content.List without the registry's word) for the image's manifest while unknown (its
 * gc.ref.content.l.N labels list the layers in order), Content.Info for each layer not downloading
 * (committed? unpacked?; one Content.List beyond CD_INFO_MAX of them), then the unpack steps of
 * containerd_unpack.c (the image config once, Snapshots.List only while a layer can be unpacking). One
 * call at a time; fast while anything moves, backing off when nothing does. */
#include "probes/containerd/containerd_unpack.h"

#include <time.h>
#include "containerd_content.pb-c.h"
#include "containerd_snapshots.pb-c.h"

static void round_next(CdTracker *t);

/* One call at a time; its callback calls call_finished, sets t->step and calls round_next. */
static int issue(CdTracker *t, const char *path, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *type,
                 bool streaming, grpc_done_t done) {
        GrpcTarget target = { .socket = t->socket, .namespace = t->namespace, .timeout = CD_CALL_TIMEOUT };
        t->call_started = cd_now(CLOCK_MONOTONIC);
        return grpc_call_start(t->glue, &target, path, req, type, streaming, done, t, &t->call);
}

static void call_finished(CdTracker *t) {
        t->stats.calls++;
        t->stats.busy += cd_now(CLOCK_MONOTONIC) - t->call_started;
        t->call = grpc_call_free(t->call);
}

static void announce(CdTracker *t, const char *type, const char *id) {
        char **a;
        if (!t->cb.resource)
                return;
        for (size_t i = 0; t->announced && t->announced[i]; i++)
                if (streq(t->announced[i], id))
                        return;
        size_t n = strv_length(t->announced);
        a = realloc(t->announced, (n + 2) * sizeof(char *));
        if (!a)
                return;
        t->announced = a;
        a[n] = strdup(id);
        a[n + 1] = NULL;
        if (a[n])
                t->cb.resource(t->userdata, type, id);
}


/* ---- step 1: ingests ---- */

static void on_statuses(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;

        if (reply->error < 0 || reply->status != GRPC_OK) {
                int e = reply->error < 0 ? reply->error : -EIO;
                if (t->cb.error && e != t->last_error) {
                        _cleanup_free_ char *m = grpc_reply_describe(reply, "ListStatuses");
                        t->cb.error(t->userdata, e, m ?: "ListStatuses failed");
                }
                t->last_error = e;
                t->interval = CD_INTERVAL_MAX;
                t->step = STEP_EMIT + 1; /* skip the round */
        } else {
                t->last_error = 0;
                t->statuses = (void *) TAKE_PTR(reply->messages[0]);
                t->step = STEP_MANIFESTS;
        }
        call_finished(t); /* frees reply */
        round_next(t);
}

static void apply_statuses(CdTracker *t) {
        Containerd__Services__Content__V1__ListStatusesResponse *s = t->statuses;
        usec_t at = cd_now(CLOCK_MONOTONIC);
        bool resolving = false;

        for (size_t i = 0; i < t->n_layers; i++)
                t->layers[i]->ingest = false;
        for (size_t i = 0; s && i < s->n_statuses; i++) {
                const char *ref = s->statuses[i]->ref, *digest;
                CdRefKind kind = cd_ref_parse(ref, &digest);
                CdLayer *l;

                if (kind < 0)
                        continue;
                /* a layer of a media type containerd does not know is ingested as "unknown-" */
                if (kind == CD_REF_UNKNOWN && cd_layer_find(t, digest))
                        kind = CD_REF_LAYER;
                if (kind != CD_REF_LAYER) {
                        /* manifests and configs are small: a ref that lingers is the resolve phase */
                        if (t->source_repo && !t->mine) {
                                resolving = true;
                                announce(t, "ingests", ref);
                        }
                        continue;
                }
                if (t->source_repo) {
                        l = t->mine ? cd_layer_find(t, digest) : NULL;
                        if (!l || l->m != t->mine) {
                                /* not attributable yet; holding a stranger's ingest a while is harmless */
                                if (!t->mine_confirmed)
                                        announce(t, "ingests", ref);
                                continue;
                        }
                } else if (!(l = cd_layer_get(t, digest)))
                        continue;
                /* the local store's updated_at is the data file's last write (offset is its size): a
                 * resumed ingest keeps the last attempt's time until its first byte of this one */
                l->ingest_idle = s->statuses[i]->offset <= 0 || cd_timestamp_usec(s->statuses[i]->updated_at) < (int64_t) t->since;
                l->ingest = l->ingest_seen = true;
                l->missing_rounds = 0;
                if ((uint64_t) s->statuses[i]->offset != l->offset)
                        t->moved = true;
                l->offset = (uint64_t) MAX(s->statuses[i]->offset, 0);
                if (s->statuses[i]->total > 0)
                        l->size = (uint64_t) s->statuses[i]->total;
                if (t->source_repo && !l->leased_ingest) {
                        l->leased_ingest = true;
                        announce(t, "ingests", ref);
                }
        }
        if (resolving && t->cb.activity)
                t->cb.activity(t->userdata, "resolving", at);
}

/* ---- step 2: which manifest ---- */

/* Is a blob listed by this manifest being downloaded right now (in this round's statuses)? */
static bool lists_ingesting(CdTracker *t, Containerd__Services__Content__V1__Info *info) {
        for (size_t i = 0; t->statuses && i < t->statuses->n_statuses; i++) {
                const char *digest;
                CdRefKind kind = cd_ref_parse(t->statuses->statuses[i]->ref, &digest);
                if ((kind == CD_REF_LAYER || kind == CD_REF_UNKNOWN) && cd_manifest_lists(info, digest))
                        return true;
        }
        return false;
}

static void mine_switch(CdTracker *t, Containerd__Services__Content__V1__Info *info, bool confirmed) {
        if (t->mine && !streq(t->mine->digest, info->digest)) {
                /* a tag that moved: the newer manifest showed up after we guessed the older one */
                for (size_t i = 0; i < t->n_layers;)
                        if (t->layers[i]->m == t->mine)
                                cd_layer_remove(t, t->layers[i]);
                        else
                                i++;
                t->mine = NULL;
        }
        if (!t->mine && !(t->mine = cd_manifest_add(t, info, t->source_host, t->source_repo)))
                return;
        if (confirmed && !t->mine_confirmed) {
                t->mine_confirmed = true;
                t->moved = true;
        }
        announce(t, "content", t->mine->digest);
        if (t->mine->config)
                announce(t, "content", t->mine->config);
}

static void on_manifests(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;
        Containerd__Services__Content__V1__Info *newest = NULL, *fresh = NULL, *active = NULL, *expected = NULL;
        _cleanup_free_ Containerd__Services__Content__V1__Info **seen = NULL;
        size_t n_fresh = 0, n_seen = 0;

        for (size_t k = 0; reply->error == 0 && reply->status == GRPC_OK && k < reply->n_messages; k++) {
                Containerd__Services__Content__V1__ListContentResponse *r = (void *) reply->messages[k];
                for (size_t i = 0; i < r->n_info; i++) {
                        Containerd__Services__Content__V1__Info *info = r->info[i];
                        if (t->source_repo && (t->expect || t->expect_config)) {
                                /* the registry said which (or CRI, by the config it ended with); its layers
                                 * are known once the labels landed */
                                const char *config = cd_label_get(info, CD_LABEL_CONFIG);
                                if (config && (t->expect ? streq_ptr(info->digest, t->expect)
                                                         : streq(config, t->expect_config)))
                                        expected = info;
                                continue;
                        }
                        if (t->source_repo) {
                                /* Without the registry's word: one listing a layer being downloaded now, else
                                 * one fetched since we started (an upgrade's new tag), else the newest of the
                                 * repository, a guess that is never reported until the pull ends. */
                                if (!newest || cd_info_created(info) > cd_info_created(newest))
                                        newest = info;
                                if (cd_created_since(t, info)) {
                                        n_fresh++;
                                        if (!fresh || cd_info_created(info) > cd_info_created(fresh))
                                                fresh = info;
                                }
                                if (lists_ingesting(t, info) && (!active || cd_info_created(info) > cd_info_created(active)))
                                        active = info;
                                continue;
                        }
                        Containerd__Services__Content__V1__Info **a = realloc(seen, (n_seen + 1) * sizeof(*a));
                        if (!a)
                                break; /* out of memory: attribute what we have */
                        seen = a;
                        seen[n_seen++] = info;
                }
        }
        cd_attribute(t, seen, n_seen);
        if (expected)
                mine_switch(t, expected, true);
        else if (active || fresh || newest)
                /* a guess is reported only once the registry had time to answer (it usually does within
                 * milliseconds): a wrong one would leave layers of another image in the pull's view */
                mine_switch(t, active ?: fresh ?: newest,
                            (active || (fresh && n_fresh == 1)) && cd_now(CLOCK_REALTIME) >= t->since + CD_EXPECT_GRACE);
        call_finished(t); /* frees reply */
        t->step = STEP_CONTENT;
        round_next(t);
}

/* The registry's manifest, by Content.Info: known once its labels landed. */
static void on_expected(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;

        if (reply->error == 0 && reply->status == GRPC_OK && reply->n_messages == 1) {
                Containerd__Services__Content__V1__InfoResponse *r = (void *) reply->messages[0];
                if (r->info && cd_label_get(r->info, CD_LABEL_CONFIG) && streq_ptr(r->info->digest, t->expect))
                        mine_switch(t, r->info, true);
        }
        call_finished(t); /* frees reply */
        t->step = STEP_CONTENT;
        round_next(t);
}

static int issue_manifests(CdTracker *t) {
        Containerd__Services__Content__V1__ListContentRequest req = CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_REQUEST__INIT;
        _cleanup_strv_free_ char **filters = NULL;
        size_t n = 0;
        bool all_manifests = false;
        char *f;

        if (t->source_repo) {
                if (t->mine_confirmed)
                        return 0;
                if (t->expect) {
                        /* one key looked up; a Content.List filtered by digest walks every blob */
                        Containerd__Services__Content__V1__InfoRequest ireq = CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
                        ireq.digest = t->expect;
                        return issue(t, CD_PATH_CONTENT_INFO, &ireq.base,
                                     &containerd__services__content__v1__info_response__descriptor, false, on_expected) < 0
                                       ? -EIO
                                       : 1;
                }
                if (t->expect_config ? asprintf(&f, "labels.\"%s\"==%s", CD_LABEL_CONFIG, t->expect_config) < 0
                                     : cd_manifest_filter(t->source_host, t->source_repo, &f) < 0)
                        return 0; /* f is undefined after a failed asprintf: not pushed */
                if (cd_strv_push(&filters, &n, f) < 0)
                        return -ENOMEM;
        } else
                for (size_t i = 0; i < t->n_layers; i++) {
                        CdLayer *l = t->layers[i];
                        /* ask again now and then: the manifest's labels may land after the first layer */
                        if (l->m || (l->searches++ % 8) != 0)
                                continue;
                        if (!l->source_host || !l->source_repos) {
                                /* still downloading, so no labels of its own: every image manifest of the
                                 * namespace, one call (labels only) now and then until one lists it */
                                all_manifests = true;
                                continue;
                        }
                        _cleanup_free_ char *repos = strdup(l->source_repos);
                        char *save = NULL;
                        if (!repos)
                                return -ENOMEM;
                        for (char *r = strtok_r(repos, ",", &save); r; r = strtok_r(NULL, ",", &save))
                                if (n < 32 && cd_manifest_filter(l->source_host, r, &f) >= 0 &&
                                    cd_strv_push(&filters, &n, f) < 0)
                                        return -ENOMEM;
                }
        if (all_manifests &&
            (asprintf(&f, "labels.\"%s\"", CD_LABEL_CONFIG) < 0 || cd_strv_push(&filters, &n, f) < 0))
                return -ENOMEM;
        if (n == 0)
                return 0;
        req.n_filters = n;
        req.filters = filters;
        return issue(t, CD_PATH_CONTENT_LIST, &req.base,
                     &containerd__services__content__v1__list_content_response__descriptor, true, on_manifests) < 0
                       ? -EIO
                       : 1;
}

/* ---- step 3: committed and unpacked layers ---- */

static bool layer_wanted(CdTracker *t, CdLayer *l) {
        if (l->done || l->ingest)
                return false;
        return t->source_repo ? (t->mine && l->m == t->mine) : true;
}

static void on_content(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;

        if (reply->error == 0 && reply->status == GRPC_OK) {
                for (size_t i = 0; i < t->n_layers; i++)
                        if (layer_wanted(t, t->layers[i]))
                                t->layers[i]->committed = false;
                for (size_t k = 0; k < reply->n_messages; k++) {
                        Containerd__Services__Content__V1__ListContentResponse *r = (void *) reply->messages[k];
                        for (size_t i = 0; i < r->n_info; i++)
                                if (cd_layer_content(t, r->info[i]))
                                        announce(t, "content", r->info[i]->digest);
                }
        }
        call_finished(t); /* frees reply */
        t->step = STEP_CONFIG;
        round_next(t);
}

static int issue_content_info(CdTracker *t);

/* One layer's Content.Info (t->content_next); then the next wanted layer's, one call at a time. */
static void on_content_info(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;

        if (reply->error == 0 && reply->status == GRPC_OK && reply->n_messages == 1) {
                Containerd__Services__Content__V1__InfoResponse *r = (void *) reply->messages[0];
                if (r->info && cd_layer_content(t, r->info))
                        announce(t, "content", r->info->digest);
        } else if (reply->error == 0 && reply->status == GRPC_NOT_FOUND && t->content_next < t->n_layers)
                t->layers[t->content_next]->committed = false;
        call_finished(t); /* frees reply */
        t->content_next++;
        if (issue_content_info(t) > 0)
                return;
        t->step = STEP_CONFIG;
        round_next(t);
}

static int issue_content_info(CdTracker *t) {
        Containerd__Services__Content__V1__InfoRequest req = CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;

        while (t->content_next < t->n_layers && !layer_wanted(t, t->layers[t->content_next]))
                t->content_next++;
        if (t->content_next >= t->n_layers)
                return 0;
        req.digest = t->layers[t->content_next]->digest;
        return issue(t, CD_PATH_CONTENT_INFO, &req.base, &containerd__services__content__v1__info_response__descriptor,
                     false, on_content_info) < 0
                       ? -EIO
                       : 1;
}

/* A Content.Info per wanted layer: one key each, whatever the store holds (a Content.List filtered by
 * digest walks containerd's whole blob bucket). Beyond CD_INFO_MAX of them (watch mode, many pulls),
 * one Content.List instead of that many calls a round. */
static int issue_content(CdTracker *t) {
        Containerd__Services__Content__V1__ListContentRequest req = CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_REQUEST__INIT;
        _cleanup_strv_free_ char **filters = NULL;
        size_t n = 0, wanted = 0;

        for (size_t i = 0; i < t->n_layers; i++)
                wanted += layer_wanted(t, t->layers[i]);
        if (wanted == 0)
                return 0;
        if (wanted <= CD_INFO_MAX) {
                t->content_next = 0;
                return issue_content_info(t);
        }
        for (size_t i = 0; i < t->n_layers; i++) {
                char *f;
                if (!layer_wanted(t, t->layers[i]))
                        continue;
                if (asprintf(&f, "digest==%s", t->layers[i]->digest) < 0 || cd_strv_push(&filters, &n, f) < 0)
                        return -ENOMEM;
        }
        req.n_filters = n;
        req.filters = filters;
        return issue(t, CD_PATH_CONTENT_LIST, &req.base,
                     &containerd__services__content__v1__list_content_response__descriptor, true, on_content) < 0
                       ? -EIO
                       : 1;
}

/* ---- steps 4 and 5: containerd_unpack.c says what to ask and what the answer means ---- */

static void on_config(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;
        cd_unpack_config_reply(t, reply);
        call_finished(t); /* frees reply */
        t->step = STEP_SNAPSHOTS;
        round_next(t);
}

static int issue_config(CdTracker *t) {
        Containerd__Services__Content__V1__ReadContentRequest req;
        if (cd_unpack_config_request(t, &req) <= 0)
                return 0;
        return issue(t, CD_PATH_CONTENT_READ, &req.base,
                     &containerd__services__content__v1__read_content_response__descriptor, true, on_config) < 0
                       ? -EIO
                       : 1;
}

static void on_snapshots(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;
        cd_unpack_snapshots_reply(t, reply);
        call_finished(t); /* frees reply */
        t->step = STEP_EMIT;
        round_next(t);
}

static int issue_snapshots(CdTracker *t) {
        CdSnapshotsRequest req;
        if (cd_unpack_snapshots_request(t, &req) <= 0)
                return 0;
        return issue(t, CD_PATH_SNAPSHOTS, &req.req.base,
                     &containerd__services__snapshots__v1__list_snapshots_response__descriptor, true, on_snapshots) < 0
                       ? -EIO
                       : 1;
}

static void round_next(CdTracker *t) {
        int r = 0;

        for (;;) {
                switch (t->step) {
                case STEP_STATUSES: {
                        Containerd__Services__Content__V1__ListStatusesRequest req =
                                CONTAINERD__SERVICES__CONTENT__V1__LIST_STATUSES_REQUEST__INIT;
                        t->moved = false;
                        t->stats.polls++;
                        r = issue(t, CD_PATH_LIST_STATUSES, &req.base,
                                  &containerd__services__content__v1__list_statuses_response__descriptor, false,
                                  on_statuses) < 0 ? -EIO : 1;
                        break;
                }
                case STEP_MANIFESTS:
                        r = issue_manifests(t);
                        break;
                case STEP_CONTENT:
                        /* ingests first: a layer whose ingest is gone must be looked up as a blob now */
                        apply_statuses(t);
                        r = issue_content(t);
                        break;
                case STEP_CONFIG:
                        r = issue_config(t);
                        break;
                case STEP_SNAPSHOTS:
                        r = issue_snapshots(t);
                        break;
                case STEP_EMIT:
                        cd_emit(t);
                        break;
                default:
                        break;
                }
                if (r > 0)
                        return; /* a call is in flight; its callback moves on */
                if (t->step >= STEP_EMIT)
                        break;
                t->step++;
        }
        if (t->statuses)
                protobuf_c_message_free_unpacked(&t->statuses->base, NULL);
        t->statuses = NULL;
        if (t->final_done) {
                if (!t->final_started) {
                        /* the round that was in flight when the end came; now the final one */
                        t->final_started = true;
                        t->step = STEP_STATUSES;
                        round_next(t);
                        return;
                }
                void (*done)(void *) = t->final_done;
                t->final_done = NULL;
                (void) sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
                done(t->final_userdata); /* may free t */
                return;
        }
        /* poll fast while anything moves or the image is not known yet, then back off */
        if (t->last_error == 0)
                t->interval = t->moved || (t->source_repo && !t->mine_confirmed) ? CD_INTERVAL_MIN
                                                                       : MIN(t->interval * 3 / 2, CD_INTERVAL_MAX);
        (void) sd_event_source_set_time_relative(t->timer, t->interval);
        (void) sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

void cd_tracker_final_round(CdTracker *t, void (*done)(void *userdata), void *userdata) {
        t->final_done = done;
        t->final_userdata = userdata;
        (void) sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
        if (t->call)
                return; /* round_next starts the final round when this one ends */
        t->final_started = true;
        t->step = STEP_STATUSES;
        round_next(t);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        CdTracker *t = userdata;
        if (t->call)
                return 0;
        t->step = STEP_STATUSES;
        round_next(t);
        return 0;
}

static void on_version(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;
        /* unknown (an old or odd server): an ingest is a download, as in 1.x */
        t->ingest_before_slot = containerd_version_major(containerd_reply_version(reply)) >= 2;
        t->version_call = grpc_call_free(call);
}

int cd_tracker_new(CurlGlue *glue, const CdTrackerOptions *o, const CdTrackerCallbacks *cb, void *userdata,
                   CdTracker **ret) {
        _cleanup_(cd_tracker_freep) CdTracker *t = NULL;
        int r;

        if (!glue || !o || !o->socket || !o->namespace || !!o->source_host != !!o->source_repo)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->glue = glue;
        t->cb = *cb;
        t->userdata = userdata;
        t->since = o->since ?: cd_now(CLOCK_REALTIME);
        t->interval = CD_INTERVAL_MIN;
        t->socket = strdup(o->socket);
        t->namespace = strdup(o->namespace);
        t->snapshotter = strdup(o->snapshotter ?: "overlayfs");
        if (!t->socket || !t->namespace || !t->snapshotter)
                return -ENOMEM;
        if (o->source_repo && (!(t->source_host = strdup(o->source_host)) || !(t->source_repo = strdup(o->source_repo))))
                return -ENOMEM;
        /* the first round right away: a pull's resolve phase is short */
        r = sd_event_add_time_relative(curl_glue_event(glue), &t->timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                                       on_tick, t);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(t->timer, "containerd-poll");
        /* answered long before a layer's bytes could matter; on failure 1.x's reading is kept */
        (void) containerd_version_start(glue, t->socket, on_version, t, &t->version_call);
        *ret = TAKE_PTR(t);
        return 0;
}

CdTracker *cd_tracker_free(CdTracker *t) {
        if (!t)
                return NULL;
        grpc_call_free(t->call);
        grpc_call_free(t->version_call);
        sd_event_source_disable_unref(t->timer);
        if (t->statuses)
                protobuf_c_message_free_unpacked(&t->statuses->base, NULL);
        for (size_t i = 0; i < t->n_layers; i++)
                cd_layer_free(t->layers[i]);
        free(t->layers);
        for (size_t i = 0; i < t->n_manifests; i++)
                cd_manifest_free(t->manifests[i]);
        free(t->manifests);
        strv_free(t->announced);
        free(t->socket);
        free(t->namespace);
        free(t->source_host);
        free(t->source_repo);
        free(t->snapshotter);
        free(t->expect);
        free(t->expect_config);
        free(t);
        return NULL;
}

void cd_tracker_all_done(CdTracker *t) {
        if (t)
                cd_layers_all_done(t);
}

const char *cd_tracker_manifest(const CdTracker *t) {
        return t && t->mine && t->mine_confirmed ? t->mine->digest : NULL;
}

void cd_tracker_stats(const CdTracker *t, ContainerdPollStats *ret) {
        *ret = t ? t->stats : (ContainerdPollStats) {};
}

int cd_tracker_expect(CdTracker *t, const char *manifest_digest) {
        char *d;
        if (!t || !t->source_repo || !manifest_digest)
                return -EINVAL;
        if (streq_ptr(t->expect, manifest_digest))
                return 0;
        d = strdup(manifest_digest);
        if (!d)
                return -ENOMEM;
        free(t->expect);
        t->expect = d;
        /* a guess (or another tag's manifest) is dropped at the next round's look-up */
        if (t->mine && !streq(t->mine->digest, d))
                t->mine_confirmed = false;
        return 0;
}

int cd_tracker_expect_config(CdTracker *t, const char *config_digest) {
        if (!t || !t->source_repo || !config_digest || !startswith(config_digest, "sha256:") ||
            strpbrk(config_digest, "\"\\,"))
                return -EINVAL;
        free(t->expect_config);
        t->expect_config = strdup(config_digest);
        return t->expect_config ? 0 : -ENOMEM;
}
