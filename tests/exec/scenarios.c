/* scenarios.c - wait scenarios run by every model's executor (see scenarios.h). */
#include "scenarios.h"

#include "req_impl.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define SCN_PATIENCE_MS 5000 /* a deadline that should never be reached */
#define SCN_SHORT_MS    50   /* one that should */
#define SCN_PEER_DELAY  20   /* ms the peer waits before acting: shapes, never asserted */

static size_t scn_ctx_size;
static scn_runner scn_run;

void scn_init(size_t task_ctx_size, scn_runner run)
{
    scn_ctx_size = task_ctx_size;
    scn_run = run;
    req_task_ctx_size_set(task_ctx_size);
}

/* What the tasks saw, read by the test thread after the request finished. */
static struct {
    int fd;          /* the task's end of the socketpair */
    int wait_rc;     /* req's rc after its descriptor wait */
    ssize_t got;     /* what recv returned */
    int got_errno;   /* and errno if it failed */
    char buf[64];    /* the bytes received */
    unsigned calls;  /* calls run */
    int child_rc[4]; /* per child of the join: its wait's rc */
    ssize_t child_got[4];
    int child_fd[4];
    char child_buf[4][8]; /* children may run at once, on different threads */
    bool children_done;   /* every child had finished when the parent stepped on */
    bool saw_db;          /* a call that asked for no database got one */
    bool peer_failed;
} scn;

/* ---- the runner ---------------------------------------------------------------------------- */

/* A request with no route: its root task runs `step`. */
static void scn_request(enum req_wait (*step)(struct req *r))
{
    struct req *r = calloc(1, sizeof(*r));
    void *ctx = scn_ctx_size ? aligned_alloc(16, (scn_ctx_size + 15) & ~(size_t)15) : NULL;
    assert_non_null(r);
    if (ctx)
        memset(ctx, 0, scn_ctx_size);
    req_init(r, ctx);
    r->step_fn = step;
    scn_run(r);
    assert_true(req_finished(r));
    assert_int_equal(r->status, 200);
    req_release(r);
    free(ctx);
    free(r);
}

static enum req_wait scn_ok(struct req *r)
{
    return req_reply_static(r, 200, REQ_CT_TEXT, "ok");
}

/* ---- peers --------------------------------------------------------------------------------- */

enum scn_action { SCN_WRITE, SCN_CLOSE, SCN_DRAIN };

struct scn_peer {
    pthread_t thread;
    int fd;
    enum scn_action action;
};

