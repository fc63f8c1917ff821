/* http_resp.c - the upstream client's response parser (see http_resp.h). */
#include "http_resp.h"

#include <string.h>
#include <strings.h>

void http_resp_init(struct http_resp *p)
{
    memset(p, 0, sizeof(*p));
    p->state = HTTP_RESP_HEAD;
}

static bool http_resp_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Strict decimal, at most 18 digits (no overflow). */
static int http_resp_decimal(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 18)
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (n == 0 || s[n] != '\0')
        return -1;
    *out = v;
    return 0;
}

/* "HTTP/1.x NNN[ reason]" */
static int http_resp_status_line(struct http_resp *p, const char *s)
{
    if (strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return HTTP_RESP_MALFORMED;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return HTTP_RESP_MALFORMED;
    if (s[12] != '\0' && s[12] != ' ')
        return HTTP_RESP_MALFORMED;
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    p->keep_alive = s[7] == '1'; /* HTTP/1.1 keeps alive unless told otherwise */
    return p->status >= 100 ? 0 : HTTP_RESP_MALFORMED;
}

/* Does a comma-separated list contain `token` (case-insensitively)? */
static bool http_resp_has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *s = list; *s != '\0';) {
        s += strspn(s, " \t,");
        size_t len = strcspn(s, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (s[trimmed - 1] == ' ' || s[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == n && strncasecmp(s, token, n) == 0)
            return true;
        s += len;
    }
    return false;
}

/* One header field line (without its CRLF). The fields that decide framing must fit the line
 * buffer; others may not, and are skipped. */
static int http_resp_field(struct http_resp *p, char *s)
{
    size_t name_len = 0;
    while (http_resp_tchar(s[name_len]))
        name_len++;
    if (name_len == 0 || s[name_len] != ':')
        return HTTP_RESP_MALFORMED;
    s[name_len] = '\0';
    char *v = s + name_len + 1;
    v += strspn(v, " \t");
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        v[--vlen] = '\0';
    bool framing = strcasecmp(s, "content-length") == 0 ||
                   strcasecmp(s, "transfer-encoding") == 0 || strcasecmp(s, "connection") == 0;
    if (p->line_long)
        return framing ? HTTP_RESP_MALFORMED : 0;
    if (strcasecmp(s, "content-length") == 0) {
        uint64_t len;
        if (http_resp_decimal(v, &len) != 0 || (p->has_length && len != p->length))
            return HTTP_RESP_MALFORMED;
        p->has_length = true;
        p->length = len;
    } else if (strcasecmp(s, "transfer-encoding") == 0) {
        if (strcasecmp(v, "chunked") != 0)
            return HTTP_RESP_MALFORMED; /* another coding, or a list: not for us */
        p->chunked = true;
    } else if (strcasecmp(s, "connection") == 0) {
        if (http_resp_has_token(v, "close"))
            p->keep_alive = false;
        else if (http_resp_has_token(v, "keep-alive"))
            p->keep_alive = true;
    }
    return 0;
}

/* The empty line after the fields: choose how the body is framed. */
static int http_resp_head_end(struct http_resp *p)
{
    if (p->status == 101)
        return HTTP_RESP_MALFORMED; /* we never ask to switch protocols */
    if (p->status < 200) {          /* an interim response: the real one follows */
        http_resp_init(p);
        return 0;
    }
    if (p->chunked && p->has_length)
        return HTTP_RESP_MALFORMED; /* RFC 9112 6.3: a sign of smuggling; refuse */
    if (p->status == 204 || p->status == 304) {
        p->state = HTTP_RESP_DONE;
    } else if (p->chunked) {
        p->state = HTTP_RESP_CHUNK_LEN;
    } else if (p->has_length) {
        if (p->length > HTTP_RESP_BODY_MAX)
            return HTTP_RESP_TOO_LARGE;
        p->left = p->length;
        p->state = p->length == 0 ? HTTP_RESP_DONE : HTTP_RESP_BODY;
    } else {
        p->keep_alive = false; /* the end of the body is the end of the connection */
        p->state = HTTP_RESP_TO_EOF;
    }
    return 0;
}

/* "1a[;ext]" */
static int http_resp_chunk_len(struct http_resp *p, const char *s)
{
    uint64_t v = 0;
    size_t n = 0;
    for (;; n++) {
        char c = s[n];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        if (n == 15)
            return HTTP_RESP_MALFORMED;
        v = v * 16 + (uint64_t)d;
    }
    if (n == 0 || (s[n] != '\0' && s[n] != ';' && s[n] != ' ' && s[n] != '\t'))
        return HTTP_RESP_MALFORMED;
    if (p->body + v > HTTP_RESP_BODY_MAX)
        return HTTP_RESP_TOO_LARGE;
    p->left = v;
    p->state = v == 0 ? HTTP_RESP_TRAILER : HTTP_RESP_CHUNK;
    return 0;
}

/* A complete line of the head, of a chunk size, or of the trailer. */
static int http_resp_line(struct http_resp *p)
{
    char *s = p->line;
    s[p->line_len] = '\0';
    bool empty = p->line_len == 0 && !p->line_long;
    int rc = 0;
    switch (p->state) {
    case HTTP_RESP_HEAD:
        if (p->status == 0)
            rc = p->line_long ? HTTP_RESP_MALFORMED : http_resp_status_line(p, s);
        else
            rc = empty ? http_resp_head_end(p) : http_resp_field(p, s);
        break;
    case HTTP_RESP_CHUNK_LEN:
        rc = p->line_long ? HTTP_RESP_MALFORMED : http_resp_chunk_len(p, s);
        break;
    case HTTP_RESP_CHUNK_END:
        rc = empty ? 0 : HTTP_RESP_MALFORMED;
        p->state = HTTP_RESP_CHUNK_LEN;
        break;
    case HTTP_RESP_TRAILER:
        if (empty)
            p->state = HTTP_RESP_DONE;
        break;
    default:
        rc = HTTP_RESP_MALFORMED;
    }
    p->line_len = 0;
    p->line_long = false;
    return rc;
}

/* Line-oriented states: collect up to CRLF. A bare CR inside a line is refused. */
static int http_resp_line_bytes(struct http_resp *p, const char *data, size_t n, size_t *i)
{
    while (*i < n) {
        char c = data[(*i)++];
        if (p->state == HTTP_RESP_HEAD || p->state == HTTP_RESP_TRAILER) {
            if (++p->head_bytes > HTTP_RESP_HEAD_MAX)
                return HTTP_RESP_TOO_LARGE;
        }
        if (c == '\n') {
            if (!p->cr)
                return HTTP_RESP_MALFORMED; /* lines end in CRLF */
            p->cr = false;
            if (!p->line_long)
                p->line_len--; /* the CR */
            return http_resp_line(p);
        }
        if (p->cr)
            return HTTP_RESP_MALFORMED; /* a CR not followed by LF */
        p->cr = c == '\r';
        if (p->line_len + 1 < sizeof(p->line))
            p->line[p->line_len++] = c;
        else
            p->line_long = true; /* keep the start: it holds the field's name */
    }
    return 0;
}

int http_resp_feed(struct http_resp *p, const char *data, size_t n, size_t *used)
{
    size_t i = 0;
    int rc = 0;
    if (n == 0) { /* end of file */
        *used = 0;
        if (p->state == HTTP_RESP_TO_EOF)
            p->state = HTTP_RESP_DONE;
        return p->state == HTTP_RESP_DONE ? 0 : HTTP_RESP_MALFORMED; /* truncated */
    }
    while (i < n && rc == 0 && p->state != HTTP_RESP_DONE) {
        switch (p->state) {
        case HTTP_RESP_BODY:
        case HTTP_RESP_CHUNK: {
            size_t take = n - i < p->left ? n - i : (size_t)p->left;
            i += take;
            p->left -= take;
            p->body += take;
            if (p->left == 0)
                p->state = p->state == HTTP_RESP_BODY ? HTTP_RESP_DONE : HTTP_RESP_CHUNK_END;
            break;
        }
        case HTTP_RESP_TO_EOF:
            p->body += n - i;
            i = n;
            if (p->body > HTTP_RESP_BODY_MAX)
                rc = HTTP_RESP_TOO_LARGE;
            break;
        default:
            rc = http_resp_line_bytes(p, data, n, &i);
        }
    }
    *used = i;
    return rc;
}
