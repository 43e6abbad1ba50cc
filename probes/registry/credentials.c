/* credentials.c: docker config.json lookup (auths, with credsStore/credHelpers detected but not run)
 * and the Engine's X-Registry-Auth encoding. Every buffer that held a secret is zeroed before free. */
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "probes/registry/credentials.h"
#include "basic/read_file.h"

#define CREDENTIALS_FILE_MAX (4U * 1024U * 1024U)

char *credential_secret_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
        return NULL;
}

int credential_copy(const Credential *c, Credential **ret) {
        _cleanup_credential_ Credential *n = calloc(1, sizeof(*n));

        if (!n)
                return -ENOMEM;
        if ((c->username && !(n->username = strdup(c->username))) ||
            (c->password && !(n->password = strdup(c->password))) ||
            (c->identity_token && !(n->identity_token = strdup(c->identity_token))) ||
            (c->server && !(n->server = strdup(c->server))))
                return -ENOMEM;
        *ret = TAKE_PTR(n);
        return 0;
}

Credential *credential_free(Credential *c) {
        if (!c)
                return NULL;
        credential_secret_free(c->username);
        credential_secret_free(c->password);
        credential_secret_free(c->identity_token);
        credential_secret_free(c->server);
        explicit_bzero(c, sizeof *c);
        free(c);
        return NULL;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *base64_encode(const unsigned char *in, size_t n, const char *alphabet) {
        char *out = malloc((n + 2) / 3 * 4 + 1), *p = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t) in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                *p++ = alphabet[(v >> 18) & 63];
                *p++ = alphabet[(v >> 12) & 63];
                *p++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
                *p++ = i + 2 < n ? alphabet[v & 63] : '=';
        }
        *p = 0;
        return out;
}

/* Standard alphabet; padding optional (docker writes it, hand-made files sometimes do not). The result
 * is NUL-terminated; *ret_len excludes it. */
static int base64_decode(const char *s, char **ret, size_t *ret_len) {
        size_t n = strlen(s), len = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        char *out;

        while (n > 0 && s[n - 1] == '=')
                n--;
        if (strlen(s) - n > 2 || n % 4 == 1 || (strlen(s) != n && strlen(s) % 4 != 0))
                return -EINVAL;
        out = malloc(n / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *c = memchr(b64_std, s[i], 64);
                if (!c || s[i] == 0) {
                        explicit_bzero(out, n / 4 * 3 + 3);
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t) (c - b64_std);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[len++] = (char) ((acc >> bits) & 0xFF);
                }
        }
        out[len] = 0;
        *ret = out;
        *ret_len = len;
        return 0;
}

