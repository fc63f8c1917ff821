/* shard.h - S, the HTTP servers of the coroutine model, one per P, each driven by a goroutine.
 *
 * There are GOMAXPROCS servers (shards), all accepting from the shared listening socket; a
 * connection stays on the shard that accepted it. Each shard has a driver goroutine that parks
 * on the netpoller until the shard's descriptor is readable, its deadline passes or a resume
 * kicks it (http.h's wake-up), and then runs the server once: accept, read, parse, start
 * request goroutines (exec.c), write answers. Any M may run a driver goroutine; none is bound
 * to a thread. Several shards let HTTP itself scale with --procs, as net/http's one goroutine
 * per connection does in Go.
 */
#ifndef TRIAD_CORO_SHARD_H
#define TRIAD_CORO_SHARD_H

struct http_config;

/* Starts n shards (at most SHARDS_MAX) on copies of cfg's listening socket, each with its
 * driver goroutine. From a plain thread, after coro_start. Returns 0 or -1. */
int shard_start(unsigned n, const struct http_config *base);
/* Every shard stops accepting (http_server_quiesce, on its own goroutine). Returns 0 once all
 * have, or -ETIMEDOUT after timeout_s. */
int shard_quiesce(long timeout_s);
/* Every driver goroutine stops its server and exits. */
void shard_stop(void);
/* After the runtime is idle: frees what the drivers left. */
void shard_close(void);

#define SHARDS_MAX 64

#endif
