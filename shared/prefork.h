/* prefork.h - N worker processes sharing one listening socket, under a supervising parent.
 *
 * The shape of gunicorn's arbiter and of Node's cluster module (in its SCHED_NONE policy, where
 * every worker accepts from the shared socket and the kernel picks who wins):
 *
 *   - the parent binds the socket and prepares the database, then forks N workers;
 *   - each worker runs the whole server (its own threads, loop or scheduler, its own GIL);
 *   - the parent only supervises: a worker that dies unexpectedly is replaced (up to a crash-
 *     loop limit), and SIGINT/SIGTERM are forwarded to every worker, whose drain the parent
 *     waits for;
 *   - a worker whose parent dies gets SIGTERM (PR_SET_PDEATHSIG), so nothing is orphaned.
 */
#ifndef TRIAD_PREFORK_H
#define TRIAD_PREFORK_H

#include <signal.h>

/* Runs child_main(index, arg) in `workers` processes; returns the exit status for the parent:
 * 0 if every worker exited 0 after a signal, 1 otherwise. `signals` is the set the caller
 * blocked with serve_signals_block(). The parent closes its copy of `listen_fd` when it starts
 * stopping, so that once every worker has quiesced its own, the kernel refuses new
 * connections instead of queueing them until the exit resets them. */
int prefork_run(unsigned workers, const sigset_t *signals, int listen_fd,
                int (*child_main)(unsigned, void *), void *arg);

#endif
