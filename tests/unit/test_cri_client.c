/* test_cri_client: the CRI client's method table, requests encoded as CRI expects them (packed and read
 * back with the request types), replies read into CriReply (typed message, gRPC status or transport
 * error as ErrorDetail, raw bytes for forwarding), the readers of ImageStatus, Status and ImageFsInfo,
 * and calls to a socket that is not there, synchronous and on an event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "probes/cri/cri_client.h"

static void test_methods(void **state) {
        assert_string_equal(cri_method_name(CRI_PULL_IMAGE), "PullImage");
        assert_string_equal(cri_method_path(CRI_PULL_IMAGE), "/runtime.v1.ImageService/PullImage");
        assert_string_equal(cri_method_path(CRI_STATUS), "/runtime.v1.RuntimeService/Status");
        assert_string_equal(cri_method_path(CRI_VERSION), "/runtime.v1.RuntimeService/Version");
        for (int m = 0; m < _CRI_METHOD_MAX; m++) {
                assert_int_equal(cri_method_from_path(cri_method_path(m)), m);
                assert_non_null(cri_method_request_type(m));
                assert_non_null(cri_method_reply_type(m));
        }
        assert_int_equal(cri_method_from_path("/runtime.v1.ImageService/Nope"), _CRI_METHOD_INVALID);
        assert_int_equal(cri_method_from_path(NULL), _CRI_METHOD_INVALID);
        assert_null(cri_method_name(_CRI_METHOD_MAX));
        assert_null(cri_method_path(_CRI_METHOD_INVALID));
}

/* Pack a request as the transport would and read it back as the runtime would. */
static ProtobufCMessage *roundtrip(const CriRequest *r) {
        size_t n = protobuf_c_message_get_packed_size(&r->base);
        uint8_t *buf = malloc(n + 1);
        ProtobufCMessage *m;

        assert_non_null(buf);
        assert_int_equal(r->base.descriptor, cri_method_request_type(r->method));
        assert_int_equal(protobuf_c_message_pack(&r->base, buf), n);
        m = protobuf_c_message_unpack(cri_method_request_type(r->method), NULL, n, buf);
        free(buf);
        assert_non_null(m);
        return m;
}

static void test_requests(void **state) {
        CriRequest r;
        ProtobufCMessage *m;

        cri_request_pull_image(&r, "docker.io/library/busybox:latest",
                               &(CriAuth) { .username = "u", .password = "p", .identity_token = NULL });
        m = roundtrip(&r);
        Runtime__V1__PullImageRequest *p = (void *) m;
        assert_string_equal(p->image->image, "docker.io/library/busybox:latest");
        assert_non_null(p->auth);
        assert_string_equal(p->auth->username, "u");
        assert_string_equal(p->auth->password, "p");
        /* empty, never absent: CRI compares server_address with the host it dials */
        assert_string_equal(p->auth->server_address, "");
        assert_string_equal(p->auth->identity_token, "");
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_pull_image(&r, "busybox", NULL);
        m = roundtrip(&r);
        assert_null(((Runtime__V1__PullImageRequest *) m)->auth);
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_list_images(&r, NULL);
        m = roundtrip(&r);
        assert_null(((Runtime__V1__ListImagesRequest *) m)->filter);
        protobuf_c_message_free_unpacked(m, NULL);
        cri_request_list_images(&r, "busybox");
        m = roundtrip(&r);
        assert_string_equal(((Runtime__V1__ListImagesRequest *) m)->filter->image->image, "busybox");
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_image_status(&r, "busybox", true);
        m = roundtrip(&r);
        assert_string_equal(((Runtime__V1__ImageStatusRequest *) m)->image->image, "busybox");
        assert_true(((Runtime__V1__ImageStatusRequest *) m)->verbose);
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_remove_image(&r, "sha256:abc");
        m = roundtrip(&r);
        assert_string_equal(((Runtime__V1__RemoveImageRequest *) m)->image->image, "sha256:abc");
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_status(&r, true);
        m = roundtrip(&r);
        assert_true(((Runtime__V1__StatusRequest *) m)->verbose);
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_version(&r);
        m = roundtrip(&r);
        assert_string_equal(((Runtime__V1__VersionRequest *) m)->version, "v1");
        protobuf_c_message_free_unpacked(m, NULL);

        cri_request_image_fs_info(&r);
        protobuf_c_message_free_unpacked(roundtrip(&r), NULL);
}

static ProtobufCMessage *one(const ProtobufCMessage *m) {
        /* a decoded copy owned by the reply, as the transport hands it over */
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t buf[512];
        assert_true(n <= sizeof(buf));
        assert_int_equal(protobuf_c_message_pack(m, buf), n);
        return protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
}

