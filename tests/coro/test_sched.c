/* test_sched.c - the goroutine scheduler: ordering, stealing, timers, syscall hand-off,
 * preemption, channels, WaitGroups, the inline fast path and the netpoller.
 *
 * No timing assertions. Each mechanism is tested by a program that can only finish if the
 * mechanism works: a goroutine that spins without yielding can only be overtaken by stealing
 * or preemption, a blocking read can only be released by a goroutine that needs the P back.
 * A broken mechanism hangs, and meson's timeout turns that into a failure.
 *
 * Goroutines record what they saw in plain variables; cmocka's assertions (which longjmp) run
 * only on the test's own thread after the runtime is idle again.
 */
#include "coro.h"
#include "gmp.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* Runs fn(arg) as a goroutine on a fresh runtime with `procs` Ps, and waits for all to end. */
static void run(unsigned procs, void (*fn)(void *), void *arg)
{
    struct coro_config cfg = {.procs = procs, .stack_size = 64 * 1024};
    assert_int_equal(coro_start(&cfg), 0);
    assert_int_equal(coro_go(fn, arg), 0);
    coro_wait_idle(-1);
    coro_stop();
}

/* ---- ordering ---------------------------------------------------------------------------- */

static char order[16];
static _Atomic int order_n;

static void record_cb(void *arg)
{
    order[atomic_fetch_add(&order_n, 1)] = *(const char *)arg;
}

static void spawn_abc_cb(void *arg)
{
    (void)arg;
    static const char a = 'a', b = 'b', c = 'c';
    coro_go(record_cb, (void *)&a);
    coro_go(record_cb, (void *)&b);
    coro_go(record_cb, (void *)&c);
    record_cb("p");
}

/* With one P: the spawner finishes its slice; then the newest G (in runnext) runs, then the
 * ones it displaced, oldest first (FIFO ring). */
static void test_runnext_then_fifo(void **state)
{
    (void)state;
    atomic_store(&order_n, 0);
    run(1, spawn_abc_cb, NULL);
    assert_int_equal(atomic_load(&order_n), 4);
    assert_memory_equal(order, "pcab", 4);
}

static _Atomic long counter;

static void inc_cb(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
}

static void spawn_many_cb(void *arg)
{
    for (long i = 0; i < (long)(uintptr_t)arg; i++)
        coro_go(inc_cb, NULL); /* a failure shows as a short count */
}

/* More Gs than a local ring holds: the overflow goes to the global queue and back. */
static void test_many_goroutines(void **state)
{
    (void)state;
    atomic_store(&counter, 0);
    run(2, spawn_many_cb, (void *)(uintptr_t)5000);
    assert_int_equal(atomic_load(&counter), 5000);
    struct coro_stats st;
    coro_stats_read(&st);
    assert_int_equal(st.goroutines_live, 0);
}

/* ---- stealing ---------------------------------------------------------------------------- */

static struct g fake[10];

/* The queue itself: a thief takes half (rounded up) and runs one of them. */
static void test_runqsteal_takes_half(void **state)
{
    (void)state;
    static struct p victim, thief;
    memset(&victim, 0, sizeof(victim));
    memset(&thief, 0, sizeof(thief));
    atomic_store(&victim.status, P_RUNNING);
    for (int i = 0; i < 10; i++)
        runqput(&victim, &fake[i], false);
    struct g *gp = runqsteal(&thief, &victim, false);
    assert_ptr_equal(gp, &fake[0]);
    assert_int_equal(runqlen(&thief), 4);
    assert_int_equal(runqlen(&victim), 5);
    bool inherit;
    assert_ptr_equal(runqget(&victim, &inherit), &fake[5]);
}

static _Atomic bool released;

static void release_cb(void *arg)
{
    (void)arg;
    atomic_store(&released, true);
}

/* The spawner spins without a safe point, so the new G, stuck in its P's runnext, can only run
 * if the other P steals it (last pass of stealWork). */
static void spin_until_stolen_cb(void *arg)
{
    (void)arg;
    coro_go(release_cb, NULL);
    while (!atomic_load(&released))
        ;
}

static void test_steal_runnext(void **state)
{
    (void)state;
    atomic_store(&released, false);
    run(2, spin_until_stolen_cb, NULL);
    struct coro_stats st;
    coro_stats_read(&st);
    assert_true(st.steals >= 1);
}

