/* fuzz_grpc_frames: gRPC length-prefixed frames as containerd sends them, split at input-chosen points,
 * each frame unpacked as one of the reply types pullwatch reads, and the containerd tracker's helpers
 * run on what came out. Input: byte 0 picks the reply type, byte 1 seeds the split points, the rest
 * is the HTTP/2 DATA payload. Split points must not matter. Also grpc-message percent-decoding. */
#include "tests/fuzz/fuzz_util.h"
#include "probes/transport/grpc.h"
#include "probes/containerd/containerd_model.h"
#include "containerd_content.pb-c.h"
#include "containerd_leases.pb-c.h"
#include "containerd_snapshots.pb-c.h"
#include "containerd_version.pb-c.h"
#include "cri_api.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
        &runtime__v1__pull_image_response__descriptor,
        &runtime__v1__image_status_response__descriptor,
        &containerd__services__content__v1__list_statuses_response__descriptor,
        &containerd__services__content__v1__list_content_response__descriptor,
        &containerd__services__content__v1__info_response__descriptor,
        &containerd__services__snapshots__v1__list_snapshots_response__descriptor,
        &containerd__services__leases__v1__create_response__descriptor,
        &containerd__services__leases__v1__list_response__descriptor,
        &containerd__services__leases__v1__list_resources_response__descriptor,
        &containerd__services__version__v1__version_response__descriptor,
};

typedef struct Frames {
        const ProtobufCMessageDescriptor *type;
        CdTracker tracker;      /* watch mode, no loop: only the model helpers run on it */
        size_t n, bytes, unpacked;
        uint64_t hash;
} Frames;

static void look_at_info(Frames *f, Containerd__Services__Content__V1__Info *info) {
        const char *kind_end, *digest;

        if (!info)
                return;
        f->hash += (uint64_t) cd_info_created(info);
        for (size_t i = 0; i < info->n_labels; i++)
                if (cd_ref_split(info->labels[i]->value, &kind_end, &digest))
                        f->hash += cd_manifest_lists(info, digest);
        if (cd_label_get(info, CD_LABEL_CONFIG) && cd_manifest_add(&f->tracker, info, "127.0.0.1", "fuzz/x")) {
                CdLayer *l;
                for (size_t i = 0; i < f->tracker.n_manifests; i++)
                        (void) cd_manifest_frontier(&f->tracker, f->tracker.manifests[i]);
                if (cd_label_get(info, CD_LABEL_UNCOMPRESSED) && (l = cd_layer_find(&f->tracker, info->digest)))
                        l->committed = l->done = true;
        } else if ((digest = info->digest) && *digest) {
                CdLayer *l = cd_layer_get(&f->tracker, digest);
                if (l) {
                        l->committed = true;
                        l->size = (uint64_t) MAX(info->size, 0);
                        l->done = cd_label_get(info, CD_LABEL_UNCOMPRESSED) != NULL;
                }
        }
}

static void look_at(Frames *f, ProtobufCMessage *m) {
        const ProtobufCMessageDescriptor *d = m->descriptor;

        if (d == &containerd__services__content__v1__list_statuses_response__descriptor) {
                Containerd__Services__Content__V1__ListStatusesResponse *s = (void *) m;
                for (size_t i = 0; i < s->n_statuses; i++) {
                        const char *ref = s->statuses[i]->ref, *kind_end, *digest;
                        CdLayer *l;
                        if (!ref || !cd_ref_split(ref, &kind_end, &digest))
                                continue;
                        FUZZ_CHECK(digest >= ref && digest <= ref + strlen(ref) && kind_end <= ref + strlen(ref));
                        if (!startswith(ref, "layer-") || !(l = cd_layer_get(&f->tracker, digest)))
                                continue;
                        l->ingest = l->ingest_seen = true;
                        l->offset = (uint64_t) MAX(s->statuses[i]->offset, 0);
                        if (s->statuses[i]->total > 0)
                                l->size = (uint64_t) s->statuses[i]->total;
                }
        } else if (d == &containerd__services__content__v1__list_content_response__descriptor) {
                Containerd__Services__Content__V1__ListContentResponse *r = (void *) m;
                for (size_t i = 0; i < r->n_info; i++)
                        look_at_info(f, r->info[i]);
        } else if (d == &containerd__services__content__v1__info_response__descriptor)
                look_at_info(f, ((Containerd__Services__Content__V1__InfoResponse *) m)->info);
        cd_emit(&f->tracker);

        /* what was unpacked packs again */
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n + 1);
        FUZZ_CHECK(buf && protobuf_c_message_pack(m, buf) == n);
        free(buf);
}

static int on_frame(const uint8_t *data, size_t len, void *userdata) {
        Frames *f = userdata;
        ProtobufCMessage *m;

        FUZZ_CHECK(data != NULL);
        f->n++;
        f->bytes += len;
        f->hash = f->hash * 31 + len;
        for (size_t i = 0; i < len; i++)
                f->hash = f->hash * 131 + data[i];
        m = protobuf_c_message_unpack(f->type, NULL, len, data);
        if (!m)
                return 0;
        f->unpacked++;
        look_at(f, m);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

static void tracker_done(CdTracker *t) {
        for (size_t i = 0; i < t->n_layers; i++)
                cd_layer_free(t->layers[i]);
        free(t->layers);
        for (size_t i = 0; i < t->n_manifests; i++)
                cd_manifest_free(t->manifests[i]);
        free(t->manifests);
}

static int decode(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *type, FuzzRng *rng,
                  Frames *f) {
        GrpcDecoder d;
        int r = 0;

        *f = (Frames) { .type = type };
        grpc_decoder_init(&d, 1U << 20);
        for (size_t off = 0; off < size;) {
                size_t c = rng ? fuzz_chunk(rng) : size, k = MIN(c, size - off); /* MIN evaluates twice */
                r = grpc_decoder_feed(&d, data + off, k, on_frame, f);
                if (r < 0)
                        break;
                off += k;
        }
        if (r >= 0)
                r = grpc_decoder_finish(&d);
        else
                FUZZ_CHECK(grpc_decoder_feed(&d, "\0\0\0\0\0", 5, on_frame, f) == r); /* sticky */
        grpc_decoder_done(&d);
        tracker_done(&f->tracker);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Frames whole, split;
        FuzzRng rng;
        int rw, rs;

        if (size < 2)
                return 0;
        const ProtobufCMessageDescriptor *type = types[data[0] % ELEMENTSOF(types)];
        rng = (FuzzRng) { .s = 0x9e3779b97f4a7c15ULL * (data[1] + 1U) };
        rw = decode(data + 2, size - 2, type, NULL, &whole);
        rs = decode(data + 2, size - 2, type, &rng, &split);
        FUZZ_CHECK(rw == rs);
        FUZZ_CHECK(whole.n == split.n && whole.bytes == split.bytes && whole.unpacked == split.unpacked);
        FUZZ_CHECK(whole.hash == split.hash);

        /* the trailers' grpc-message: any bytes, decoded no longer than they came */
        char *m = grpc_percent_decode((const char *) data + 2, size - 2);
        FUZZ_CHECK(m && strlen(m) <= size - 2);
        free(m);
        char *s = fuzz_strndup(data + 2, size - 2);
        GrpcStatus st = grpc_status_from_string(s);
        FUZZ_CHECK(st == _GRPC_STATUS_INVALID || grpc_status_to_string(st));
        free(s);
        return 0;
}
