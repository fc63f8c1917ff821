/* chan.c - channels and WaitGroups: goroutines wait by parking, never by spinning.
 *
 * A channel is Go's hchan reduced to its semantics: a lock, an optional ring buffer, and two
 * FIFO queues of waiting goroutines (sudogs), senders and receivers. A send to a waiting
 * receiver copies straight into the receiver's variable and readies it into runnext: the pair
 * then runs on one P, sharing a time slice, which is what makes a channel ping-pong cheap
 * (Go measures about 50 ns per hand-off in runqgrab's comment; see workloads/micro).
 *
 * A goroutine that must wait enqueues its sudog under the channel's lock and parks; the lock
 * (lock.c) is released by its M's g0 after the switch (park's unlock callback), so a waker that
 * finds the sudog always finds a goroutine that is fully parked.
 */
#include "gmp.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sudog {
    struct g *g;
    void *elem;   /* where to copy from (send) or to (receive) */
    bool success; /* false: woken by close */
    struct sudog *next;
};

struct waitq {
    struct sudog *head, *tail;
};

struct coro_chan {
    struct coro_lock lock;
    size_t cap, elem_size, count, head; /* a ring of cap elements */
    unsigned char *buf;
    bool closed;
    struct waitq recvq, sendq;
};

static void waitq_push(struct waitq *q, struct sudog *sg)
{
    sg->next = NULL;
    if (q->tail)
        q->tail->next = sg;
    else
        q->head = sg;
    q->tail = sg;
}

static struct sudog *waitq_pop(struct waitq *q)
{
    struct sudog *sg = q->head;
    if (sg) {
        q->head = sg->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return sg;
}

/* Parks the running goroutine on q with the channel locked; returns when readied. */
static bool chan_wait(struct coro_chan *c, struct waitq *q, void *elem)
{
    struct sudog sg = {.g = atomic_load(&m_current()->curg), .elem = elem};
    waitq_push(q, &sg);
    park(park_unlock_cb, &c->lock);
    return sg.success;
}

int coro_chan_create(size_t cap, size_t elem_size, struct coro_chan **out)
{
    struct coro_chan *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    if (cap > 0 && (c->buf = calloc(cap, elem_size)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->cap = cap;
    c->elem_size = elem_size;
    *out = c;
    return 0;
}

void coro_chan_destroy(struct coro_chan *c)
{
    TRIAD_ASSERT(c->recvq.head == NULL && c->sendq.head == NULL, "goroutines still waiting");
    free(c->buf);
    free(c);
}

static unsigned char *chan_slot(struct coro_chan *c, size_t i)
{
    return c->buf + ((c->head + i) % c->cap) * c->elem_size;
}

void coro_chan_send(struct coro_chan *c, const void *elem)
{
    coro_detach();
    coro_lock(&c->lock);
    TRIAD_ASSERT(!c->closed, "coro_chan_send: send on closed channel");
    struct sudog *sg = waitq_pop(&c->recvq);
    if (sg) { /* a receiver waits: hand over directly */
        memcpy(sg->elem, elem, c->elem_size);
        sg->success = true;
        coro_unlock(&c->lock);
        ready(sg->g, true);
        return;
    }
    if (c->count < c->cap) {
        memcpy(chan_slot(c, c->count++), elem, c->elem_size);
        coro_unlock(&c->lock);
        return;
    }
    if (!chan_wait(c, &c->sendq, (void *)elem))
        TRIAD_ASSERT(0, "coro_chan_send: channel closed while sending");
}

bool coro_chan_recv(struct coro_chan *c, void *elem)
{
    coro_detach();
    coro_lock(&c->lock);
    struct sudog *sg = waitq_pop(&c->sendq);
    if (sg) {
        if (c->cap == 0) { /* unbuffered: take the sender's value */
            memcpy(elem, sg->elem, c->elem_size);
        } else { /* full buffer: take its head, the sender's value goes to the tail */
            memcpy(elem, chan_slot(c, 0), c->elem_size);
            memcpy(chan_slot(c, 0), sg->elem, c->elem_size);
            c->head = (c->head + 1) % c->cap;
        }
        sg->success = true;
        coro_unlock(&c->lock);
        ready(sg->g, true);
        return true;
    }
    if (c->count > 0) {
        memcpy(elem, chan_slot(c, 0), c->elem_size);
        c->head = (c->head + 1) % c->cap;
        c->count--;
        coro_unlock(&c->lock);
        return true;
    }
    if (c->closed) {
        coro_unlock(&c->lock);
        memset(elem, 0, c->elem_size);
        return false;
    }
    bool ok = chan_wait(c, &c->recvq, elem);
    if (!ok)
        memset(elem, 0, c->elem_size);
    return ok;
}

void coro_chan_close(struct coro_chan *c)
{
    coro_lock(&c->lock);
    TRIAD_ASSERT(!c->closed, "coro_chan_close: close of closed channel");
    c->closed = true;
    struct sudog *woken = NULL, *sg;
    while ((sg = waitq_pop(&c->recvq)) != NULL || (sg = waitq_pop(&c->sendq)) != NULL) {
        sg->success = false;
        sg->next = woken;
        woken = sg;
    }
    coro_unlock(&c->lock);
    while (woken) {
        struct sudog *next = woken->next; /* the sudog lives on a stack that may run now */
        ready(woken->g, false);
        woken = next;
    }
}

/* ---- sync.WaitGroup ---------------------------------------------------------------------- */

void coro_wg_init(struct coro_wg *wg)
{
    atomic_store(&wg->lock.state, 0);
    wg->count = 0;
    wg->waiters = NULL;
}

void coro_wg_add(struct coro_wg *wg, long delta)
{
    coro_lock(&wg->lock);
    wg->count += delta;
    TRIAD_ASSERT(wg->count >= 0, "coro_wg_add: negative WaitGroup counter");
    struct g *woken = wg->count == 0 ? wg->waiters : NULL;
    if (woken)
        wg->waiters = NULL;
    coro_unlock(&wg->lock);
    while (woken) {
        struct g *next = woken->schedlink;
        ready(woken, false);
        woken = next;
    }
}

void coro_wg_done(struct coro_wg *wg)
{
    coro_wg_add(wg, -1);
}

void coro_wg_wait(struct coro_wg *wg)
{
    coro_detach();
    coro_lock(&wg->lock);
    if (wg->count == 0) {
        coro_unlock(&wg->lock);
        return;
    }
    struct g *self = atomic_load(&m_current()->curg);
    self->schedlink = wg->waiters;
    wg->waiters = self;
    park(park_unlock_cb, &wg->lock);
}