/* ---- timers ------------------------------------------------------------------------------ */

static void sleeper_cb(void *arg)
{
    const char *tag = arg;
    coro_sleep_ns((uint64_t)(tag[1] - '0') * 10 * NS_PER_MS);
    record_cb(arg);
}

static void sleepers_cb(void *arg)
{
    (void)arg;
    coro_go(sleeper_cb, "c3");
    coro_go(sleeper_cb, "a1");
    coro_go(sleeper_cb, "b2");
}

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    atomic_store(&order_n, 0);
    run(1, sleepers_cb, NULL);
    assert_memory_equal(order, "abc", 3);
}

/* ---- blocking calls ---------------------------------------------------------------------- */

static int pipefd[2];

static void writer_cb(void *arg)
{
    (void)arg;
    if (write(pipefd[1], "x", 1) != 1) /* the reader would hang: the test times out */
        return;
}

/* With one P, the reader blocks its M in read(2) inside a syscall bracket. The writer can only
 * run if sysmon hands the P to another M. */
static void blocked_reader_cb(void *arg)
{
    char c;
    coro_go(writer_cb, NULL);
    coro_enter_syscall();
    ssize_t n = read(pipefd[0], &c, 1);
    coro_exit_syscall();
    *(ssize_t *)arg = n;
}

