/* http_check.c - head checks libmicrohttpd leaves to us (see http_check.h). */
#include "http_check.h"

#include "http.h"

#include <microhttpd.h>
#include <string.h>
#include <strings.h>

struct http_head_census {
    const char *head, *head_end; /* the head as libmicrohttpd left it in its read buffer */
    const char *last_end;        /* the end of the last field found inside it */
    unsigned fields, hosts, lengths, encodings;
    bool bad_name;
    bool only_chunked; /* every Transfer-Encoding field is exactly "chunked" */
    size_t arg_bytes;
};

/* Fields that libmicrohttpd had to move (an obs-folded value is reallocated) are not in the
 * head any more; they do not count. */
static void http_census_end(struct http_head_census *h, const char *end)
{
    if (end > h->head && end <= h->head_end && end > h->last_end)
        h->last_end = end;
}

static enum MHD_Result http_census_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct http_head_census *h = cls;
    if (kind == MHD_GET_ARGUMENT_KIND) {
        h->arg_bytes += key_size + value_size + 2; /* '&' or '?', and '=' */
        return MHD_YES;
    }
    h->fields++;
    http_census_end(h, key + key_size);
    if (value != NULL)
        http_census_end(h, value + value_size);
    /* libmicrohttpd keeps whitespace before the colon in the name: "X-A : b" is "X-A ". */
    if (key_size == 0 || strpbrk(key, " \t") != NULL)
        h->bad_name = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        h->hosts++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        h->lengths++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->encodings++;
        h->only_chunked = h->only_chunked && value && strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

/* libmicrohttpd 0.9.75 parses the head in place, writing a NUL over each line's CR and LF and
 * over each field's colon. A line whose name is empty (": x") then starts with a NUL, and its
 * parser takes it for the empty line that ends the head: the lines after it, the real empty
 * line and the body would be read as the next request (smuggling). A line that starts with a
 * NUL byte does the same. The head it reports (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE bytes
 * from the method) then ends with that line: after the last field there is more than the two
 * line ends (CRLF CRLF, LF LF, or one of each: 2 to 4 NULs). What is left ambiguous is ":" or
 * a lone NUL on an LF-terminated line (3 NULs, like CRLF then LF): the mixed ending is refused
 * too, rather than risk it. A folded line (obs-fold) also leaves text behind: RFC 9112 5.2
 * allows a 400 for it. */
static bool http_head_ends_cleanly(const struct http_head_census *h)
{
    if (h->head_end == h->head || h->last_end == NULL)
        return true; /* no size reported: nothing to check against */
    for (const char *p = h->last_end; p < h->head_end; p++)
        if (*p != '\0')
            return false;
    size_t nuls = (size_t)(h->head_end - h->last_end);
    return nuls == 2 || nuls == 4;
}

static struct http_check http_fail(int status, const char *why, bool close)
{
    return (struct http_check){status, why, close};
}

struct http_check http_check_head(struct MHD_Connection *c, const struct http_head *head,
                                  const struct http_limits *lim)
{
    const char *url = head->url, *version = head->version;
    const union MHD_ConnectionInfo *size =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    struct http_head_census h = {.only_chunked = true, .head = head->method};
    h.head_end = h.head + (size ? size->header_size : 0);
    if (version != NULL)
        http_census_end(&h, version + strlen(version));
    if (head->target_cut)
        return http_fail(400, "NUL byte in the request target", true);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, http_census_cb, &h);
    if (!http_head_ends_cleanly(&h))
        return http_fail(400, "malformed header section", true);
    if (h.bad_name)
        return http_fail(400, "malformed header field name", true);
    if (h.lengths > 1)
        return http_fail(400, "more than one Content-Length", true);
    if (h.encodings > 0 && h.lengths > 0)
        return http_fail(400, "Content-Length with Transfer-Encoding", true);
    if (h.encodings > 1 || !h.only_chunked)
        return http_fail(400, "unsupported Transfer-Encoding", true);
    if (version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && h.hosts != 1)
        return http_fail(400, "HTTP/1.1 needs exactly one Host header", false);
    if (strlen(url) + h.arg_bytes > lim->max_url)
        return http_fail(414, "request target too long", false);
    if (h.fields > lim->max_headers)
        return http_fail(431, "too many request header fields", false);
    return (struct http_check){0};
}
