/* test_endpoints.c - every endpoint through the step machine, byte for byte, with no sockets.
 *
 * The HTTP side (keep-alive, pipelining, headers) is the conformance suite's job; this file
 * checks what the core decides: routes, statuses, bodies, and that bad input changes nothing.
 */
#include "db.h"
#include "driver.h"
#include "metrics.h"

#include <regex.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static struct db *db;
static struct drv_response res;

static int setup(void **state)
{
    (void)state;
    metrics_init("unit", NULL);
    return db_open(drv_temp_db(), &db);
}

static int teardown(void **state)
{
    (void)state;
    db_close(db);
    return 0;
}

static void get(const char *target)
{
    assert_int_equal(drv_request(db, "GET", target, NULL, NULL, 0, &res), 0);
}

static void send_json(const char *method, const char *target, const char *body)
{
    assert_int_equal(drv_request(db, method, target, "application/json", body, strlen(body), &res),
                     0);
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("'%s' does not match /%s/", text, pattern);
}

static void assert_error(int status)
{
    assert_int_equal(res.status, status);
    assert_string_equal(res.ctype, "application/json");
    assert_matches(res.body, "^\\{\"error\":\"[^\"]+\"\\}$");
}

static void test_hello(void **state)
{
    (void)state;
    get("/plaintext");
    assert_int_equal(res.status, 200);
    assert_string_equal(res.ctype, "text/plain");
    assert_string_equal(res.body, "Hello, World!");
    get("/json");
    assert_int_equal(res.status, 200);
    assert_string_equal(res.ctype, "application/json");
    assert_string_equal(res.body, "{\"message\":\"Hello, World!\"}");
    assert_int_equal(res.waits, 0);
}

#define WORLD "\\{\"id\":[0-9]+,\"randomNumber\":[0-9]+\\}"

static void assert_world_array(unsigned n)
{
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "^\\[" WORLD "(," WORLD "){%u}\\]$", n - 1);
    assert_int_equal(res.status, 200);
    assert_matches(res.body, n == 1 ? "^\\[" WORLD "\\]$" : pattern);
}

static void test_worlds(void **state)
{
    (void)state;
    get("/db");
    assert_int_equal(res.status, 200);
    assert_matches(res.body, "^" WORLD "$");
    struct {
        const char *q;
        unsigned n;
    } cases[] = {{"2", 2}, {"0", 1}, {"foo", 1}, {"", 1}, {"-3", 1}, {"501", 500}, {"20", 20}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char t[64];
        snprintf(t, sizeof(t), "/queries?queries=%s", cases[i].q);
        get(t);
        assert_world_array(cases[i].n);
        snprintf(t, sizeof(t), "/cached-queries?count=%s", cases[i].q);
        get(t);
        assert_world_array(cases[i].n);
    }
    get("/queries");
    assert_world_array(1);
}

static void test_updates_commit(void **state)
{
    (void)state;
    get("/updates?queries=5");
    assert_world_array(5);
    assert_int_equal(res.waits, 2); /* read, then write */
    /* Each returned row is what the database now holds (the last write wins for repeats). */
    int ids[5], rns[5], n = 0;
    for (const char *p = res.body; n < 5 && (p = strstr(p, "{\"id\":")) != NULL; p++, n++)
        assert_int_equal(sscanf(p, "{\"id\":%d,\"randomNumber\":%d}", &ids[n], &rns[n]), 2);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        bool repeated_later = false;
        for (int j = i + 1; j < n; j++)
            repeated_later = repeated_later || ids[j] == ids[i];
        int32_t stored;
        assert_int_equal(db_world_get(db, ids[i], &stored), 0);
        if (!repeated_later)
            assert_int_equal(stored, rns[i]);
    }
}