static void scn_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *scn_peer_main(void *arg)
{
    struct scn_peer *p = arg;
    char buf[65536];
    scn_sleep_ms(SCN_PEER_DELAY);
    switch (p->action) {
    case SCN_WRITE:
        if (write(p->fd, "ping", 4) != 4)
            scn.peer_failed = true;
        break;
    case SCN_CLOSE:
        close(p->fd);
        p->fd = -1;
        break;
    case SCN_DRAIN: /* read everything the other end queued, until it is empty */
        while (recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
        break;
    }
    return NULL;
}

static void scn_peer_start(struct scn_peer *p, int fd, enum scn_action action)
{
    p->fd = fd;
    p->action = action;
    assert_int_equal(pthread_create(&p->thread, NULL, scn_peer_main, p), 0);
}

static void scn_peer_join(struct scn_peer *p)
{
    pthread_join(p->thread, NULL);
    if (p->fd >= 0)
        close(p->fd);
    assert_false(scn.peer_failed);
}

/* A socketpair; the task's end (returned) is non-blocking, the peer's in *peer. */
static int scn_pair(int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    *peer = sv[1];
    return sv[0];
}

/* ---- a descriptor becomes readable --------------------------------------------------------- */

/* Waits for the descriptor with a generous deadline, then reads once. */
static enum req_wait scn_read_step(struct req *r)
{
    switch (r->root.pc) {
    case 0:
        return req_task_await_fd(&r->root, 1, scn.fd, REQ_FD_READ, SCN_PATIENCE_MS);
    default:
        scn.wait_rc = r->root.rc;
        scn.got = recv(scn.fd, scn.buf, sizeof(scn.buf), 0);
        scn.got_errno = scn.got < 0 ? errno : 0;
        return scn_ok(r);
    }
}

void scn_fd_readable(void **state)
{
    (void)state;
    struct scn_peer peer;
    int other;
    memset(&scn, 0, sizeof(scn));
    scn.fd = scn_pair(&other);
    scn_peer_start(&peer, other, SCN_WRITE);
    scn_request(scn_read_step);
    scn_peer_join(&peer);
    assert_int_equal(scn.wait_rc, 0);
    assert_int_equal(scn.got, 4);
    assert_memory_equal(scn.buf, "ping", 4);
    close(scn.fd);
}

/* ---- the deadline passes first ------------------------------------------------------------- */

static enum req_wait scn_deadline_step(struct req *r)
{
    switch (r->root.pc) {
    case 0:
        return req_task_await_fd(&r->root, 1, scn.fd, REQ_FD_READ, SCN_SHORT_MS);
    default:
        scn.wait_rc = r->root.rc;
        scn.got = recv(scn.fd, scn.buf, sizeof(scn.buf), 0);
        scn.got_errno = scn.got < 0 ? errno : 0;
        return scn_ok(r);
    }
}

void scn_fd_deadline(void **state)
{
    (void)state;
    int other;
    memset(&scn, 0, sizeof(scn));
    scn.fd = scn_pair(&other); /* nobody ever writes */
    scn_request(scn_deadline_step);
    assert_int_equal(scn.wait_rc, -ETIMEDOUT);
    assert_int_equal(scn.got, -1);
    assert_true(scn.got_errno == EAGAIN || scn.got_errno == EWOULDBLOCK);
    close(scn.fd);
    close(other);
}

/* ---- the peer closes ----------------------------------------------------------------------- */

void scn_fd_peer_closes(void **state)
{
    (void)state;
    struct scn_peer peer;
    int other;
    memset(&scn, 0, sizeof(scn));
    scn.fd = scn_pair(&other);
    scn_peer_start(&peer, other, SCN_CLOSE);
    scn_request(scn_read_step);
    scn_peer_join(&peer);
    assert_int_equal(scn.wait_rc, 0); /* ready: end of file is readiness */
    assert_int_equal(scn.got, 0);
    close(scn.fd);
}

/* ---- the descriptor becomes writable again ------------------------------------------------- */

/* Fills the socket until it would block, waits for room, then writes once more. */
static enum req_wait scn_write_step(struct req *r)
{
    static char block[4096];
    switch (r->root.pc) {
    case 0:
        while (send(scn.fd, block, sizeof(block), MSG_DONTWAIT) > 0)
            ;
        return req_task_await_fd(&r->root, 1, scn.fd, REQ_FD_WRITE, SCN_PATIENCE_MS);
    default:
        scn.wait_rc = r->root.rc;
        scn.got = send(scn.fd, block, 1, MSG_DONTWAIT);
        scn.got_errno = scn.got < 0 ? errno : 0;
        return scn_ok(r);
    }
}

void scn_fd_writable(void **state)
{
    (void)state;
    struct scn_peer peer;
    int other;
    memset(&scn, 0, sizeof(scn));
    scn.fd = scn_pair(&other);
    scn_peer_start(&peer, other, SCN_DRAIN);
    scn_request(scn_write_step);
    scn_peer_join(&peer);
    assert_int_equal(scn.wait_rc, 0);
    assert_int_equal(scn.got, 1);
    close(scn.fd);
}

/* ---- a blocking call ----------------------------------------------------------------------- */

/* cppcheck-suppress constParameter ; the signature is req_call_fn's */
static int scn_call_cb(struct req_task *t, struct db *db)
{
    (void)t;
    scn.saw_db = db != NULL; /* no database was asked for */
    scn.calls++;
    scn_sleep_ms(1); /* blocks its thread, as a host name lookup would */
    return 42;
}

static enum req_wait scn_call_step(struct req *r)
{
    switch (r->root.pc) {
    case 0:
        return req_task_await_call(&r->root, 1, scn_call_cb, false);
    default:
        scn.wait_rc = r->root.rc;
        return scn_ok(r);
    }
}

void scn_call(void **state)
{
    (void)state;
    memset(&scn, 0, sizeof(scn));
    scn_request(scn_call_step);
    assert_int_equal(scn.calls, 1);
    assert_int_equal(scn.wait_rc, 42);
    assert_false(scn.saw_db);
}

/* ---- a join of timers and descriptors ------------------------------------------------------ */

/* Children 0 and 1 wait on timers of different lengths; children 2 and 3 wait on descriptors
 * that their peers write to. */
static enum req_wait scn_child_step(struct req_task *t)
{
    unsigned i = t->index;
    switch (t->pc) {
    case 0:
        if (i < 2)
            return req_task_await_timer(t, 1, 10u * (i + 1));
        return req_task_await_fd(t, 1, scn.child_fd[i], REQ_FD_READ, SCN_PATIENCE_MS);
    default:
        scn.child_rc[i] = t->rc;
        scn.child_got[i] =
            i < 2 ? 0 : recv(scn.child_fd[i], scn.child_buf[i], sizeof(scn.child_buf[i]), 0);
        return req_task_end(t);
    }
}

static enum req_wait scn_join_step(struct req *r)
{
    switch (r->root.pc) {
    case 0:
        if (req_task_join_start(&r->root, 1, 4, scn_child_step, NULL) != 0)
            return req_reply_error(r, 503, "out of memory");
        return REQ_JOIN;
    default:
        /* Every child has finished before the parent steps on. (Recorded, not asserted: this
         * may run on another thread than the test's.) */
        scn.children_done = req_join_failure(&r->root) == NULL;
        for (unsigned i = 0; i < req_join_count(&r->root); i++)
            scn.children_done = scn.children_done && req_join_child(&r->root, i)->finished;
        scn.calls = req_join_count(&r->root);
        return scn_ok(r);
    }
}

void scn_join_mixed(void **state)
{
    (void)state;
    struct scn_peer peers[2];
    int other[2];
    memset(&scn, 0, sizeof(scn));
    for (int i = 0; i < 2; i++) {
        scn.child_fd[2 + i] = scn_pair(&other[i]);
        scn_peer_start(&peers[i], other[i], SCN_WRITE);
    }
    scn_request(scn_join_step);
    for (int i = 0; i < 2; i++)
        scn_peer_join(&peers[i]);
    assert_int_equal(scn.calls, 4);
    assert_true(scn.children_done);
    for (int i = 0; i < 4; i++)
        assert_int_equal(scn.child_rc[i], 0);
    assert_int_equal(scn.child_got[2], 4);
    assert_int_equal(scn.child_got[3], 4);
    close(scn.child_fd[2]);
    close(scn.child_fd[3]);
}
