/* timestamp.h: the wall clock, and "2026-11-26T11:16:02Z" <-> CLOCK_REALTIME usec. */
#pragma once

#include "basic/macro.h"

int format_timestamp(uint64_t usec, char *buf, size_t size);
int parse_timestamp(const char *s, uint64_t *ret);

static inline uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}
