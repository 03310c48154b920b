/* metrics.h — counters and histograms for Prometheus, in its text exposition format.
 * Everything on the request path is a lock-free atomic; label sets are bounded: routes are
 * route templates (never raw paths), auth failure reasons a fixed enum, tests the live ones.
 * Other modules keep their own figures (the store's operations, the tests' counters) and add
 * them to the exposition through struct metrics_text. */
#ifndef SCOUT_METRICS_H
#define SCOUT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum auth_reason {
    AUTH_MISSING = 0,     /* no Authorization header */
    AUTH_MALFORMED,       /* not "Bearer <token>" */
    AUTH_INVALID,         /* no such token */
    AUTH_EXPIRED,
    AUTH_REVOKED,         /* revoked, or rotated past its grace period */
    AUTH_SCOPE,           /* valid token, not allowed here (403) */
    AUTH_RATE_LIMITED,    /* refused with 429 during a backoff */
    AUTH_NREASONS
};

/* A latency histogram with fixed buckets from 50 µs to 10 s. */
#define HISTOGRAM_BUCKETS 16
struct histogram {
    _Atomic uint64_t bucket[HISTOGRAM_BUCKETS];   /* non-cumulative; rendered cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};
void histogram_observe(struct histogram *h, double seconds);

/* The exposition being built: a growable string. */
struct metrics_text {
    char *p;
    size_t len, cap;
};
void metrics_printf(struct metrics_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes one series without labels, with its HELP and TYPE ("counter" or "gauge") lines. */
void metrics_scalar(struct metrics_text *t, const char *type, const char *name, const char *help, long long value);
/* Writes name_bucket/_sum/_count lines; labels is "" or `key="value",` pairs ending in ','. */
void metrics_histogram(struct metrics_text *t, const char *name, const char *labels, struct histogram *h);

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

const char *metrics_auth_reason_name(enum auth_reason r);
void metrics_auth_failure(struct metrics *m, enum auth_reason r);

/* Counts a finished request and its duration; route is a route template with static storage. */
void metrics_request(struct metrics *m, const char *method, const char *route, int status, double seconds);

/* Starts an exposition with this module's series and the process's; the caller appends its
 * own and frees t->p. t->p is NULL when memory ran out. */
void metrics_render(struct metrics *m, struct metrics_text *t);

#endif
