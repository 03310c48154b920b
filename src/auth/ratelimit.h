/* ratelimit.h — backoff for client addresses that keep failing authentication.
 * A fixed-size table (RATELIMIT_SLOTS) bounds memory whatever the number of addresses; an
 * attacker rotating through more addresses than that evicts stale and unblocked entries
 * first, and a live block only when every probed slot holds one. Failures count in a fixed
 * window from an address's first failure. Requests that carry a valid token never come here:
 * they are never slowed down. */
#ifndef SCOUT_RATELIMIT_H
#define SCOUT_RATELIMIT_H

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_WINDOW 60.0     /* seconds over which failures are counted */

struct ratelimit;

int ratelimit_new(struct ratelimit **out, int max_failures, int backoff_seconds);
void ratelimit_free(struct ratelimit *rl);

/* Seconds the address must still wait (rounded up), or 0 when it may try. */
int ratelimit_blocked(struct ratelimit *rl, const char *addr, double now);

/* Counts a failure; starts the backoff when the address reached max_failures in the window. */
void ratelimit_fail(struct ratelimit *rl, const char *addr, double now);

#endif
