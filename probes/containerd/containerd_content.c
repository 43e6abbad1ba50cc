/* containerd_content.c: containerd's content store as its clients name things: the labels a pull
 * leaves on blobs, the ingest refs remotes.MakeRefKey() builds, the host part of the distribution
 * source label, and the Content.List filter for one repository's manifests. Pure; no calls. */
#include "probes/containerd/containerd_content.h"

const char *cd_label_get(Containerd__Services__Content__V1__Info *info, const char *key) {
        for (size_t i = 0; i < info->n_labels; i++)
                if (streq(info->labels[i]->key, key))
                        return info->labels[i]->value;
        return NULL;
}

int cd_source_host(const char *domain, char **ret) {
        const char *end;
        char *h;
        if (!domain || !*domain)
                return -EINVAL;
        if (domain[0] == '[') {
                end = strchr(domain, ']');
                if (!end)
                        return -EINVAL;
                h = strndup(domain + 1, (size_t) (end - domain - 1));
        } else {
                end = strchr(domain, ':');
                h = end ? strndup(domain, (size_t) (end - domain)) : strdup(domain);
        }
        if (!h)
                return -ENOMEM;
        *ret = h;
        return 0;
}

int cd_manifest_filter(const char *host, const char *repo, char **ret) {
        _cleanup_free_ char *re = malloc(strlen(repo) * 3 + 1);
        char *o = re;
        if (!re)
                return -ENOMEM;
        for (const char *p = repo; *p; p++) {
                if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20 || strchr(host, '"'))
                        return -EINVAL;
                if (*p == '.')
                        o = stpcpy(o, "[.]");
                else
                        *o++ = *p;
        }
        *o = 0;
        if (asprintf(ret, "labels.\"%s\",labels.\"%s%s\"~=\"^(.*,)?%s(,.*)?$\"", CD_LABEL_CONFIG,
                     CD_LABEL_SOURCE_PREFIX, host, re) < 0)
                return -ENOMEM;
        return 0;
}

static const char *const ref_prefixes[_CD_REF_KIND_MAX] = {
        [CD_REF_MANIFEST] = "manifest-",
        [CD_REF_INDEX] = "index-",
        [CD_REF_LAYER] = "layer-",
        [CD_REF_CONFIG] = "config-",
        [CD_REF_ATTESTATION] = "attestation-",
        [CD_REF_UNKNOWN] = "unknown-",
};

static bool digest_valid(const char *d) {
        const char *hex = d + strlen("sha256:"); /* as long as "sha512:" */
        size_t want;

        if (startswith(d, "sha256:"))
                want = 64;
        else if (startswith(d, "sha512:"))
                want = 128;
        else
                return false;
        return strlen(hex) == want && strspn(hex, "0123456789abcdef") == want;
}

CdRefKind cd_ref_parse(const char *ref, const char **ret_digest) {
        for (CdRefKind k = 0; ref && k < _CD_REF_KIND_MAX; k++) {
                const char *rest, *at, *d;
                if (!startswith(ref, ref_prefixes[k]))
                        continue;
                rest = ref + strlen(ref_prefixes[k]);
                /* a ref.name annotation may hold anything, '@' included: the digest follows the last */
                at = strrchr(rest, '@');
                if (at && at == rest)
                        return _CD_REF_KIND_INVALID; /* "<kind>-@<digest>": an empty name */
                d = at ? at + 1 : rest;
                if (!digest_valid(d))
                        return _CD_REF_KIND_INVALID;
                if (ret_digest)
                        *ret_digest = d;
                return k;
        }
        return _CD_REF_KIND_INVALID;
}

bool cd_ref_split(const char *ref, const char **kind_end, const char **digest) {
        CdRefKind k = cd_ref_parse(ref, digest);
        if (k < 0)
                return false;
        *kind_end = ref + strlen(ref_prefixes[k]);
        return true;
}

/* Content.List leaves updated_at out (1.6 contentserver), so creation time it is. */
int64_t cd_info_created(Containerd__Services__Content__V1__Info *info) {
        int64_t us;
        if (!info->created_at || info->created_at->seconds < 0)
                return 0; /* absent, or before 1970: nothing to order by */
        /* a corrupt reply must not overflow (undefined behaviour); later than any real time sorts last */
        if (__builtin_mul_overflow(info->created_at->seconds, (int64_t) 1000000, &us) ||
            __builtin_add_overflow(us, (int64_t) (info->created_at->nanos / 1000), &us))
                return INT64_MAX;
        return us;
}

int64_t cd_timestamp_usec(const Containerd__Services__Content__V1__Timestamp *ts) {
        if (!ts || ts->seconds < 0 || ts->seconds > INT64_MAX / 1000000 - 1)
                return 0;
        return ts->seconds * 1000000 + ts->nanos / 1000;
}
