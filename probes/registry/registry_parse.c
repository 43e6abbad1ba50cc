/* registry_parse.c: the registry probe's pure half: WWW-Authenticate, manifests and indexes, error
 * bodies, tokens. Pure: no I/O. */
#include "probes/registry/registry.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>

#define _cleanup_json_ _cleanup_(json_decrefp)

/* ---- WWW-Authenticate (RFC 7235: challenges separated by commas, params token=token|quoted) ---- */

static bool is_tchar(char c) {
        return isalnum((unsigned char) c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* Reads token or quoted-string at *p; returns a new string or NULL (with *p unchanged) if neither. */
static char *read_value(const char **p) {
        const char *s = *p;
        if (*s == '"') {
                char *buf = malloc(strlen(s) + 1), *o = buf;
                if (!buf)
                        return NULL;
                for (s++; *s && *s != '"'; s++) {
                        if (*s == '\\' && s[1])
                                s++;
                        *o++ = *s;
                }
                if (*s != '"') { /* unterminated */
                        free(buf);
                        return NULL;
                }
                *o = 0;
                *p = s + 1;
                return buf;
        }
        size_t n = 0;
        while (is_tchar(s[n]) || s[n] == '/' || s[n] == ':') /* lenient: unquoted URLs occur */
                n++;
        if (n == 0)
                return NULL;
        *p = s + n;
        return strndup(s, n);
}

void registry_challenge_done(RegistryChallenge *c) {
        if (!c)
                return;
        free(c->realm);
        free(c->service);
        free(c->scope);
        free(c->error);
        *c = (RegistryChallenge) {};
}

static void challenge_keep_best(RegistryChallenge *best, RegistryChallenge *cur) {
        /* Bearer beats Basic; the first of equal rank wins. */
        if (cur->scheme > best->scheme) {
                registry_challenge_done(best);
                *best = *cur;
        } else
                registry_challenge_done(cur);
        *cur = (RegistryChallenge) {};
}

static const char *skip_past_comma(const char *p) {
        bool quoted = false;
        for (; *p; p++) {
                if (quoted && *p == '\\' && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (!quoted && *p == ',')
                        return p + 1;
        }
        return p;
}

int registry_parse_challenge(const char *header, RegistryChallenge *ret) {
        RegistryChallenge best = {}, cur = {};
        bool have_cur = false;
        const char *p = header;

        if (!header)
                return -EINVAL;
        for (;;) {
                while (*p == ',' || *p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                size_t n = 0;
                while (is_tchar(p[n]))
                        n++;
                if (n == 0)
                        goto fail;
                const char *after = skip_ws(p + n);
                if (*after != '=') {
                        /* a new challenge: "Bearer", "Basic", or one we do not speak */
                        challenge_keep_best(&best, &cur);
                        if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
                                cur.scheme = REGISTRY_AUTH_BASIC;
                        else if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
                                cur.scheme = REGISTRY_AUTH_BEARER;
                        have_cur = true;
                        p += n;
                        continue;
                }
                if (!have_cur)
                        goto fail; /* a parameter before any scheme */
                const char *v = skip_ws(after + 1);
                _cleanup_free_ char *value = read_value(&v);
                if (!value) {
                        if (cur.scheme != REGISTRY_AUTH_NONE)
                                goto fail;
                        p = skip_past_comma(p); /* token68 or odd params of a foreign scheme */
                        continue;
                }
                char **slot = NULL;
                if (n == 5 && strncasecmp(p, "realm", 5) == 0)
                        slot = &cur.realm;
                else if (n == 7 && strncasecmp(p, "service", 7) == 0)
                        slot = &cur.service;
                else if (n == 5 && strncasecmp(p, "scope", 5) == 0)
                        slot = &cur.scope;
                else if (n == 5 && strncasecmp(p, "error", 5) == 0)
                        slot = &cur.error;
                if (slot && !*slot)
                        *slot = TAKE_PTR(value);
                p = v; /* lenient: some servers separate params with blanks only */
        }
        challenge_keep_best(&best, &cur);
        if (best.scheme == REGISTRY_AUTH_NONE ||
            (best.scheme == REGISTRY_AUTH_BEARER && (!best.realm || !*best.realm)))
                goto fail;
        *ret = best;
        return 0;
fail:
        registry_challenge_done(&cur);
        registry_challenge_done(&best);
        return -EINVAL;
}

/* ---- manifests and indexes ---- */

/* Digests go into URLs: allow "algo:encoded" with a safe alphabet only; sha256 must be 64 hex. */
static bool digest_valid(const char *d) {
        const char *colon = d ? strchr(d, ':') : NULL;
        if (!colon || colon == d || !colon[1])
                return false;
        for (const char *c = d; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("+._-:=", *c))
                        return false;
        if (startswith(d, "sha256:")) {
                if (strlen(colon + 1) != 64)
                        return false;
                for (const char *c = colon + 1; *c; c++)
                        if (!isdigit((unsigned char) *c) && !(*c >= 'a' && *c <= 'f'))
                                return false;
        }
        return true;
}

static const char *json_str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A descriptor {mediaType, digest, size}; media type optional only where the spec allows. */
static int parse_descriptor(json_t *o, bool need_media_type, char **ret_mt, char **ret_digest,
                            uint64_t *ret_size) {
        const char *mt = json_str(o, "mediaType"), *d = json_str(o, "digest");
        json_t *size = json_object_get(o, "size");

        if (!json_is_object(o) || (need_media_type && !mt) || !digest_valid(d) ||
            !json_is_integer(size) || json_integer_value(size) < 0)
                return -EBADMSG;
        _cleanup_free_ char *mt_copy = mt ? strdup(mt) : NULL;
        char *d_copy = strdup(d);
        if ((mt && !mt_copy) || !d_copy) {
                free(d_copy);
                return -ENOMEM;
        }
        *ret_mt = TAKE_PTR(mt_copy);
        *ret_digest = d_copy;
        *ret_size = (uint64_t) json_integer_value(size);
        return 0;
}

static char *media_type_base(const char *ct) {
        if (!ct)
                return NULL;
        size_t n = strcspn(ct, "; \t");
        return strndup(ct, n);
}

static int object_kind(const char *mt) {
        if (!mt)
                return -ENOENT;
        if (streq(mt, REGISTRY_MT_DOCKER_MANIFEST) || streq(mt, REGISTRY_MT_OCI_MANIFEST))
                return REGISTRY_OBJECT_MANIFEST;
        if (streq(mt, REGISTRY_MT_DOCKER_LIST) || streq(mt, REGISTRY_MT_OCI_INDEX))
                return REGISTRY_OBJECT_INDEX;
        if (streq(mt, REGISTRY_MT_SCHEMA1) || streq(mt, REGISTRY_MT_SCHEMA1_SIGNED))
                return REGISTRY_OBJECT_SCHEMA1;
        return -EPROTONOSUPPORT;
}

static void layers_free(RegistryLayer *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].digest);
                free(l[i].media_type);
        }
        free(l);
}

static int parse_schema1(json_t *root, const char *mt, RegistryManifest *m) {
        json_t *fs = json_object_get(root, "fsLayers");
        size_t n = json_array_size(fs);
        RegistryLayer *layers;

        if (!json_is_array(fs))
                return -EBADMSG;
        layers = calloc(n ? n : 1, sizeof(*layers));
        if (!layers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *d = json_str(json_array_get(fs, i), "blobSum");
                /* schema 1 lists the top layer first; keep base-first like schema 2 */
                RegistryLayer *l = &layers[n - 1 - i];
                if (!digest_valid(d) || !(l->digest = strdup(d))) {
                        layers_free(layers, n);
                        return digest_valid(d) ? -ENOMEM : -EBADMSG;
                }
        }
        free(m->manifest_media_type);
        m->manifest_media_type = strdup(mt ? mt :
                                        json_object_get(root, "signatures") ? REGISTRY_MT_SCHEMA1_SIGNED :
                                                                              REGISTRY_MT_SCHEMA1);
        if (!m->manifest_media_type) {
                layers_free(layers, n);
                return -ENOMEM;
        }
        layers_free(m->layers, m->n_layers);
        m->layers = layers;
        m->n_layers = n;
        m->schema_version = 1;
        return REGISTRY_OBJECT_SCHEMA1;
}

static int parse_image_manifest(json_t *root, const char *mt, RegistryManifest *m) {
        json_t *layers_j = json_object_get(root, "layers");
        _cleanup_free_ char *cmt = NULL, *cd = NULL;
        uint64_t csize;
        size_t n;
        int r;

        if (json_integer_value(json_object_get(root, "schemaVersion")) != 2 || !json_is_array(layers_j))
                return -EBADMSG;
        r = parse_descriptor(json_object_get(root, "config"), true, &cmt, &cd, &csize);
        if (r < 0)
                return r;
        n = json_array_size(layers_j);
        RegistryLayer *layers = calloc(n ? n : 1, sizeof(*layers));
        if (!layers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_descriptor(json_array_get(layers_j, i), true, &layers[i].media_type,
                                     &layers[i].digest, &layers[i].size);
                if (r < 0) {
                        layers_free(layers, n);
                        return r;
                }
        }
        char *mt_copy = strdup(mt);
        if (!mt_copy) {
                layers_free(layers, n);
                return -ENOMEM;
        }
        free(m->manifest_media_type);
        m->manifest_media_type = mt_copy;
        free(m->config_media_type);
        m->config_media_type = TAKE_PTR(cmt);
        free(m->config_digest);
        m->config_digest = TAKE_PTR(cd);
        m->config_size = csize;
        layers_free(m->layers, m->n_layers);
        m->layers = layers;
        m->n_layers = n;
        m->schema_version = 2;
        return REGISTRY_OBJECT_MANIFEST;
}

/* The media type that decides how to read the body: a specific Content-Type wins; generic ones
 * ("application/json", none) defer to the body's own mediaType, then its shape. */
static int body_media_type(json_t *root, const char *content_type, char **ret) {
        _cleanup_free_ char *ct = media_type_base(content_type);
        const char *mt = NULL;

        if (content_type && !ct)
                return -ENOMEM;
        if (ct && object_kind(ct) >= 0)
                mt = ct;
        else if (json_str(root, "mediaType"))
                mt = json_str(root, "mediaType");
        else if (json_integer_value(json_object_get(root, "schemaVersion")) == 1)
                mt = json_object_get(root, "signatures") ? REGISTRY_MT_SCHEMA1_SIGNED : REGISTRY_MT_SCHEMA1;
        else if (json_is_array(json_object_get(root, "manifests")))
                mt = REGISTRY_MT_OCI_INDEX; /* OCI 1.0 lets mediaType be absent */
        else if (json_is_object(json_object_get(root, "config")))
                mt = REGISTRY_MT_OCI_MANIFEST;
        else
                return -EBADMSG;
        *ret = strdup(mt);
        return *ret ? 0 : -ENOMEM;
}

static int load_object(const char *body, size_t size, json_t **ret) {
        json_error_t err;
        json_t *root;

        if (!body || size == 0 || size > REGISTRY_MANIFEST_MAX)
                return -EBADMSG;
        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &err);
        if (!root)
                return -EBADMSG;
        if (!json_is_object(root)) {
                json_decref(root);
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

int registry_parse_manifest(const char *body, size_t size, const char *content_type, RegistryManifest *m) {
        _cleanup_json_ json_t *root = NULL;
        _cleanup_free_ char *mt = NULL;
        int kind, r;

        r = load_object(body, size, &root);
        if (r < 0)
                return r;
        r = body_media_type(root, content_type, &mt);
        if (r < 0)
                return r;
        kind = object_kind(mt);
        if (kind < 0)
                return kind;
        switch (kind) {
        case REGISTRY_OBJECT_SCHEMA1:
                if (json_integer_value(json_object_get(root, "schemaVersion")) != 1)
                        return -EBADMSG;
                return parse_schema1(root, mt, m);
        case REGISTRY_OBJECT_INDEX:
                if (!json_is_array(json_object_get(root, "manifests")))
                        return -EBADMSG;
                free(m->media_type);
                m->media_type = TAKE_PTR(mt);
                return REGISTRY_OBJECT_INDEX;
        default:
                return parse_image_manifest(root, mt, m);
        }
}

int registry_parse_index(const char *body, size_t size, const char *want, RegistryManifest *m,
                         char **ret_digest, char **ret_media_type) {
        _cleanup_json_ json_t *root = NULL;
        _cleanup_strv_free_ char **platforms = NULL;
        _cleanup_free_ char *found_digest = NULL, *found_mt = NULL;
        json_t *list;
        size_t n_platforms = 0;
        int r;

        r = load_object(body, size, &root);
        if (r < 0)
                return r;
        list = json_object_get(root, "manifests");
        if (!json_is_array(list))
                return -EBADMSG;
        platforms = calloc(json_array_size(list) + 1, sizeof(char *));
        if (!platforms)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *e = json_array_get(list, i), *pj = json_object_get(e, "platform");
                _cleanup_free_ char *emt = NULL, *ed = NULL;
                uint64_t esize;

                r = parse_descriptor(e, false, &emt, &ed, &esize);
                if (r < 0)
                        return r;
                if (!json_is_object(pj))
                        continue; /* no platform: attestation or artifact, never chosen */
                const char *os = json_str(pj, "os"), *arch = json_str(pj, "architecture");
                const char *variant = json_str(pj, "variant");
                if (!os || !arch)
                        return -EBADMSG;
                if (streq(os, "unknown"))
                        continue; /* buildkit's attestation manifests */
                r = registry_platform_format(os, arch, variant, &platforms[n_platforms]);
                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        return r;
                n_platforms++;
                if (!found_digest && registry_platform_match(want, os, arch, variant)) {
                        free(m->chosen_platform);
                        if (!(m->chosen_platform = strdup(platforms[n_platforms - 1])))
                                return -ENOMEM;
                        found_digest = TAKE_PTR(ed);
                        found_mt = emt ? TAKE_PTR(emt) : strdup(REGISTRY_MT_OCI_MANIFEST);
                        if (!found_mt)
                                return -ENOMEM;
                }
        }
        strv_free(m->platforms);
        m->platforms = TAKE_PTR(platforms);
        if (!found_digest) {
                free(m->chosen_platform);
                r = want ? registry_platform_normalize(want, &m->chosen_platform) :
                           registry_host_platform(&m->chosen_platform);
                return r < 0 ? r : -ENXIO;
        }
        *ret_digest = TAKE_PTR(found_digest);
        *ret_media_type = TAKE_PTR(found_mt);
        return 0;
}

int registry_parse_error_body(const char *body, size_t size, ErrorDetail *e) {
        _cleanup_json_ json_t *root = NULL;
        json_t *first;

        assert(body || size == 0);
        assert(e);
        if (load_object(body, size, &root) < 0)
                return -EBADMSG;
        first = json_array_get(json_object_get(root, "errors"), 0);
        const char *code = json_str(first, "code"), *msg = json_str(first, "message");
        if (!code && !msg)
                return -EBADMSG;
        _cleanup_free_ char *c = code ? strdup(code) : NULL, *mm = msg ? strdup(msg) : NULL;
        if ((code && !c) || (msg && !mm))
                return -ENOMEM;
        free(e->code);
        e->code = TAKE_PTR(c);
        free(e->message);
        e->message = TAKE_PTR(mm);
        return 0;
}

int registry_parse_token(const char *body, size_t size, char **ret_token) {
        _cleanup_json_ json_t *root = NULL;
        const char *t;

        if (load_object(body, size, &root) < 0)
                return -EBADMSG;
        t = json_str(root, "token");
        if (!t || !*t)
                t = json_str(root, "access_token");
        if (!t || !*t || strpbrk(t, "\r\n"))
                return -EBADMSG;
        *ret_token = strdup(t);
        return *ret_token ? 0 : -ENOMEM;
}
