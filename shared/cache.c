/* cache.c - the versioned read-through World cache (see cache.h). */
#include "cache.h"

#include "check.h"
#include "db.h"

#include <stdatomic.h>

static _Atomic uint64_t cache_entries[DB_WORLD_ROWS + 1];
static _Atomic uint64_t cache_hits, cache_misses, cache_stale;

#define CACHE_VERSION(word) ((word) >> 32)
#define CACHE_VALUE(word)   ((int32_t)((word)&0xffffffffu))

bool cache_world_get(int32_t id, int32_t *value, cache_ticket *ticket)
{
    TRIAD_ASSERT(id >= 1 && id <= DB_WORLD_ROWS, "id out of range");
    uint64_t word = atomic_load_explicit(&cache_entries[id], memory_order_acquire);
    if (CACHE_VALUE(word) != 0) {
        *value = CACHE_VALUE(word);
        atomic_fetch_add_explicit(&cache_hits, 1, memory_order_relaxed);
        return true;
    }
    *ticket = word;
    atomic_fetch_add_explicit(&cache_misses, 1, memory_order_relaxed);
    return false;
}

void cache_world_fill(int32_t id, int32_t value, cache_ticket ticket)
{
    TRIAD_ASSERT(id >= 1 && id <= DB_WORLD_ROWS && value > 0, "bad entry");
    uint64_t expected = ticket;
    uint64_t filled = (CACHE_VERSION(ticket) << 32) | (uint32_t)value;
    /* Fails if another fill won (same value, harmless) or an invalidation moved the version. */
    if (!atomic_compare_exchange_strong_explicit(&cache_entries[id], &expected, filled,
                                                 memory_order_release, memory_order_relaxed) &&
        CACHE_VERSION(expected) != CACHE_VERSION(ticket))
        atomic_fetch_add_explicit(&cache_stale, 1, memory_order_relaxed);
}

void cache_world_invalidate(int32_t id)
{
    TRIAD_ASSERT(id >= 1 && id <= DB_WORLD_ROWS, "id out of range");
    uint64_t word = atomic_load_explicit(&cache_entries[id], memory_order_relaxed);
    uint64_t next;
    do {
        next = (CACHE_VERSION(word) + 1) << 32; /* new version, empty */
    } while (!atomic_compare_exchange_weak_explicit(&cache_entries[id], &word, next,
                                                    memory_order_release, memory_order_relaxed));
}

void cache_stats_read(struct cache_stats *out)
{
    out->hits = atomic_load_explicit(&cache_hits, memory_order_relaxed);
    out->misses = atomic_load_explicit(&cache_misses, memory_order_relaxed);
    out->stale_fills = atomic_load_explicit(&cache_stale, memory_order_relaxed);
}
