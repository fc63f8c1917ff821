/* http_check.c - head checks libmicrohttpd leaves to us (see http_check.h). */
#include "http_check.h"

#include "http.h"

#include <microhttpd.h>
#include <string.h>
#include <strings.h>

struct http_head_census {
    unsigned fields, hosts, lengths, encodings;
    bool bad_name;
    bool only_chunked; /* every Transfer-Encoding field is exactly "chunked" */
    size_t arg_bytes;
};

static enum MHD_Result http_census_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct http_head_census *h = cls;
    if (kind == MHD_GET_ARGUMENT_KIND) {
        h->arg_bytes += key_size + value_size + 2; /* '&' or '?', and '=' */
        return MHD_YES;
    }
    h->fields++;
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

static struct http_check http_fail(int status, const char *why, bool close)
{
    return (struct http_check){status, why, close};
}

struct http_check http_check_head(struct MHD_Connection *c, const char *url, const char *version,
                                  bool target_cut, const struct http_limits *lim)
{
    struct http_head_census h = {.only_chunked = true};
    if (target_cut)
        return http_fail(400, "NUL byte in the request target", true);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, http_census_cb, &h);
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
