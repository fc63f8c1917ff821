/* param.h - parsing and validating request parameters.
 *
 * Two policies, both deliberate:
 *   lenient - TechEmpower's `queries` and `count`: anything that is not an integer in 1..500
 *             becomes the nearest valid value, and never an error.
 *   strict  - every other number: plain decimal digits (no sign, no spaces, no exponent) within
 *             documented bounds, or the request is a 400. Bounds exist so that no input can
 *             ask a server for unbounded work.
 */
#ifndef TRIAD_PARAM_H
#define TRIAD_PARAM_H

#include <stdint.h>

#define PARAM_COUNT_MAX 500

/* TechEmpower clamping: NULL, empty, non-numeric or < 1 gives 1; > 500 gives 500. */
int param_count_clamp(const char *s);

/* Parses `s` as a decimal integer in min..max. Returns 0, or -EINVAL if it is not plain digits
 * (or is NULL or empty), or -ERANGE if it is outside min..max (overflow included). */
int param_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses an item id from a path segment: digits, no leading zero, 1..INT64_MAX.
 * Returns 0 or -EINVAL. */
int param_parse_id(const char *s, int64_t *out);

#endif
