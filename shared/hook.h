/* hook.h - the three places where a concurrency model reaches into the core.
 *
 * The core knows nothing of threads, loops or coroutines, but two kinds of code in it matter to
 * a scheduler:
 *
 *   safe point  - CPU-heavy loops (the /cpu digest) call hook_safepoint() regularly (cpu.h says
 *                 how often).
 *                 The threaded model's GIL hangs its drop request off it (CPython checks its
 *                 eval breaker at loop back-edges); the coroutine model hangs Go-style
 *                 preemption off it (Go checks a poisoned stack guard at function prologues).
 *   blocking    - every call that may block the thread (each sqlite3_step, each wait a blocking
 *                 model performs) is bracketed by hook_blocking_enter()/hook_blocking_exit().
 *                 The threaded model releases the GIL there (CPython's sqlite3 module wraps
 *                 sqlite3_step in Py_BEGIN_ALLOW_THREADS); the coroutine model calls
 *                 entersyscall/exitsyscall (every cgo call in Go does).
 *
 * The event loop installs nothing: it never yields inside a callback, exactly as Node does not.
 *
 * Hooks are installed once, before the first request, and never change; they may be called
 * from any thread. With nothing installed each hook is one predictable branch.
 *
 * A blocking hook may return on a different OS thread than the one it was entered on (a
 * goroutine that loses its P in a syscall resumes on another M). Code between enter and exit
 * must therefore not cache thread-local addresses across the bracket.
 */
#ifndef TRIAD_HOOK_H
#define TRIAD_HOOK_H

struct hook_ops {
    void (*safepoint_cb)(void);      /* a CPU loop may yield here */
    void (*blocking_enter_cb)(void); /* about to block the calling thread */
    void (*blocking_exit_cb)(void);  /* back from the blocking call */
};

extern struct hook_ops hook_installed;

/* Installs the model's hooks. Call once, before serving. NULL members mean "nothing to do". */
void hook_install(const struct hook_ops *ops);

static inline void hook_safepoint(void)
{
    if (hook_installed.safepoint_cb)
        hook_installed.safepoint_cb();
}

static inline void hook_blocking_enter(void)
{
    if (hook_installed.blocking_enter_cb)
        hook_installed.blocking_enter_cb();
}

static inline void hook_blocking_exit(void)
{
    if (hook_installed.blocking_exit_cb)
        hook_installed.blocking_exit_cb();
}

#endif
