/* store.c — the store's public calls (store.h), forwarded to the backend chosen at open:
 * SQLite in the data directory (store_sqlite.c) or Redis (store_redis.c). */
#include "store/store_backend.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "obs/metrics.h"
#include "util/common.h"

int store_open_configured(struct store **out, const struct config *cfg, char *err, size_t errlen) {
    int rc;
    if (cfg->redis_host)
        return store_open_redis(out, cfg->redis_host, cfg->redis_port, cfg->redis_user, cfg->redis_password, err,
                                errlen);
    if ((rc = store_open_sqlite(out, cfg->data_dir, cfg->sync_full)) != SCOUT_OK)
        snprintf(err, errlen, "cannot open the embedded store in %s (see the log)", cfg->data_dir);
    return rc;
}

void store_render_operations(struct metrics_text *t, const char *const *names, _Atomic uint64_t *ok,
                             _Atomic uint64_t *failed, int n) {
    metrics_printf(t, "# HELP scout_store_operations_total Store operations by kind and result.\n"
                      "# TYPE scout_store_operations_total counter\n");
    for (int k = 0; k < n; k++) {
        metrics_printf(t, "scout_store_operations_total{op=\"%s\",result=\"ok\"} %llu\n", names[k],
                       (unsigned long long)atomic_load(&ok[k]));
        metrics_printf(t, "scout_store_operations_total{op=\"%s\",result=\"error\"} %llu\n", names[k],
                       (unsigned long long)atomic_load(&failed[k]));
    }
}

const char *store_backend_name(const struct store *s) {
    return s->ops->name;
}

void store_set_change_handler(struct store *s, store_change_fn fn, void *arg) {
    s->ops->set_change_handler(s, fn, arg);
}

void store_set_event_handler(struct store *s, store_event_fn fn, void *arg) {
    s->ops->set_event_handler(s, fn, arg);
}

void store_set_snapshots(struct store *s, const struct store_snapshots *snap) {
    if (s->ops->set_snapshots) s->ops->set_snapshots(s, snap);
}

int store_start(struct store *s) {
    return s->ops->start(s);
}

void store_close(struct store *s) {
    if (s) s->ops->close(s);
}

int store_put_setting(struct store *s, const char *key, const char *json) {
    return s->ops->put_setting(s, key, json);
}

int store_put_setting_now(struct store *s, const char *key, const char *json) {
    return s->ops->put_setting_now ? s->ops->put_setting_now(s, key, json) : s->ops->put_setting(s, key, json);
}

int store_put_test(struct store *s, const char *id, const char *definition, double created) {
    return s->ops->put_test(s, id, definition, created);
}

int store_delete_test(struct store *s, const char *id) {
    return s->ops->delete_test(s, id);
}

int store_set_rollout(struct store *s, const char *id, long variant_id) {
    return s->ops->set_rollout(s, id, variant_id);
}

int store_put_token(struct store *s, const struct store_token *tk) {
    return s->ops->put_token(s, tk);
}

int store_delete_token(struct store *s, const char *id) {
    return s->ops->delete_token(s, id);
}

void store_touch_token(struct store *s, const char *id, double last_used) {
    s->ops->touch_token(s, id, last_used);
}

int store_flush(struct store *s) {
    return s->ops->flush(s);
}

void store_put_decision(struct store *s, struct store_decision *d) {
    s->ops->put_decision(s, d);
}

void store_put_test_stats(struct store *s, const char *test_id, char *stats) {
    s->ops->put_test_stats(s, test_id, stats);
}

int store_claim_assignment(struct store *s, struct store_assignment *a) {
    return s->ops->claim_assignment(s, a);
}

int store_append_rewards(struct store *s, const char *test_id, struct store_reward *ev, int n) {
    return s->ops->append_rewards(s, test_id, ev, n);
}

void store_append_rewards_async(struct store *s, const char *test_id, struct store_reward *ev, int n,
                                store_done_fn done, void *arg) {
    if (s->ops->append_rewards_async) s->ops->append_rewards_async(s, test_id, ev, n, done, arg);
    else done(arg, s->ops->append_rewards(s, test_id, ev, n));
}

int store_load_tests(struct store *s, int (*cb)(void *ud, const struct store_test_row *row), void *ud) {
    return s->ops->load_tests(s, cb, ud);
}

