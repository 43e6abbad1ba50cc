/* credentials.h: registry credentials read from docker config.json files, and the X-Registry-Auth
 * value the Docker Engine takes. Reads files only: never runs credential helpers, never logs, and never
 * puts a secret in an error message. */
#pragma once

#include "basic/error_detail.h"
#include "basic/macro.h"

typedef struct Credential {
        char *username;        /* NULL with an identity token only */
        char *password;
        char *identity_token;  /* OAuth refresh token from `docker login`, NULL when none */
        char *server;          /* the registry key asked for: "https://index.docker.io/v1/", "ghcr.io" */
} Credential;

/* Look registry_host (reference_registry_host(): "https://index.docker.io/v1/" for Docker Hub, else
 * "host[:port]") up in files, in order; missing files are skipped, the first file with an entry wins.
 * Keys match like docker's: exactly, or after dropping an http(s):// prefix and a /v1/ or /v2/ path, with
 * docker.io, index.docker.io and registry-1.docker.io as one registry.
 * Returns 0 with *ret NULL when nothing matches. Errors fill ret_error (may be NULL; caller's, starting
 * empty, error_detail_done() after) with source the file and a message that never quotes a secret:
 *   -EINVAL      a file is not valid JSON or not a docker config (bad auths entry, bad base64, ...)
 *   -EOPNOTSUPP  no auths entry, but a credsStore/credHelpers helper holds this registry's login;
 *                callers may report it and pull anonymously
 *   -errno       a file exists but cannot be read */
int credentials_lookup_full(char *const *files, const char *registry_host, Credential **ret, ErrorDetail *ret_error);
int credentials_lookup(char *const *files, const char *registry_host, Credential **ret);

/* Zeroes the secrets (explicit_bzero) before freeing. */
Credential *credential_free(Credential *c);
/* A credential from a client's own fields (CRI's AuthConfig): auth, when set, is base64 of user:password
 * and wins over username/password. 0 with *ret NULL when nothing logs in (anonymous), -EINVAL on bad
 * base64, -ENOMEM. */
int credential_from_fields(const char *username, const char *password, const char *auth, const char *identity_token,
                           const char *server, Credential **ret);
/* A deep copy of c (the secrets too). 0 or -ENOMEM. */
int credential_copy(const Credential *c, Credential **ret);
static inline void credential_freep(Credential **c) { credential_free(*c); }
#define _cleanup_credential_ _cleanup_(credential_freep)

/* The X-Registry-Auth header value for POST /images/create: base64url (padded, as the engine decodes it)
 * of {"username","password","serveraddress"}, or {"identitytoken","serveraddress"} when there is a token.
 * The result holds the secret: release it with credential_secret_free(). */
int credential_to_docker_auth_header(const Credential *c, char **ret);

/* explicit_bzero + free; returns NULL. */
char *credential_secret_free(char *s);
static inline void credential_secret_freep(char **s) { credential_secret_free(*s); }
#define _cleanup_secret_free_ _cleanup_(credential_secret_freep)