static GrpcReply ok_reply(const ProtobufCMessage *m) {
        GrpcReply g = { .status = GRPC_OK, .n_messages = 1 };
        g.messages = calloc(1, sizeof(*g.messages));
        assert_non_null(g.messages);
        g.messages[0] = one(m);
        assert_non_null(g.messages[0]);
        return g;
}

static char *text(const CriReply *r) {
        char *s = error_detail_format(&r->detail);
        assert_non_null(s);
        return s;
}

static void test_reply_ok(void **state) {
        Runtime__V1__PullImageResponse pr = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
        GrpcReply g;
        CriReply r;

        pr.image_ref = (char *) "sha256:cfg";
        g = ok_reply(&pr.base);
        assert_int_equal(cri_reply_read(CRI_PULL_IMAGE, &g, &r), 0);
        assert_int_equal(r.error, 0);
        assert_non_null(cri_reply_pull_image(&r));
        assert_string_equal(cri_reply_pull_image(&r)->image_ref, "sha256:cfg");
        /* typed for its own method only */
        assert_null(cri_reply_image_status(&r));
        assert_null(cri_reply_version(&r));
        cri_reply_done(&r);
        grpc_reply_done(&g);

        /* a message of another type than the method answers is refused */
        g = ok_reply(&pr.base);
        assert_int_equal(cri_reply_read(CRI_IMAGE_STATUS, &g, &r), -EINVAL);
        grpc_reply_done(&g);

        /* forwarded: the packed reply as it came */
        g = (GrpcReply) { .status = GRPC_OK, .raw = malloc(3), .raw_len = 3 };
        assert_non_null(g.raw);
        memcpy(g.raw, "\x0a\x01x", 3);
        assert_int_equal(cri_reply_read(CRI_LIST_IMAGES, &g, &r), 0);
        assert_int_equal(r.error, 0);
        assert_null(r.message);
        assert_int_equal(r.raw_len, 3);
        assert_memory_equal(r.raw, "\x0a\x01x", 3);
        assert_null(cri_reply_list_images(&r));
        cri_reply_done(&r);
        grpc_reply_done(&g);
}

static void test_reply_errors(void **state) {
        GrpcReply g = { .status = GRPC_NOT_FOUND, .message = strdup("failed to resolve reference: not found") };
        CriReply r;
        char *s;

        assert_int_equal(cri_reply_read(CRI_PULL_IMAGE, &g, &r), 0);
        assert_int_equal(r.error, -ENOENT);
        assert_int_equal(r.transport_error, 0);
        assert_int_equal(r.status, GRPC_NOT_FOUND);
        assert_string_equal(r.grpc_message, "failed to resolve reference: not found");
        assert_string_equal(r.detail.code, "NotFound");
        s = text(&r);
        assert_string_equal(s, "PullImage: NotFound: failed to resolve reference: not found");
        free(s);
        assert_null(cri_reply_pull_image(&r));
        cri_reply_done(&r);
        grpc_reply_done(&g);

        g = (GrpcReply) { .status = GRPC_UNIMPLEMENTED };
        assert_int_equal(cri_reply_read(CRI_IMAGE_FS_INFO, &g, &r), 0);
        assert_int_equal(r.error, -EPROTO);
        s = text(&r);
        assert_string_equal(s, "ImageFsInfo: Unimplemented");
        free(s);
        cri_reply_done(&r);

        g = (GrpcReply) { .error = -ECONNREFUSED, .message = strdup("/run/c.sock: connection refused") };
        assert_int_equal(cri_reply_read(CRI_STATUS, &g, &r), 0);
        assert_int_equal(r.error, -ECONNREFUSED);
        assert_int_equal(r.transport_error, -ECONNREFUSED);
        s = text(&r);
        assert_string_equal(s, "/run/c.sock: connection refused");
        free(s);
        /* wrapped on the way up: the method in front, as the pull reports a transport failure */
        assert_int_equal(error_detail_wrap(&r.detail, r.error, "%s", cri_method_name(r.method)), -ECONNREFUSED);
        s = text(&r);
        assert_string_equal(s, "Status: /run/c.sock: connection refused");
        free(s);
        cri_reply_done(&r);
        grpc_reply_done(&g);
}

