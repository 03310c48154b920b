/* metrics.c — Prometheus counters and histograms. Request counters live in a fixed
 * open-addressed table of (method, route template, status) keys, durations in one of (route
 * template): a key is claimed once under a mutex, every later update is a lock-free atomic
 * add. The tables cannot grow; keys beyond them (impossible with the route table's size)
 * fold into an overflow counter rather than allocating. Process figures come from /proc. */
#include "obs/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/common.h"
#include "util/util.h"

#define REQ_SLOTS 1024
#define ROUTE_SLOTS 64

/* Upper bounds of the histogram buckets, in seconds; the last is +Inf. */
static const double BOUNDS[HISTOGRAM_BUCKETS - 1] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,    0.025,  0.05,    0.1,    0.25,  0.5,   1.0, 10.0};

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

struct route_slot {
    _Atomic(const char *) route;
    struct histogram duration;
};

struct metrics {
    _Atomic uint64_t auth[AUTH_NREASONS];
    pthread_mutex_t claim;
    struct req_slot req[REQ_SLOTS];
    struct route_slot routes[ROUTE_SLOTS];
    _Atomic uint64_t req_overflow;
    double started_at;
};

void histogram_observe(struct histogram *h, double seconds) {
    int b = 0;
    while (b < HISTOGRAM_BUCKETS - 1 && seconds > BOUNDS[b]) b++;
    atomic_fetch_add(&h->bucket[b], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_ns, (uint64_t)(seconds > 0 ? seconds * 1e9 : 0));
}

int metrics_new(struct metrics **out) {
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return SCOUT_ENOMEM;
    pthread_mutex_init(&m->claim, NULL);
    m->started_at = util_now();
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

/* Slots are found by the route's text (FNV-1a), so equal templates share one series. */
static uintptr_t hash_route(const char *route) {
    uintptr_t h = 2166136261u;
    for (; *route; route++) h = (h ^ (unsigned char)*route) * 16777619u;
    return h;
}

static void observe_route(struct metrics *m, const char *route, double seconds) {
    uintptr_t h = hash_route(route);
    for (int probe = 0; probe < ROUTE_SLOTS; probe++) {
        struct route_slot *s = &m->routes[(h + (uintptr_t)probe) % ROUTE_SLOTS];
        const char *r = atomic_load(&s->route);
        if (!r) {
            pthread_mutex_lock(&m->claim);
            if (!(r = atomic_load(&s->route))) atomic_store(&s->route, r = route);
            pthread_mutex_unlock(&m->claim);
        }
        if (r == route || !strcmp(r, route)) {
            histogram_observe(&s->duration, seconds);
            return;
        }
    }
}

void metrics_request(struct metrics *m, const char *method, const char *route, int status, double seconds) {
    int mi = method_index(method);
    observe_route(m, route, seconds);
    uintptr_t h = hash_route(route) * 31u + (uintptr_t)mi * 7u + (uintptr_t)status;
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
        /* Templates are static strings, usually compared by address; equal text in another
         * literal (an unoptimised build does not merge them) is the same route. */
        if ((r == route || !strcmp(r, route)) && s->method == mi && s->status == status) {
            atomic_fetch_add(&s->count, 1);
            return;
        }
    }
    atomic_fetch_add(&m->req_overflow, 1);
}

void metrics_printf(struct metrics_text *b, const char *fmt, ...) {
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

void metrics_scalar(struct metrics_text *t, const char *type, const char *name, const char *help, long long value) {
    metrics_printf(t, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, value);
}

void metrics_histogram(struct metrics_text *t, const char *name, const char *labels, struct histogram *h) {
    uint64_t cum = 0;
    for (int b = 0; b < HISTOGRAM_BUCKETS; b++) {
        cum += atomic_load(&h->bucket[b]);
        if (b < HISTOGRAM_BUCKETS - 1)
            metrics_printf(t, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, BOUNDS[b], (unsigned long long)cum);
        else
            metrics_printf(t, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    /* Labels end in ','; the _sum and _count lines need them without it (or no braces). */
    int ll = (int)strlen(labels);
    if (ll) {
        metrics_printf(t, "%s_sum{%.*s} %.9f\n", name, ll - 1, labels, (double)atomic_load(&h->sum_ns) / 1e9);
        metrics_printf(t, "%s_count{%.*s} %llu\n", name, ll - 1, labels, (unsigned long long)atomic_load(&h->count));
    } else {
        metrics_printf(t, "%s_sum %.9f\n", name, (double)atomic_load(&h->sum_ns) / 1e9);
        metrics_printf(t, "%s_count %llu\n", name, (unsigned long long)atomic_load(&h->count));
    }
}

/* Resident memory, open descriptors and CPU time of this process, from /proc. */
static void process_metrics(struct metrics *m, struct metrics_text *t) {
    long pages = 0, rss = 0, fds = 0;
    struct rusage ru;
    FILE *f = fopen("/proc/self/statm", "r");
    DIR *d;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    if ((d = opendir("/proc/self/fd"))) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        fds--;   /* the directory stream's own descriptor */
    }
    getrusage(RUSAGE_SELF, &ru);
    metrics_printf(t, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
                   rss * sysconf(_SC_PAGESIZE));
    metrics_printf(t, "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\n"
                      "process_open_fds %ld\n", fds);
    metrics_printf(t, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
                      "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n", m->started_at);
    metrics_printf(t, "# HELP process_cpu_seconds_total User and system CPU time spent.\n"
                      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
                   (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                       ru.ru_stime.tv_usec / 1e6);
}

void metrics_render(struct metrics *m, struct metrics_text *t) {
    char labels[160];
    t->cap = 16384;
    t->len = 0;
    t->p = malloc(t->cap);
    if (t->p) t->p[0] = '\0';
    metrics_printf(t, "# HELP scout_api_requests_total API requests answered, by method, route template and status.\n"
                      "# TYPE scout_api_requests_total counter\n");
    for (int i = 0; i < REQ_SLOTS; i++) {
        const char *r = atomic_load(&m->req[i].route);
        if (!r) continue;
        metrics_printf(t, "scout_api_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                       METHODS[m->req[i].method], r, m->req[i].status, (unsigned long long)atomic_load(&m->req[i].count));
    }
    metrics_printf(t, "# HELP scout_api_request_duration_seconds Time from a request's first byte to its answer, by route template.\n"
                      "# TYPE scout_api_request_duration_seconds histogram\n");
    for (int i = 0; i < ROUTE_SLOTS; i++) {
        const char *r = atomic_load(&m->routes[i].route);
        if (!r) continue;
        snprintf(labels, sizeof labels, "route=\"%s\",", r);
        metrics_histogram(t, "scout_api_request_duration_seconds", labels, &m->routes[i].duration);
    }
    metrics_printf(t, "# HELP scout_auth_failures_total Requests refused by API protection, by reason.\n"
                      "# TYPE scout_auth_failures_total counter\n");
    for (int r = 0; r < AUTH_NREASONS; r++)
        metrics_printf(t, "scout_auth_failures_total{reason=\"%s\"} %llu\n", REASONS[r],
                       (unsigned long long)atomic_load(&m->auth[r]));
    process_metrics(m, t);
}
