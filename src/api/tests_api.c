/* tests_api.c — creating, listing, inspecting, overriding and deleting tests.
 * Every change is committed to the store before it shows in memory, so a client that saw 200
 * sees the same after a restart. Analytics read decision records from the store, bounded by
 * the configured window (and ANALYTICS_SCAN records for per-feature breakdowns). */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_util.h"
#include "bandit/rng.h"
#include "obs/log.h"
#include "registry.h"
#include "util/util.h"

#define ANALYTICS_SCAN 10000    /* newest decisions read for feature_prediction_data */
#define SUMMARY_DRAWS 4000      /* Monte Carlo draws for credible intervals and P(best) */
#define MAX_CATEGORIES 50       /* distinct values shown per categorical feature */
#define NUMERIC_BINS 5

void api_create_model(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL;
    struct experiment *e = NULL;
    char id[SCOUT_ID_LEN + 1], err[256];
    char *def = NULL;
    int status, rc;
    if (!http_parse_body(req, resp, &body)) return;
    util_uuid4(id);
    if (experiment_from_definition(body, id, util_now(), &e, &status, err, sizeof err) != SCOUT_OK) {
        http_error(resp, status, "%s", err);
        goto done;
    }
    def = json_dumps(e->definition, JSON_COMPACT);
    rc = def ? store_put_test(app->store, e->id, def, e->created_at) : SCOUT_ENOMEM;
    if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
        goto done;
    }
    registry_add(app->reg, e);
    log_fields(LOG_INFO, "test created", json_pack("{s:s, s:s, s:i}", "event", "test_created", "model_id", e->id,
                                                   "variants", e->nvariants));
    http_json(resp, 200, json_pack("{s:s, s:s, s:s, s:s, s:O}", "message", "Model created successfully", "model_id",
                                   e->id, "cb_model_id", e->id, "name", e->name, "variants",
                                   json_object_get(e->definition, "variants")));
done:
    free(def);
    experiment_unref(e);
    json_decref(body);
}

void api_delete_model(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    int rc;
    if (!e) return;
    rc = store_delete_test(app->store, e->id);
    if (rc == SCOUT_OK || rc == SCOUT_ENOTFOUND) registry_remove(app->reg, e->id);
    if (rc != SCOUT_OK) api_store_error(resp, rc);
    else http_json(resp, 200, json_pack("{s:s, s:s}", "message", "Model deleted successfully", "cb_model_id", e->id));
    if (rc == SCOUT_OK)
        log_fields(LOG_INFO, "test deleted", json_pack("{s:s, s:s}", "event", "test_deleted", "model_id", e->id));
    experiment_unref(e);
}

/* The text of a listing, grown as each entry is written. */
struct listing {
    char *text;
    size_t len, cap;
};

static int listing_add(const char *buf, size_t size, void *data) {
    struct listing *l = data;
    if (l->len + size > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + size) cap *= 2;
        char *t = realloc(l->text, cap);
        if (!t) return -1;
        l->text = t;
        l->cap = cap;
    }
    memcpy(l->text + l->len, buf, size);
    l->len += size;
    return 0;
}

/* Written one summary at a time, each freed once written: with thousands of tests the answer
 * holds one test's JSON objects at a time, not every test's at once. */
void api_models(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment **list;
    struct listing out = {NULL, 0, 0};
    size_t n;
    int rc;
    (void)req;
    if (registry_list(app->reg, &list, &n) != SCOUT_OK) {
        http_error(resp, 503, "out of memory");
        return;
    }
    /* Decision records are committed asynchronously: let those already served land first, so
     * the shares read back include every decision answered before this request. */
    store_flush(app->store);
    rc = listing_add("[", 1, &out);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *summary = api_test_summary(app, list[i]);
        rc = (i > 0 ? listing_add(",", 1, &out) : 0) || !summary ||
             json_dump_callback(summary, listing_add, &out, JSON_COMPACT) != 0;
        json_decref(summary);
    }
    registry_release_list(list, n);
    if (rc == 0 && listing_add("]", 1, &out) == 0) {
        http_raw_take(resp, 200, "application/json", out.text, out.len);
        return;
    }
    free(out.text);
    http_error(resp, 503, "out of memory");
}

