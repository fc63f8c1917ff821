/* prefork.c - the pre-forking supervisor (see prefork.h). */
#include "prefork.h"

#include "check.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREFORK_MAX_WORKERS         256
#define PREFORK_RESTARTS_PER_MINUTE 10 /* past this, a crash loop: give up */

struct prefork {
    pid_t pids[PREFORK_MAX_WORKERS];
    unsigned n;
    int (*child_main)(unsigned, void *);
    void *arg;
    pid_t parent;
};

static pid_t prefork_spawn(struct prefork *pf, unsigned index)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* the parent, or -1 */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != pf->parent) /* the parent died before prctl took effect */
        _exit(1);
    /* exit, not _exit: the worker's own exit handlers (LeakSanitizer's among them) must run.
     * The parent flushed stdout before forking (serve_announce), so nothing is written twice. */
    exit(pf->child_main(index, pf->arg)); /* NOLINT(concurrency-mt-unsafe): one thread here */
}

static int prefork_index_of(const struct prefork *pf, pid_t pid)
{
    for (unsigned i = 0; i < pf->n; i++)
        if (pf->pids[i] == pid)
            return (int)i;
    return -1;
}

/* Reaps exited workers; replaces them unless stopping. Returns false on a crash loop. */
static bool prefork_reap(struct prefork *pf, bool stopping, int *status_out, unsigned *restarts)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i = prefork_index_of(pf, pid);
        if (i < 0)
            continue;
        pf->pids[i] = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            *status_out = 1;
        if (stopping)
            continue;
        log_error("worker %d (pid %d) exited unexpectedly; starting a new one", i, (int)pid);
        if (++*restarts > PREFORK_RESTARTS_PER_MINUTE)
            return false;
        pf->pids[i] = prefork_spawn(pf, (unsigned)i);
    }
    return true;
}

static bool prefork_any_alive(const struct prefork *pf)
{
    for (unsigned i = 0; i < pf->n; i++)
        if (pf->pids[i] > 0)
            return true;
    return false;
}

static void prefork_signal_all(const struct prefork *pf, int sig)
{
    for (unsigned i = 0; i < pf->n; i++)
        if (pf->pids[i] > 0)
            kill(pf->pids[i], sig);
}

int prefork_run(unsigned workers, const sigset_t *signals, int listen_fd,
                int (*child_main)(unsigned, void *), void *arg)
{
    TRIAD_ASSERT(workers >= 1 && workers <= PREFORK_MAX_WORKERS, "bad worker count");
    struct prefork pf = {.n = workers, .child_main = child_main, .arg = arg, .parent = getpid()};
    sigset_t set = *signals;
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (unsigned i = 0; i < workers; i++)
        pf.pids[i] = prefork_spawn(&pf, i);

    int status = 0;
    unsigned restarts = 0;
    bool stopping = false;
    time_t window = time(NULL);
    while (!stopping || prefork_any_alive(&pf)) {
        int sig = 0;
        sigwait(&set, &sig);
        if (time(NULL) - window >= 60) {
            window = time(NULL);
            restarts = 0;
        }
        if (sig != SIGCHLD && !stopping) {
            stopping = true;
            close(listen_fd);
            prefork_signal_all(&pf, SIGTERM);
        }
        if (!prefork_reap(&pf, stopping, &status, &restarts)) {
            log_error("workers keep dying: stopping");
            if (!stopping)
                close(listen_fd);
            stopping = true;
            status = 1;
            prefork_signal_all(&pf, SIGTERM);
        }
    }
    return status;
}
