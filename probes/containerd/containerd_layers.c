/* containerd_layers.c: what the tracker knows about images and layers, and the phases it derives from
 * that. containerd 1.6's unpacker applies layers strictly in manifest order, so the first layer whose
 * blob is committed but not yet unpacked (no containerd.io/uncompressed label) is the one extracting;
 * later committed layers wait for it. containerd 2.2 can unpack several layers at once
 * (max_concurrent_unpacks), each in a snapshot prepared without a parent until its commit: once the
 * image config's diff_ids are known, a layer is extracting when the unpack snapshot named by its own
 * chain ID (label containerd.io/snapshot.ref, key "extract-<unique> <chainID>") is active. */
#include "probes/containerd/containerd_model.h"

#include <jansson.h>

#include "probes/registry/registry.h"

#include "containerd_content.pb-c.h"
#include "containerd_snapshots.pb-c.h"

CdManifest *cd_manifest_free(CdManifest *m) {
        if (!m)
                return NULL;
        free(m->digest);
        free(m->image);
        free(m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                free(m->layers[i]);
        free(m->layers);
        strv_free(m->chain_ids);
        free(m);
        return NULL;
}

static void manifest_freep(CdManifest **m) { cd_manifest_free(*m); }

CdLayer *cd_layer_free(CdLayer *l) {
        if (!l)
                return NULL;
        free(l->digest);
        free(l->source_host);
        free(l->source_repos);
        free(l);
        return NULL;
}

CdLayer *cd_layer_find(CdTracker *t, const char *digest) {
        for (size_t i = 0; i < t->n_layers; i++)
                if (streq(t->layers[i]->digest, digest))
                        return t->layers[i];
        return NULL;
}

CdLayer *cd_layer_get(CdTracker *t, const char *digest) {
        CdLayer *l = cd_layer_find(t, digest), **a;
        if (l)
                return l;
        a = realloc(t->layers, (t->n_layers + 1) * sizeof(*a));
        if (!a)
                return NULL;
        t->layers = a;
        l = calloc(1, sizeof(*l));
        if (!l || !(l->digest = strdup(digest)))
                return cd_layer_free(l);
        l->phase = _PHASE_INVALID;
        return (t->layers[t->n_layers++] = l);
}

void cd_layer_remove(CdTracker *t, CdLayer *l) {
        for (size_t i = 0; i < t->n_layers; i++)
                if (t->layers[i] == l) {
                        memmove(t->layers + i, t->layers + i + 1, (t->n_layers - i - 1) * sizeof(*t->layers));
                        t->n_layers--;
                        cd_layer_free(l);
                        return;
                }
}

static int manifest_layers(Containerd__Services__Content__V1__Info *info, CdManifest *m) {
        size_t n = 0;
        for (size_t i = 0; i < info->n_labels; i++)
                if (startswith(info->labels[i]->key, CD_LABEL_LAYER_PREFIX))
                        n++;
        m->layers = calloc(n + 1, sizeof(char *));
        if (!m->layers)
                return -ENOMEM;
        m->n_layers = n; /* before filling: a bad label set halfway leaves strings cd_manifest_free must see */
        for (size_t i = 0; i < info->n_labels; i++) {
                const char *k = info->labels[i]->key;
                char *end;
                if (!startswith(k, CD_LABEL_LAYER_PREFIX))
                        continue;
                unsigned long idx = strtoul(k + strlen(CD_LABEL_LAYER_PREFIX), &end, 10);
                if (*end || idx >= n || m->layers[idx])
                        return -EBADMSG;
                m->layers[idx] = strdup(info->labels[i]->value);
                if (!m->layers[idx])
                        return -ENOMEM;
        }
        return 0;
}

CdManifest *cd_manifest_add(CdTracker *t, Containerd__Services__Content__V1__Info *info, const char *host,
                              const char *repo) {
        _cleanup_(manifest_freep) CdManifest *m = NULL;
        CdManifest **a;

        for (size_t i = 0; i < t->n_manifests; i++)
                if (streq(t->manifests[i]->digest, info->digest))
                        return t->manifests[i];
        m = calloc(1, sizeof(*m));
        if (!m || !(m->digest = strdup(info->digest)) || manifest_layers(info, m) < 0)
                return NULL;
        if (cd_label_get(info, CD_LABEL_CONFIG) && !(m->config = strdup(cd_label_get(info, CD_LABEL_CONFIG))))
                return NULL;
        if (asprintf(&m->image, "%s/%s@%s", host, repo, info->digest) < 0)
                return NULL;
        a = realloc(t->manifests, (t->n_manifests + 1) * sizeof(*a));
        if (!a)
                return NULL;
        t->manifests = a;
        for (size_t i = 0; i < m->n_layers; i++) {
                CdLayer *l = cd_layer_get(t, m->layers[i]);
                if (l && !l->m) {
                        l->m = m;
                        l->reported = false; /* say it again, now with its image */
                }
        }
        return (t->manifests[t->n_manifests++] = TAKE_PTR(m));
}

bool cd_manifest_lists(Containerd__Services__Content__V1__Info *info, const char *digest) {
        for (size_t i = 0; i < info->n_labels; i++)
                if (startswith(info->labels[i]->key, CD_LABEL_LAYER_PREFIX) && streq(info->labels[i]->value, digest))
                        return true;
        return false;
}

int cd_strv_push(char ***l, size_t *n, char *s) {
        char **a;
        if (!s)
                return -ENOMEM;
        a = realloc(*l, (*n + 2) * sizeof(char *));
        if (!a) {
                free(s);
                return -ENOMEM;
        }
        a[(*n)++] = s;
        a[*n] = NULL;
        *l = a;
        return 0;
}

/* The first layer of m not yet unpacked, when its blob is committed: the one the unpacker works on. */
CdLayer *cd_manifest_frontier(CdTracker *t, CdManifest *m) {
        for (size_t i = 0; i < m->n_layers; i++) {
                CdLayer *l = cd_layer_find(t, m->layers[i]);
                if (!l)
                        return NULL;
                if (!l->done)
                        return l->committed && !l->ingest ? l : NULL;
        }
        return NULL;
}

/* Another layer of l's image has its unpack snapshot open. */
static bool cd_manifest_other_extracting(CdTracker *t, CdLayer *l) {
        for (size_t i = 0; i < l->m->n_layers; i++) {
                CdLayer *o = cd_layer_find(t, l->m->layers[i]);
                if (o && o != l && o->extracting)
                        return true;
        }
        return false;
}

static void report(CdTracker *t, CdLayer *l, Phase p, uint64_t current, uint64_t total, usec_t at) {
        if (l->reported && l->phase == p && l->rep_current == current && l->rep_total == total)
                return;
        if (l->phase != p)
                t->moved = true;
        if (p == PHASE_DOWNLOADING)
                l->dl_reported = MAX(l->dl_reported, current);
        l->reported = true;
        l->phase = p;
        l->rep_current = current;
        l->rep_total = total;
        if (t->cb.layer)
                t->cb.layer(t->userdata, l->m ? l->m->image : NULL, l->digest, p, current, total, at);
}

static void layer_phase(CdTracker *t, CdLayer *l, bool frontier, usec_t at) {
        /* a small blob can come and go between two polls: its bytes still arrived, say so once */
        if (l->committed && l->fresh && !l->ingest && l->size > 0 && l->dl_reported < l->size)
                report(t, l, PHASE_DOWNLOADING, l->size, l->size, at);
        if (l->done)
                report(t, l, PHASE_DONE, l->size, l->size, at);
        else if (l->ingest && t->ingest_before_slot && l->ingest_idle)
                /* 2.x: no byte written in this attempt (at 0, or where the last attempt left it),
                 * maybe behind the node-wide download limit. A connection that hangs before
                 * containerd's first write looks the same: the pull-wide rule (nothing moved for
                 * waiting_max) catches that one. */
                report(t, l, PHASE_WAITING, l->offset, l->size, at);
        else if (l->ingest)
                report(t, l, l->size > 0 && l->offset >= l->size ? PHASE_VERIFYING : PHASE_DOWNLOADING, l->offset,
                       l->size, at);
        else if (l->committed && l->extracting && t->extract_known)
                /* its own unpack snapshot is open: extracting, in order or beside others (2.2) */
                report(t, l, PHASE_EXTRACTING, 0, l->size, at);
        else if (l->committed && frontier && t->extract_known && l->m && l->m->n_chain_ids && t->extract_active &&
                 cd_manifest_other_extracting(t, l))
                /* 2.2: other layers of its image unpack, its own snapshot is not open yet (an unpack slot) */
                report(t, l, PHASE_WAITING, 0, l->size, at);
        else if (l->committed && frontier)
                report(t, l,
                       t->extract_known && t->snapshots_trusted && !t->extract_active ? PHASE_REGISTERING
                                                                                        : PHASE_EXTRACTING,
                       0, l->size, at);
        else if (l->committed || l->m || l->reported)
                report(t, l, PHASE_WAITING, 0, l->size, at);
}

static void drop_manifest(CdTracker *t, CdManifest *m, usec_t at) {
        for (size_t i = 0; i < t->n_layers;) {
                CdLayer *l = t->layers[i];
                if (l->m != m) {
                        i++;
                        continue;
                }
                if (l->reported && t->cb.layer_gone)
                        t->cb.layer_gone(t->userdata, m->image, l->digest, l->done, at);
                cd_layer_remove(t, l);
        }
        for (size_t i = 0; i < t->n_manifests; i++)
                if (t->manifests[i] == m) {
                        memmove(t->manifests + i, t->manifests + i + 1, (t->n_manifests - i - 1) * sizeof(CdManifest *));
                        t->n_manifests--;
                }
        cd_manifest_free(m);
}

void cd_emit(CdTracker *t) {
        usec_t at = cd_now(CLOCK_MONOTONIC);

        for (size_t k = 0; k < t->n_manifests; k++) {
                CdManifest *m = t->manifests[k];
                bool frontier = true, busy = false, all_done = true;
                if (t->source_repo && (m != t->mine || !t->mine_confirmed))
                        continue;
                for (size_t i = 0; i < m->n_layers; i++) {
                        CdLayer *l = cd_layer_find(t, m->layers[i]);
                        if (!l || l->m != m)
                                continue;
                        layer_phase(t, l, frontier, at);
                        busy = busy || l->ingest || (l->committed && !l->done);
                        all_done = all_done && l->done;
                        frontier = frontier && l->done;
                }
                m->idle_rounds = busy ? 0 : m->idle_rounds + 1;
                /* watch mode forgets finished pulls, and cancelled ones once nothing moved for a while */
                if (!t->source_repo && (all_done || m->idle_rounds > 10)) {
                        drop_manifest(t, m, at);
                        k--;
                }
        }
        for (size_t i = 0; i < t->n_layers && !t->source_repo;) {
                CdLayer *l = t->layers[i];
                /* a layer new this round is reported once its image was looked for (next round), so
                 * that its first event already names the image */
                if (l->m || l->searches == 0) {
                        i++;
                        continue;
                }
                layer_phase(t, l, false, at);
                /* an ingest gone without a blob: its pull was cancelled or failed */
                if (!t->source_repo && !l->ingest && !l->committed && ++l->missing_rounds > 2) {
                        if (l->reported && t->cb.layer_gone)
                                t->cb.layer_gone(t->userdata, NULL, l->digest, false, at);
                        cd_layer_remove(t, l);
                        continue;
                }
                if (!t->source_repo && l->done) {
                        if (t->cb.layer_gone)
                                t->cb.layer_gone(t->userdata, NULL, l->digest, true, at);
                        cd_layer_remove(t, l);
                        continue;
                }
                i++;
        }
}

void cd_layers_all_done(CdTracker *t) {
        usec_t at = cd_now(CLOCK_MONOTONIC);
        if (!t->mine)
                return;
        /* a guess that is not the image CRI ended with is no one's to report */
        if (!t->mine_confirmed && t->expect_config && !streq_ptr(t->mine->config, t->expect_config))
                return;
        t->mine_confirmed = true;
        for (size_t i = 0; i < t->mine->n_layers; i++) {
                CdLayer *l = cd_layer_find(t, t->mine->layers[i]);
                if (l) {
                        l->done = true;
                        l->ingest = false;
                        layer_phase(t, l, true, at);
                }
        }
}

/* ---- unpack snapshots named by chain ID (containerd 2.2's parallel unpack) ---- */

const char *cd_snapshot_chain_id(const char *key, const char *label_ref) {
        const char *sp;
        if (!key || !startswith(key, CD_UNPACK_KEY_PREFIX))
                return NULL;
        if (label_ref && startswith(label_ref, "sha256:"))
                return label_ref;
        sp = strrchr(key, ' ');
        return sp && startswith(sp + 1, "sha256:") ? sp + 1 : NULL;
}

int cd_chain_ids(char *const *diff_ids, size_t n, char ***ret) {
        _cleanup_strv_free_ char **c = NULL;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                char *id = NULL;
                if (!diff_ids[i] || !startswith(diff_ids[i], "sha256:"))
                        return -EBADMSG;
                if (i == 0)
                        id = strdup(diff_ids[0]);
                else {
                        _cleanup_free_ char *s = NULL;
                        int r = asprintf(&s, "%s %s", c[i - 1], diff_ids[i]);
                        if (r < 0)
                                return -ENOMEM;
                        r = registry_sha256_digest(s, (size_t) r, &id);
                        if (r < 0)
                                return r;
                }
                if (cd_strv_push(&c, &k, id) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int cd_manifest_set_config(CdManifest *m, const char *json, size_t len) {
        _cleanup_strv_free_ char **diffs = NULL, **chains = NULL;
        json_t *root, *ids;
        size_t n = 0;
        int r = 0;

        m->config_read = true;
        root = json_loadb(json, len, 0, NULL);
        ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
        if (!json_is_array(ids) || json_array_size(ids) != m->n_layers)
                r = -EBADMSG; /* not an image config, or not this manifest's */
        for (size_t i = 0; r == 0 && i < json_array_size(ids); i++) {
                const char *d = json_string_value(json_array_get(ids, i));
                if (!d)
                        r = -EBADMSG;
                else if (cd_strv_push(&diffs, &n, strdup(d)) < 0)
                        r = -ENOMEM;
        }
        json_decref(root);
        if (r < 0)
                return r;
        r = cd_chain_ids(diffs, n, &chains);
        if (r < 0)
                return r;
        strv_free(m->chain_ids);
        m->chain_ids = TAKE_PTR(chains);
        m->n_chain_ids = n;
        return 0;
}

size_t cd_snapshots_match(CdTracker *t, char *const *keys, char *const *refs, size_t n) {
        size_t matched = 0;

        for (size_t i = 0; i < t->n_layers; i++)
                t->layers[i]->extracting = false;
        for (size_t s = 0; s < n; s++) {
                const char *chain = cd_snapshot_chain_id(keys[s], refs[s]);
                if (!chain)
                        continue;
                for (size_t k = 0; k < t->n_manifests; k++) {
                        CdManifest *m = t->manifests[k];
                        for (size_t i = 0; i < m->n_chain_ids && i < m->n_layers; i++) {
                                CdLayer *l;
                                if (!streq(m->chain_ids[i], chain) || !(l = cd_layer_find(t, m->layers[i])))
                                        continue;
                                l->extracting = true;
                                matched++;
                        }
                }
        }
        return matched;
}

void cd_snapshots_reply(CdTracker *t, CdSnapshotsReply *const *replies, size_t n_replies) {
        char *keys[64], *refs[64];
        size_t n = 0;

        t->extract_active = false;
        for (size_t k = 0; k < n_replies; k++)
                for (size_t i = 0; i < replies[k]->n_info; i++) {
                        Containerd__Services__Snapshots__V1__Info *info = replies[k]->info[i];
                        if (!info->name || !startswith(info->name, CD_UNPACK_KEY_PREFIX) || !info->created_at ||
                            (usec_t) MAX(info->created_at->seconds, 0) * USEC_PER_SEC + USEC_PER_SEC < t->since)
                                continue;
                        t->extract_active = true;
                        if (n == ELEMENTSOF(keys))
                                continue;
                        keys[n] = info->name;
                        refs[n] = NULL;
                        for (size_t q = 0; q < info->n_labels; q++)
                                if (streq(info->labels[q]->key, CD_LABEL_SNAPSHOT_REF))
                                        refs[n] = info->labels[q]->value;
                        n++;
                }
        (void) cd_snapshots_match(t, keys, refs, n);
}

bool cd_created_since(CdTracker *t, Containerd__Services__Content__V1__Info *info) {
        return cd_info_created(info) + (int64_t) (50 * USEC_PER_MSEC) >= (int64_t) t->since;
}

bool cd_layer_content(CdTracker *t, Containerd__Services__Content__V1__Info *info) {
        CdLayer *l = cd_layer_find(t, info->digest);

        if (!l)
                return false;
        l->committed = true;
        l->missing_rounds = 0;
        if (cd_created_since(t, info))
                l->fresh = true;
        if (info->size > 0)
                l->size = (uint64_t) info->size;
        if (cd_label_get(info, CD_LABEL_UNCOMPRESSED) && !l->done) {
                l->done = true;
                t->moved = true;
        }
        for (size_t q = 0; q < info->n_labels && !l->source_host; q++) {
                const char *key = info->labels[q]->key;
                if (!startswith(key, CD_LABEL_SOURCE_PREFIX))
                        continue;
                l->source_host = strdup(key + strlen(CD_LABEL_SOURCE_PREFIX));
                l->source_repos = strdup(info->labels[q]->value);
        }
        if (t->source_repo && !l->leased_content)
                return l->leased_content = true; /* its caller hands it to cb.resource */
        return false;
}

static int newest_first(const void *a, const void *b) {
        int64_t x = cd_info_created(*(Containerd__Services__Content__V1__Info *const *) a),
                y = cd_info_created(*(Containerd__Services__Content__V1__Info *const *) b);
        return x > y ? -1 : x < y;
}

/* Watch mode: each layer not yet placed goes to the newest manifest listing it (the pull in flight
 * fetched its manifest last; an older image may share the layer). The manifest's own source label
 * names the image while the layer still downloads (a layer's blob is labelled only once committed). */
void cd_attribute(CdTracker *t, Containerd__Services__Content__V1__Info **infos, size_t n) {
        if (n > 1)
                qsort(infos, n, sizeof(*infos), newest_first);
        for (size_t i = 0; i < n; i++) {
                Containerd__Services__Content__V1__Info *info = infos[i];
                const char *src = NULL, *src_host = NULL;
                for (size_t q = 0; q < info->n_labels; q++)
                        if (startswith(info->labels[q]->key, CD_LABEL_SOURCE_PREFIX)) {
                                src = info->labels[q]->value;
                                src_host = info->labels[q]->key + strlen(CD_LABEL_SOURCE_PREFIX);
                        }
                for (size_t j = 0; j < t->n_layers; j++) {
                        CdLayer *l = t->layers[j];
                        if (l->m || !(l->source_host ?: src_host) || !cd_manifest_lists(info, l->digest))
                                continue;
                        _cleanup_free_ char *repo = src ? strndup(src, strcspn(src, ",")) : NULL;
                        cd_manifest_add(t, info, l->source_host ?: src_host, repo ?: "?");
                }
        }
}
