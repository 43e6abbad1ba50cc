/* preheat_pin.c: preheat.pin on containerd: every reference of a preheated image (the tag, repo@digest and
 * the image id CRI creates) gets io.cri-containerd.pinned=pinned, and loses it when the image leaves the
 * list. Every reference, because CRI 1.6.22-1.6.25 read the label from whichever reference it loaded.
 * Asynchronous like every other question to a runtime: one ImageStatus for the references, then one
 * Images.Update per reference, one at a time on the curl glue. A pin belongs to its target (freed with
 * it); an unpin outlives the target that left the list (the glue owns it, and lets it land on exit). */
#include <stdio.h>

#include "daemon/preheat_internal.h"
#include "probes/containerd.h"
#include "probes/containerd_label.h"
#include "basic/reference.h"
#include "probes/runtime_op.h"

struct PinJob {
        CurlGlue *glue;
        CurlGlueAdopted *adopted; /* an unpin: nobody else owns it */
        Target *owner;            /* a pin: its target, told when done */
        bool on;
        char *socket;
        char *image;              /* as listed: what ImageStatus is asked about */
        char *repo;               /* its repository: which repo digests are ours */
        char *refs[3];            /* the tag, repo@digest, the image id */
        size_t n_refs, next;
        RuntimeOp *op;
        int error;
};

static void job_free(PinJob *j) {
        if (!j)
                return;
        runtime_op_free(j->op);
        curl_glue_release(j->glue, j->adopted);
        free(j->socket);
        free(j->image);
        free(j->repo);
        for (size_t i = 0; i < j->n_refs; i++)
                free(j->refs[i]);
        free(j);
}

static void job_adopted_free(void *obj) { job_free(obj); }

static void job_finish(PinJob *j) {
        if (j->owner) {
                j->owner->pinned = j->on && j->error == 0;
                j->owner->pin = NULL;
        }
        job_free(j);
}

static void on_label(RuntimeOp *op, int r, const char *text, void *userdata);

/* Label the references still to do, one call at a time; done when none is left. */
static void label_next(PinJob *j) {
        while (j->next < j->n_refs) {
                int r = containerd_image_label_start(j->glue, j->socket, CONTAINERD_CRI_NAMESPACE, j->refs[j->next],
                                                     CONTAINERD_PINNED_LABEL, j->on ? CONTAINERD_PINNED_VALUE : NULL,
                                                     on_label, j, &j->op);
                if (r >= 0)
                        return;
                if (j->error == 0)
                        j->error = r;
                j->next++;
        }
        job_finish(j);
}

static void on_label(RuntimeOp *op, int r, const char *text, void *userdata) {
        PinJob *j = userdata;

        j->op = NULL; /* it frees itself */
        /* -ENOENT: that reference is gone (kubelet's GC, a new tag): nothing to label there */
        if (r < 0 && r != -ENOENT && j->error == 0)
                j->error = r;
        j->next++;
        label_next(j);
}

static int add_ref(PinJob *j, const char *ref) {
        for (size_t i = 0; i < j->n_refs; i++)
                if (streq(j->refs[i], ref))
                        return 0;
        if (j->n_refs >= ELEMENTSOF(j->refs))
                return 0;
        j->refs[j->n_refs] = strdup(ref);
        if (!j->refs[j->n_refs])
                return -ENOMEM;
        j->n_refs++;
        return 0;
}

/* text: the image id, then CRI's repo digests, one a line (containerd_label.h). */
static void on_refs(RuntimeOp *op, int r, const char *text, void *userdata) {
        PinJob *j = userdata;
        size_t repo_len = strlen(j->repo);
        const char *line, *nl;
        _cleanup_free_ char *id = NULL;

        j->op = NULL;
        if (r < 0 && r != -ENOENT) {
                /* the runtime did not answer: labelling would fail the same way; the next ready state tries again */
                j->error = r;
                job_finish(j);
                return;
        }
        for (line = r >= 0 ? text : NULL; line && *line; line = nl ? nl + 1 : NULL) {
                _cleanup_free_ char *one = NULL;
                nl = strchr(line, '\n');
                one = nl ? strndup(line, (size_t) (nl - line)) : strdup(line);
                if (!one) {
                        j->error = -ENOMEM;
                        break;
                }
                if (line == text)
                        id = TAKE_PTR(one);
                else if (strncmp(one, j->repo, repo_len) == 0 && one[repo_len] == '@' &&
                         startswith(one + repo_len + 1, "sha256:") && add_ref(j, one) < 0)
                        j->error = -ENOMEM;
        }
        if (id && add_ref(j, id) < 0)
                j->error = -ENOMEM;
        label_next(j);
}

int preheat_pin(Target *t, bool on) {
        Preheat *p = t->preheat;
        const Config *c = p->config->config;
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *name = NULL;
        PinJob *j;
        int r;

        if (t->runtime != RUNTIME_CONTAINERD || !c->preheat.pin)
                return 0;
        if (on && t->pin)
                return 0; /* one is on its way */
        preheat_pin_stop(t);
        r = reference_parse(t->image, &ref);
        if (r < 0)
                return r;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (PinJob) { .glue = p->glue, .on = on, .owner = on ? t : NULL };
        j->socket = strdup(c->containerd_socket ?: CONTAINERD_DEFAULT_SOCKET);
        j->image = strdup(t->image);
        r = j->socket && j->image ? 0 : -ENOMEM;
        if (r >= 0 && (reference_to_string(ref, &name) < 0 || reference_repository(ref, &j->repo) < 0))
                r = -ENOMEM;
        if (r >= 0)
                r = add_ref(j, name);
        if (r >= 0 && !on)
                r = curl_glue_adopt(p->glue, j, job_adopted_free, &j->adopted);
        if (r >= 0)
                r = containerd_image_refs_start(j->glue, j->socket, j->image, on_refs, j, &j->op);
        if (r < 0) {
                job_free(j);
                return r;
        }
        t->pinned = false;
        if (on)
                t->pin = j;
        return 0;
}

void preheat_pin_stop(Target *t) {
        if (!t->pin)
                return;
        t->pin->owner = NULL;
        job_free(t->pin);
        t->pin = NULL;
}
