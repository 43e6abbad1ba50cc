/* docker_ingest.h: keeps a Docker pull's partial downloads for the next attempt when dockerd pulls
 * through containerd (the containerd image store). dockerd deletes its own lease when a pull fails (a
 * reset mid-layer) and containerd then collects the partial ingest; this holds the pull's ingests and
 * blobs in pullwatch's lease instead. Talks to containerd only; never logs. */
#pragma once

#include "probes/transport/curl_glue.h"

typedef struct DockerIngests DockerIngests;

int docker_ingests_new(CurlGlue *glue, const char *image, DockerIngests **ret);
/* A layer id of this pull as dockerd's stream names it: the first 12 hex of the compressed digest. */
void docker_ingests_layer(DockerIngests *h, const char *id);
/* A layer of this pull by its full digest (the registry's manifest): held before its ingest exists. */
void docker_ingests_expect(DockerIngests *h, const char *digest);
/* dockerd pulls through the containerd at socket, in namespace (from /info): lease and watch there. */
int docker_ingests_start(DockerIngests *h, const char *socket, const char *namespace);
/* The pull is over. release: nothing to resume (success, permanent failure); the Delete is left to
 * the glue. Otherwise the lease stays for the next attempt. */
DockerIngests *docker_ingests_free(DockerIngests *h, bool release);