static void test_fortunes(void **state)
{
    (void)state;
    static const char expected[] =
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th>"
        "<th>message</th></tr><tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be "
        "displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr><tr><td>4</td><td>A "
        "bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr><tr><td>5</td>"
        "<td>A computer program does what you tell it to do, not what you want it to do.</td>"
        "</tr><tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t "
        "broken.</td></tr><tr><td>8</td><td>A list is only as strong as its weakest link. "
        "\xE2\x80\x94 Donald Knuth</td></tr><tr><td>0</td><td>Additional fortune added at "
        "request time.</td></tr><tr><td>3</td><td>After enough decimal places, nobody gives a "
        "damn.</td></tr><tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
        "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr><tr><td>6"
        "</td><td>Emacs is a nice operating system, but I prefer UNIX. \xE2\x80\x94 Tom "
        "Christaensen</td></tr><tr><td>9</td><td>Feature: A bug with seniority.</td></tr><tr>"
        "<td>1</td><td>fortune: No such file or directory</td></tr><tr><td>12</td><td>"
        "\xE3\x83\x95\xE3\x83\xAC\xE3\x83\xBC\xE3\x83\xA0\xE3\x83\xAF\xE3\x83\xBC\xE3\x82\xAF"
        "\xE3\x81\xAE\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x81\xE3\x83\x9E\xE3\x83\xBC\xE3\x82\xAF"
        "</td></tr></table></body></html>";
    get("/fortunes");
    assert_int_equal(res.status, 200);
    assert_string_equal(res.ctype, "text/html; charset=utf-8");
    assert_int_equal(res.len, sizeof(expected) - 1);
    assert_string_equal(res.body, expected);
    assert_int_equal(res.len, 1226);
}

static void test_work(void **state)
{
    (void)state;
    get("/cpu?iterations=1000");
    assert_string_equal(res.body, "{\"iterations\":1000,\"digest\":\"7f055c91756e61d2\"}");
    get("/io?ms=25");
    assert_string_equal(res.body, "{\"waited_ms\":25}");
    assert_int_equal(res.waits, 1);
    get("/fanout?calls=3&ms=7");
    assert_string_equal(res.body, "{\"calls\":3,\"ms\":7}");
    const char *bad[] = {"/cpu",
                         "/cpu?iterations=-1",
                         "/cpu?iterations=10000001",
                         "/cpu?iterations=1e3",
                         "/io",
                         "/io?ms=10001",
                         "/io?ms=abc",
                         "/fanout?ms=5",
                         "/fanout?calls=0&ms=5",
                         "/fanout?calls=1001&ms=5",
                         "/fanout?calls=2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get(bad[i]);
        assert_error(400);
        assert_int_equal(res.waits, 0);
    }
}

