/* disk_growth.h: a bounded "is the extraction target growing?" probe over dockerd's overlay2 layer dirs
 * or containerd's overlayfs snapshots. Owns its scan state; never walks a whole tree in one sample. */
#pragma once

#include "basic/macro.h"

/* What it watches. With a subdir, the candidates are the DISK_GROWTH_CANDIDATES newest entries of dir
 * (by ctime; ones without subdir, like overlay2/l, and dockerd's "<id>-init" layers are skipped),
 * each watched at dir/<entry>/subdir: overlay2 + "diff" or snapshots + "fs". A layer being extracted
 * is a recently created one. Without a subdir, dir itself is the one target (a known snapshot).
 *
 * How it sees growth: ctime, not mtime (tar restores mtimes from the archive; nothing can set ctime
 * back). Per candidate it keeps a few "hot" directories and files (those seen changing last) and
 * re-stats them every sample, lists a hot directory whose ctime moved, checks the ancestors of the
 * latest change (an extraction that climbs back up creates a sibling there), and spends what is
 * left of the budget on a breadth-first sweep that resumes where the previous sample stopped, so
 * writing that goes on anywhere is found within one full pass and is hot from then on.
 *
 * The signal: a counter that only grows, by 1 + bytes of blocks gained for every entry seen changed
 * since the previous sample began. Equal signals: no change was seen; a bigger one: growth, roughly
 * by how many bytes. A change found later than that (the sweep came by late) is history, not life,
 * and does not count; nothing is counted twice. Limits: outside the hot set, a change made during
 * the previous sample and older than a change that sample saw can be missed; a backward step of the
 * wall clock makes one sample blind; a container started meanwhile writes into a new layer too and
 * reads as growth.
 *
 * Cost bound per sample (ret_cost_entries counts stat calls, i.e. entries examined):
 *   1 (stat of dir) + budget (DISK_GROWTH_BUDGET_DEFAULT = 2000 unless changed)
 *   + on a refresh only: one stat per subdirectory of dir (at most DISK_GROWTH_TOP_MAX) + one per
 *     new candidate tried (at most 4 x DISK_GROWTH_CANDIDATES).
 * A refresh happens on the first sample and then only when dir's ctime moved (an entry was created or
 * removed), at most once every DISK_GROWTH_REFRESH_EVERY samples. Memory: at most
 * DISK_GROWTH_QUEUE_MAX queued directory paths and 16 hot paths per candidate. */

#define DISK_GROWTH_CANDIDATES 4
#define DISK_GROWTH_BUDGET_DEFAULT 2000U
#define DISK_GROWTH_BUDGET_MIN 64U
#define DISK_GROWTH_TOP_MAX 16384U
#define DISK_GROWTH_REFRESH_EVERY 3U
#define DISK_GROWTH_QUEUE_MAX 4096U

typedef struct DiskGrowth DiskGrowth;

/* Only copies its arguments: dir need not exist yet (a runtime that has never pulled). */
int disk_growth_new(const char *dir, const char *subdir, DiskGrowth **ret);
DiskGrowth *disk_growth_free(DiskGrowth *d);
static inline void disk_growth_freep(DiskGrowth **d) { disk_growth_free(*d); }
#define _cleanup_disk_growth_ _cleanup_(disk_growth_freep)

/* Entries examined per sample, besides the stat of dir and a refresh. At least DISK_GROWTH_BUDGET_MIN. */
int disk_growth_set_budget(DiskGrowth *d, unsigned entries);

/* now is the caller's clock, remembered only. The first sample is the baseline. -ENOENT (or another
 * errno of opening/stat-ing dir) when dir is not there; signal and state are then unchanged. */
int disk_growth_sample(DiskGrowth *d, usec_t now, uint64_t *ret_signal, uint64_t *ret_cost_entries);

typedef struct DiskGrowthStats {
        usec_t at;                /* now of the last sample */
        unsigned n_candidates;
        unsigned n_hot;           /* hot entries over all candidates */
        const char *newest;       /* entry name of the newest candidate (NULL if none), owned by d */
        uint64_t passes;          /* full sweeps of the newest candidate started */
        uint64_t pass_entries;    /* entries and bytes (st_blocks) the last complete sweep of the */
        uint64_t pass_bytes;      /* newest candidate counted: its size as of one pass ago */
} DiskGrowthStats;

void disk_growth_stats(const DiskGrowth *d, DiskGrowthStats *ret);