/* ---- model_details ----------------------------------------------------------------- */

struct trail {
    struct experiment *e;
    long nbuckets;
    long *counts;      /* nbuckets x nvariants */
    long *explored;    /* nbuckets */
    long *rewards;     /* nbuckets x nvariants */
    double *sums;      /* nbuckets x nvariants */
};

static void add_trail(void *ud, long bucket, long variant_id, long count, long explored) {
    struct trail *t = ud;
    int i = experiment_index_of_id(t->e, variant_id);
    if (i < 0 || bucket < 0 || bucket >= t->nbuckets) return;
    t->counts[bucket * t->e->nvariants + i] += count;
    t->explored[bucket] += explored;
}

static void add_reward_trail(void *ud, long bucket, long variant_id, long count, double sum) {
    struct trail *t = ud;
    int i = experiment_index_of_id(t->e, variant_id);
    if (i < 0 || bucket < 0 || bucket >= t->nbuckets) return;
    t->rewards[bucket * t->e->nvariants + i] += count;
    t->sums[bucket * t->e->nvariants + i] += sum;
}

/* reward_trail: per time bucket, each variant's reward events and their sum. */
static json_t *reward_trail(const struct trail *t, double start, long gran) {
    const struct experiment *e = t->e;
    json_t *trail = json_array();
    for (long b = 0; b < t->nbuckets; b++) {
        json_t *counts = json_object(), *sums = json_object();
        long n = 0;
        double total = 0;
        for (int i = 0; i < e->nvariants; i++) {
            long c = t->rewards[b * e->nvariants + i];
            double sum = t->sums[b * e->nvariants + i];
            n += c;
            total += sum;
            json_object_set_new(counts, e->variants[i].key, json_integer(c));
            json_object_set_new(sums, e->variants[i].key, json_real(sum));
        }
        json_array_append_new(trail, json_pack("{s:o, s:o, s:o, s:i, s:f}", "time_bucket",
                                               util_json_time(start + (double)(b * gran)), "rewards", counts,
                                               "reward_sum", sums, "total", (json_int_t)n, "total_sum", total));
    }
    return trail;
}

/* request_trail, reward_trail, exploitation_status and exploit_explore_ratio from one grouped query. */
static void add_trail_fields(struct app *app, struct experiment *e, json_t *out) {
    long window = atomic_load(&app->settings.time_window_minutes) * 60L;
    long gran = atomic_load(&app->settings.bucket_granularity_seconds);
    double now = util_now();
    double start = floor(now / (double)gran) * (double)gran - (double)(window - gran);
    struct trail t = {e, (window + gran - 1) / gran, NULL, NULL, NULL, NULL};
    json_t *trail = json_array(), *status = json_array();
    long total = 0, explored = 0;
    t.counts = calloc((size_t)(t.nbuckets * e->nvariants), sizeof *t.counts);
    t.explored = calloc((size_t)t.nbuckets, sizeof *t.explored);
    t.rewards = calloc((size_t)(t.nbuckets * e->nvariants), sizeof *t.rewards);
    t.sums = calloc((size_t)(t.nbuckets * e->nvariants), sizeof *t.sums);
    if (t.counts && t.explored) store_decision_counts(app->store, e->id, start, (double)gran, add_trail, &t);
    if (t.rewards && t.sums) {
        store_reward_counts(app->store, e->id, start, (double)gran, add_reward_trail, &t);
        json_object_set_new(out, "reward_trail", reward_trail(&t, start, gran));
    } else {
        json_object_set_new(out, "reward_trail", json_array());
    }
    for (long b = 0; t.counts && t.explored && b < t.nbuckets; b++) {
        json_t *freq = json_object();
        long n = 0;
        for (int i = 0; i < e->nvariants; i++) {
            long c = t.counts[b * e->nvariants + i];
            n += c;
            json_object_set_new(freq, e->variants[i].key, json_integer(c));
        }
        json_array_append_new(trail, json_pack("{s:o, s:o, s:i}", "time_bucket", util_json_time(start + (double)(b * gran)),
                                               "frequency", freq, "total", (json_int_t)n));
        if (n > 0)
            json_array_append_new(status, json_pack("{s:o, s:i, s:f}", "time_bucket", util_json_time(start + (double)(b * gran)),
                                                    "n", (json_int_t)n, "exploitation",
                                                    100.0 * (double)(n - t.explored[b]) / (double)n));
        total += n;
        explored += t.explored[b];
    }
    json_object_set_new(out, "request_trail", trail);
    json_object_set_new(out, "exploitation_status", status);
    json_object_set_new(out, "exploit_explore_ratio",
                        json_pack("{s:f, s:f, s:i}", "exploitation",
                                  total ? 100.0 * (double)(total - explored) / (double)total : 0.0, "exploration",
                                  total ? 100.0 * (double)explored / (double)total : 0.0, "n", (json_int_t)total));
    free(t.counts);
    free(t.explored);
    free(t.rewards);
    free(t.sums);
}

