/* fuzz_request.c - a libFuzzer target over the core's request handling.
 *
 * Each input is one request, framed as four fields (README.md has the details):
 *
 *   METHOD '\n' TARGET '\n' CONTENT-TYPE '\n' BODY
 *
 * TARGET is "/path?query"; the body is everything after the third newline, NUL bytes included.
 * The request runs through the unit tests' driver (tests/unit/driver.h) against a real sqlite
 * database, created once per process, so every route is reached, writes included.
 *
 * What the fuzzer looks for, beyond the sanitizers' own reports (a crash, an overflow, a leak
 * left by req_release, undefined behaviour):
 *
 *   statuses   only those the API documents and a lone client can get: 2xx, 400, 404, 405,
 *              413, 415. A 503 (the database is busy or unavailable) cannot happen to a single
 *              client on a healthy database, and a 500 never happens at all.
 *   bodies     every error is {"error":"<non-empty string>"} and nothing else; every JSON 2xx
 *              body parses; a 201 carries Location: /items/{its id}; a 405 carries Allow;
 *              a 204 has no body.
 *   content    a 2xx says what was asked: as many World rows as the clamped count, a page of
 *              at most `limit` items past `after` in id order, the item of the path's id, the
 *              parameters of /cpu, /io and /fanout echoed.
 *   waits      every wait a task asks for is one a model can perform: a call with a function
 *              to run (database work with an endpoint's function), a timer of 0..10000 ms, a
 *              descriptor with events, a join of 1..1000 children; and a request ends after a
 *              few of them.
 *   data       a request that is not a 2xx changes no item and adds none; a 2xx write stores
 *              and echoes exactly the name and qty the body sent.
 *
 * The driver hides the request from its caller, so the fuzzer watches it through two link-time
 * wraps (-Wl,--wrap, see meson.build): every req_task_step the driver makes and the req_release
 * it ends with go through __wrap_req_task_step and __wrap_req_release below first.
 */
#include "cpu.h"
#include "db.h"
#include "driver.h"
#include "endpoints.h"
#include "metrics.h"
#include "param.h"
#include "req_impl.h"
#include "route.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_WAITS_MAX      4      /* every endpoint waits at most twice; more is a loop */
#define FUZZ_WAIT_MS_MAX    10000u /* the documented bounds of ms and calls */
#define FUZZ_WAIT_CALLS_MAX 1000u
#define FUZZ_ITERATIONS_MAX 100000u /* /cpu work the fuzzer is willing to wait for */

/* The process-wide state: one connection, and what the fuzzer knows of the items table. */
static struct db *fuzz_db;
static const char *fuzz_db_path;
static int64_t fuzz_item_max_id; /* the highest id a 201 has returned; nothing else adds one */

/* The request being run, for the wraps and for failure messages. */
static struct {
    const char *method, *target;
    const char *body; /* the request body as sent, for the write checks */
    size_t body_len;
    unsigned waits;
    bool released;
} fuzz_cur;

/* ---- failing --------------------------------------------------------------------------------- */

/* Reports a broken invariant and aborts: libFuzzer saves the input as a crash artifact. */
static _Noreturn void fuzz_fail(const char *what, const struct req *r)
{
    fprintf(stderr, "fuzz_request: invariant broken: %s\n  request: %s %s\n", what, fuzz_cur.method,
            fuzz_cur.target);
    if (r != NULL)
        fprintf(stderr, "  response: %d, %zu bytes: %.*s\n", r->status, r->out_len,
                (int)(r->out_len > 400 ? 400 : r->out_len), r->out ? r->out : "");
    abort();
}

#define FUZZ_CHECK(cond, what, r)                                                                  \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail((what), (r));                                                                \
    } while (0)

/* ---- the step machine: every wait must be one a model can perform ---------------------------- */

/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c): a name -Wl,--wrap fixes */
enum req_wait __real_req_task_step(struct req_task *t);