int store_load_arm_predictions(struct store *s, int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud) {
    return s->ops->load_arm_predictions(s, cb, ud);
}

int store_load_rewards(struct store *s, int (*cb)(void *ud, const char *test_id, long variant_id, double reward, const char *context, double ts), void *ud) {
    return s->ops->load_rewards(s, cb, ud);
}

int store_load_assignments(struct store *s, int (*cb)(void *ud, const char *test_id, const char *user, long variant_id, double propensity), void *ud) {
    return s->ops->load_assignments(s, cb, ud);
}

int store_get_setting(struct store *s, const char *key, char **out) {
    return s->ops->get_setting(s, key, out);
}

int store_count_decisions(struct store *s, double now, long *out) {
    return s->ops->count_decisions(s, now, out);
}

int store_scan_decisions(struct store *s, const char *test_id, double since, int limit, void (*cb)(void *ud, double created, long variant_id, int explored, const char *context), void *ud) {
    return s->ops->scan_decisions(s, test_id, since, limit, cb, ud);
}

int store_scan_outcomes(struct store *s, const char *test_id, double since, long limit, int (*cb)(void *ud, const struct store_outcome *o), void *ud) {
    return s->ops->scan_outcomes(s, test_id, since, limit, cb, ud);
}

int store_decision_counts(struct store *s, const char *test_id, double since, double granularity, void (*cb)(void *ud, long bucket, long variant_id, long count, long explored), void *ud) {
    return s->ops->decision_counts(s, test_id, since, granularity, cb, ud);
}

int store_reward_counts(struct store *s, const char *test_id, double since, double granularity, void (*cb)(void *ud, long bucket, long variant_id, long count, double sum), void *ud) {
    return s->ops->reward_counts(s, test_id, since, granularity, cb, ud);
}

int store_load_tokens(struct store *s, int (*cb)(void *ud, const struct store_token *tk), void *ud) {
    return s->ops->load_tokens(s, cb, ud);
}

int store_tokens_version(struct store *s, long *out) {
    return s->ops->tokens_version(s, out);
}

void store_render_metrics(struct store *s, struct metrics_text *t) {
    s->ops->render_metrics(s, t);
}

int store_ping(struct store *s) {
    return s->ops->ping(s);
}

int store_dump(struct store *s, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
               size_t errlen) {
    return s->ops->dump(s, emit, ud, err, errlen);
}

int store_restore(struct store *s, bool force, int (*next)(void *ud, struct store_record *r), void *ud, char *err,
                  size_t errlen) {
    return s->ops->restore(s, force, next, ud, err, errlen);
}

int store_import_test(struct store *s, const struct store_record *recs, size_t n, char *err, size_t errlen) {
    if (n < 2 || recs[0].kind != STORE_REC_TEST || !recs[0].test_id) {
        snprintf(err, errlen, "an import starts with its test record and holds its snapshot");
        return SCOUT_EINVAL;
    }
    return s->ops->import_test(s, recs, n, err, errlen);
}

int store_scan_rewards(struct store *s, const char *test_id, int (*cb)(void *ud, const struct store_record *r),
                       void *ud) {
    return s->ops->scan_rewards(s, test_id, cb, ud);
}

void store_next_event_id(struct store_event_pos *last, double ts, char *out, size_t len) {
    uint64_t ms = isfinite(ts) && ts > 0 && ts < 1e13 ? (uint64_t)(ts * 1000.0) : 0;
    if (ms < last->ms) ms = last->ms;
    last->seq = ms == last->ms ? last->seq + 1 : 0;
    last->ms = ms;
    if (last->ms == 0 && last->seq == 0) last->seq = 1;   /* 0-0 is not a valid id */
    snprintf(out, len, "%" PRIu64 "-%" PRIu64, last->ms, last->seq);
}

int store_parse_event_id(const char *id, struct store_event_pos *out) {
    unsigned long long ms, seq;
    int end = 0;
    if (!id || id[0] < '0' || id[0] > '9' || sscanf(id, "%20llu-%20llu%n", &ms, &seq, &end) != 2 ||
        (size_t)end != strlen(id) || strchr(id, '+') || strchr(id, ' '))
        return 0;
    out->ms = ms;
    out->seq = seq;
    return 1;
}