/* Per-feature breakdown: the newest decisions' contexts grouped by feature value. */
struct feature_acc {
    struct experiment *e;
    json_t *rows;      /* array of [variant index, context object] */
};

static void add_decision(void *ud, double created, long variant_id, int explored, const char *context) {
    struct feature_acc *a = ud;
    json_t *ctx;
    int i = experiment_index_of_id(a->e, variant_id);
    (void)created;
    (void)explored;
    if (i < 0 || !context || !(ctx = json_loads(context, 0, NULL))) return;
    json_array_append_new(a->rows, json_pack("[i, o]", i, ctx));
}

/* The bucket name of a value: its text for bools and categories, a bin for numbers. */
static void bucket_name(const json_t *v, const char *type, double lo, double width, int binned, char *buf, size_t len) {
    if (!strcmp(type, "bool")) {
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    } else if (!strcmp(type, "numeric")) {
        double x = json_number_value(v);
        if (!binned) {
            snprintf(buf, len, "%g", x);
        } else {
            int b = width > 0 ? (int)((x - lo) / width) : 0;
            if (b >= NUMERIC_BINS) b = NUMERIC_BINS - 1;
            if (b < 0) b = 0;
            snprintf(buf, len, "%g-%g", lo + b * width, lo + (b + 1) * width);
        }
    } else if (json_is_string(v)) {
        snprintf(buf, len, "%s", json_string_value(v));
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        snprintf(buf, len, "%s", t ? t : "?");
        free(t);
    }
}