/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c): a name -Wl,--wrap fixes */
enum req_wait __wrap_req_task_step(struct req_task *t)
{
    const struct req *r = t->req;
    enum req_wait w = __real_req_task_step(t);
    switch (w) {
    case REQ_DONE:
        return w;
    case REQ_CALL:
        FUZZ_CHECK(t->call != NULL, "REQ_CALL with no call to make", r);
        FUZZ_CHECK(t->parent != NULL || !t->call_db ||
                       (unsigned)r->db_op.kind <= (unsigned)DB_OP_ITEM_LIST,
                   "a database wait with no database operation", r);
        break;
    case REQ_TIMER:
        FUZZ_CHECK(t->ms <= FUZZ_WAIT_MS_MAX, "REQ_TIMER past 10000 ms", r);
        break;
    case REQ_FD:
        FUZZ_CHECK(t->fd >= 0 && t->events != 0, "REQ_FD with no descriptor or events", r);
        break;
    case REQ_JOIN:
        FUZZ_CHECK(t->nchildren >= 1 && t->nchildren <= FUZZ_WAIT_CALLS_MAX,
                   "REQ_JOIN with children outside 1..1000", r);
        break;
    }
    /* A request's own task ends after a few waits; a join's children after one or two each. */
    if (t->parent == NULL)
        FUZZ_CHECK(++fuzz_cur.waits <= FUZZ_WAITS_MAX, "too many waits: a step machine loops", r);
    return w;
}

/* ---- the response: checked just before the driver releases the request ----------------------- */

static bool fuzz_status_documented(int status)
{
    static const int documented[] = {200, 201, 204, 400, 404, 405, 413, 415};
    for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++)
        if (status == documented[i])
            return true;
    return false;
}