static void test_routing_errors(void **state)
{
    (void)state;
    get("/nope");
    assert_error(404);
    get("/items/abc");
    assert_error(404);
    get("/items/0");
    assert_error(404);
    assert_int_equal(drv_request(db, "POST", "/json", NULL, NULL, 0, &res), 0);
    assert_error(405);
    assert_string_equal(res.hdr_name, "Allow");
    assert_string_equal(res.hdr_value, "GET, HEAD");
    assert_int_equal(drv_request(db, "DELETE", "/items", NULL, NULL, 0, &res), 0);
    assert_string_equal(res.hdr_value, "GET, HEAD, POST");
    assert_int_equal(drv_request(db, "BREW", "/items/1", NULL, NULL, 0, &res), 0);
    assert_error(405);
    assert_string_equal(res.hdr_value, "GET, HEAD, PUT, DELETE");
    assert_int_equal(drv_request(db, "HEAD", "/json", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(drv_request(db, "GET", "/json", NULL, "x", 1, &res), 0);
    assert_error(400);
    assert_int_equal(drv_request(db, "POST", "/items", "text/plain", "{}", 2, &res), 0);
    assert_error(415);
}

/* The first page of items, as the API lists them. */
static void items_snapshot(char *out, size_t len)
{
    struct drv_response page;
    assert_int_equal(drv_request(db, "GET", "/items?limit=100", NULL, NULL, 0, &page), 0);
    snprintf(out, len, "%s", page.body);
}

static void test_items_crud(void **state)
{
    (void)state;
    send_json("POST", "/items", "{\"name\":\"apple\",\"qty\":3}");
    assert_int_equal(res.status, 201);
    int id;
    assert_int_equal(sscanf(res.body, "{\"id\":%d,", &id), 1);
    char expect[128], where[32];
    snprintf(expect, sizeof(expect), "{\"id\":%d,\"name\":\"apple\",\"qty\":3}", id);
    snprintf(where, sizeof(where), "/items/%d", id);
    assert_string_equal(res.body, expect);
    assert_string_equal(res.hdr_name, "Location");
    assert_string_equal(res.hdr_value, where);
    get(where);
    assert_string_equal(res.body, expect);
    send_json("PUT", where, "{\"qty\":0,\"name\":\"\xC3\xA9t\xC3\xA9 \\\"<b>\\\"\"}");
    assert_int_equal(res.status, 200);
    snprintf(expect, sizeof(expect),
             "{\"id\":%d,\"name\":\"\xC3\xA9t\xC3\xA9 \\\"<b>\\\"\",\"qty\":0}", id);
    assert_string_equal(res.body, expect);
    assert_int_equal(drv_request(db, "DELETE", where, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 204);
    assert_null(res.ctype);
    assert_int_equal(res.len, 0);
    get(where);
    assert_error(404);
    send_json("PUT", where, "{\"name\":\"x\",\"qty\":1}");
    assert_error(404);
}

static void test_items_pagination(void **state)
{
    (void)state;
    int ids[5];
    for (int i = 0; i < 5; i++) {
        send_json("POST", "/items", "{\"name\":\"p\",\"qty\":1}");
        assert_int_equal(sscanf(res.body, "{\"id\":%d,", &ids[i]), 1);
    }
    char t[64], next[32];
    snprintf(t, sizeof(t), "/items?limit=2&after=%d", ids[0] - 1);
    get(t);
    snprintf(next, sizeof(next), "\"next\":%d}", ids[1]);
    assert_non_null(strstr(res.body, next));
    snprintf(t, sizeof(t), "/items?limit=2&after=%d", ids[3]);
    get(t);
    assert_non_null(strstr(res.body, "\"next\":null}"));
    get("/items?limit=0");
    assert_error(400);
    get("/items?limit=101");
    assert_error(400);
    get("/items?after=-1");
    assert_error(400);
}

static void test_items_bad_bodies_change_nothing(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "",
        "{",
        "{\"name\":\"a\",\"qty\":1",
        "[]",
        "\"x\"",
        "null",
        "{}",
        "{\"name\":\"a\"}",
        "{\"qty\":1}",
        "{\"name\":\"a\",\"qty\":-1}",
        "{\"name\":\"a\",\"qty\":1.5}",
        "{\"name\":\"a\",\"qty\":\"1\"}",
        "{\"name\":\"a\",\"qty\":1e999}",
        "{\"name\":\"a\",\"qty\":99999999999999999999}",
        "{\"name\":1,\"qty\":1}",
        "{\"name\":\"\",\"qty\":1}",
        "{\"name\":\"a\\u0000b\",\"qty\":1}",
        "{\"name\":\"a\",\"qty\":1,\"x\":2}",
        "{\"name\":\"a\",\"name\":\"b\",\"qty\":1}",
        "{\"name\":{\"a\":{\"b\":1}},\"qty\":1}",
        "{\"name\":[\"a\"],\"qty\":1}",
        "{\"name\":\"a\",\"qty\":1}x",
        "{\"name\":\"\xff\xfe\",\"qty\":1}",
        "{\"name\":\"'); DROP TABLE items;--\",\"qty\":1} trailing",
    };
    char before[16384], after[16384];
    items_snapshot(before, sizeof(before));
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        send_json("POST", "/items", bodies[i]);
        if (res.status != 400)
            fail_msg("body %zu (%s) gave %d", i, bodies[i], res.status);
        assert_error(400);
        send_json("PUT", "/items/1", bodies[i]);
        assert_error(400);
    }
    items_snapshot(after, sizeof(after));
    assert_string_equal(before, after);
}

static void test_items_name_length(void **state)
{
    (void)state;
    char body[1024] = "{\"name\":\"";
    for (int i = 0; i < 200; i++)
        strcat(body, "\xC3\xA9"); /* 200 characters, 400 bytes */
    strcat(body, "\",\"qty\":1}");
    send_json("POST", "/items", body);
    assert_int_equal(res.status, 201);
    char *tail = strstr(body, "\",\"qty\"");
    memmove(tail + 2, tail, strlen(tail) + 1);
    memcpy(tail, "\xC3\xA9", 2); /* 201 characters */
    send_json("POST", "/items", body);
    assert_error(400);
}

static void test_ops(void **state)
{
    (void)state;
    get("/health");
    assert_string_equal(res.body, "{\"status\":\"ok\",\"model\":\"unit\"}");
    get("/stats");
    assert_matches(res.body, "^\\{\"model\":\"unit\",\"version\":\"[0-9.]+\",\"pid\":[0-9]+,");
    get("/metrics");
    assert_string_equal(res.ctype, "text/plain; version=0.0.4");
    assert_non_null(strstr(res.body, "triad_info{model=\"unit\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_worlds),
        cmocka_unit_test(test_updates_commit),
        cmocka_unit_test(test_fortunes),
        cmocka_unit_test(test_work),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_items_crud),
        cmocka_unit_test(test_items_pagination),
        cmocka_unit_test(test_items_bad_bodies_change_nothing),
        cmocka_unit_test(test_items_name_length),
        cmocka_unit_test(test_ops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
