/* driver.h - runs a request through the core with no sockets and no model.
 *
 * The smallest executor of the step contract (req.h): database waits run inline on the given
 * connection, sleeps and fan-outs complete at once. Unit tests use it to check endpoints byte
 * for byte; the fuzzer uses it to reach routing, parameters and bodies.
 */
#ifndef TRIAD_TEST_DRIVER_H
#define TRIAD_TEST_DRIVER_H

#include <stddef.h>

struct db;

struct drv_response {
    int status;
    const char *ctype; /* NULL for 204 */
    char body[16384];
    size_t len;
    char hdr_name[32], hdr_value[64]; /* the extra header, if any */
    unsigned waits;                   /* waits the request went through */
};

/* `target` is "/path?query"; the query is split on '&' and '=' (no percent-decoding).
 * `ctype` and `body` may be NULL. Returns 0, or -1 if the response did not fit. */
int drv_request(struct db *db, const char *method, const char *target, const char *ctype,
                const char *body, size_t body_len, struct drv_response *out);

/* A fresh, seeded database in a temporary directory; the path is static storage. */
const char *drv_temp_db(void);

#endif
