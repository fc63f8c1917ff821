/* http_resp.h - an incremental parser for one HTTP/1.1 response, for the upstream client.
 *
 * Bytes are fed as they arrive from the socket (http_resp_feed), in pieces of any size; the
 * parser says when the response is complete, and refuses what it cannot trust: a status line
 * that is not "HTTP/1.x NNN ...", a header line without a colon or with a bare CR, a
 * Content-Length that is not digits, two Content-Lengths that differ, Transfer-Encoding other
 * than chunked, a chunk size that is not hex, a head larger than HTTP_RESP_HEAD_MAX or a body
 * larger than HTTP_RESP_BODY_MAX. A response with neither Content-Length nor chunked encoding
 * ends at end of file (RFC 9112 6.3, point 8), and then cannot be kept alive.
 *
 * The body is not kept: the upstream client needs only the status, whether it is complete,
 * and whether the connection may be reused. (A client that needs the bytes would append them
 * in http_resp_feed; nothing here depends on it.)
 */
#ifndef TRIAD_HTTP_RESP_H
#define TRIAD_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESP_HEAD_MAX 8192u
#define HTTP_RESP_BODY_MAX (64u * 1024)

enum http_resp_state {
    HTTP_RESP_HEAD,      /* status line and header fields */
    HTTP_RESP_BODY,      /* Content-Length bytes */
    HTTP_RESP_CHUNK_LEN, /* a chunk-size line */
    HTTP_RESP_CHUNK,     /* chunk data */
    HTTP_RESP_CHUNK_END, /* the CRLF after chunk data */
    HTTP_RESP_TRAILER,   /* trailer fields, up to the empty line */
    HTTP_RESP_TO_EOF,    /* no framing: the body runs to end of file */
    HTTP_RESP_DONE,
};

enum http_resp_error {
    HTTP_RESP_OK = 0,
    HTTP_RESP_MALFORMED = -1, /* not HTTP/1.x, or framing we refuse */
    HTTP_RESP_TOO_LARGE = -2, /* past HTTP_RESP_HEAD_MAX or HTTP_RESP_BODY_MAX */
};

struct http_resp {
    enum http_resp_state state;
    int status;
    bool keep_alive;   /* HTTP/1.1 without "Connection: close" (or 1.0 with keep-alive) */
    bool has_length;   /* Content-Length seen */
    bool chunked;      /* Transfer-Encoding: chunked */
    uint64_t length;   /* Content-Length */
    uint64_t left;     /* bytes left in the body or the current chunk */
    uint64_t body;     /* body bytes seen */
    size_t head_bytes; /* bytes of the head seen (bounded) */
    char line[256];    /* the line being assembled (status line, a header, a chunk size) */
    size_t line_len;
    bool line_long; /* the current header line did not fit `line`: it is skipped, unless
                     * it is one we need (then the response is malformed) */
    bool cr;        /* the last byte of the line so far was a CR */
};

void http_resp_init(struct http_resp *p);
/* Feeds `n` bytes (n == 0: end of file). Returns 0 (more is needed, or done: see p->state),
 * or a negative enum http_resp_error. Bytes after the end of the response are ignored; *used
 * says how many were consumed. */
int http_resp_feed(struct http_resp *p, const char *data, size_t n, size_t *used);

#endif
