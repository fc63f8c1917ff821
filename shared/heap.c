/* heap.c - the binary min-heap (see heap.h). */
#include "heap.h"

#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

void heap_init(struct heap *h)
{
    *h = (struct heap){0};
}

void heap_close(struct heap *h)
{
    free(h->nodes);
    *h = (struct heap){0};
}

static bool heap_less(const struct heap_node *a, const struct heap_node *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void heap_place(struct heap *h, struct heap_node *n, size_t i)
{
    h->nodes[i] = n;
    n->index = i;
}

static void heap_sift_up(struct heap *h, size_t i)
{
    struct heap_node *n = h->nodes[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(n, h->nodes[parent]))
            break;
        heap_place(h, h->nodes[parent], i);
        i = parent;
    }
    heap_place(h, n, i);
}

static void heap_sift_down(struct heap *h, size_t i)
{
    struct heap_node *n = h->nodes[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && heap_less(h->nodes[child + 1], h->nodes[child]))
            child++;
        if (!heap_less(h->nodes[child], n))
            break;
        heap_place(h, h->nodes[child], i);
        i = child;
    }
    heap_place(h, n, i);
}

int heap_push(struct heap *h, struct heap_node *n)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct heap_node **grown = realloc(h->nodes, cap * sizeof(struct heap_node *));
        if (grown == NULL)
            return -ENOMEM;
        h->nodes = grown;
        h->cap = cap;
    }
    n->seq = h->next_seq++;
    h->nodes[h->len] = n;
    heap_sift_up(h, h->len++);
    return 0;
}

struct heap_node *heap_peek(const struct heap *h)
{
    return h->len ? h->nodes[0] : NULL;
}

void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;
    TRIAD_ASSERT(i < h->len && h->nodes[i] == n, "node is not in this heap");
    struct heap_node *last = h->nodes[--h->len];
    if (i == h->len)
        return;
    heap_place(h, last, i);
    if (i > 0 && heap_less(last, h->nodes[(i - 1) / 2]))
        heap_sift_up(h, i);
    else
        heap_sift_down(h, i);
}

struct heap_node *heap_pop(struct heap *h)
{
    struct heap_node *n = heap_peek(h);
    if (n)
        heap_remove(h, n);
    return n;
}
