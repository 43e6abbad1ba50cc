/* docker.h: the Docker Engine API over its unix socket: the pull driver (POST /images/create, its
 * progress stream mapped to phases) and short synchronous queries. Reports facts; decides nothing. */
#pragma once

#include "probes/docker/docker_store.h"

#include <jansson.h>
#include "probes/runtime/runtime.h"

/* Blocking request on a unix socket with a timeout, for short queries (never for pulls).
 * Returns 0 with the HTTP status and body, or a negative errno when the socket did not answer. */
int http_unix_request(const char *socket, const char *method, const char *path, usec_t timeout,
                      long *ret_status, char **ret_body);

/* GET /version: "20.10.24+dfsg1" and API "1.41". -ECONNREFUSED/-ENOENT when dockerd is not there. */
int docker_version(const char *socket, char **ret_version, char **ret_api);
/* GET /info: DockerRootDir and Driver. */
int docker_info(const char *socket, char **ret_root_dir, char **ret_driver);
/* Which image store the dockerd at socket uses (/info); release with docker_store_done(). */
int docker_store_query(const char *socket, DockerStore *ret);

/* Split a reference for the Engine API: fromImage keeps the name, tag is the tag or digest
 * ("latest" when neither is given, so dockerd does not pull every tag). */
int docker_split_reference(const char *image, char **ret_from, char **ret_tag);

/* Percent-encode for a query string. */
char *url_escape(const char *s);

/* The pull driver's operations (runtime.h); docker_driver (probes/drivers/docker_driver.c) lists them. */
int docker_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
                 void *userdata, RuntimePull **ret);
void docker_cancel(RuntimePull *p);
RuntimePull *docker_free(RuntimePull *p);
void docker_process(const Config *config, RuntimeProcess *ret);
int docker_confirm(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
                   void *userdata, RuntimeOp **ret);
int docker_ping_async(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                      RuntimeOp **ret);
int docker_ping(const Config *config, ErrorDetail *ret_error);
int docker_abandon(CurlGlue *glue, const Config *config, const PullRequest *req);
void docker_expect_layers(RuntimePull *p, const char *const *digests, size_t n);