/* {"error":"<non-empty string>"} and nothing else. */
static bool fuzz_error_body_ok(const struct req *r)
{
    json_t *doc = json_loadb(r->out, r->out_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *msg = json_object_get(doc, "error");
    bool ok = json_is_object(doc) && json_object_size(doc) == 1 && json_is_string(msg) &&
              json_string_length(msg) > 0;
    json_decref(doc);
    return ok;
}

/* The name and qty of an item body or document, as jansson reads them; false if absent. */
static bool fuzz_item_fields(json_t *doc, const char **name, size_t *name_len, json_int_t *qty)
{
    json_t *n = json_object_get(doc, "name"), *q = json_object_get(doc, "qty");
    if (!json_is_string(n) || !json_is_integer(q))
        return false;
    *name = json_string_value(n);
    *name_len = json_string_length(n);
    *qty = json_integer_value(q);
    return true;
}

/* A 2xx write: the response echoes the body's name and qty, and the database holds them. */
static void fuzz_check_write(const struct req *r, json_t *resp)
{
    const char *sent_name, *got_name;
    size_t sent_len, got_len;
    json_int_t sent_qty, got_qty;
    json_t *sent = json_loadb(fuzz_cur.body, fuzz_cur.body_len, 0, NULL);
    FUZZ_CHECK(fuzz_item_fields(sent, &sent_name, &sent_len, &sent_qty),
               "a 2xx write whose body has no string name and integer qty", r);
    FUZZ_CHECK(fuzz_item_fields(resp, &got_name, &got_len, &got_qty),
               "a 2xx write whose response has no name and qty", r);
    FUZZ_CHECK(sent_len == got_len && memcmp(sent_name, got_name, sent_len) == 0 &&
                   sent_qty == got_qty,
               "a 2xx write echoes another name or qty than it was sent", r);
    json_t *id = json_object_get(resp, "id");
    struct db_item stored;
    FUZZ_CHECK(json_is_integer(id) && db_item_get(fuzz_db, json_integer_value(id), &stored) == 0,
               "a 2xx write whose item cannot be read back", r);
    FUZZ_CHECK(stored.name_len == sent_len && memcmp(stored.name, sent_name, sent_len) == 0 &&
                   stored.qty == sent_qty,
               "a 2xx write stored another name or qty than it was sent", r);
    json_decref(sent);
}

/* A 201: Location names the new item, whose id is past every id seen so far. */
static void fuzz_check_created(const struct req *r, json_t *resp)
{
    char want[48];
    json_t *id = json_object_get(resp, "id");
    FUZZ_CHECK(json_is_integer(id), "a 201 without an integer id", r);
    json_int_t v = json_integer_value(id);
    snprintf(want, sizeof(want), "/items/%lld", (long long)v);
    FUZZ_CHECK(r->hdr_name != NULL && strcmp(r->hdr_name, "Location") == 0 &&
                   strcmp(r->hdr_value, want) == 0,
               "a 201 whose Location is not /items/{id}", r);
    FUZZ_CHECK(v > fuzz_item_max_id, "a 201 with an id that is not new", r);
    fuzz_item_max_id = v;
}

/* An integer member in lo..hi. */
static bool fuzz_int_in(json_t *obj, const char *key, json_int_t lo, json_int_t hi)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* {"id":1..10000,"randomNumber":1..10000} and nothing else. */
static bool fuzz_world_ok(json_t *w)
{
    return json_is_object(w) && json_object_size(w) == 2 &&
           fuzz_int_in(w, "id", 1, DB_WORLD_ROWS) && fuzz_int_in(w, "randomNumber", 1, 10000);
}

/* /queries, /updates, /cached-queries: exactly as many rows as the clamped count asks for. */
static void fuzz_check_worlds(const struct req *r, json_t *doc, const char *count_arg)
{
    size_t n = (size_t)param_count_clamp(req_arg(r, count_arg));
    FUZZ_CHECK(json_is_array(doc) && json_array_size(doc) == n, "a World array of another length",
               r);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(fuzz_world_ok(json_array_get(doc, i)), "a malformed World object", r);
}

/* GET /items: at most `limit` items past `after`, in id order, none the fuzzer did not
 * create; `next` is the last id shown when the page is full and more follow, else null. */
static void fuzz_check_page(const struct req *r, json_t *doc)
{
    json_t *items = json_object_get(doc, "items"), *next = json_object_get(doc, "next"), *it;
    const char *name;
    size_t i, name_len;
    json_int_t qty, last = r->ep.items.after;
    FUZZ_CHECK(json_is_array(items) && json_array_size(items) <= (size_t)r->ep.items.limit,
               "a page longer than its limit", r);
    json_array_foreach(items, i, it)
    {
        FUZZ_CHECK(fuzz_int_in(it, "id", last + 1, fuzz_item_max_id),
                   "a page out of id order, not past after, or with an unknown item", r);
        FUZZ_CHECK(fuzz_item_fields(it, &name, &name_len, &qty) && qty >= 0,
                   "a listed item without a name or a qty >= 0", r);
        last = json_integer_value(json_object_get(it, "id"));
    }
    FUZZ_CHECK(json_is_null(next) || (json_is_integer(next) && json_integer_value(next) == last &&
                                      json_array_size(items) == (size_t)r->ep.items.limit),
               "a next that is not the last id of a full page", r);
}

/* The parameter `name` as the endpoint must have read it (it answered 2xx, so it is valid). */
static json_int_t fuzz_param(const struct req *r, const char *name)
{
    uint64_t v = 0;
    FUZZ_CHECK(param_parse_u64(req_arg(r, name), 0, UINT64_MAX, &v) == 0,
               "a 2xx despite a missing or malformed parameter", r);
    return (json_int_t)v;
}

/* A 2xx JSON body says what its request asked for. */
static void fuzz_check_content(const struct req *r, json_t *doc)
{
    req_step_fn ep = r->step_fn;
    if (ep == ep_db)
        FUZZ_CHECK(fuzz_world_ok(doc), "/db is not one World object", r);
    else if (ep == ep_queries || ep == ep_updates)
        fuzz_check_worlds(r, doc, "queries");
    else if (ep == ep_cached_queries)
        fuzz_check_worlds(r, doc, "count");
    else if (ep == ep_items_list)
        fuzz_check_page(r, doc);
    else if (ep == ep_item_get || ep == ep_item_replace)
        FUZZ_CHECK(fuzz_int_in(doc, "id", r->path_id, r->path_id), "an item with another id", r);
    else if (ep == ep_cpu) {
        json_t *digest = json_object_get(doc, "digest");
        json_int_t n = fuzz_param(r, "iterations");
        FUZZ_CHECK(fuzz_int_in(doc, "iterations", n, n) && json_is_string(digest) &&
                       json_string_length(digest) == CPU_DIGEST_LEN &&
                       strspn(json_string_value(digest), "0123456789abcdef") == CPU_DIGEST_LEN,
                   "/cpu does not echo iterations with a 16-hex-digit digest", r);
    } else if (ep == ep_io) {
        json_int_t ms = fuzz_param(r, "ms");
        FUZZ_CHECK(fuzz_int_in(doc, "waited_ms", ms, ms), "/io does not echo ms", r);
    } else if (ep == ep_fanout) {
        json_int_t calls = fuzz_param(r, "calls"), ms = fuzz_param(r, "ms");
        FUZZ_CHECK(fuzz_int_in(doc, "calls", calls, calls) && fuzz_int_in(doc, "ms", ms, ms),
                   "/fanout does not echo calls and ms", r);
    }
}

static void fuzz_check_success(const struct req *r)
{
    bool write = r->method == REQ_POST || r->method == REQ_PUT;
    FUZZ_CHECK(!r->args_overflow, "a 2xx despite too many arguments", r);
    FUZZ_CHECK(!r->body_present || write, "a 2xx for a body on a route that takes none", r);
    FUZZ_CHECK(!write || r->body_is_json, "a 2xx for a body that is not application/json", r);
    if (r->status == 204) {
        FUZZ_CHECK(r->out_len == 0, "a 204 with a body", r);
        return;
    }
    if (r->ctype != REQ_CT_JSON) {
        FUZZ_CHECK(r->out_len > 0, "an empty non-JSON 2xx body", r);
        return;
    }
    json_t *doc = json_loadb(r->out, r->out_len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(doc != NULL, "a JSON 2xx body that does not parse", r);
    if (r->status == 201)
        fuzz_check_created(r, doc);
    else
        FUZZ_CHECK(r->hdr_name == NULL || strcmp(r->hdr_name, "Location") != 0,
                   "a Location header on something other than a 201", r);
    if (write)
        fuzz_check_write(r, doc);
    fuzz_check_content(r, doc);
    json_decref(doc);
}

static void fuzz_check_response(const struct req *r)
{
    FUZZ_CHECK(r->finished, "the driver released an unfinished request", r);
    FUZZ_CHECK(fuzz_status_documented(r->status), "a status the API does not document", r);
    FUZZ_CHECK(r->ctype <= REQ_CT_PROMETHEUS, "an unknown content type", r);
    FUZZ_CHECK(r->out != NULL || r->out_len == 0, "a body length without a body", r);
    if (r->status < 300) {
        fuzz_check_success(r);
        return;
    }
    FUZZ_CHECK(r->ctype == REQ_CT_JSON, "an error that is not application/json", r);
    FUZZ_CHECK(fuzz_error_body_ok(r), "an error body that is not {\"error\":\"...\"}", r);
    if (r->status == 405)
        FUZZ_CHECK(r->hdr_name != NULL && strcmp(r->hdr_name, "Allow") == 0 &&
                       r->hdr_value[0] != '\0',
                   "a 405 without Allow", r);
}

/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c): a name -Wl,--wrap fixes */
void __real_req_release(struct req *r);

/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c): a name -Wl,--wrap fixes */
void __wrap_req_release(struct req *r)
{
    fuzz_check_response(r);
    __real_req_release(r);
    FUZZ_CHECK(r->body == NULL && r->scratch == NULL && r->doc == NULL && r->out == NULL,
               "req_release left a pointer behind", r);
    fuzz_cur.released = true;
}

