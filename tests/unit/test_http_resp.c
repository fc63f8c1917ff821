/* test_http_resp.c - the upstream client's response parser: framings, pieces of any size,
 * and everything it must refuse. */
#include "http_resp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* Feeds `text` in pieces of `step` bytes (0: all at once), then end of file if `eof`.
 * Returns the first error, or 0; *rest is how many bytes the parser left unconsumed. */
static int feed(struct http_resp *p, const char *text, size_t step, bool eof, size_t *rest)
{
    size_t len = strlen(text), off = 0;
    http_resp_init(p);
    *rest = 0;
    while (off < len) {
        size_t n = step == 0 || len - off < step ? len - off : step, used;
        int rc = http_resp_feed(p, text + off, n, &used);
        if (rc != 0)
            return rc;
        off += used;
        if (used < n) {
            *rest = len - off;
            return 0;
        }
    }
    if (eof) {
        size_t used;
        return http_resp_feed(p, "", 0, &used);
    }
    return 0;
}

static void test_content_length_any_split(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: 15\r\n\r\n{\"waited_ms\":5}";
    for (size_t step = 0; step <= 7; step++) {
        struct http_resp p;
        size_t rest;
        assert_int_equal(feed(&p, r, step, false, &rest), 0);
        assert_int_equal(p.state, HTTP_RESP_DONE);
        assert_int_equal(p.status, 200);
        assert_true(p.keep_alive);
        assert_int_equal(p.body, 15);
        assert_int_equal(rest, 0);
    }
}

static void test_chunked_with_trailer(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
    for (size_t step = 0; step <= 5; step++) {
        struct http_resp p;
        size_t rest;
        assert_int_equal(feed(&p, r, step, false, &rest), 0);
        assert_int_equal(p.state, HTTP_RESP_DONE);
        assert_int_equal(p.body, 15);
    }
}

static void test_to_eof_and_connection_close(void **state)
{
    (void)state;
    struct http_resp p;
    size_t rest;
    assert_int_equal(feed(&p, "HTTP/1.0 200 OK\r\n\r\nabc", 0, true, &rest), 0);
    assert_int_equal(p.state, HTTP_RESP_DONE);
    assert_false(p.keep_alive);
    assert_int_equal(feed(&p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                          0, false, &rest),
                     0);
    assert_false(p.keep_alive);
    assert_int_equal(feed(&p,
                          "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                          0, false, &rest),
                     0);
    assert_true(p.keep_alive);
}

static void test_interim_and_no_body_statuses(void **state)
{
    (void)state;
    struct http_resp p;
    size_t rest;
    assert_int_equal(
        feed(&p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 0, false, &rest),
        0);
    assert_int_equal(p.status, 204);
    assert_int_equal(p.state, HTTP_RESP_DONE);
}

static void test_trailing_bytes_left(void **state)
{
    (void)state;
    struct http_resp p;
    size_t rest;
    assert_int_equal(
        feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 0, false, &rest), 0);
    assert_int_equal(p.state, HTTP_RESP_DONE);
    assert_int_equal(rest, 5);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const malformed[] = {
        "this is not HTTP\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n", /* bare LF */
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", /* bare CR */
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        struct http_resp p;
        size_t rest;
        assert_int_equal(feed(&p, malformed[i], 0, false, &rest), HTTP_RESP_MALFORMED);
    }
}

static void test_truncated(void **state)
{
    (void)state;
    struct http_resp p;
    size_t rest;
    assert_int_equal(feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, true, &rest),
                     HTTP_RESP_MALFORMED);
    assert_int_equal(feed(&p, "HTTP/1.1 200 OK\r\nContent-", 0, true, &rest), HTTP_RESP_MALFORMED);
    assert_int_equal(feed(&p, "", 0, true, &rest), HTTP_RESP_MALFORMED);
}

static void test_too_large(void **state)
{
    (void)state;
    struct http_resp p;
    size_t rest;
    char head[128];
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
             HTTP_RESP_BODY_MAX + 1);
    assert_int_equal(feed(&p, head, 0, false, &rest), HTTP_RESP_TOO_LARGE);
    assert_int_equal(
        feed(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n", 0, false, &rest),
        HTTP_RESP_TOO_LARGE);
    /* A head that never ends. */
    static char big[HTTP_RESP_HEAD_MAX + 64];
    static const char start[] = "HTTP/1.1 200 OK\r\nX: ";
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, start, sizeof(start) - 1); /* the rest of big stays 'a's and its NUL */
    assert_int_equal(feed(&p, big, 0, false, &rest), HTTP_RESP_TOO_LARGE);
}

static void test_long_harmless_header_skipped(void **state)
{
    (void)state;
    static char r[2048];
    char value[1200];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    snprintf(r, sizeof(r), "HTTP/1.1 200 OK\r\nX-Long: %s\r\nContent-Length: 0\r\n\r\n", value);
    struct http_resp p;
    size_t rest;
    assert_int_equal(feed(&p, r, 0, false, &rest), 0);
    assert_int_equal(p.state, HTTP_RESP_DONE);
    snprintf(r, sizeof(r), "HTTP/1.1 200 OK\r\nContent-Length: 0%s\r\n\r\n", value);
    assert_int_equal(feed(&p, r, 0, false, &rest), HTTP_RESP_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_any_split),
        cmocka_unit_test(test_chunked_with_trailer),
        cmocka_unit_test(test_to_eof_and_connection_close),
        cmocka_unit_test(test_interim_and_no_body_statuses),
        cmocka_unit_test(test_trailing_bytes_left),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_long_harmless_header_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