/* docker's ConvertToHostname, plus Docker Hub's aliases folded into one name. */
static char *host_key(const char *s) {
        static const char *const hub[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
        size_t n;

        if (startswith(s, "http://"))
                s += 7;
        else if (startswith(s, "https://"))
                s += 8;
        n = strcspn(s, "/");
        for (size_t i = 0; i < ELEMENTSOF(hub); i++)
                if (strlen(hub[i]) == n && strncmp(hub[i], s, n) == 0)
                        return strdup("docker.io");
        return strndup(s, n);
}

static bool host_matches(const char *key, const char *want_key) {
        _cleanup_free_ char *k = host_key(key);
        return k && streq(k, want_key);
}

/* An error about one file: source is the file, the message never quotes a secret. */
#define file_error(ret_error, r, path, fmt, ...) error_detail_set(ret_error, r, path, 0, 0, NULL, fmt, ##__VA_ARGS__)

int credential_from_fields(const char *username, const char *password, const char *auth, const char *identity_token,
                           const char *server, Credential **ret) {
        _cleanup_credential_ Credential *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        if (auth && *auth) {
                char *decoded = NULL, *colon;
                size_t len;
                int r = base64_decode(auth, &decoded, &len);
                if (r < 0)
                        return r == -ENOMEM ? r : -EINVAL;
                colon = strchr(decoded, ':');
                if (!colon || strlen(decoded) != len) {
                        credential_secret_free(decoded);
                        return -EINVAL;
                }
                c->username = strndup(decoded, (size_t) (colon - decoded));
                c->password = strdup(colon + 1);
                credential_secret_free(decoded);
                if (!c->username || !c->password)
                        return -ENOMEM;
        } else if ((username && *username && !(c->username = strdup(username))) ||
                   (password && *password && !(c->password = strdup(password))))
                return -ENOMEM;
        if ((identity_token && *identity_token && !(c->identity_token = strdup(identity_token))) ||
            (server && *server && !(c->server = strdup(server))))
                return -ENOMEM;
        if (!c->username && !c->identity_token) {
                *ret = NULL; /* nothing to log in with: anonymous */
                return 0;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_size, ErrorDetail *ret_error) {
        const char *step = NULL;
        char ebuf[128];
        int r;

        r = read_file_full_step(path, CREDENTIALS_FILE_MAX, READ_FILE_SECRET, ret, ret_size, &step);
        if (r == -ENOENT && streq_ptr(step, "open")) {
                *ret = NULL;
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r == -EINVAL || r == -EISDIR)
                return file_error(ret_error, -EINVAL, path, "not a regular file");
        if (r == -EFBIG)
                return file_error(ret_error, -EFBIG, path, "larger than %u bytes", CREDENTIALS_FILE_MAX);
        if (r < 0)
                return file_error(ret_error, r, path, "cannot %s: %s", step ?: "read", strerror_r(-r, ebuf, sizeof ebuf));
        return 0;
}

static const char *string_field(json_t *entry, const char *name) {
        const char *s = json_string_value(json_object_get(entry, name));
        return s && *s ? s : NULL;
}

/* Check one auths entry the way docker's loader would; fill c only when asked. */
static int parse_entry(const char *path, const char *key, json_t *entry, Credential *c, ErrorDetail *ret_error) {
        static const char *const fields[] = { "auth", "username", "password", "identitytoken", "email",
                                              "serveraddress", "registrytoken" };
        const char *auth;

        if (!json_is_object(entry))
                return file_error(ret_error, -EINVAL, path, "auths[\"%s\"] is not an object", key);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                json_t *v = json_object_get(entry, fields[i]);
                if (v && !json_is_string(v))
                        return file_error(ret_error, -EINVAL, path, "auths[\"%s\"].%s is not a string", key,
                                         fields[i]);
        }

        auth = string_field(entry, "auth");
        if (auth) {
                char *decoded = NULL, *colon;
                size_t len;
                int r = base64_decode(auth, &decoded, &len);

                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return file_error(ret_error, -EINVAL, path, "auths[\"%s\"].auth is not valid base64", key);
                colon = strchr(decoded, ':');
                if (!colon || strlen(decoded) != len) {
                        credential_secret_free(decoded);
                        return file_error(ret_error, -EINVAL, path, "auths[\"%s\"].auth is not the base64 of user:password",
                                          key);
                }
                if (c) {
                        c->username = strndup(decoded, (size_t) (colon - decoded));
                        c->password = strdup(colon + 1);
                }
                credential_secret_free(decoded);
                if (c && (!c->username || !c->password))
                        return -ENOMEM;
        } else if (c) {
                const char *u = string_field(entry, "username"), *p = string_field(entry, "password");
                if ((u && !(c->username = strdup(u))) || (p && !(c->password = strdup(p))))
                        return -ENOMEM;
        }
        if (c) {
                const char *t = string_field(entry, "identitytoken");
                if (t && !(c->identity_token = strdup(t)))
                        return -ENOMEM;
        }
        return 0;
}

static bool entry_has_login(json_t *entry) {
        return string_field(entry, "auth") || string_field(entry, "username") || string_field(entry, "identitytoken");
}

/* One file: 0 with *ret set or NULL; *ret_helper names an external helper holding this registry. */
static int lookup_file(const char *path, const char *host, const char *want, Credential **ret, ErrorDetail *ret_helper,
                       ErrorDetail *ret_error) {
        json_auto_t *root = NULL;
        json_t *auths, *helpers, *entry, *match = NULL;
        const char *key, *store, *match_key = host;
        char *text = NULL;
        size_t size;
        json_error_t jerr;
        int r;

        r = read_file(path, &text, &size, ret_error);
        if (r < 0 || !text) {
                *ret = NULL;
                return r;
        }
        root = json_loadb(text, size, 0, &jerr);
        explicit_bzero(text, size);
        free(text);
        /* jansson's own message quotes the text near the error, which may be a secret: position only. */
        if (!root)
                return file_error(ret_error, -EINVAL, path, "malformed JSON at line %d column %d", jerr.line,
                                 jerr.column);
        if (!json_is_object(root))
                return file_error(ret_error, -EINVAL, path, "expected a JSON object at the top level");

        auths = json_object_get(root, "auths");
        if (auths && !json_is_object(auths))
                return file_error(ret_error, -EINVAL, path, "\"auths\" is not an object");
        json_object_foreach(auths, key, entry) {
                r = parse_entry(path, key, entry, NULL, ret_error);
                if (r < 0)
                        return r;
        }

        entry = json_object_get(auths, host);
        if (entry && entry_has_login(entry))
                match = entry;
        json_object_foreach(auths, key, entry)
                if (!match && entry_has_login(entry) && host_matches(key, want)) {
                        match = entry;
                        match_key = key;
                }

        if (match) {
                _cleanup_credential_ Credential *c = calloc(1, sizeof(Credential));

                if (!c)
                        return -ENOMEM;
                r = parse_entry(path, match_key, match, c, ret_error);
                if (r < 0)
                        return r;
                c->server = strdup(host);
                if (!c->server)
                        return -ENOMEM;
                *ret = TAKE_PTR(c);
                return 0;
        }

        helpers = json_object_get(root, "credHelpers");
        if (helpers && !json_is_object(helpers))
                return file_error(ret_error, -EINVAL, path, "\"credHelpers\" is not an object");
        store = json_string_value(json_object_get(root, "credsStore"));
        if (json_object_get(root, "credsStore") && !store)
                return file_error(ret_error, -EINVAL, path, "\"credsStore\" is not a string");
        if (!ret_helper->message) {
                const char *helper = NULL;
                json_t *v;

                json_object_foreach(helpers, key, v)
                        if (!helper && json_is_string(v) && host_matches(key, want))
                                helper = json_string_value(v);
                if (helper || (store && *store)) {
                        r = file_error(ret_helper, 0, path, "the login for %s is kept by docker-credential-%s (%s), "
                                       "which pullwatch does not run; add an \"auths\" entry to one of the credentials "
                                       "files", host, helper ?: store, helper ? "credHelpers" : "credsStore");
                        if (r < 0)
                                return r;
                }
        }
        *ret = NULL;
        return 0;
}

int credentials_lookup_full(char *const *files, const char *registry_host, Credential **ret, ErrorDetail *ret_error) {
        _cleanup_free_ char *want = NULL;
        _cleanup_(error_detail_done) ErrorDetail helper = {};
        int r;

        if (!registry_host || !*registry_host)
                return error_detail_setf(ret_error, -EINVAL, "no registry given");
        want = host_key(registry_host);
        if (!want)
                return -ENOMEM;

        for (char *const *f = files; f && *f; f++) {
                Credential *c = NULL;

                r = lookup_file(*f, registry_host, want, &c, &helper, ret_error);
                if (r < 0)
                        return r;
                if (c) {
                        *ret = c;
                        return 0;
                }
        }
        if (helper.message) {
                if (ret_error)
                        error_detail_move(ret_error, &helper);
                return -EOPNOTSUPP;
        }
        *ret = NULL;
        return 0;
}

int credentials_lookup(char *const *files, const char *registry_host, Credential **ret) {
        return credentials_lookup_full(files, registry_host, ret, NULL);
}

/* A JSON string literal; s is UTF-8 from a JSON file or the caller. */
static void json_quote(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

int credential_to_docker_auth_header(const Credential *c, char **ret) {
        char *json = NULL, *out;
        size_t size = 0;
        FILE *f;

        /* The buffer holds the secret while it grows; build it big enough once so no copy is left behind. */
        size = 64 + 6 * (strlen(c->username ?: "") + strlen(c->password ?: "") + strlen(c->identity_token ?: "") +
                         strlen(c->server ?: ""));
        json = calloc(1, size);
        if (!json)
                return -ENOMEM;
        f = fmemopen(json, size, "w");
        if (!f) {
                free(json);
                return -ENOMEM;
        }
        setvbuf(f, NULL, _IONBF, 0);
        if (c->identity_token) {
                fputs("{\"identitytoken\":", f);
                json_quote(f, c->identity_token);
        } else {
                fputs("{\"username\":", f);
                json_quote(f, c->username ?: "");
                fputs(",\"password\":", f);
                json_quote(f, c->password ?: "");
        }
        if (c->server) {
                fputs(",\"serveraddress\":", f);
                json_quote(f, c->server);
        }
        fputc('}', f);
        fclose(f);

        out = base64_encode((const unsigned char *) json, strlen(json), b64_url);
        explicit_bzero(json, size);
        free(json);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