static json_t *feature_data(struct app *app, struct experiment *e) {
    double since = util_now() - atomic_load(&app->settings.time_window_minutes) * 60.0;
    struct feature_acc acc = {e, json_array()};
    json_t *out = json_object(), *names = json_object(), *row, *ctx, *v;
    size_t ri;
    const char *key;
    store_scan_decisions(app->store, e->id, since, ANALYTICS_SCAN, add_decision, &acc);
    json_array_foreach(acc.rows, ri, row) {
        json_object_foreach(json_array_get(row, 1), key, v) json_object_set(names, key, json_true());
    }
    json_object_foreach(names, key, v) {
        int all_bool = 1, all_num = 1, binned;
        double lo = INFINITY, hi = -INFINITY;
        json_t *distinct = json_object(), *buckets = json_object(), *list = json_array(), *b;
        const char *type, *bkey;
        char name[300];
        (void)v;
        json_array_foreach(acc.rows, ri, row) {
            json_t *x = json_object_get(json_array_get(row, 1), key);
            if (!x) continue;
            all_bool &= json_is_boolean(x);
            all_num &= json_is_number(x);
            if (json_is_number(x)) {
                lo = fmin(lo, json_number_value(x));
                hi = fmax(hi, json_number_value(x));
                snprintf(name, sizeof name, "%g", json_number_value(x));
                if (json_object_size(distinct) <= NUMERIC_BINS) json_object_set_new(distinct, name, json_true());
            }
        }
        type = all_bool ? "bool" : all_num ? "numeric" : "categorical";
        binned = all_num && json_object_size(distinct) > NUMERIC_BINS;
        json_array_foreach(acc.rows, ri, row) {
            int arm = (int)json_integer_value(json_array_get(row, 0));
            json_t *x = json_object_get(ctx = json_array_get(row, 1), key), *preds;
            if (!x) continue;
            bucket_name(x, type, lo, (hi - lo) / NUMERIC_BINS, binned, name, sizeof name);
            if (!(b = json_object_get(buckets, name))) {
                if (json_object_size(buckets) >= MAX_CATEGORIES) snprintf(name, sizeof name, "other");
                if (!(b = json_object_get(buckets, name))) {
                    b = json_pack("{s:s, s:i, s:{}}", "bucket", name, "total", 0, "predictions");
                    json_object_set_new(buckets, name, b);
                }
            }
            json_object_set_new(b, "total", json_integer(json_integer_value(json_object_get(b, "total")) + 1));
            preds = json_object_get(b, "predictions");
            json_object_set_new(preds, e->variants[arm].key,
                                json_integer(json_integer_value(json_object_get(preds, e->variants[arm].key)) + 1));
        }
        json_object_foreach(buckets, bkey, b) {
            json_t *preds = json_object_get(b, "predictions"), *ratios = json_object(), *n;
            double total = (double)json_integer_value(json_object_get(b, "total"));
            const char *lbl;
            json_object_foreach(preds, lbl, n)
                json_object_set_new(ratios, lbl, json_real(100.0 * (double)json_integer_value(n) / total));
            json_object_set_new(b, "ratios", ratios);
            json_array_append(list, b);
        }
        json_object_set_new(out, key, json_pack("{s:s, s:o}", "type", type, "buckets", list));
        json_decref(distinct);
        json_decref(buckets);
    }
    json_decref(names);
    json_decref(acc.rows);
    return out;
}

static json_t *performance_summary(struct app *app, struct experiment *e, const struct policy *snap,
                                   const double *probs) {
    const struct policy *pp = snap;
    struct arm_summary *sum;
    char idkey[24];
    long total;
    json_t *shares = api_recent_shares(app, e, &total), *out = json_object();
    sum = calloc((size_t)e->nvariants, sizeof *sum);
    if (sum) policy_summarize(pp, rng_thread(), SUMMARY_DRAWS, sum);
    for (int i = 0; sum && i < e->nvariants; i++) {
        const struct arm_stats *a = &pp->arms[i];
        json_t *v = json_object();
        json_object_set_new(v, "variant_id", json_integer(e->variants[i].id));
        json_object_set_new(v, "label", json_incref(e->variants[i].label));
        json_object_set_new(v, "predictions", json_integer((json_int_t)atomic_load(&e->arm_predictions[i])));
        json_object_set_new(v, "updates", json_integer((json_int_t)a->n));
        json_object_set_new(v, "reward_sum", json_real(a->sum));
        json_object_set_new(v, "average_reward", json_real(a->n ? a->sum / (double)a->n : 0.0));
        json_object_set_new(v, "posterior_mean", json_real(sum[i].mean));
        json_object_set_new(v, "ci_low", json_real(sum[i].ci_low));
        json_object_set_new(v, "ci_high", json_real(sum[i].ci_high));
        json_object_set_new(v, "probability_best", json_real(sum[i].prob_best));
        /* The documented meaning: the share of recent decisions. What the policy would do now
         * is policy_probability. */
        json_object_set_new(v, "current_prediction_ratio", json_incref(json_object_get(shares, e->variants[i].key)));
        json_object_set_new(v, "policy_probability", json_real(probs[i]));
        snprintf(idkey, sizeof idkey, "%ld", e->variants[i].id);
        json_object_set_new(out, idkey, v);   /* keyed by variant id, as the original documents */
    }
    free(sum);
    json_decref(shares);
    return out;
}

