/* serve.h - what every server's main() does around its model: prepare the database, open the
 * listening socket, announce itself, wait for a signal, drain.
 *
 * Signals: serve_signals_block() must run before any thread is created, so that every thread
 * inherits the blocked mask and SIGINT/SIGTERM are only ever taken synchronously (sigwait,
 * signalfd) by the thread that asks for them. No async signal handlers anywhere.
 */
#ifndef TRIAD_SERVE_H
#define TRIAD_SERVE_H

#include "cli.h"
#include "metrics.h"

#include <signal.h>

/* Everything a server's main() does before its model starts, in order: parse the command line,
 * block signals (before any thread exists), raise the descriptor limit, start the metrics,
 * prepare the database, listen, print the start-up line. Returns -1 to go on and serve, or the
 * status main() should exit with: 0 after --help or --version, 2 for a bad command line, 1 if
 * the database or the socket could not be prepared. */
int serve_start(int argc, char **argv, const struct cli_model *cli, struct cli_common *c,
                const char *model, metrics_gauges_cb gauges_cb, sigset_t *signals, int *listen_fd);

/* Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it creates),
 * ignores SIGPIPE, and returns the set to wait on. */
void serve_signals_block(sigset_t *set);
/* Waits for a signal in `set` and returns its number; meanwhile sweeps slow connections once
 * a second (http_sweep). */
int serve_signal_wait(const sigset_t *set);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit: 10,000 connections need 10,000 fds. */
void serve_rlimit_raise(void);

/* Creates, migrates and seeds the database; prints a clear error and returns -1 on failure. */
int serve_db_prepare(const char *prog, const char *path);

/* A non-blocking, listening TCP socket on host:port (port 0 picks one). Returns the fd and the
 * bound port, or a negative errno after printing what went wrong. */
int serve_listen(const char *prog, const char *host, int port, int *bound_port);

/* The one start-up line: "<prog> <version> listening on http://HOST:PORT (<settings>)". */
void serve_announce(const char *prog, const struct cli_common *c, int port, const char *settings);

/* Waits until no request is in flight or `timeout_s` has passed (polling every 10 ms: this is
 * shutdown, not a hot path). Returns 0, or -ETIMEDOUT. */
int serve_drain(long timeout_s);

#endif
