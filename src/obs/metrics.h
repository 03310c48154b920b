/* metrics.h — counters for Prometheus, rendered in its text exposition format.
 * Counters are atomics updated on the request path without locks; label sets are bounded:
 * routes are route templates (never raw paths), auth failure reasons a fixed enum. */
#ifndef SCOUT_METRICS_H
#define SCOUT_METRICS_H

#include <stddef.h>

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

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

const char *metrics_auth_reason_name(enum auth_reason r);
void metrics_auth_failure(struct metrics *m, enum auth_reason r);

/* Counts a finished request; route is a route template with static storage. */
void metrics_request(struct metrics *m, const char *method, const char *route, int status);

/* Appends the exposition of every metric to a malloc'd string (caller frees). */
char *metrics_render(struct metrics *m);

#endif
