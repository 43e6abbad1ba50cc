/* fuzz_util.h: what the libFuzzer harnesses share: a NUL-terminated copy of the input, chunk sizes
 * drawn deterministically from the input itself, and a check that aborts (libFuzzer reports it). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property that must hold: abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* data as a C string; NULs inside cut it, as they would for the library's string inputs. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* xorshift64 seeded with FNV-1a of the input: split points that follow the input without taking
 * bytes from it, so seed files stay plain examples of the format. */
typedef struct FuzzRng {
        uint64_t s;
} FuzzRng;

static inline FuzzRng fuzz_rng(const uint8_t *data, size_t size) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 1099511628211ULL;
        return (FuzzRng) { .s = h ?: 1 };
}

static inline uint64_t fuzz_next(FuzzRng *r) {
        r->s ^= r->s << 13;
        r->s ^= r->s >> 7;
        r->s ^= r->s << 17;
        return r->s;
}

/* Mostly short chunks (1..16), sometimes up to 4 KiB, so both the copy and the no-copy paths run. */
static inline size_t fuzz_chunk(FuzzRng *r) {
        uint64_t x = fuzz_next(r);
        return (x & 3) == 0 ? 1 + (size_t) ((x >> 8) % 4096) : 1 + (size_t) ((x >> 8) % 16);
}