void api_model_details(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    struct policy snap;
    double *probs;
    json_t *out;
    if (!e) return;
    probs = calloc((size_t)e->nvariants, sizeof *probs);
    if (!probs) {
        http_error(resp, 503, "out of memory");
        experiment_unref(e);
        return;
    }
    experiment_probabilities(e, NULL, api_min_updates(app, e), probs);
    store_flush(app->store);   /* analytics include every decision answered before (see api_models) */
    out = api_test_summary(app, e);
    add_trail_fields(app, e, out);
    json_object_set_new(out, "feature_prediction_data", feature_data(app, e));
    if (experiment_snapshot(e, &snap, NULL) == SCOUT_OK) {
        json_object_set_new(out, "performance_summary", performance_summary(app, e, &snap, probs));
        json_object_set_new(out, "contextual_model", api_contextual_model(e, &snap));
        policy_free(&snap);
    } else {
        json_object_set_new(out, "performance_summary", json_object());
        json_object_set_new(out, "contextual_model", json_null());
    }
    json_object_set_new(out, "srm", api_srm(e));
    json_object_set_new(out, "time_window_minutes", json_integer(atomic_load(&app->settings.time_window_minutes)));
    json_object_set_new(out, "bucket_granularity_seconds",
                        json_integer(atomic_load(&app->settings.bucket_granularity_seconds)));
    free(probs);
    experiment_unref(e);
    http_json(resp, 200, out);
}

/* ---- global rollout ---------------------------------------------------------------- */

void api_rollout(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    json_t *body = NULL, *ref;
    int arm, rc;
    if (!e) return;
    if (!http_parse_body(req, resp, &body)) goto done;
    ref = json_is_object(body) ? json_object_get(body, "variant") : NULL;
    if (!ref || json_is_null(ref)) ref = json_is_object(body) ? json_object_get(body, "variant_id") : NULL;
    if (!ref || (!json_is_string(ref) && !json_is_number(ref))) {
        http_error(resp, 422, "field 'variant' must be a variant id or label");
        goto done;
    }
    if ((arm = experiment_find_variant(e, ref)) < 0) {
        http_error(resp, 400, "unknown variant for this model");
        goto done;
    }
    if ((rc = store_set_rollout(app->store, e->id, e->variants[arm].id)) != SCOUT_OK) {
        api_store_error(resp, rc);
        goto done;
    }
    atomic_store(&e->rollout, arm);
    log_fields(LOG_INFO, "global rollout", json_pack("{s:s, s:s, s:I}", "event", "rollout", "model_id", e->id,
                                                     "variant_id", (json_int_t)e->variants[arm].id));
    http_json(resp, 200, json_pack("{s:s, s:s, s:I, s:O}", "message", "Global variant rolled out", "cb_model_id", e->id,
                                   "global_variant_id", (json_int_t)e->variants[arm].id, "global_variant_label",
                                   e->variants[arm].label));
done:
    json_decref(body);
    experiment_unref(e);
}

void api_clear_rollout(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    int rc;
    if (!e) return;
    if ((rc = store_set_rollout(app->store, e->id, -1)) != SCOUT_OK) {
        api_store_error(resp, rc);
    } else {
        atomic_store(&e->rollout, -1);
        http_json(resp, 200, json_pack("{s:s, s:s}", "message", "Global variant cleared", "cb_model_id", e->id));
    }
    experiment_unref(e);
}
