/* param.c - parameter parsing (see param.h). */
#include "param.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/* Accumulates decimal digits; sets *overflow if the value passes `cap` (it saturates there).
 * Returns the number of characters consumed. */
static size_t param_digits(const char *s, uint64_t cap, uint64_t *value, bool *overflow)
{
    uint64_t v = 0;
    size_t n = 0;
    *overflow = false;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        uint64_t d = (uint64_t)(s[n] - '0');
        if (v > (cap - d) / 10) {
            *overflow = true;
            v = cap;
        } else if (!*overflow) {
            v = v * 10 + d;
        }
    }
    *value = v;
    return n;
}

int param_count_clamp(const char *s)
{
    uint64_t v;
    bool overflow;
    if (s == NULL || s[0] == '\0')
        return 1;
    size_t n = param_digits(s, UINT64_MAX, &v, &overflow);
    if (n == 0 || s[n] != '\0')
        return 1; /* "foo", "-5", "1.5": not an integer */
    if (overflow || v > PARAM_COUNT_MAX)
        return PARAM_COUNT_MAX;
    return v < 1 ? 1 : (int)v;
}

int param_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    bool overflow;
    if (s == NULL || s[0] == '\0')
        return -EINVAL;
    size_t n = param_digits(s, UINT64_MAX, &v, &overflow);
    if (n == 0 || s[n] != '\0')
        return -EINVAL;
    if (overflow || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int param_parse_id(const char *s, int64_t *out)
{
    uint64_t v;
    if (s == NULL || s[0] == '0')
        return -EINVAL; /* a leading zero would give one item two names */
    if (param_parse_u64(s, 1, INT64_MAX, &v) != 0)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}
