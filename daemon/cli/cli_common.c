/* cli_common.c: what every subcommand shares: loading --config with a one-line error, and options
 * laid over the config's strings. */
#include <stdio.h>

#include <assert.h>

#include "basic/escape.h"
#include "daemon/cli/cli.h"

int cli_load_config(const char *path, Config **ret) {
        ErrorDetail err = {};
        int r = config_load(path ? path : PULLWATCH_DEFAULT_CONFIG, path == NULL, ret, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = error_detail_format(&err);
                fprintf_line(stderr, "pullwatch: %s", msg ? msg : strerror(-r));
                error_detail_done(&err);
                return EXIT_USAGE;
        }
        return 0;
}

int cli_set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int cli_add_signal(sd_event *event, int sig, const char *description, sd_event_signal_handler_t handler,
                   void *userdata) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        int r;

        assert(event);
        assert(description);
        r = sd_event_add_signal(event, &s, sig, handler, userdata);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s, description);
        return sd_event_source_set_floating(s, true);
}