/* ---- stored data: what a failed request must not have changed -------------------------------- */

/* The item a PUT or DELETE of `path` would change, as it is now (or -ENOENT). */
struct fuzz_snapshot {
    bool taken;
    int64_t id;
    int rc;
    struct db_item item;
};

static void fuzz_snapshot_take(const char *method, const char *target, struct fuzz_snapshot *s)
{
    static const char prefix[] = "/items/";
    char id_text[32];
    memset(s, 0, sizeof(*s));
    if (strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0)
        return;
    if (strncmp(target, prefix, sizeof(prefix) - 1) != 0)
        return;
    const char *id = target + sizeof(prefix) - 1;
    size_t n = strcspn(id, "?");
    if (n >= sizeof(id_text))
        return;
    memcpy(id_text, id, n);
    id_text[n] = '\0';
    if (param_parse_id(id_text, &s->id) != 0)
        return;
    s->taken = true;
    s->rc = db_item_get(fuzz_db, s->id, &s->item);
}

static int fuzz_count_row(void *ctx, const struct db_item *item)
{
    (void)item;
    ++*(int *)ctx;
    return 0;
}

/* After a request that was not a 2xx: no item changed, none was added. */
static void fuzz_check_unchanged(const struct fuzz_snapshot *s, int status)
{
    int newer = 0;
    FUZZ_CHECK(db_item_list(fuzz_db, fuzz_item_max_id, 1, fuzz_count_row, &newer) == 0 &&
                   newer == 0,
               "an item appeared without a 201", NULL);
    if (!s->taken || status < 300)
        return;
    struct db_item now;
    int rc = db_item_get(fuzz_db, s->id, &now);
    FUZZ_CHECK(rc == s->rc, "a failed PUT or DELETE added or removed an item", NULL);
    FUZZ_CHECK(rc != 0 || (now.qty == s->item.qty && now.name_len == s->item.name_len &&
                           memcmp(now.name, s->item.name, now.name_len) == 0),
               "a failed PUT changed the item", NULL);
}

