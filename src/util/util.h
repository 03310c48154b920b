/* util.h — small helpers with no better home: wall-clock time, ISO-8601 formatting, UUIDv4.
 * Time comes through one function so tests and the store agree on what "now" means. */
#ifndef SCOUT_UTIL_H
#define SCOUT_UTIL_H

#include <stddef.h>
#include <jansson.h>

#include "util/common.h"

/* Seconds since the Unix epoch, with sub-second precision. */
double util_now(void);

/* Monotonic seconds, for timeouts and intervals. */
double util_monotonic(void);

/* Sleeps for `seconds` (resumed after signals). */
void util_sleep(double seconds);

/* Formats t (epoch seconds) as "2026-11-24T21:34:41.123Z" into buf (at least 32 bytes). */
void util_iso8601(double t, char *buf, size_t len);

/* ISO-8601 JSON string for t, or JSON null when t is 0 (never). New reference. */
json_t *util_json_time(double t);

/* Writes a random UUIDv4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") and a NUL into out. */
void util_uuid4(char out[SCOUT_ID_LEN + 1]);

/* A UUIDv4 in layout whose first 48 bits are t in milliseconds since the epoch (big-endian)
 * and whose other 74 free bits are random (a "COMB" id): ids made one after another sort
 * together, so an index of them grows at its end instead of at random pages. Unguessable
 * (74 random bits); it reveals when it was made. */
void util_uuid4_timed(double t, char out[SCOUT_ID_LEN + 1]);

/* n bytes from a cryptographically secure generator, without a system call per call
 * (per-thread ChaCha20 keystream keyed from the OS, with fast key erasure). */
void util_random(void *out, size_t n);

/* True when s is a canonical decimal integer in [0, max] ("0", "17"; not "-1", "01", "1.5");
 * the value goes to *out. */
int util_parse_index(const char *s, long max, long *out);

/* Length of the longest prefix of s of at most max bytes that does not split a UTF-8
 * character: for quoting client text in messages, "%.*s" with this length. */
int util_utf8_prefix(const char *s, int max);

#endif
