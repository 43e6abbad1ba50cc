/* Unit tests: which layer an unpack snapshot belongs to, by its name (containerd_layers.c), so that
 * containerd 2.2's parallel unpack (max_concurrent_unpacks: several "extract-" snapshots at once, each
 * prepared without a parent until its commit) shows the layers that really extract.
 *
 * The replies are built in the shapes containerd sends, packed and unpacked through protobuf-c: the
 * chain IDs, the committed snapshot names and the extract snapshot's key and label were captured from
 * containerd 2.1.9 on the bed (unstable row: `ctr snapshots ls/info` while the unpigz wrapper slowed an
 * unpack); 2.2 is not in Debian, so its parallel shape follows core/unpack/unpacker.go of v2.2.0
 * (key fmt.Sprintf(snapshots.UnpackKeyFormat, uniquePart(), chainID), label containerd.io/snapshot.ref
 * = chainID, parent "" when parallel, the parent given only at Commit). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "probes/containerd/containerd_model.h"
#include "containerd_snapshots.pb-c.h"

/* captured from containerd 2.1.9: image t/slow2 (two layers), its config's rootfs.diff_ids and the
 * committed snapshots' names (`ctr snapshots ls`: chain IDs) */
#define DIFF0  "sha256:b647400ed936631c6d66a2acc5b0f4a2dcaf86b690342053c46f2c6c9249043c"
#define DIFF1  "sha256:ed8297c0499b09add77f6daf8a790a6b7f41301e750d5dbabb77cc5198bcb2fb"
#define CHAIN1 "sha256:acdcb5093217bf168a01f897e3bb5fbdbc1113d3651c72b0b55d04542f359774"
/* a third layer for the parallel cases: sha256("layer two"), its chain ID computed as identity.ChainIDs does */
#define DIFF2  "sha256:77c7ed05b2e49df2e55d70cb007508cc66b2f5419a940bfd6f8749ba7db77c45"
#define CHAIN2 "sha256:b2ab40951fed9f9b109faef772cf0036ff8ff9735ac4001ff76d8ad395d2eeec"
/* an extract snapshot as 2.1.9 showed it (`ctr snapshots info`) */
#define KEY_CAPTURED "extract-613909505-4YQc sha256:951a7f2c7542914822723ea1bbd4b7a36ecb97957cc7fc3abc54f87b58ed8e04"

#define L0 "sha256:1cf715c5f043c568d13710c8f9644db47901c639a2e50675dc8f27f5f56a3bde"
#define L1 "sha256:f9f157b412dd40e759c2380275f6a7e312559098f7fc27c01c44a988bf839c64"
#define L2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_chain_ids(void **state) {
        char *diffs[] = { (char *) DIFF0, (char *) DIFF1, (char *) DIFF2 };
        char **c = NULL;

        assert_int_equal(cd_chain_ids(diffs, 3, &c), 0);
        assert_string_equal(c[0], DIFF0); /* the bottom layer's chain ID is its diff ID */
        assert_string_equal(c[1], CHAIN1);
        assert_string_equal(c[2], CHAIN2);
        assert_null(c[3]);
        strv_free(c);
        diffs[1] = (char *) "md5:nope";
        assert_int_equal(cd_chain_ids(diffs, 3, &c), -EBADMSG);
}

static void test_snapshot_chain_id(void **state) {
        const char *chain = KEY_CAPTURED + strlen("extract-613909505-4YQc ");
        /* the label first, the key's tail without it (snapshotters may drop labels), nothing else */
        assert_string_equal(cd_snapshot_chain_id(KEY_CAPTURED, chain), chain);
        assert_string_equal(cd_snapshot_chain_id(KEY_CAPTURED, NULL), chain);
        assert_string_equal(cd_snapshot_chain_id("extract-1-AAAA " CHAIN1, CHAIN2), CHAIN2);
        assert_string_equal(cd_snapshot_chain_id("extract-1-AAAA " CHAIN1, "not a digest"), CHAIN1);
        assert_null(cd_snapshot_chain_id(CHAIN1, CHAIN1));                 /* committed: not an unpack */
        assert_null(cd_snapshot_chain_id("k8s.io/12/abc", NULL));          /* a container's rootfs */
        assert_null(cd_snapshot_chain_id("extract-1-AAAA", NULL));
        assert_null(cd_snapshot_chain_id(NULL, CHAIN1));
}

/* ---- a tracker in watch mode holding one three-layer image, fed snapshot replies ---- */

typedef struct Seen {
        Phase phase[3];
} Seen;

static void on_layer(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                     uint64_t total, usec_t at) {
        Seen *s = userdata;
        const char *ids[] = { L0, L1, L2 };
        for (int i = 0; i < 3; i++)
                if (streq(layer, ids[i]))
                        s->phase[i] = phase;
}

