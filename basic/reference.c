/* reference.c: docker/distribution's reference grammar (ParseNormalizedNamed + TagNameOnly) by hand:
 *   reference := name [ ":" tag ] [ "@" digest ];  name := [domain "/"] path
 * with the domain split and Docker Hub canonicalization of normalize.go. */
#include "basic/reference.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DOCKER_HUB_AUTH_KEY "https://index.docker.io/v1/"
#define PATH_MAX_LEN 255
#define TAG_MAX_LEN 128

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}
static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || is_digit(c);
}
static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
static bool is_word(char c) {
        return is_alnum(c) || c == '_';
}
static bool is_xdigit(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* host [":" port]; host := domain-component ("." domain-component)* | "[" [0-9a-fA-F:]+ "]" */
static bool domain_is_valid(const char *s, size_t n) {
        const char *p = s, *end = s + n;

        if (p < end && *p == '[') {
                const char *q = p + 1;
                for (; q < end && *q != ']'; q++)
                        if (!is_xdigit(*q) && *q != ':')
                                return false;
                if (q >= end || q == p + 1)
                        return false;
                p = q + 1;
        } else
                for (;;) {
                        const char *start = p;
                        for (; p < end && (is_alnum(*p) || *p == '-'); p++)
                                ;
                        if (p == start || *start == '-' || p[-1] == '-')
                                return false;
                        if (p < end && *p == '.') {
                                p++;
                                continue;
                        }
                        break;
                }

        if (p == end)
                return true;
        if (*p != ':' || ++p == end)
                return false;
        for (; p < end; p++)
                if (!is_digit(*p))
                        return false;
        return true;
}

/* path-component ("/" path-component)*, each alnum+ joined by ".", "_", "__" or "-"+. Returns how
 * far the path goes, or 0 when it is malformed. */
static size_t path_span(const char *s) {
        size_t i = 0;

        for (;;) {
                if (!is_lower_alnum(s[i]))
                        return 0;
                while (is_lower_alnum(s[i]))
                        i++;
                for (;;) {
                        size_t j = i;
                        if (s[j] == '.')
                                j++;
                        else if (s[j] == '_')
                                j += s[j + 1] == '_' ? 2 : 1;
                        else if (s[j] == '-')
                                while (s[j] == '-')
                                        j++;
                        else
                                break;
                        if (!is_lower_alnum(s[j]))
                                return 0;
                        i = j;
                        while (is_lower_alnum(s[i]))
                                i++;
                }
                if (s[i] != '/')
                        return i;
                i++;
        }
}

/* go-digest's registered algorithms, with the lowercase hex length each requires. */
static bool digest_is_valid(const char *s, const char **ret_reason) {
        static const struct { const char *name; size_t hex; } algs[] = {
                { "sha256", 64 }, { "sha384", 96 }, { "sha512", 128 },
        };
        const char *colon = strchr(s, ':'), *hex;
        size_t alen, n;

        *ret_reason = "invalid digest (expected sha256: and 64 lowercase hex digits)";
        if (!colon || colon == s)
                return false;
        /* digest-algorithm: [A-Za-z][A-Za-z0-9]* joined by [-_+.]; digest-hex: [0-9a-fA-F]{32,} */
        for (const char *p = s; p < colon; p++) {
                bool sep = *p == '-' || *p == '_' || *p == '+' || *p == '.';
                bool first = p == s || strchr("-_+.", p[-1]);
                if (first ? !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) : !(is_alnum(*p) || sep))
                        return false;
        }
        if (strchr("-_+.", colon[-1]))
                return false;
        hex = colon + 1;
        n = strlen(hex);
        if (n < 32)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_xdigit(hex[i]))
                        return false;

        alen = (size_t) (colon - s);
        for (size_t k = 0; k < ELEMENTSOF(algs); k++) {
                if (strlen(algs[k].name) != alen || strncmp(algs[k].name, s, alen) != 0)
                        continue;
                if (n != algs[k].hex)
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (hex[i] >= 'A' && hex[i] <= 'F')
                                return false;
                return true;
        }
        *ret_reason = "unsupported digest algorithm (sha256, sha384 or sha512)";
        return false;
}

