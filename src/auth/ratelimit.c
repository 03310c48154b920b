/* ratelimit.c — per-address failure counting in an open-addressed table of RATELIMIT_SLOTS.
 * A lookup probes at most PROBES slots; when all are taken by live entries the oldest of them
 * is replaced, so memory and time per call are constant. One mutex: only refused requests and
 * requests without a valid token come here. */
#include "auth/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define PROBES 8

struct slot {
    char addr[48];
    double window_start;
    int failures;
    double blocked_until;
};

struct ratelimit {
    pthread_mutex_t lock;
    int max_failures;
    double backoff;
    struct slot slots[RATELIMIT_SLOTS];
};

int ratelimit_new(struct ratelimit **out, int max_failures, int backoff_seconds) {
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return SCOUT_ENOMEM;
    pthread_mutex_init(&rl->lock, NULL);
    rl->max_failures = max_failures > 0 ? max_failures : 1;
    rl->backoff = backoff_seconds > 0 ? backoff_seconds : 1;
    *out = rl;
    return SCOUT_OK;
}

void ratelimit_free(struct ratelimit *rl) {
    if (!rl) return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static unsigned hash_addr(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of addr, or (create) a free, stale or oldest one reset for it. Lock held. */
static struct slot *find(struct ratelimit *rl, const char *addr, double now, int create) {
    unsigned h = hash_addr(addr);
    struct slot *victim = NULL;
    double best = INFINITY;
    for (int i = 0; i < PROBES; i++) {
        struct slot *s = &rl->slots[(h + (unsigned)i) % RATELIMIT_SLOTS];
        double score;
        /* Keys are kept truncated to the slot: compare them the same way. */
        if (s->addr[0] && !strncmp(s->addr, addr, sizeof s->addr - 1)) return s;
        /* Prefer an empty slot, then a stale one, then the oldest unblocked one; a blocked
         * address is evicted only when every probed slot holds a live block. */
        if (!s->addr[0]) score = -INFINITY;
        else if (now - s->window_start > RATELIMIT_WINDOW && now >= s->blocked_until) score = -1e18 + s->window_start;
        else if (now < s->blocked_until) score = 1e18 + s->blocked_until;
        else score = s->window_start;
        if (score < best) {
            best = score;
            victim = s;
        }
    }
    if (!create) return NULL;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->addr, sizeof victim->addr, "%s", addr);
    victim->window_start = now;
    return victim;
}

int ratelimit_blocked(struct ratelimit *rl, const char *addr, double now) {
    int wait = 0;
    pthread_mutex_lock(&rl->lock);
    struct slot *s = find(rl, addr, now, 0);
    if (s && s->blocked_until > now) wait = (int)ceil(s->blocked_until - now);
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void ratelimit_fail(struct ratelimit *rl, const char *addr, double now) {
    pthread_mutex_lock(&rl->lock);
    struct slot *s = find(rl, addr, now, 1);
    if (now - s->window_start > RATELIMIT_WINDOW) {
        s->window_start = now;
        s->failures = 0;
    }
    if (++s->failures >= rl->max_failures) {
        s->blocked_until = now + rl->backoff;
        s->failures = 0;
        s->window_start = now;
    }
    pthread_mutex_unlock(&rl->lock);
}
