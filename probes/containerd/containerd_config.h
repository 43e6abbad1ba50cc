/* containerd_config.h: containerd's own config.toml, read for the one setting containerd 2.x no
 * longer reports through CRI Status: the CRI registry config_path (where its hosts.toml live). Reads
 * files and /proc; no network, no logs. */
#pragma once

#include <sys/types.h>
#include "basic/error_detail.h"
#include "probes/registry/registry_trust.h"

/* The config file containerd PID runs with: its --config / -c argument (relative to its working
 * directory), else /etc/containerd/config.toml. proc_root NULL = /proc. 0, or -errno when PID's
 * command line cannot be read. */
int containerd_config_file_of(const char *proc_root, pid_t pid, char **ret);

/* The CRI registry config_path that containerd takes from the config file `path` (the name the
 * runtime uses; opened below root_prefix, like "/proc/123/root", when that is not NULL) and the files
 * it imports (`imports`, globs, later files win): plugins."io.containerd.cri.v1.images".registry
 * .config_path in a version 3 file, plugins."io.containerd.grpc.v1.cri".registry.config_path in
 * version 2, plugins.cri.registry.config_path in version 1. 0 with *ret_config_path NULL when no file
 * sets one (or sets ''), else with *ret_from "FILE:LINE" of the definition used; -ENOENT when `path`
 * does not exist; -EINVAL on a file it cannot read, with ret_error (may be NULL) naming source file,
 * line and field: "FILE:LINE: FIELD: what". */
int containerd_config_registry_path(const char *root_prefix, const char *path, char **ret_config_path,
                                    char **ret_from, ErrorDetail *ret_error);

/* containerd's config file (containerd_config.c), read below root_prefix (NULL or "/proc/PID/root"):
 * its registry config_path replaces certs_dir. -ENOENT when the file or the key is missing (certs_dir
 * kept); -EINVAL with rt->error set when the file cannot be read. */
int runtime_registry_read_containerd_config(RuntimeRegistry *rt, const char *root_prefix, const char *path);
