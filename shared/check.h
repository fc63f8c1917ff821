/* check.h - always-on invariant checks and start-up logging.
 *
 * TRIAD_ASSERT is for programmer errors only (a broken invariant), never for bad input or a
 * failed system call on a request path: those return an error and the server carries on. It
 * stays on in release builds, because a reference server that silently continues past a broken
 * invariant teaches the wrong lesson. The message names the function, like Go's
 * throw("findRunnable: ...").
 */
#ifndef TRIAD_CHECK_H
#define TRIAD_CHECK_H

#define TRIAD_ASSERT(cond, msg)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            triad_panic(__func__, __FILE__, __LINE__, #cond, (msg));                               \
    } while (0)

#define TRIAD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define TRIAD_CONTAINER_OF(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Prints "triad: panic in FUNC (FILE:LINE): COND: MSG" to stderr and aborts. */
_Noreturn void triad_panic(const char *func, const char *file, int line, const char *cond,
                           const char *msg);

/* Start-up and shutdown messages on stderr, prefixed with the program name. Never called per
 * request: TechEmpower rules (and throughput) forbid per-request logging. */
void log_init(const char *progname);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
