/* shard.c - the shards and their driver goroutines (see shard.h). */
#include "shard.h"

#include "coro.h"

#include "check.h"
#include "http.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

enum shard_phase { SHARD_SERVING, SHARD_QUIESCING, SHARD_STOPPING };

struct shard {
    struct http_server *http;
    struct coro_pollfd *pd;
    atomic_bool quiesced;
};

static struct {
    unsigned n;
    struct shard shards[SHARDS_MAX];
    _Atomic int phase; /* enum shard_phase */
} shard;

/* The server's wake-up: any thread resumed one of our requests. */
static void shard_wake_cb(void *arg)
{
    struct shard *s = arg;
    coro_pollfd_kick(s->pd);
}

static void shard_main(void *arg)
{
    struct shard *s = arg;
    coro_trace_label("shard");
    for (;;) {
        int phase = atomic_load(&shard.phase);
        if (phase >= SHARD_QUIESCING && !atomic_load(&s->quiesced)) {
            http_server_quiesce(s->http);
            atomic_store(&s->quiesced, true);
        }
        if (phase == SHARD_STOPPING)
            break;
        http_server_run(s->http);
        int ms = http_server_timeout_ms(s->http);
        coro_pollfd_wait(s->pd, ms < 0 ? -1 : (int64_t)ms * 1000000);
    }
    /* The poll descriptor outlives us: a request may still be kicking it. */
    http_server_stop(s->http);
}

int shard_start(unsigned n, const struct http_config *base)
{
    struct http_config cfg = *base;
    shard.n = n < SHARDS_MAX ? n : SHARDS_MAX;
    cfg.drive = HTTP_DRIVE_EXTERNAL;
    cfg.wake_cb = shard_wake_cb;
    for (unsigned i = 0; i < shard.n; i++) {
        struct shard *s = &shard.shards[i];
        cfg.listen_fd = i == 0 ? base->listen_fd : dup(base->listen_fd);
        cfg.driver_ctx = s;
        if (cfg.listen_fd < 0 || http_server_start(&cfg, &s->http) != 0 ||
            coro_pollfd_open(http_server_fd(s->http), &s->pd) != 0 || coro_go(shard_main, s) != 0)
            return -1;
    }
    return 0;
}

static void shard_kick_all(void)
{
    for (unsigned i = 0; i < shard.n; i++)
        coro_pollfd_kick(shard.shards[i].pd);
}

int shard_quiesce(long timeout_s)
{
    atomic_store(&shard.phase, SHARD_QUIESCING);
    shard_kick_all();
    /* Shutdown, not a hot path: a short sleep per look is fine. */
    struct timespec ms = {0, 1000000};
    long waited_ms = 0;
    for (unsigned i = 0; i < shard.n; i++)
        while (!atomic_load(&shard.shards[i].quiesced)) {
            if (waited_ms++ >= timeout_s * 1000)
                return -ETIMEDOUT;
            nanosleep(&ms, NULL);
        }
    return 0;
}

void shard_stop(void)
{
    atomic_store(&shard.phase, SHARD_STOPPING);
    shard_kick_all();
}

void shard_close(void)
{
    for (unsigned i = 0; i < shard.n; i++)
        coro_pollfd_close(shard.shards[i].pd);
}
