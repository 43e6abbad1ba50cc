/* units.c: durations and sizes, parsed and formatted so that one reads back the other. */
#include <inttypes.h>
#include <strings.h>

#include "basic/units.h"

typedef struct Unit {
        const char *name;
        uint64_t factor;
} Unit;

static const Unit duration_units[] = {
        { "us", 1 },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
};

static const Unit size_units[] = {
        { "B", 1 },
        { "K", 1ULL << 10 },   { "KiB", 1ULL << 10 }, { "KB", 1000ULL },
        { "M", 1ULL << 20 },   { "MiB", 1ULL << 20 }, { "MB", 1000ULL * 1000 },
        { "G", 1ULL << 30 },   { "GiB", 1ULL << 30 }, { "GB", 1000ULL * 1000 * 1000 },
        { "T", 1ULL << 40 },   { "TiB", 1ULL << 40 }, { "TB", 1000ULL * 1000 * 1000 * 1000 },
};

/* "12", "1.5", ".5": an integer part and a fraction kept as digits/10^scale. Advances *p. */
static int parse_decimal(const char **p, uint64_t *ret_int, uint64_t *ret_frac, uint64_t *ret_scale) {
        const char *s = *p;
        uint64_t i = 0, frac = 0, scale = 1;
        bool digits = false;

        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned) (*s - '0');
                if (i > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                i = i * 10 + d;
                digits = true;
        }
        if (*s == '.') {
                s++;
                for (; *s >= '0' && *s <= '9'; s++) {
                        /* Beyond 18 digits nothing we store can change. */
                        if (scale < 1000000000000000000ULL) {
                                frac = frac * 10 + (uint64_t) (*s - '0');
                                scale *= 10;
                        }
                        digits = true;
                }
        }
        if (!digits)
                return -EINVAL;
        *p = s;
        *ret_int = i;
        *ret_frac = frac;
        *ret_scale = scale;
        return 0;
}

/* i.frac * factor, rounded to the nearest unit, added to *total with overflow checks. */
static int accumulate(uint64_t i, uint64_t frac, uint64_t scale, uint64_t factor, uint64_t *total) {
        unsigned __int128 v = (unsigned __int128) i * factor;

        v += ((unsigned __int128) frac * factor + scale / 2) / scale;
        v += *total;
        if (v >= UINT64_MAX) /* UINT64_MAX is USEC_INFINITY, never a finite result */
                return -ERANGE;
        *total = (uint64_t) v;
        return 0;
}

int parse_duration(const char *s, usec_t *ret) {
        uint64_t total = 0;
        const char *p = s;
        int r;

        if (!s || !*s)
                return -EINVAL;
        if (streq(s, "infinity")) {
                *ret = USEC_INFINITY;
                return 0;
        }

        while (*p) {
                const char *start = p, *u;
                uint64_t i, frac, scale;
                const Unit *unit = NULL;
                size_t n;

                r = parse_decimal(&p, &i, &frac, &scale);
                if (r < 0)
                        return r;
                for (u = p; *u >= 'a' && *u <= 'z'; u++)
                        ;
                n = (size_t) (u - p);
                if (n == 0) {
                        /* A bare number is seconds, but only on its own: "1h30" is a typo. */
                        if (start != s || *p)
                                return -EINVAL;
                        unit = &duration_units[2];
                } else
                        for (size_t k = 0; k < ELEMENTSOF(duration_units); k++)
                                if (strlen(duration_units[k].name) == n && strncmp(duration_units[k].name, p, n) == 0)
                                        unit = &duration_units[k];
                if (!unit)
                        return -EINVAL;
                r = accumulate(i, frac, scale, unit->factor, &total);
                if (r < 0)
                        return r;
                p = u;
        }
        *ret = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        uint64_t i, frac, scale, total = 0;
        const Unit *unit = &size_units[0];
        const char *p = s;
        int r;

        if (!s || !*s)
                return -EINVAL;
        r = parse_decimal(&p, &i, &frac, &scale);
        if (r < 0)
                return r;
        if (*p == ' ') {
                /* "1 MiB" reads well; a trailing space is a typo */
                while (*p == ' ')
                        p++;
                if (!*p)
                        return -EINVAL;
        }
        if (*p) {
                unit = NULL;
                for (size_t k = 0; k < ELEMENTSOF(size_units); k++)
                        if (strcasecmp(size_units[k].name, p) == 0)
                                unit = &size_units[k];
                if (!unit)
                        return -EINVAL;
        }
        r = accumulate(i, frac, scale, unit->factor, &total);
        if (r < 0)
                return r;
        *ret = total;
        return 0;
}

char *format_duration(usec_t u) {
        char buf[128], *p = buf;

        if (u == USEC_INFINITY)
                return strdup("infinity");
        if (u == 0)
                return strdup("0s");
        for (size_t k = ELEMENTSOF(duration_units); k > 0; k--) {
                const Unit *unit = &duration_units[k - 1];
                uint64_t n = u / unit->factor;

                if (n == 0)
                        continue;
                p += sprintf(p, "%" PRIu64 "%s", n, unit->name);
                u -= n * unit->factor;
        }
        return strdup(buf);
}

/* The largest unit of the family that divides b exactly, as "<n><unit>". */
static void format_exact(uint64_t b, const char *const *names, const uint64_t *factors, size_t n, char *buf) {
        for (size_t k = n; k > 0; k--)
                if (b % factors[k - 1] == 0) {
                        sprintf(buf, "%" PRIu64 "%s", b / factors[k - 1], names[k - 1]);
                        return;
                }
        sprintf(buf, "%" PRIu64 "B", b);
}

char *format_size(uint64_t b) {
        static const char *const bin_names[] = { "KiB", "MiB", "GiB", "TiB" };
        static const uint64_t bin[] = { 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40 };
        static const char *const dec_names[] = { "KB", "MB", "GB", "TB" };
        static const uint64_t dec[] = { 1000ULL, 1000ULL * 1000, 1000ULL * 1000 * 1000, 1000ULL * 1000 * 1000 * 1000 };
        char a[64], d[64];

        if (b == 0)
                return strdup("0B");
        format_exact(b, bin_names, bin, ELEMENTSOF(bin), a);
        format_exact(b, dec_names, dec, ELEMENTSOF(dec), d);
        return strdup(strlen(d) < strlen(a) ? d : a);
}

void format_bytes_human(uint64_t b, char *buf, size_t n) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) b;
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        snprintf(buf, n, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
}
