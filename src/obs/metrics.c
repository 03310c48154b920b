/* metrics.c — Prometheus counters. Request counters live in a fixed open-addressed table of
 * (method, route template, status) keys: a key is claimed once under a mutex, every later
 * increment is a lock-free atomic add. The table cannot grow past REQ_SLOTS; keys beyond it
 * (impossible with the route table's size, short of hostile methods) fold into one overflow
 * series rather than allocating. */
#include "obs/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define REQ_SLOTS 1024

static const char *REASONS[AUTH_NREASONS] = {"missing", "malformed", "invalid", "expired",
                                              "revoked", "scope",     "rate_limited"};
static const char *METHODS[] = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "other"};
#define NMETHODS (sizeof METHODS / sizeof *METHODS)

struct req_slot {
    _Atomic(const char *) route;   /* NULL: free */
    int method;
    int status;
    _Atomic uint64_t count;
};

struct metrics {
    _Atomic uint64_t auth[AUTH_NREASONS];
    pthread_mutex_t claim;
    struct req_slot req[REQ_SLOTS];
    _Atomic uint64_t req_overflow;
};

int metrics_new(struct metrics **out) {
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return SCOUT_ENOMEM;
    pthread_mutex_init(&m->claim, NULL);
    *out = m;
    return SCOUT_OK;
}

void metrics_free(struct metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->claim);
    free(m);
}

const char *metrics_auth_reason_name(enum auth_reason r) {
    return r < AUTH_NREASONS ? REASONS[r] : "unknown";
}

void metrics_auth_failure(struct metrics *m, enum auth_reason r) {
    if (r < AUTH_NREASONS) atomic_fetch_add(&m->auth[r], 1);
}

static int method_index(const char *method) {
    for (size_t i = 0; i < NMETHODS - 1; i++)
        if (!strcmp(method, METHODS[i])) return (int)i;
    return (int)NMETHODS - 1;
}

void metrics_request(struct metrics *m, const char *method, const char *route, int status) {
    int mi = method_index(method);
    uintptr_t h = ((uintptr_t)route >> 3) * 31u + (uintptr_t)mi * 7u + (uintptr_t)status;
    for (int probe = 0; probe < REQ_SLOTS; probe++) {
        struct req_slot *s = &m->req[(h + (uintptr_t)probe) % REQ_SLOTS];
        const char *r = atomic_load(&s->route);
        if (!r) {
            pthread_mutex_lock(&m->claim);
            r = atomic_load(&s->route);
            if (!r) {
                s->method = mi;
                s->status = status;
                atomic_store(&s->route, route);   /* published last: readers see a whole key */
                r = route;
            }
            pthread_mutex_unlock(&m->claim);
        }
        if (r == route && s->method == mi && s->status == status) {
            atomic_fetch_add(&s->count, 1);
            return;
        }
    }
    atomic_fetch_add(&m->req_overflow, 1);
}

/* A growable string for the exposition. */
struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    if (!b->p) return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) break;
        char *g = realloc(b->p, b->cap * 2 + (size_t)n);
        if (!g) {
            free(b->p);
            b->p = NULL;
            return;
        }
        b->p = g;
        b->cap = b->cap * 2 + (size_t)n;
    }
    b->len += (size_t)n;
}

char *metrics_render(struct metrics *m) {
    struct buf b = {malloc(8192), 0, 8192};
    put(&b, "# HELP scout_api_requests_total API requests answered, by method, route template and status.\n"
            "# TYPE scout_api_requests_total counter\n");
    for (int i = 0; i < REQ_SLOTS; i++) {
        const char *r = atomic_load(&m->req[i].route);
        if (!r) continue;
        put(&b, "scout_api_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n", METHODS[m->req[i].method],
            r, m->req[i].status, (unsigned long long)atomic_load(&m->req[i].count));
    }
    put(&b, "# HELP scout_auth_failures_total Requests refused by API protection, by reason.\n"
            "# TYPE scout_auth_failures_total counter\n");
    for (int r = 0; r < AUTH_NREASONS; r++)
        put(&b, "scout_auth_failures_total{reason=\"%s\"} %llu\n", REASONS[r], (unsigned long long)atomic_load(&m->auth[r]));
    put(&b, "# HELP scout_redis_connections Live connections to Redis (0 on the embedded store).\n"
            "# TYPE scout_redis_connections gauge\nscout_redis_connections 0\n");
    return b.p;
}
