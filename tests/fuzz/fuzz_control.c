/* fuzz_control: one request line on the daemon's control socket (root only, but a confused client or
 * a half-written line is still outside input). A parsed request carries what its command needs. */
#include "tests/fuzz/fuzz_util.h"
#include "daemon/agent/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ControlRequest req = {};
        ErrorDetail why = {};
        int r;

        r = control_request_parse((const char *) data, size, &req, &why);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOMEM || (why.message && *why.message));
                FUZZ_CHECK(r == -EMSGSIZE || r == -EBADMSG || r == -EOPNOTSUPP || r == -EINVAL || r == -ENOMEM);
        } else {
                FUZZ_CHECK(req.cmd >= 0 && req.cmd < _CONTROL_COMMAND_MAX);
                if (req.cmd == CONTROL_PULL)
                        FUZZ_CHECK(req.image && *req.image);
                json_t *e = control_error_json("bad-request", why.message ?: "");
                FUZZ_CHECK(e);
                json_decref(e);
        }
        control_request_done(&req);
        control_request_done(&req); /* idempotent */
        error_detail_done(&why);
        return 0;
}