static void tracker_init(CdTracker *t, Seen *seen, bool with_config) {
        Containerd__Services__Content__V1__LabelEntry lb[4] = {
                CONTAINERD__SERVICES__CONTENT__V1__LABEL_ENTRY__INIT, CONTAINERD__SERVICES__CONTENT__V1__LABEL_ENTRY__INIT,
                CONTAINERD__SERVICES__CONTENT__V1__LABEL_ENTRY__INIT, CONTAINERD__SERVICES__CONTENT__V1__LABEL_ENTRY__INIT,
        };
        Containerd__Services__Content__V1__LabelEntry *lp[4] = { &lb[0], &lb[1], &lb[2], &lb[3] };
        Containerd__Services__Content__V1__Info info = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
        static const char config[] = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                                     "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DIFF0 "\",\"" DIFF1 "\",\"" DIFF2 "\"]}}";
        CdManifest *m;

        *t = (CdTracker) { .cb = { .layer = on_layer }, .userdata = seen, .since = 1000 * USEC_PER_SEC };
        *seen = (Seen) { { _PHASE_INVALID, _PHASE_INVALID, _PHASE_INVALID } };
        lb[0].key = (char *) CD_LABEL_CONFIG, lb[0].value = (char *) "sha256:c0ffee";
        lb[1].key = (char *) CD_LABEL_LAYER_PREFIX "0", lb[1].value = (char *) L0;
        lb[2].key = (char *) CD_LABEL_LAYER_PREFIX "1", lb[2].value = (char *) L1;
        lb[3].key = (char *) CD_LABEL_LAYER_PREFIX "2", lb[3].value = (char *) L2;
        info.digest = (char *) "sha256:manifest";
        info.n_labels = 4;
        info.labels = lp;
        m = cd_manifest_add(t, &info, "127.0.0.1", "t/x");
        assert_non_null(m);
        assert_int_equal(m->n_layers, 3);
        for (int i = 0; i < 3; i++) {
                CdLayer *l = cd_layer_get(t, m->layers[i]);
                assert_non_null(l);
                l->m = m;
                l->size = 1 << 20;
        }
        if (with_config)
                assert_int_equal(cd_manifest_set_config(m, config, strlen(config)), 0);
        t->extract_known = t->snapshots_trusted = true;
}

static void tracker_done(CdTracker *t) {
        for (size_t i = 0; i < t->n_layers; i++)
                cd_layer_free(t->layers[i]);
        free(t->layers);
        for (size_t i = 0; i < t->n_manifests; i++)
                cd_manifest_free(t->manifests[i]);
        free(t->manifests);
}

static void layer_state(CdTracker *t, const char *digest, bool ingest, bool committed, bool done) {
        CdLayer *l = cd_layer_find(t, digest);
        l->ingest = ingest;
        l->offset = ingest ? 4096 : 0;
        l->committed = committed;
        l->done = done;
}

typedef struct Snap {
        const char *key, *parent, *ref; /* ref NULL: no label */
        int64_t created;
} Snap;

/* A Snapshots.List reply with these active snapshots, over the wire and back, into the tracker. */
static void feed(CdTracker *t, const Snap *snaps, size_t n) {
        Containerd__Services__Snapshots__V1__Info infos[8], *ip[8];
        Containerd__Services__Snapshots__V1__Timestamp ts[8];
        Containerd__Services__Snapshots__V1__LabelEntry lb[8], *lp[8];
        Containerd__Services__Snapshots__V1__ListSnapshotsResponse resp =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT, *back;
        uint8_t buf[4096];
        size_t len;

        for (size_t i = 0; i < n; i++) {
                infos[i] = (Containerd__Services__Snapshots__V1__Info) CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
                ts[i] = (Containerd__Services__Snapshots__V1__Timestamp) CONTAINERD__SERVICES__SNAPSHOTS__V1__TIMESTAMP__INIT;
                lb[i] = (Containerd__Services__Snapshots__V1__LabelEntry) CONTAINERD__SERVICES__SNAPSHOTS__V1__LABEL_ENTRY__INIT;
                infos[i].name = (char *) snaps[i].key;
                infos[i].parent = (char *) (snaps[i].parent ?: "");
                infos[i].kind = CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE;
                ts[i].seconds = snaps[i].created ?: 2000;
                infos[i].created_at = &ts[i];
                if (snaps[i].ref) {
                        lb[i].key = (char *) CD_LABEL_SNAPSHOT_REF;
                        lb[i].value = (char *) snaps[i].ref;
                        lp[i] = &lb[i];
                        infos[i].n_labels = 1;
                        infos[i].labels = &lp[i];
                }
                ip[i] = &infos[i];
        }
        resp.n_info = n;
        resp.info = ip;
        len = protobuf_c_message_get_packed_size(&resp.base);
        assert_true(len <= sizeof(buf));
        assert_int_equal(protobuf_c_message_pack(&resp.base, buf), len);
        back = containerd__services__snapshots__v1__list_snapshots_response__unpack(NULL, len, buf);
        assert_non_null(back);
        cd_snapshots_reply(t, &back, 1);
        protobuf_c_message_free_unpacked(&back->base, NULL);
}

/* 2.2, parallel: the bottom layer still downloads while the two above it unpack, each in a snapshot
 * with no parent. Both are extracting; walking the order (or the parent chain) would say waiting. */
