/* cli.h: the subcommands of the pullwatch binary. Each returns the process exit code:
 * 0 success, 1 the pull (or the thing asked) failed, 2 usage or config error. */
#pragma once

#include <systemd/sd-event.h>

#include "config/config.h"

#define EXIT_PULL_FAILED 1
#define EXIT_USAGE 2

int cli_pull(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_watch(int argc, char **argv);
int cli_daemon(int argc, char **argv);
int cli_status(int argc, char **argv);

/* `pullwatch pull` through the daemon's control socket, so the pull is watched and alerted the way the
 * daemon's own are. Returns the exit code, or a negative errno when no daemon answers (-ENOENT,
 * -ECONNREFUSED, -EACCES...): the caller then pulls standalone. NULL arguments: the daemon's defaults. */
int cli_pull_via_daemon(const Config *config, const char *image, const char *runtime, const char *platform,
                        const char *namespace, bool json);

/* Load --config (or the default, which may be missing), printing "file:line:col: key: msg" to stderr
 * on error. Returns 0 or EXIT_USAGE. */
int cli_load_config(const char *path, Config **ret);
/* Replace a config string with an option's value: 0 or -ENOMEM. */
int cli_set_string(char **field, const char *value);
/* sd_event_add_signal() for the life of event (a floating source), named description so a stuck loop
 * can be read. 0 or -errno. */
int cli_add_signal(sd_event *event, int sig, const char *description, sd_event_signal_handler_t handler,
                   void *userdata);
