/* heap.h - an intrusive binary min-heap of deadlines: the timer queue of the event loop and of
 * each P in the coroutine scheduler.
 *
 * Intrusive: the caller embeds a `struct heap_node` in its timer, so pushing allocates nothing
 * (the heap's pointer array grows by doubling, amortised O(1)). Push, pop and remove are
 * O(log n); peek is O(1). Equal deadlines pop in insertion order (a sequence number breaks
 * ties), as libuv guarantees for timers with the same timeout.
 *
 * Not thread-safe: each heap belongs to one loop or one P.
 */
#ifndef TRIAD_HEAP_H
#define TRIAD_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct heap_node {
    uint64_t key; /* the deadline; set by the caller before heap_push */
    uint64_t seq; /* set by heap_push */
    size_t index; /* position in the heap; managed by the heap */
};

struct heap {
    struct heap_node **nodes;
    size_t len, cap;
    uint64_t next_seq;
};

void heap_init(struct heap *h);
void heap_close(struct heap *h);

/* Returns 0, or -ENOMEM if the array could not grow (the node is then not in the heap). */
int heap_push(struct heap *h, struct heap_node *n);
/* The earliest node, or NULL when empty. */
struct heap_node *heap_peek(const struct heap *h);
struct heap_node *heap_pop(struct heap *h);
/* Removes a node that is in the heap. */
void heap_remove(struct heap *h, struct heap_node *n);

static inline size_t heap_len(const struct heap *h)
{
    return h->len;
}

#endif