static void test_readers(void **state) {
        Runtime__V1__Image img = RUNTIME__V1__IMAGE__INIT;
        Runtime__V1__ImageStatusResponse st = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
        Runtime__V1__StringMapEntry e1 = RUNTIME__V1__STRING_MAP_ENTRY__INIT, e2 = RUNTIME__V1__STRING_MAP_ENTRY__INIT;
        Runtime__V1__StringMapEntry *info[] = { &e1, &e2 };
        Runtime__V1__StatusResponse s = RUNTIME__V1__STATUS_RESPONSE__INIT;
        Runtime__V1__FilesystemIdentifier id = RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
        Runtime__V1__FilesystemUsage u = RUNTIME__V1__FILESYSTEM_USAGE__INIT;
        Runtime__V1__FilesystemUsage *us[] = { &u };
        Runtime__V1__ImageFsInfoResponse fs = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
        char *digests[] = { (char *) "docker.io/library/busybox@sha256:man" };
        const Runtime__V1__Image *got = NULL;
        const char *mp = NULL;
        ErrorDetail e = {};
        _cleanup_free_ char *t = NULL;

        /* absent: CRI's empty status */
        assert_int_equal(cri_image_status_image(&st, "busybox", "k8s.io", &got, &e), -ENOENT);
        t = error_detail_format(&e);
        assert_string_equal(t, "ImageStatus: busybox is not in k8s.io");
        error_detail_done(&e);
        img.id = (char *) "sha256:cfg";
        st.image = &img;
        assert_int_equal(cri_image_status_image(&st, "busybox", "k8s.io", &got, NULL), 0);
        assert_ptr_equal(got, &img);
        assert_string_equal(cri_image_digest(&img), "sha256:cfg");
        img.n_repo_digests = 1;
        img.repo_digests = digests;
        assert_string_equal(cri_image_digest(&img), "sha256:man");

        e1.key = (char *) "other";
        e1.value = (char *) "x";
        e2.key = (char *) "config";
        e2.value = (char *) "{}";
        s.n_info = 2;
        s.info = info;
        assert_string_equal(cri_status_info(&s, "config"), "{}");
        assert_null(cri_status_info(&s, "nope"));
        assert_null(cri_status_info(NULL, "config"));

        assert_int_equal(cri_image_fs_mountpoint(&fs, &mp), -ENODATA);
        fs.n_image_filesystems = 1;
        fs.image_filesystems = us;
        assert_int_equal(cri_image_fs_mountpoint(&fs, &mp), -ENODATA);
        id.mountpoint = (char *) "";
        u.fs_id = &id;
        assert_int_equal(cri_image_fs_mountpoint(&fs, &mp), -ENODATA);
        id.mountpoint = (char *) "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";
        assert_int_equal(cri_image_fs_mountpoint(&fs, &mp), 0);
        assert_string_equal(mp, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs");
}

static void test_sync_missing_socket(void **state) {
        CriRequest req;
        CriReply r;
        _cleanup_free_ char *t = NULL;

        cri_request_image_status(&req, "busybox", false);
        assert_int_equal(cri_call_sync(&(CriTarget) { .socket = "/nonexistent/c.sock", .timeout = USEC_PER_SEC }, &req, &r),
                         -ENOENT);
        assert_int_equal(r.transport_error, -ENOENT);
        t = text(&r);
        assert_string_equal(t, "/nonexistent/c.sock: no such socket (is containerd running? see containerd.socket)");
        cri_reply_done(&r);
}

typedef struct Got {
        int calls, error;
        char *text;
} Got;

static void on_done(CriCall *call, CriReply *reply, void *userdata) {
        Got *g = userdata;
        g->calls++;
        g->error = reply->error;
        g->text = error_detail_format(&reply->detail);
}

static void test_async_forward(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *glue = NULL;
        _cleanup_(cri_call_freep) CriCall *c = NULL;
        Got got = {};

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(curl_glue_new(e, &glue), 0);
        assert_int_equal(cri_call_forward(glue, &(CriTarget) { .socket = "/nonexistent/c.sock" }, _CRI_METHOD_MAX,
                                          (const uint8_t *) "", 0, on_done, &got, &c),
                         -EINVAL);
        assert_int_equal(cri_call_forward(glue, &(CriTarget) { .socket = "/nonexistent/c.sock" }, CRI_LIST_IMAGES,
                                          (const uint8_t *) "", 0, on_done, &got, &c),
                         0);
        assert_true(cri_call_running(c));
        for (int i = 0; i < 200 && got.calls == 0; i++)
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(got.calls, 1);
        assert_int_equal(got.error, -ENOENT);
        assert_non_null(strstr(got.text, "/nonexistent/c.sock: no such socket"));
        free(got.text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_methods),
                cmocka_unit_test(test_requests),
                cmocka_unit_test(test_reply_ok),
                cmocka_unit_test(test_reply_errors),
                cmocka_unit_test(test_readers),
                cmocka_unit_test(test_sync_missing_socket),
                cmocka_unit_test(test_async_forward),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
