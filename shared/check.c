/* check.c - invariant failures and start-up logging. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *log_progname = "triad";

void triad_panic(const char *func, const char *file, int line, const char *cond, const char *msg)
{
    fprintf(stderr, "%s: panic in %s (%s:%d): %s: %s\n", log_progname, func, file, line, cond, msg);
    abort();
}

void log_init(const char *progname)
{
    log_progname = progname;
}

static void log_write(const char *level, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "%s: %s%s\n", log_progname, level, line);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write("", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write("error: ", fmt, ap);
    va_end(ap);
}