static void test_syscall_handoff(void **state)
{
    (void)state;
    ssize_t n = 0;
    assert_int_equal(pipe(pipefd), 0);
    run(1, blocked_reader_cb, &n);
    assert_int_equal(n, 1);
    struct coro_stats st;
    coro_stats_read(&st);
    assert_true(st.handoffs >= 1);
    assert_true(st.ms_total >= 2);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* ---- preemption -------------------------------------------------------------------------- */

/* One P, a G in a loop with safe points and no other way to yield: the G it spawned can only
 * run if sysmon preempts the loop. */
static void spin_with_safepoints_cb(void *arg)
{
    (void)arg;
    coro_go(release_cb, NULL);
    while (!atomic_load(&released))
        coro_safepoint();
}

static void test_preemption(void **state)
{
    (void)state;
    atomic_store(&released, false);
    run(1, spin_with_safepoints_cb, NULL);
    struct coro_stats st;
    coro_stats_read(&st);
    assert_true(st.preemptions >= 1);
}

/* ---- channels and WaitGroups ------------------------------------------------------------- */

struct pingpong {
    struct coro_chan *ping, *pong;
    int rounds, bad;
};

static void ponger_cb(void *arg)
{
    struct pingpong *pp = arg;
    int v;
    while (coro_chan_recv(pp->ping, &v)) {
        v++;
        coro_chan_send(pp->pong, &v);
    }
}

static void pinger_cb(void *arg)
{
    struct pingpong *pp = arg;
    coro_go(ponger_cb, pp);
    for (int i = 0; i < pp->rounds; i++) {
        int v = i * 2, got = -1;
        coro_chan_send(pp->ping, &v);
        if (!coro_chan_recv(pp->pong, &got) || got != v + 1)
            pp->bad++;
    }
    coro_chan_close(pp->ping);
}

static void test_unbuffered_pingpong(void **state)
{
    (void)state;
    struct pingpong pp = {.rounds = 10000};
    assert_int_equal(coro_chan_create(0, sizeof(int), &pp.ping), 0);
    assert_int_equal(coro_chan_create(0, sizeof(int), &pp.pong), 0);
    run(2, pinger_cb, &pp);
    assert_int_equal(pp.bad, 0);
    coro_chan_destroy(pp.ping);
    coro_chan_destroy(pp.pong);
}

struct buffered {
    struct coro_chan *c;
    int got[8], n;
    bool ok_after_close;
};

static void drain_cb(void *arg)
{
    struct buffered *b = arg;
    int v;
    while (coro_chan_recv(b->c, &v))
        b->got[b->n++] = v;
    b->ok_after_close = coro_chan_recv(b->c, &v);
}

static void fill_cb(void *arg)
{
    struct buffered *b = arg;
    for (int i = 1; i <= 3; i++) /* fits the buffer: never blocks */
        coro_chan_send(b->c, &i);
    coro_go(drain_cb, b);
    for (int i = 4; i <= 6; i++) /* blocks until the drainer makes room */
        coro_chan_send(b->c, &i);
    coro_chan_close(b->c);
}

static void test_buffered_fifo_and_close(void **state)
{
    (void)state;
    struct buffered b = {0};
    assert_int_equal(coro_chan_create(3, sizeof(int), &b.c), 0);
    run(1, fill_cb, &b);
    assert_int_equal(b.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(b.got[i], i + 1);
    assert_false(b.ok_after_close);
    coro_chan_destroy(b.c);
}

struct fan {
    struct coro_wg wg;
    _Atomic int done;
};

static void fan_child_cb(void *arg)
{
    struct fan *f = arg;
    coro_sleep_ns(NS_PER_MS);
    atomic_fetch_add(&f->done, 1);
    coro_wg_done(&f->wg);
}

static void fan_parent_cb(void *arg)
{
    struct fan *f = arg;
    coro_wg_add(&f->wg, 100);
    for (int i = 0; i < 100; i++)
        coro_go(fan_child_cb, f);
    coro_wg_wait(&f->wg);
    f->done += 1000; /* only after every child */
}

static void test_waitgroup(void **state)
{
    (void)state;
    struct fan f;
    coro_wg_init(&f.wg);
    atomic_store(&f.done, 0);
    run(2, fan_parent_cb, &f);
    assert_int_equal(atomic_load(&f.done), 1100);
}

/* ---- the inline fast path ---------------------------------------------------------------- */

struct inl {
    int steps;
    bool first_finished, second_finished;
};

static void quick_cb(void *arg)
{
    ((struct inl *)arg)->steps++;
}

static void waits_cb(void *arg)
{
    struct inl *in = arg;
    in->steps++;
    coro_sleep_ns(NS_PER_MS); /* detaches from the parent */
    in->steps++;
}

static void inline_parent_cb(void *arg)
{
    struct inl *in = arg;
    struct g *detached = NULL;
    in->first_finished = coro_run_inline(quick_cb, in, &detached) == 0;
    in->second_finished = coro_run_inline(waits_cb, in, &detached) == 0;
    /* The child has run up to its wait, on our M, before we continue. */
    if (!in->second_finished && in->steps == 2)
        coro_detached_ready(detached);
}

static void test_inline_run_and_detach(void **state)
{
    (void)state;
    struct inl in = {0};
    run(1, inline_parent_cb, &in);
    assert_true(in.first_finished);
    assert_false(in.second_finished);
    assert_int_equal(in.steps, 3);
}

/* ---- the netpoller ----------------------------------------------------------------------- */

struct pollt {
    struct coro_pollfd *pd;
    int fds[2];
    char got;
};

static void poll_writer_cb(void *arg)
{
    struct pollt *t = arg;
    coro_sleep_ns(NS_PER_MS);
    if (write(t->fds[1], "z", 1) != 1)
        return;
}

static void poll_reader_cb(void *arg)
{
    struct pollt *t = arg;
    coro_go(poll_writer_cb, t);
    while (read(t->fds[0], &t->got, 1) != 1)
        coro_pollfd_wait(t->pd, -1);
    coro_pollfd_wait(t->pd, 5 * (int64_t)NS_PER_MS); /* nothing more comes: the timeout ends it */
}

static void test_netpoll_readiness_and_timeout(void **state)
{
    (void)state;
    struct pollt t = {0};
    struct coro_config cfg = {.procs = 1, .stack_size = 64 * 1024};
    assert_int_equal(pipe2(t.fds, O_NONBLOCK), 0);
    assert_int_equal(coro_start(&cfg), 0);
    assert_int_equal(coro_pollfd_open(t.fds[0], &t.pd), 0);
    assert_int_equal(coro_go(poll_reader_cb, &t), 0);
    coro_wait_idle(-1);
    coro_pollfd_close(t.pd);
    coro_stop();
    assert_int_equal(t.got, 'z');
    close(t.fds[0]);
    close(t.fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runnext_then_fifo),
        cmocka_unit_test(test_many_goroutines),
        cmocka_unit_test(test_runqsteal_takes_half),
        cmocka_unit_test(test_steal_runnext),
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_syscall_handoff),
        cmocka_unit_test(test_preemption),
        cmocka_unit_test(test_unbuffered_pingpong),
        cmocka_unit_test(test_buffered_fifo_and_close),
        cmocka_unit_test(test_waitgroup),
        cmocka_unit_test(test_inline_run_and_detach),
        cmocka_unit_test(test_netpoll_readiness_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
