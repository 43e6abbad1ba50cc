/* preheat_pin.c: preheat.pin on containerd: every reference of a preheated image (the tag, repo@digest and
 * the image id CRI creates) gets io.cri-containerd.pinned=pinned, and loses it when the image leaves the
 * list. Every reference, because CRI 1.6.22-1.6.25 read the label from whichever reference it loaded.
 * Asynchronous like every other question to a runtime: one ImageStatus for the references, then one
 * Images.Update per reference, one at a time on the curl glue. A pin belongs to its target (freed with
 * it); an unpin outlives the target that left the list (the glue owns it, and lets it land on exit).
 * A pull that moved the tag to a new digest re-pins: the old image's references (repo@old digest, its
 * id) lose the label first, then the new image's get it, so the old image is kubelet's to collect and a
 * reference both share (the same config) ends up pinned. */
#include <stdio.h>

#include "daemon/preheat/preheat_model.h"
#include "probes/containerd/containerd.h"
#include "probes/containerd/containerd_label.h"
#include "probes/drivers/runtime_drivers.h"
#include "basic/reference.h"
#include "probes/runtime/runtime_op.h"

struct PinJob {
        CurlGlue *glue;
        CurlGlueAdopted *adopted; /* an unpin: nobody else owns it */
        Target *owner;            /* a pin: its target, told when done */
        bool on;
        bool asked_new;           /* moved_from's references are in; the listed image's are asked */
        char *socket;
        char *name;               /* the listed reference, normalized */
        char *image;              /* as listed: what ImageStatus is asked about */
        char *repo;               /* its repository: which repo digests are ours */
        char *moved_from;         /* repo@digest the tag pointed at before this pull; NULL = none */
        char *refs[6];            /* the old image's (to unlabel), then the tag, repo@digest, the image id */
        bool ref_on[6];           /* label (true) or unlabel that reference */
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
        free(j->moved_from);
        free(j->name);
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
                                                     CONTAINERD_PINNED_LABEL, j->ref_on[j->next] ? CONTAINERD_PINNED_VALUE : NULL,
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

/* A reference of the image being (un)pinned, or, while moved_from is asked about, of the old image. One
 * that both images have is labelled: the image that stays is the one the list names. */
static int add_ref(PinJob *j, const char *ref, bool on) {
        for (size_t i = 0; i < j->n_refs; i++)
                if (streq(j->refs[i], ref)) {
                        j->ref_on[i] = j->ref_on[i] || on;
                        return 0;
                }
        if (j->n_refs >= ELEMENTSOF(j->refs))
                return 0;
        j->refs[j->n_refs] = strdup(ref);
        if (!j->refs[j->n_refs])
                return -ENOMEM;
        j->ref_on[j->n_refs++] = on;
        return 0;
}

/* text: the image id, then CRI's repo digests, one a line (containerd_label.h). The first answer is the
 * old image's when the tag moved (its references are unlabelled), then the listed image's. */
static void on_refs(RuntimeOp *op, int r, const char *text, void *userdata) {
        PinJob *j = userdata;
        size_t repo_len = strlen(j->repo);
        bool old = j->moved_from && !j->asked_new;
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
                         startswith(one + repo_len + 1, "sha256:") && add_ref(j, one, !old && j->on) < 0)
                        j->error = -ENOMEM;
        }
        if (id && add_ref(j, id, !old && j->on) < 0)
                j->error = -ENOMEM;
        if (old) { /* now the listed image: its tag, then what CRI lists for it */
                j->asked_new = true;
                r = add_ref(j, j->name, j->on);
                if (r >= 0)
                        r = containerd_image_refs_start(j->glue, j->socket, j->image, on_refs, j, &j->op);
                if (r >= 0)
                        return;
                j->error = j->error ?: r;
        }
        label_next(j);
}

int preheat_pin(Target *t, bool on) {
        Preheat *p = t->preheat;
        const Config *c = p->config->config;
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        PinJob *j;
        int r;

        const RuntimeDriver *d = runtime_driver_get(t->runtime);

        if (!d || !d->pin_labels || !c->preheat.pin) {
                t->pin_moved_from = mfree(t->pin_moved_from);
                return 0;
        }
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
        if (r >= 0 && (reference_to_string(ref, &j->name) < 0 || reference_repository(ref, &j->repo) < 0))
                r = -ENOMEM;
        if (r >= 0 && on && t->pin_moved_from) { /* the old image's references first (on_refs) */
                j->moved_from = TAKE_PTR(t->pin_moved_from);
                r = add_ref(j, j->moved_from, false);
        } else if (r >= 0)
                r = add_ref(j, j->name, on);
        if (r >= 0 && !on)
                r = curl_glue_adopt(p->glue, j, job_adopted_free, &j->adopted);
        if (r >= 0)
                r = containerd_image_refs_start(j->glue, j->socket, j->moved_from ?: j->image, on_refs, j, &j->op);
        if (r < 0) {
                job_free(j);
                return r;
        }
        t->pinned = false;
        if (on)
                t->pin = j;
        return 0;
}

void preheat_pin_pulled(Target *t, const char *before, const char *after) {
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *repo = NULL;

        t->pinned = false; /* a new pull made new references (a re-pull after an eviction too) */
        if (!before || !after || streq(before, after) || !startswith(before, "sha256:") ||
            reference_parse(t->image, &ref) < 0 || reference_repository(ref, &repo) < 0)
                return;
        free(t->pin_moved_from);
        if (asprintf(&t->pin_moved_from, "%s@%s", repo, before) < 0)
                t->pin_moved_from = NULL;
}

void preheat_pin_stop(Target *t) {
        if (!t->pin)
                return;
        t->pin->owner = NULL;
        job_free(t->pin);
        t->pin = NULL;
}
