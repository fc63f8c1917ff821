/* driver.c - the synchronous test executor (see driver.h). */
#include "driver.h"

#include "check.h"
#include "db.h"
#include "req_impl.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const drv_ctype[] = {
    [REQ_CT_JSON] = "application/json",
    [REQ_CT_TEXT] = "text/plain",
    [REQ_CT_HTML] = "text/html; charset=utf-8",
    [REQ_CT_PROMETHEUS] = "text/plain; version=0.0.4",
};

/* Splits "a=1&b=2" in place into arguments. */
static void drv_args(struct req *r, char *query)
{
    char *save = NULL;
    for (char *tok = strtok_r(query, "&", &save); tok != NULL; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = '\0';
        req_arg_add(r, tok, eq ? eq : NULL, eq ? strlen(eq) : 0);
    }
}

/* The smallest executor: calls run here with the test's connection, timers are over at once,
 * descriptors are polled, a join runs its children one after another. */
static void drv_task_run(struct req_task *t, struct db *db, struct drv_response *out)
{
    enum req_wait w;
    while ((w = req_task_step(t)) != REQ_DONE) {
        out->waits++;
        switch (w) {
        case REQ_CALL:
            req_call_run(t, req_call_wants_db(t) ? db : NULL);
            break;
        case REQ_TIMER:
            break;
        case REQ_FD: {
            struct pollfd p = {.fd = req_fd(t),
                               .events =
                                   (short)(((req_fd_events(t) & REQ_FD_READ) ? POLLIN : 0) |
                                           ((req_fd_events(t) & REQ_FD_WRITE) ? POLLOUT : 0))};
            if (poll(&p, 1, req_fd_timeout_ms(t)) == 0)
                req_fd_expired(t);
            break;
        }
        case REQ_JOIN:
            for (unsigned i = 0; i < req_join_count(t); i++)
                drv_task_run(req_join_child(t, i), db, out);
            break;
        case REQ_DONE:
            break;
        }
    }
}

int drv_request(struct db *db, const char *method, const char *target, const char *ctype,
                const char *body, size_t body_len, struct drv_response *out)
{
    struct req r;
    struct req_limits lim = {.max_body = 65536};
    char path[2048];
    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "%s", target);
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    req_init(&r, NULL);
    req_route(&r, method, path);
    if (q)
        drv_args(&r, q);
    req_content_type_set(&r, ctype);
    if (body != NULL)
        req_body_append(&r, body, body_len, &lim);
    if (!req_input_done(&r))
        drv_task_run(req_root(&r), db, out);
    out->status = r.status;
    out->ctype = r.status == 204 ? NULL : drv_ctype[r.ctype];
    if (r.hdr_name) {
        snprintf(out->hdr_name, sizeof(out->hdr_name), "%s", r.hdr_name);
        snprintf(out->hdr_value, sizeof(out->hdr_value), "%s", r.hdr_value);
    }
    int rc = r.out_len < sizeof(out->body) ? 0 : -1;
    if (rc == 0) {
        memcpy(out->body, r.out, r.out_len);
        out->body[r.out_len] = '\0';
        out->len = r.out_len;
    }
    req_release(&r);
    return rc;
}

const char *drv_temp_db(void)
{
    static char path[256];
    char dir[] = "/tmp/triad-unit-XXXXXX";
    char err[256];
    TRIAD_ASSERT(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof(path), "%s/triad.db", dir);
    TRIAD_ASSERT(db_setup(path, err, sizeof(err)) == 0, err);
    return path;
}
