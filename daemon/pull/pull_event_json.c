/* pull_event_json.c: a PullEvent's JSON form, both ways: the --json line of `pullwatch pull` and
 * `watch`, and the control protocol's pull stream, which the CLI reads back into events. */
#include "daemon/pull/pull_event_json.h"

#include <math.h>

static void set_str(json_t *o, const char *k, const char *v) {
        if (v)
                json_object_set_new(o, k, json_string(v));
}

json_t *pull_event_to_json(const PullEvent *e, double t) {
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "event", json_string(pull_event_kind_to_string(e->kind)));
        json_object_set_new(o, "t", json_real(round(t * 1000.0) / 1000.0));
        set_str(o, "image", e->image);
        set_str(o, "runtime", e->runtime);
        json_object_set_new(o, "attempt", json_integer(e->attempt));
        switch (e->kind) {
        case PULL_EVENT_ATTEMPT:
                set_str(o, "reason", e->reason);
                break;
        case PULL_EVENT_PHASE:
        case PULL_EVENT_PROGRESS:
                set_str(o, "layer", e->layer);
                set_str(o, "phase", phase_to_string(e->phase));
                json_object_set_new(o, "current", json_integer((json_int_t) e->current));
                json_object_set_new(o, "total", json_integer((json_int_t) e->total));
                if (e->observed > 0) {
                        /* on t's scale: when those bytes were seen, which may be before this line */
                        usec_t now = now_monotonic(), ago = now > e->observed ? now - e->observed : 0;
                        json_object_set_new(o, "observed_t",
                                            json_real(round((t - (double) ago / USEC_PER_SEC) * 1000.0) / 1000.0));
                }
                break;
        case PULL_EVENT_VERDICT:
                json_object_set_new(o, "layer", e->layer ? json_string(e->layer) : json_null());
                set_str(o, "phase", phase_to_string(e->phase));
                set_str(o, "verdict", verdict_to_string(e->verdict));
                set_str(o, "evidence", e->evidence);
                break;
        case PULL_EVENT_ACTION:
                set_str(o, "action", e->action);
                set_str(o, "layer", e->layer);
                set_str(o, "verdict", verdict_to_string(e->verdict));
                set_str(o, "evidence", e->evidence);
                if (e->pid > 0)
                        json_object_set_new(o, "pid", json_integer(e->pid));
                set_str(o, "reason", e->reason);
                break;
        case PULL_EVENT_RUNTIME_RETRY:
                set_str(o, "layer", e->layer);
                set_str(o, "reason", e->reason);
                break;
        case PULL_EVENT_RETRY:
                set_str(o, "reason", e->reason);
                json_object_set_new(o, "delay_s", json_real(round((double) e->delay / 1000.0) / 1000.0));
                break;
        case PULL_EVENT_DIAGNOSIS:
                set_str(o, "diagnosis", e->diagnosis);
                set_str(o, "remedy", e->remedy);
                set_str(o, "layer", e->layer);
                break;
        case PULL_EVENT_RESULT:
                json_object_set_new(o, "ok", json_boolean(e->ok));
                json_object_set_new(o, "digest", e->digest ? json_string(e->digest) : json_null());
                json_object_set_new(o, "attempts", json_integer(e->attempt));
                json_object_set_new(o, "elapsed_s", json_real(round(e->elapsed_s * 1000.0) / 1000.0));
                json_object_set_new(o, "bytes", json_integer((json_int_t) e->bytes));
                if (!e->ok) {
                        set_str(o, "error", error_class_to_string(e->error));
                        set_str(o, "reason", e->reason);
                }
                set_str(o, "diagnosis", e->diagnosis);
                set_str(o, "registry_probe", e->registry_probe);
                break;
        default:
                break;
        }
        return o;
}

static ErrorClass error_class_from_string(const char *s) {
        for (ErrorClass c = 0; c < _ERROR_CLASS_MAX; c++)
                if (streq_ptr(error_class_to_string(c), s))
                        return c;
        return ERROR_TRANSIENT;
}

int pull_event_from_json(json_t *o, PullEvent *e) {
        const char *kind = json_string_value(json_object_get(o, "event"));
        const char *phase = json_string_value(json_object_get(o, "phase"));
        const char *verdict = json_string_value(json_object_get(o, "verdict"));

        *e = (PullEvent) { .kind = _PULL_EVENT_KIND_MAX, .phase = _PHASE_INVALID, .verdict = _VERDICT_INVALID };
        for (PullEventKind k = 0; k < _PULL_EVENT_KIND_MAX; k++)
                if (streq_ptr(pull_event_kind_to_string(k), kind))
                        e->kind = k;
        if (e->kind == _PULL_EVENT_KIND_MAX)
                return -EBADMSG;
        e->image = json_string_value(json_object_get(o, "image"));
        e->runtime = json_string_value(json_object_get(o, "runtime"));
        e->attempt = (unsigned) json_integer_value(json_object_get(o, "attempt"));
        e->layer = json_string_value(json_object_get(o, "layer"));
        if (phase)
                e->phase = phase_from_string(phase);
        if (verdict)
                e->verdict = verdict_from_string(verdict);
        e->current = (uint64_t) json_integer_value(json_object_get(o, "current"));
        e->total = (uint64_t) json_integer_value(json_object_get(o, "total"));
        e->evidence = json_string_value(json_object_get(o, "evidence"));
        e->action = json_string_value(json_object_get(o, "action"));
        e->pid = (pid_t) json_integer_value(json_object_get(o, "pid"));
        e->reason = json_string_value(json_object_get(o, "reason"));
        e->delay = (usec_t) (json_number_value(json_object_get(o, "delay_s")) * USEC_PER_SEC);
        e->diagnosis = json_string_value(json_object_get(o, "diagnosis"));
        e->remedy = json_string_value(json_object_get(o, "remedy"));
        e->ok = json_is_true(json_object_get(o, "ok"));
        e->error = e->ok ? ERROR_NONE : error_class_from_string(json_string_value(json_object_get(o, "error")));
        e->digest = json_string_value(json_object_get(o, "digest"));
        e->elapsed_s = json_number_value(json_object_get(o, "elapsed_s"));
        e->bytes = (uint64_t) json_integer_value(json_object_get(o, "bytes"));
        if (e->kind == PULL_EVENT_RESULT && json_is_integer(json_object_get(o, "attempts")))
                e->attempt = (unsigned) json_integer_value(json_object_get(o, "attempts"));
        return 0;
}
