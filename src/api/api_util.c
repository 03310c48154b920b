/* api_util.c — helpers shared by the endpoint groups; see api_util.h. */
#include "api/api_util.h"

#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "util/util.h"

struct experiment *api_get_test(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = req->param ? registry_get(app->reg, req->param) : NULL;
    if (!e) http_error(resp, 404, "Model not found");
    return e;
}

void api_store_error(struct http_resp *resp, int rc) {
    if (rc == SCOUT_ENOTFOUND) http_error(resp, 404, "Model not found");
    else http_error(resp, 503, "the store is unavailable; nothing was changed, retry later");
}

int api_min_updates(struct app *app, const struct experiment *e) {
    return e->min_updates >= 0 ? e->min_updates : atomic_load(&app->settings.min_update_requests);
}

struct share_acc {
    struct experiment *e;
    long *counts;
};

static void add_share(void *ud, long bucket, long variant_id, long count, long explored) {
    struct share_acc *a = ud;
    int i = experiment_index_of_id(a->e, variant_id);
    (void)bucket;
    (void)explored;
    if (i >= 0) a->counts[i] += count;
}

json_t *api_recent_shares(struct app *app, struct experiment *e, long *total) {
    double window = atomic_load(&app->settings.time_window_minutes) * 60.0;
    double since = util_now() - window;
    long *counts = calloc((size_t)e->nvariants, sizeof *counts);
    struct share_acc acc = {e, counts};
    json_t *out = json_object();
    *total = 0;
    if (!counts) return out;
    store_decision_counts(app->store, e->id, since, window > 0 ? window : 1, add_share, &acc);
    for (int i = 0; i < e->nvariants; i++) *total += counts[i];
    for (int i = 0; i < e->nvariants; i++)
        json_object_set_new(out, e->variants[i].key, json_real(*total ? (double)counts[i] / (double)*total : 0.0));
    free(counts);
    return out;
}

json_t *api_test_summary(struct app *app, struct experiment *e) {
    double last_update = 0, last_pred = (double)atomic_load(&e->last_prediction_ms) / 1000.0;
    uint64_t updates = experiment_updates(e, &last_update), preds = atomic_load(&e->predictions);
    int rollout = atomic_load(&e->rollout);
    long total;
    json_t *labels = json_array(), *global, *s;
    char url[96];
    for (int i = 0; i < e->nvariants; i++) json_array_append(labels, e->variants[i].label);
    global = rollout >= 0 ? json_incref(e->variants[rollout].label) : json_null();
    snprintf(url, sizeof url, "/api/update_model/%s", e->id);   /* where rewards go, as in the original */
    s = json_object();
    json_object_set_new(s, "model_id", json_string(e->id));
    json_object_set_new(s, "cb_model_id", json_string(e->id));
    json_object_set_new(s, "name", json_string(e->name));
    json_object_set_new(s, "variants", labels);
    json_object_set_new(s, "num_variants", json_integer(e->nvariants));
    json_object_set_new(s, "variant_map", json_incref(json_object_get(e->definition, "variants")));
    json_object_set_new(s, "global_rolled_out", json_boolean(rollout >= 0));
    json_object_set_new(s, "global_variant", json_incref(global));
    json_object_set_new(s, "global_variant_rollout", global);
    json_object_set_new(s, "created_at", util_json_time(e->created_at));
    json_object_set_new(s, "update_requests", json_integer((json_int_t)updates));
    json_object_set_new(s, "total_updates", json_integer((json_int_t)updates));
    json_object_set_new(s, "prediction_requests", json_integer((json_int_t)preds));
    json_object_set_new(s, "total_predictions", json_integer((json_int_t)preds));
    json_object_set_new(s, "latest_update_request", util_json_time(last_update));
    json_object_set_new(s, "last_update_at", util_json_time(last_update));
    json_object_set_new(s, "latest_prediction_request", util_json_time(last_pred));
    json_object_set_new(s, "last_prediction_at", util_json_time(last_pred));
    json_object_set_new(s, "prediction_ratio", api_recent_shares(app, e, &total));
    json_object_set_new(s, "URL", json_string(url));
    json_object_set_new(s, "features", e->features ? json_incref(e->features) : json_array());
    json_object_set_new(s, "active", json_true());
    json_object_set_new(s, "is_active", json_true());
    json_object_set_new(s, "policy", json_string(policy_kind_name(e->kind)));
    json_object_set_new(s, "min_updates", json_integer(api_min_updates(app, e)));
    json_object_set_new(s, "burn_in", json_integer(e->burn_in));
    json_object_set_new(s, "probability_floor", json_real(e->policy.floor));
    json_object_set_new(s, "discount", json_real(e->policy.discount));
    json_object_set_new(s, "reward_wait_seconds", json_real(e->reward_wait));
    json_object_set_new(s, "default_reward", e->has_default_reward ? json_real(e->default_reward) : json_null());
    json_object_set_new(s, "reward_aggregation", json_string(experiment_aggregation_name(e)));
    json_object_set_new(s, "sticky", e->sticky_key ? json_string(e->sticky_key) : json_false());
    json_object_set_new(s, "warmup", json_boolean(experiment_in_warmup(e, api_min_updates(app, e))));
    return s;
}