/* ---- the input ------------------------------------------------------------------------------- */

/* Takes the next '\n'-terminated field off the input as a malloc'd C string (a NUL byte inside
 * ends it, as it would end any C string the glue passes). NULL at the end of the input. */
static char *fuzz_field(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return NULL;
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
    return s;
}

/* /cpu?iterations=10000000 is valid and takes seconds under ASan, and the fuzzer learns nothing
 * from the time spent: such inputs are rejected before they run. */
static bool fuzz_too_costly(const char *target)
{
    const char *q = strchr(target, '?');
    for (const char *p = q; p != NULL; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, "iterations=", 11) != 0)
            continue;
        const char *v = p + 12;
        size_t digits = strspn(v, "0123456789");
        if (digits > 6 || (digits > 0 && strtoull(v, NULL, 10) > FUZZ_ITERATIONS_MAX))
            return true;
    }
    return false;
}

static void fuzz_cleanup(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char file[512];
    db_close(fuzz_db);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", fuzz_db_path, suffixes[i]);
        unlink(file);
    }
    snprintf(file, sizeof(file), "%s", fuzz_db_path);
    char *slash = strrchr(file, '/');
    if (slash != NULL) {
        *slash = '\0';
        rmdir(file);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NOLINTNEXTLINE(readability-non-const-parameter): the signature is libFuzzer's */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    metrics_init("fuzz", NULL);
    fuzz_db_path = drv_temp_db();
    if (db_open(fuzz_db_path, &fuzz_db) != 0) {
        fprintf(stderr, "fuzz_request: cannot open %s\n", fuzz_db_path);
        abort();
    }
    atexit(fuzz_cleanup);
    return 0;
}

/* Runs one request and checks what it left behind. `body` may be NULL. */
static void fuzz_run(const char *method, const char *target, const char *ctype, const char *body,
                     size_t body_len)
{
    static struct drv_response res; /* 16 KiB: not on the stack */
    struct fuzz_snapshot before;
    fuzz_cur.method = method;
    fuzz_cur.target = target;
    fuzz_cur.body = body;
    fuzz_cur.body_len = body_len;
    fuzz_cur.waits = 0;
    fuzz_cur.released = false;
    fuzz_snapshot_take(method, target, &before);
    /* -1 (the response was too big to copy) is fine: the wraps have seen all of it. */
    drv_request(fuzz_db, method, target, ctype, body, body_len, &res);
    FUZZ_CHECK(fuzz_cur.released, "the driver did not release the request", NULL);
    fuzz_check_unchanged(&before, res.status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method = fuzz_field(&data, &size);
    char *target = fuzz_field(&data, &size);
    char *ctype = fuzz_field(&data, &size);
    int rc = -1; /* -1: not a request worth keeping in the corpus */
    if (method != NULL && target != NULL && !fuzz_too_costly(target)) {
        /* An empty field is an absent header; libmicrohttpd never hands over a 0-byte body. */
        fuzz_run(method, target, ctype != NULL && ctype[0] != '\0' ? ctype : NULL,
                 size > 0 ? (const char *)data : NULL, size);
        rc = 0;
    }
    free(ctype);
    free(target);
    free(method);
    return rc;
}