static void test_parallel_above_a_download(void **state) {
        CdTracker t;
        Seen s;
        const Snap snaps[] = {
                { "extract-104857600-q1Zs " CHAIN1, NULL, CHAIN1, 0 },
                { "extract-104899211-Xw8_ " CHAIN2, NULL, CHAIN2, 0 },
        };

        tracker_init(&t, &s, true);
        layer_state(&t, L0, true, false, false);
        layer_state(&t, L1, false, true, false);
        layer_state(&t, L2, false, true, false);
        feed(&t, snaps, 2);
        assert_true(t.extract_active);
        cd_emit(&t);
        assert_int_equal(s.phase[0], PHASE_DOWNLOADING);
        assert_int_equal(s.phase[1], PHASE_EXTRACTING);
        assert_int_equal(s.phase[2], PHASE_EXTRACTING);
        tracker_done(&t);
}

/* 2.2, parallel, by key alone (no label): the top layer unpacks, the middle one (first not done) has
 * no snapshot yet, waiting for an unpack slot. In-order inference had them the other way round. */
static void test_parallel_out_of_order(void **state) {
        CdTracker t;
        Seen s;
        const Snap snaps[] = { { "extract-5-AbCd " CHAIN2, NULL, NULL, 0 } };

        tracker_init(&t, &s, true);
        layer_state(&t, L0, false, true, true);
        layer_state(&t, L1, false, true, false);
        layer_state(&t, L2, false, true, false);
        feed(&t, snaps, 1);
        cd_emit(&t);
        assert_int_equal(s.phase[0], PHASE_DONE);
        assert_int_equal(s.phase[1], PHASE_WAITING);
        assert_int_equal(s.phase[2], PHASE_EXTRACTING);
        tracker_done(&t);
}

/* 1.6 to 2.1 (and 2.2 by default): in order, the extract snapshot on its parent, as captured. */
static void test_sequential(void **state) {
        CdTracker t;
        Seen s;
        const Snap snaps[] = { { "extract-613909505-4YQc " CHAIN1, DIFF0, CHAIN1, 0 } };

        tracker_init(&t, &s, true);
        layer_state(&t, L0, false, true, true);
        layer_state(&t, L1, false, true, false);
        layer_state(&t, L2, false, true, false);
        feed(&t, snaps, 1);
        cd_emit(&t);
        assert_int_equal(s.phase[1], PHASE_EXTRACTING);
        assert_int_equal(s.phase[2], PHASE_WAITING);
        tracker_done(&t);
}

/* Config not read (yet, or unreadable): the in-order inference, as before. A snapshot left by a pull
 * killed before the tracker started names no layer and opens nothing. */
static void test_without_config_and_stale(void **state) {
        CdTracker t;
        Seen s;
        const Snap fresh[] = { { "extract-5-AbCd " CHAIN2, NULL, CHAIN2, 0 } };
        const Snap stale[] = { { "extract-5-AbCd " CHAIN2, NULL, CHAIN2, 10 } };

        tracker_init(&t, &s, false);
        layer_state(&t, L0, false, true, true);
        layer_state(&t, L1, false, true, false);
        layer_state(&t, L2, false, true, false);
        feed(&t, fresh, 1);
        cd_emit(&t);
        assert_int_equal(s.phase[1], PHASE_EXTRACTING); /* the first not done, by order */
        assert_int_equal(s.phase[2], PHASE_WAITING);
        tracker_done(&t);

        tracker_init(&t, &s, true);
        layer_state(&t, L0, false, true, true);
        layer_state(&t, L1, false, true, false);
        layer_state(&t, L2, false, true, false);
        feed(&t, stale, 1);
        assert_false(t.extract_active);
        assert_false(cd_layer_find(&t, L2)->extracting);
        cd_emit(&t);
        assert_int_equal(s.phase[1], PHASE_REGISTERING); /* nothing unpacks: the snapshotter is trusted */
        assert_int_equal(s.phase[2], PHASE_WAITING);
        tracker_done(&t);
}

static void test_config_errors(void **state) {
        CdTracker t;
        Seen s;
        static const char two[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DIFF0 "\",\"" DIFF1 "\"]}}";

        tracker_init(&t, &s, false);
        assert_int_equal(cd_manifest_set_config(t.manifests[0], two, strlen(two)), -EBADMSG); /* not its config */
        assert_int_equal(cd_manifest_set_config(t.manifests[0], "{not json", 9), -EBADMSG);
        assert_int_equal(cd_manifest_set_config(t.manifests[0], "{\"rootfs\":{\"diff_ids\":[1,2,3]}}", 31), -EBADMSG);
        assert_null(t.manifests[0]->chain_ids);
        assert_true(t.manifests[0]->config_read);
        tracker_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chain_ids),
                cmocka_unit_test(test_snapshot_chain_id),
                cmocka_unit_test(test_parallel_above_a_download),
                cmocka_unit_test(test_parallel_out_of_order),
                cmocka_unit_test(test_sequential),
                cmocka_unit_test(test_without_config_and_stale),
                cmocka_unit_test(test_config_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
