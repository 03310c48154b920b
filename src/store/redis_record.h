/* redis_record.h — a decision record as the Redis store keeps it, written and read back.
 *
 * Every decision of a test is one field of the hash scout:{T}:d: the field is the request id,
 * the value one line of numbers separated by single spaces, a newline, then the context:
 *
 *   <variant> <propensity> <explored> <created> <expires> <settle_at> <aggregate> <default>
 *   <model version> <rewards> <sum> <settled>\n<context JSON, empty when none>
 *
 * Times are seconds since the epoch (created and expires to the microsecond), settle_at 0 when
 * the decision has no reward window, <default> "-" when it has no default reward, explored and
 * settled 0 or 1. A field instead of a key per decision spares Redis a key, an expiry entry and
 * the field names: with the test's stream of request ids (scout:{T}:dlog) a record costs less
 * than half the CPU and a third of the memory of the first format. Expiry is the store's job
 * (its trim drops a record past <expires>, readers ignore one that is).
 *
 * The Lua scripts of store_redis.c read and rewrite the same line (REC_LUA there): a change
 * here is a change there, and a new store format (STORE_FORMAT). */
#ifndef SCOUT_REDIS_RECORD_H
#define SCOUT_REDIS_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct redis_record {
    long variant;
    double propensity;
    int explored;
    double created, expires, settle_at;
    int aggregate;
    int has_default;
    double default_reward;
    uint64_t model_version;
    long rewards;              /* rewards joined so far (aggregation) */
    double sum;                /* their sum */
    int settled;
    const char *context;       /* JSON text or NULL; redis_record_parse points it into the text */
};

/* Room for the line of numbers with its newline (and a NUL). */
#define REDIS_RECORD_HEAD_MAX 320

/* Room for one time as redis_record_time writes it (and a NUL). */
#define REDIS_RECORD_TIME_MAX 32

/* Writes a time as the record, the stream of request ids and the windows' sorted set keep it:
 * seconds with six decimals ("1764524400.123456") from 1 s to 2^32 s (the year 2106), where
 * that text reads back to a double that writes it again; in full precision otherwise (0,
 * negative, later). Returns the length written. Without printf's floating-point path: the
 * writer formats three per decision. */
size_t redis_record_time(char buf[REDIS_RECORD_TIME_MAX], double t);

/* Writes the line of numbers and its newline into buf (REDIS_RECORD_HEAD_MAX bytes); the context
 * follows it in the value. Returns the length written. */
size_t redis_record_head(char buf[REDIS_RECORD_HEAD_MAX], const struct redis_record *r);

/* The whole value (head and context) in a new string of *len bytes (NUL-terminated); NULL when
 * out of memory. The caller frees it. */
char *redis_record_value(const struct redis_record *r, size_t *len);

/* Reads a value (text NUL-terminated at text[len], as hiredis gives it). 0 with *r filled (its
 * context points into text, NULL when empty); -1 when it is not a record of this format. */
int redis_record_parse(const char *text, size_t len, struct redis_record *r);

/* Whether the record in text (as redis_record_parse takes it) has the creation time t, written
 * as the record holds it (redis_record_time's text, compared as text): an entry of the test's
 * stream of request ids names so the record it was written with. */
int redis_record_created_at(const char *text, size_t len, const char *t);

#endif