static bool is_identifier(const char *s) {
        size_t n = strlen(s);

        if (n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
                        return false;
        return true;
}

static int fail(const char **ret_reason, const char *why) {
        if (ret_reason)
                *ret_reason = why;
        return -EINVAL;
}

int reference_parse_reason(const char *s, ImageRef **ret, const char **ret_reason) {
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_free_ char *remainder = NULL;
        const char *slash, *rest, *tag = NULL, *digest = NULL, *why;
        size_t domain_len, path_len, tag_len = 0;
        bool official = false;

        if (!s || !*s)
                return fail(ret_reason, "reference is empty");
        if (is_identifier(s))
                return fail(ret_reason, "a 64-character hexadecimal string is an image ID, not a reference");

        ref = calloc(1, sizeof(ImageRef));
        if (!ref)
                return -ENOMEM;

        /* splitDockerDomain(): the first component is a registry when it looks like one. */
        slash = strchr(s, '/');
        if (slash) {
                size_t n = (size_t) (slash - s);
                bool upper = false;

                for (size_t i = 0; i < n; i++)
                        upper = upper || (s[i] >= 'A' && s[i] <= 'Z');
                if ((n == 9 && strncmp(s, "localhost", 9) == 0) || memchr(s, '.', n) || memchr(s, ':', n) || upper) {
                        domain_len = n;
                        rest = slash + 1;
                        if (n == strlen(LEGACY_DOMAIN) && strncmp(s, LEGACY_DOMAIN, n) == 0)
                                ref->domain = strdup(DEFAULT_DOMAIN);
                        else
                                ref->domain = strndup(s, n);
                } else {
                        domain_len = 0;
                        rest = s;
                        ref->domain = strdup(DEFAULT_DOMAIN);
                }
        } else {
                domain_len = 0;
                rest = s;
                ref->domain = strdup(DEFAULT_DOMAIN);
        }
        if (!ref->domain)
                return -ENOMEM;
        if (domain_len > 0 && !domain_is_valid(s, domain_len))
                return fail(ret_reason, "invalid registry host");

        /* Hub names without a namespace live under library/: "docker.io/ubuntu" is "library/ubuntu". */
        official = streq(ref->domain, DEFAULT_DOMAIN) && !strchr(rest, '/');
        if (asprintf(&remainder, "%s%s", official ? OFFICIAL_PREFIX : "", rest) < 0)
                return -ENOMEM;

        for (const char *p = remainder; *p && *p != ':'; p++)
                if (*p >= 'A' && *p <= 'Z')
                        return fail(ret_reason, "repository name must be lowercase");

        path_len = path_span(remainder);
        if (path_len == 0)
                return fail(ret_reason, "invalid repository name (lowercase letters and digits, "
                                        "joined by '.', '_', '__', '-' or '/')");
        if (path_len > PATH_MAX_LEN)
                return fail(ret_reason, "repository name must not be more than 255 characters");

        rest = remainder + path_len;
        if (*rest == ':') {
                tag = rest + 1;
                tag_len = strcspn(tag, "@");
                if (tag_len == 0 || tag_len > TAG_MAX_LEN || !is_word(tag[0]))
                        return fail(ret_reason, "invalid tag (at most 128 letters, digits, '_', '.' or '-', "
                                                "not starting with '.' or '-')");
                for (size_t i = 0; i < tag_len; i++)
                        if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-')
                                return fail(ret_reason, "invalid tag (at most 128 letters, digits, '_', '.' or "
                                                        "'-', not starting with '.' or '-')");
                rest = tag + tag_len;
        }
        if (*rest == '@') {
                digest = rest + 1;
                if (!digest_is_valid(digest, &why))
                        return fail(ret_reason, why);
                rest += strlen(rest);
        }
        if (*rest)
                return fail(ret_reason, "invalid reference format");

        ref->path = strndup(remainder, path_len);
        if (!ref->path)
                return -ENOMEM;
        if (tag)
                ref->tag = strndup(tag, tag_len);
        else if (!digest)
                ref->tag = strdup("latest");
        if ((tag || !digest) && !ref->tag)
                return -ENOMEM;
        if (digest && !(ref->digest = strdup(digest)))
                return -ENOMEM;

        *ret = TAKE_PTR(ref);
        return 0;
}

int reference_parse(const char *s, ImageRef **ret) {
        return reference_parse_reason(s, ret, NULL);
}

ImageRef *reference_free(ImageRef *r) {
        if (!r)
                return NULL;
        free(r->domain);
        free(r->path);
        free(r->tag);
        free(r->digest);
        free(r);
        return NULL;
}

int reference_to_string(const ImageRef *r, char **ret) {
        char *s;

        if (asprintf(&s, "%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ?: "",
                     r->digest ? "@" : "", r->digest ?: "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int reference_repository(const ImageRef *r, char **ret) {
        char *s;

        if (asprintf(&s, "%s/%s", r->domain, r->path) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

const char *reference_registry_host(const ImageRef *r) {
        if (streq(r->domain, DEFAULT_DOMAIN))
                return DOCKER_HUB_AUTH_KEY;
        return r->domain;
}
