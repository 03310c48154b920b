/* store_backend.h — what a store backend implements: the operations of store.h, as a table.
 * A backend's own struct starts with a `struct store` whose `ops` points at its table; store.c
 * forwards every call of store.h through it. Only backends and store.c include this file. */
#ifndef SCOUT_STORE_BACKEND_H
#define SCOUT_STORE_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_ops {
    const char *name;   /* "sqlite", "redis" */
    void (*set_event_handler)(struct store *s, store_event_fn fn, void *arg);
    void (*set_change_handler)(struct store *s, store_change_fn fn, void *arg);
    void (*set_snapshots)(struct store *s, const struct store_snapshots *snap);   /* NULL: keeps every event */
    int (*start)(struct store *s);
    void (*close)(struct store *s);
    int (*put_setting)(struct store *s, const char *key, const char *json);
    int (*put_setting_now)(struct store *s, const char *key, const char *json);   /* NULL: put_setting works unstarted */
    int (*put_test)(struct store *s, const char *id, const char *definition, double created);
    int (*delete_test)(struct store *s, const char *id);
    int (*set_rollout)(struct store *s, const char *id, long variant_id);
    int (*put_token)(struct store *s, const struct store_token *tk);
    int (*delete_token)(struct store *s, const char *id);
    void (*touch_token)(struct store *s, const char *id, double last_used);
    int (*flush)(struct store *s);
    void (*put_decision)(struct store *s, struct store_decision *d);
    void (*put_test_stats)(struct store *s, const char *test_id, char *stats);
    int (*claim_assignment)(struct store *s, struct store_assignment *a);
    int (*append_rewards)(struct store *s, const char *test_id, struct store_reward *ev, int n);
    /* Optional: append_rewards without waiting (NULL: store_append_rewards_async waits). */
    void (*append_rewards_async)(struct store *s, const char *test_id, struct store_reward *ev, int n,
                                 store_done_fn done, void *arg);
    int (*load_tests)(struct store *s, int (*cb)(void *ud, const struct store_test_row *row), void *ud);
    int (*load_arm_predictions)(struct store *s, int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud);
    int (*load_rewards)(struct store *s, int (*cb)(void *ud, const char *test_id, long variant_id, double reward, const char *context, double ts), void *ud);
    int (*load_assignments)(struct store *s, int (*cb)(void *ud, const char *test_id, const char *user, long variant_id, double propensity), void *ud);
    int (*get_setting)(struct store *s, const char *key, char **out);
    int (*count_decisions)(struct store *s, double now, long *out);
    int (*scan_decisions)(struct store *s, const char *test_id, double since, int limit, void (*cb)(void *ud, double created, long variant_id, int explored, const char *context), void *ud);
    int (*scan_outcomes)(struct store *s, const char *test_id, double since, long limit, int (*cb)(void *ud, const struct store_outcome *o), void *ud);
    int (*decision_counts)(struct store *s, const char *test_id, double since, double granularity, void (*cb)(void *ud, long bucket, long variant_id, long count, long explored), void *ud);
    int (*reward_counts)(struct store *s, const char *test_id, double since, double granularity, void (*cb)(void *ud, long bucket, long variant_id, long count, double sum), void *ud);
    int (*load_tokens)(struct store *s, int (*cb)(void *ud, const struct store_token *tk), void *ud);
    int (*tokens_version)(struct store *s, long *out);
    void (*render_metrics)(struct store *s, struct metrics_text *t);
    int (*ping)(struct store *s);
    int (*dump)(struct store *s, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err, size_t errlen);
    int (*restore)(struct store *s, bool force, int (*next)(void *ud, struct store_record *r), void *ud, char *err,
                   size_t errlen);
    int (*import_test)(struct store *s, const struct store_record *recs, size_t n, char *err, size_t errlen);
    int (*scan_rewards)(struct store *s, const char *test_id, int (*cb)(void *ud, const struct store_record *r),
                        void *ud);
};

struct store {
    const struct store_ops *ops;
};

/* A position in a test's log of events, as the shared store numbers them ("ms-seq"). */
struct store_event_pos {
    uint64_t ms, seq;
};

/* The id the next event of a test gets when it has none of its own (an event of the embedded
 * store, written into the shared store or into a backup): its time in ms, kept strictly
 * increasing after *last, which it advances. out gets "ms-seq". */
void store_next_event_id(struct store_event_pos *last, double ts, char *out, size_t len);

/* Parses "ms-seq"; 0 when it is not one. */
int store_parse_event_id(const char *id, struct store_event_pos *out);

/* Writes scout_store_operations_total{op,result} for n operation kinds: every backend counts
 * its operations under the same names. */
struct metrics_text;
void store_render_operations(struct metrics_text *t, const char *const *names, _Atomic uint64_t *ok,
                             _Atomic uint64_t *failed, int n);

#endif
