/* preheat_pin.c: preheat.pin on containerd: every reference of a preheated image (the tag, repo@digest and
 * the image id CRI creates) gets io.cri-containerd.pinned=pinned, and loses it when the image leaves the
 * list. Every reference, because CRI 1.6.22-1.6.25 read the label from whichever reference it loaded. */
#include <stdio.h>

#include "daemon/preheat_internal.h"
#include "probes/containerd.h"
#include "basic/reference.h"

int preheat_pin(Target *t, bool on) {
        const Config *c = t->preheat->config->config;
        const char *sock = c->containerd_socket ?: CONTAINERD_DEFAULT_SOCKET;
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *name = NULL, *repo = NULL, *by_digest = NULL, *digest = NULL, *id = NULL;
        const char *refs[3];
        int r, ret = 0;

        if (t->runtime != RUNTIME_CONTAINERD || !c->preheat.pin)
                return 0;
        r = reference_parse(t->image, &ref);
        if (r < 0)
                return r;
        if (reference_to_string(ref, &name) < 0 || reference_repository(ref, &repo) < 0)
                return -ENOMEM;
        if (containerd_image_status(sock, t->image, &digest, &id, NULL) >= 0 && digest && startswith(digest, "sha256:") &&
            asprintf(&by_digest, "%s@%s", repo, digest) < 0)
                by_digest = NULL;
        refs[0] = name;
        refs[1] = by_digest;
        refs[2] = id;
        for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
                if (!refs[i])
                        continue;
                r = containerd_image_label(sock, CONTAINERD_CRI_NAMESPACE, refs[i], CONTAINERD_PINNED_LABEL,
                                           on ? CONTAINERD_PINNED_VALUE : NULL, NULL);
                if (r < 0 && r != -ENOENT && ret == 0)
                        ret = r;
        }
        t->pinned = on && ret == 0;
        return ret;
}
