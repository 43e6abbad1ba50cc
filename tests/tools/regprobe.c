/* regprobe: the registry probe and its diagnoses from the command line, for the integration tests.
 * Prints one JSON object on stdout; never prints credentials.
 *
 *   regprobe [OPTIONS] resolve IMAGE
 *   regprobe [OPTIONS] range IMAGE DIGEST
 *   OPTIONS: --config F  --insecure HOST[:PORT]...  --mirror URL...  --credentials FILE...
 *            --platform OS/ARCH[/VARIANT]  --runtime docker|containerd  --timeout SECONDS
 * Exit: 0 answered (a resolve with a diagnosis too), 1 the registry call failed, 2 usage. */
#include <getopt.h>
#include <jansson.h>

#include "daemon/pull/diagnose.h"
#include "probes/registry/registry.h"

static int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        *l = nl;
        return nl[n] ? 0 : -ENOMEM;
}

/* Takes text. Callers compute d first: argument evaluation order is unspecified. */
static void add_diagnosis(json_t *o, int d, char *text) {
        json_object_set_new(o, "diagnosis", json_string(diagnosis_to_string(d > 0 ? d : DIAG_NONE)));
        json_object_set_new(o, "diagnosis_text", text ? json_string(text) : json_null());
        free(text);
}

static json_t *error_json(int r, const ErrorDetail *e) {
        char *text = NULL, *msg = error_detail_format(e);
        json_t *o = json_pack("{s:s, s:s?, s:i, s:s?, s:s?, s:I}", "error", strerror(-r), "message", msg,
                              "http_status", e->http_status, "code", e->code, "realm", e->realm,
                              "retry_after", (json_int_t) e->retry_after);
        free(msg);
        int d = diagnose_registry_error(r, e, &text);
        add_diagnosis(o, d, text);
        return o;
}

static json_t *manifest_json(RuntimeKind runtime, const RegistryManifest *m) {
        json_t *layers = json_array(), *platforms = json_array();
        char *text = NULL;

        for (size_t i = 0; i < m->n_layers; i++)
                json_array_append_new(layers, json_pack("{s:s, s:s?, s:I}", "digest", m->layers[i].digest,
                                                        "media_type", m->layers[i].media_type, "size",
                                                        (json_int_t) m->layers[i].size));
        for (char **p = m->platforms; p && *p; p++)
                json_array_append_new(platforms, json_string(*p));
        json_t *o = json_pack("{s:s, s:s, s:b, s:s?, s:s?, s:i, s:{s:s?, s:s?, s:I}, s:o, s:b, s:s?, s:o, s:s}",
                              "digest", m->digest, "media_type", m->media_type, "is_index", m->is_index,
                              "manifest_digest", m->manifest_digest, "manifest_media_type", m->manifest_media_type,
                              "schema_version", m->schema_version, "config", "media_type", m->config_media_type,
                              "digest", m->config_digest, "size", (json_int_t) m->config_size, "layers", layers,
                              "platform_missing", m->platform_missing, "chosen_platform", m->chosen_platform,
                              "platforms", platforms, "host", m->host);
        int d = diagnose_manifest(runtime, NULL, m, &text);
        add_diagnosis(o, d, text);
        return o;
}

static int usage(void) {
        fprintf(stderr, "usage: regprobe [--config F] [--insecure H]... [--mirror URL]... [--credentials F]...\n"
                        "                [--platform P] [--runtime docker|containerd] [--timeout S]\n"
                        "                resolve IMAGE | range IMAGE DIGEST\n");
        return 2;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },    { "insecure", required_argument, NULL, 'i' },
                { "mirror", required_argument, NULL, 'm' },    { "credentials", required_argument, NULL, 'C' },
                { "platform", required_argument, NULL, 'p' },  { "runtime", required_argument, NULL, 'r' },
                { "timeout", required_argument, NULL, 't' },   {}
        };
        _cleanup_config_ Config *config = NULL;
        _cleanup_strv_free_ char **insecure = NULL, **mirrors = NULL, **creds = NULL;
        const char *config_path = NULL, *platform = NULL;
        RuntimeKind runtime = RUNTIME_CONTAINERD;
        usec_t timeout = 60 * USEC_PER_SEC;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': config_path = optarg; break;
                case 'i': if (strv_push(&insecure, optarg) < 0) return 1; break;
                case 'm': if (strv_push(&mirrors, optarg) < 0) return 1; break;
                case 'C': if (strv_push(&creds, optarg) < 0) return 1; break;
                case 'p': platform = optarg; break;
                case 'r':
                        runtime = runtime_kind_from_string(optarg);
                        if (runtime < 0)
                                return usage();
                        break;
                case 't': timeout = (usec_t) strtoul(optarg, NULL, 10) * USEC_PER_SEC; break;
                default: return usage();
                }
        }
        argc -= optind, argv += optind;
        bool range = argc == 3 && streq(argv[0], "range");
        if (!range && !(argc == 2 && streq(argv[0], "resolve")))
                return usage();

        if (config_path) {
                ErrorDetail err = {};
                r = config_load(config_path, false, &config, &err);
                if (r < 0) {
                        char *s = error_detail_format(&err);
                        fprintf(stderr, "regprobe: %s\n", s ?: strerror(-r));
                        free(s);
                        error_detail_done(&err);
                        return 2;
                }
        } else if (config_new_default(&config) < 0)
                return 1;
        for (char **i = insecure; i && *i; i++)
                if (strv_push(&config->registry.insecure, *i) < 0)
                        return 1;
        for (char **i = mirrors; i && *i; i++)
                if (strv_push(&config->registry.mirrors, *i) < 0)
                        return 1;

        _cleanup_reference_ ImageRef *ref = NULL;
        const char *why = NULL;
        if (reference_parse_reason(argv[1], &ref, &why) < 0) {
                fprintf(stderr, "regprobe: %s: %s\n", argv[1], why ?: "invalid reference");
                return 2;
        }
        _cleanup_credential_ Credential *cred = NULL;
        r = credentials_lookup(creds ?: config->credentials, reference_registry_host(ref), &cred);
        if (r < 0)
                fprintf(stderr, "regprobe: credentials: %s (pulling anonymously)\n", strerror(-r));

        RegistryTarget t;
        registry_target_init(&t, ref, cred, config, platform);
        ErrorDetail e = {};
        json_t *out;
        int rc = 0;
        if (range) {
                RegistryRangeProbe p = {};
                r = registry_probe_range_sync(&t, argv[2], timeout, &p, &e);
                if (r >= 0) {
                        char *text = NULL;
                        out = json_pack("{s:i, s:b, s:s?, s:s?, s:s?, s:i}", "http_status", p.http_status, "honoured",
                                        p.honoured, "url", p.url, "host", p.host, "via", p.via, "redirects",
                                        (int) p.redirects);
                        int d = diagnose_range_probe(&p, &text);
                        add_diagnosis(out, d, text);
                        registry_range_probe_done(&p);
                }
        } else {
                RegistryManifest *m = NULL;
                r = registry_resolve_sync(&t, timeout, &m, &e);
                if (r >= 0) {
                        out = manifest_json(runtime, m);
                        registry_manifest_free(m);
                }
        }
        if (r < 0) {
                out = error_json(r, &e);
                error_detail_done(&e);
                rc = 1;
        }
        char *s = json_dumps(out, JSON_COMPACT);
        puts(s ?: "{}");
        free(s);
        json_decref(out);
        return rc;
}
