/* http_check.h - checks on a request's head that libmicrohttpd 0.9.75 does not make.
 *
 * Its parser is lenient, and some of that leniency is how requests get smuggled past a proxy
 * or truncated without anyone noticing (the hostile-input suite has one case per check):
 *
 *   - a raw NUL byte in the request target ends the C string libmicrohttpd hands over, so
 *     "PUT /items/4<NUL>junk" would be served as "PUT /items/4";
 *   - two Content-Length fields, or Content-Length with Transfer-Encoding, or a transfer coding
 *     other than exactly "chunked": the body's length is ambiguous (RFC 9112, 6.3);
 *   - whitespace between a field name and its colon (RFC 9112, 5.1);
 *   - a line with an empty field name, or starting with a NUL byte, which libmicrohttpd takes
 *     for the end of the head: the rest of the head would be read as another request;
 *   - an HTTP/1.1 request without exactly one Host field (RFC 9112, 3.2);
 *   - a target longer than --max-url, more header fields than --max-headers.
 *
 * Framing errors get 400 and the connection closes before any body is read, so what follows
 * cannot be taken for another request. The rest are answered normally.
 */
#ifndef TRIAD_HTTP_CHECK_H
#define TRIAD_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;
struct http_limits;

struct http_check {
    int status;      /* 0: the head is acceptable */
    const char *why; /* the error message */
    bool close;      /* framing is in doubt: answer at once and close */
};

/* The request line as libmicrohttpd split it: its strings point into its read buffer, where
 * the head still is (`method` is its first byte). */
struct http_head {
    const char *method, *url, *version;
    bool target_cut; /* the raw target had a NUL byte (see http.c's URI callback) */
};

struct http_check http_check_head(struct MHD_Connection *c, const struct http_head *head,
                                  const struct http_limits *lim);

#endif
