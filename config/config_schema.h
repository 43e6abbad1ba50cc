/* config_schema.h: the one table of pullwatch.yaml keys (dotted path, type, Config field, default, help)
 * that defaults, loading, validation, dump and comparison all walk. Internal to config/; does no I/O. */
#pragma once

#include "config/config.h"

typedef enum ConfigType {
        CONFIG_TYPE_STRING,      /* char *, never NULL */
        CONFIG_TYPE_STRING_OPT,  /* char *, null in the file unsets it */
        CONFIG_TYPE_STRV,        /* char **, one string or a list; never NULL once loaded */
        CONFIG_TYPE_DURATION,    /* usec_t */
        CONFIG_TYPE_SIZE,        /* uint64_t bytes */
        CONFIG_TYPE_UNSIGNED,    /* unsigned */
        CONFIG_TYPE_RUNTIME,     /* RuntimeKind */
        CONFIG_TYPE_BOOL,        /* bool: true or false */
} ConfigType;

typedef enum ConfigCheck {
        CONFIG_CHECK_NONE,
        CONFIG_CHECK_ABSOLUTE_PATH,
        CONFIG_CHECK_NAMESPACE,
        CONFIG_CHECK_PLATFORM,
        CONFIG_CHECK_HOST_PORT,
        CONFIG_CHECK_URL,
} ConfigCheck;

enum {
        CONFIG_NONZERO = 1U << 0,         /* 0 is refused */
        CONFIG_AT_LEAST_SAMPLE = 1U << 1, /* a window shorter than watchdog.sample_interval is never seen */
        CONFIG_PERCENT = 1U << 2,         /* an unsigned at most 100 */
};

typedef struct ConfigOption {
        const char *key;               /* "watchdog.hang_quiet" */
        ConfigType type;
        size_t offset;                 /* into Config */
        const char *def;               /* default, in the file's syntax; NULL = unset */
        const char *const *def_list;   /* default of a list */
        unsigned flags;
        ConfigCheck check;
        const char *help;              /* one line, for the example file and --help */
} ConfigOption;

extern const ConfigOption config_options[];
extern const size_t config_options_count;

const ConfigOption *config_option_find(const char *key);
/* True when some key starts with "prefix.". */
bool config_section_exists(const char *prefix);

/* "a duration like 90s, 5m or 1h30m": what a value of this option looks like. */
const char *config_option_expected(const ConfigOption *o);
/* The same for one item of a list option. */
const char *config_option_expected_item(const ConfigOption *o);

/* Parse s for a scalar option and store it in c, releasing the old value. A bad value gives -EINVAL or
 * -ERANGE with ret_error's message "expected ..., got ..." (the caller adds file, position and key);
 * -ENOMEM otherwise. */
int config_option_set(Config *c, const ConfigOption *o, const char *s, ErrorDetail *ret_error);
/* Unset an optional string (null in the file). */
void config_option_unset(Config *c, const ConfigOption *o);
/* Validate one list item; same error contract as config_option_set. */
int config_option_check_item(const ConfigOption *o, const char *s, ErrorDetail *ret_error);
/* Store a list, taking ownership of l. */
void config_option_set_strv(Config *c, const ConfigOption *o, char **l);

void config_option_free(Config *c, const ConfigOption *o);
bool config_option_equal(const Config *a, const Config *b, const ConfigOption *o);
/* The value as YAML, after "key:" (a leading space or a newline and an indented list). */
int config_option_dump(const Config *c, const ConfigOption *o, unsigned indent, FILE *f);
/* The value in a human form for messages. Caller frees. */
char *config_option_to_string(const Config *c, const ConfigOption *o);
