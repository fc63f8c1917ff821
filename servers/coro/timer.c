/* timer.c - timers: one heap per P, as in Go since 1.14.
 *
 * A timer lives in the heap of the P that was running when it was started. Timers run from the
 * scheduler: every findRunnable checks its own P's heap first, and the last stealing pass runs
 * other Ps' expired timers too, so an idle P's timers still fire. The earliest deadline over
 * all Ps becomes the timeout of the one M that blocks in the netpoller, which is how a process
 * with nothing to do sleeps until its next timer with no thread polling.
 *
 * Each heap has its own lock (Go's timersLock): the owner adds and runs timers; a thief runs
 * them; anyone may stop one. A timer's callback runs with no lock held, on an M that holds a P,
 * so it may ready goroutines.
 *
 * Cost: O(log n) to start or stop, where n is the timers of one P: 10,000 sleeping requests
 * spread over 2 Ps are 13 comparisons per operation.
 */
#include "gmp.h"

#include "check.h"

static void timers_publish(struct p *pp)
{
    struct heap_node *n = heap_peek(&pp->timers);
    atomic_store_explicit(&pp->timer0, n ? n->key : 0, memory_order_release);
}

/* Tells the netpoller about a deadline earlier than the one it sleeps until, or gets an M to
 * look after timers if none is in the netpoller (proc.go wakeNetPoller). */
static void timers_wake_netpoller(uint64_t when)
{
    if (atomic_load(&sched.lastpoll) == 0) {
        uint64_t until = atomic_load(&sched.pollUntil);
        if (until == 0 || until > when)
            netpoll_break();
    } else {
        wakep();
    }
}

void timer_start(struct timer *t, uint64_t when, void (*fn)(struct timer *t))
{
    struct p *pp = m_current()->p;
    TRIAD_ASSERT(pp != NULL, "timer_start: no P");
    /* Acquire: pairs with the release below when the timer last left a heap, so that heap's
     * writes to the node happen before ours. */
    TRIAD_ASSERT(atomic_load_explicit(&t->pp, memory_order_acquire) == NULL,
                 "timer_start: timer already started");
    pthread_mutex_lock(&pp->timers_lock);
    /* Under the lock: the previous firing of this timer may still be reading fn (below). */
    t->node.key = when;
    t->fn = fn;
    /* A timer cannot be dropped, and its owner is already parked: like Go, which throws when
     * out of memory, treat a heap that cannot grow as fatal. */
    TRIAD_ASSERT(heap_push(&pp->timers, &t->node) == 0, "out of memory for timers");
    atomic_store_explicit(&t->pp, pp, memory_order_release);
    timers_publish(pp);
    pthread_mutex_unlock(&pp->timers_lock);
    timers_wake_netpoller(when);
}

bool timer_stop(struct timer *t)
{
    for (;;) {
        struct p *pp = atomic_load_explicit(&t->pp, memory_order_acquire);
        if (pp == NULL)
            return false; /* fired, firing, or never started */
        pthread_mutex_lock(&pp->timers_lock);
        bool here = atomic_load_explicit(&t->pp, memory_order_relaxed) == pp;
        if (here) {
            heap_remove(&pp->timers, &t->node);
            atomic_store_explicit(&t->pp, NULL, memory_order_release);
            timers_publish(pp);
        }
        pthread_mutex_unlock(&pp->timers_lock);
        if (here)
            return true;
    }
}

uint64_t timers_check(struct p *pp, uint64_t now, bool *ran)
{
    uint64_t next = atomic_load_explicit(&pp->timer0, memory_order_acquire);
    if (next == 0 || next > now)
        return next; /* the common case costs one atomic load, no lock */
    pthread_mutex_lock(&pp->timers_lock);
    struct heap_node *n;
    while ((n = heap_peek(&pp->timers)) != NULL && n->key <= now) {
        struct timer *t = TRIAD_CONTAINER_OF(heap_pop(&pp->timers), struct timer, node);
        void (*fn)(struct timer *) = t->fn;
        atomic_store_explicit(&t->pp, NULL, memory_order_release);
        timers_publish(pp);
        pthread_mutex_unlock(&pp->timers_lock);
        fn(t); /* t may be restarted or freed from here on: the callback must not read it */
        *ran = true;
        pthread_mutex_lock(&pp->timers_lock);
    }
    timers_publish(pp);
    next = atomic_load_explicit(&pp->timer0, memory_order_relaxed);
    pthread_mutex_unlock(&pp->timers_lock);
    return next;
}

uint64_t timers_next(void)
{
    uint64_t next = 0;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        uint64_t w = atomic_load_explicit(&sched.allp[i].timer0, memory_order_acquire);
        if (w != 0 && (next == 0 || w < next))
            next = w;
    }
    return next;
}

/* ---- time.Sleep ---------------------------------------------------------------------------- */

struct sleep_timer {
    struct timer t;
    struct g *gp;
};

static void sleep_fire_cb(struct timer *t)
{
    ready(TRIAD_CONTAINER_OF(t, struct sleep_timer, t)->gp, true);
}

/* Starts the timer only once the goroutine has switched away (on g0), or a thief could fire
 * it and ready a goroutine that is still running (Go passes resetForSleep to gopark for the
 * same reason). */
static void sleep_park_cb(struct g *gp, void *arg)
{
    struct sleep_timer *st = arg;
    st->gp = gp;
    timer_start(&st->t, st->t.node.key, sleep_fire_cb);
}

void coro_sleep_ns(uint64_t ns)
{
    struct sleep_timer st = {0};
    coro_detach();
    if (ns == 0) {
        coro_yield();
        return;
    }
    st.t.node.key = nanotime() + ns;
    park(sleep_park_cb, &st);
}
