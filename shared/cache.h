/* cache.h - the in-process World cache behind /cached-queries.
 *
 * TechEmpower's caching test wants a real cache, not a map primed once and never questioned.
 * This one is read-through and coherent:
 *
 *   get        - a hit returns the cached randomNumber. A miss returns a ticket.
 *   fill       - after reading the row from sqlite, the caller stores it with its ticket. The
 *                store succeeds only if nobody invalidated the entry in between, so a value
 *                read before an update can never be cached after it.
 *   invalidate - /updates calls this for each row after its transaction commits.
 *
 * Each entry is one 64-bit atomic word: a 32-bit version in the high half, the value in the
 * low half (0 = empty). Invalidation bumps the version; fill is a compare-and-swap from the
 * exact (version, empty) word its ticket recorded. Lock-free, so every model may call it from
 * any thread.
 */
#ifndef TRIAD_CACHE_H
#define TRIAD_CACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t cache_ticket;

/* Returns true and sets *value on a hit; returns false and sets *ticket on a miss. */
bool cache_world_get(int32_t id, int32_t *value, cache_ticket *ticket);
/* Stores a value read from the database under the ticket a miss returned. */
void cache_world_fill(int32_t id, int32_t value, cache_ticket ticket);
/* Drops the entry; call after the transaction that changed the row has committed. */
void cache_world_invalidate(int32_t id);

/* Counters for /stats: hits, misses, and fills that lost a race with an invalidation. */
struct cache_stats {
    uint64_t hits, misses, stale_fills;
};
void cache_stats_read(struct cache_stats *out);

#endif
