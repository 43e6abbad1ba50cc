/* units.h: durations and sizes, parsed and formatted so that one reads back the other. Pure. */
#pragma once

#include "basic/macro.h"

/* Value parsers for the config and the preheat list: "90s", "5m", "1h30m", "250ms", "1.5s", units us ms s m h d,
 * bare number = seconds, "infinity" = USEC_INFINITY (config keys refuse it); "64KiB", "10MB", "1.5GiB",
 * K/M/G/T = 1024s, KB/MB/GB/TB = 1000s, bare number = bytes. Return 0 or -EINVAL/-ERANGE. */
int parse_duration(const char *s, usec_t *ret);
int parse_size(const char *s, uint64_t *ret);
/* Forms that parse back exactly, for dump and messages: "1m30s", "5m", "1h30m", "1s500ms"; "64KiB",
 * "10MB", "1025B". NULL on OOM; caller frees. */
char *format_duration(usec_t u);
char *format_size(uint64_t b);
/* Approximate, for people: "6.3MiB", "512B". Never fails; truncates to n. */
void format_bytes_human(uint64_t b, char *buf, size_t n);
