/* app.c — start-up loading: every stored test, its counters, and a replay of every reward
 * event in commit order. Replaying through the same policy_update the live server uses is
 * what makes the learned state after a restart equal to the state before it. */
#include "app.h"

#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/util.h"

#define COUNTERS_SAVE_INTERVAL 5.0   /* seconds between saves of a busy test's SRM counters */

struct loader {
    struct app *app;
    struct experiment *last;     /* cache: events of one test tend to come in runs */
    long tests, events, skipped;
};

/* A test from its stored definition (new reference), or NULL after logging why not. */
static struct experiment *test_from_store(const char *id, const char *definition, double created) {
    struct experiment *e = NULL;
    json_t *def = json_loads(definition, 0, NULL);
    char err[256];
    int status;
    if (!def || experiment_from_definition(def, id, created, &e, &status, err, sizeof err) != SCOUT_OK) {
        log_msg(LOG_ERROR, "store: test %s has an unreadable definition and is not served (%s)", id,
                def ? err : "invalid JSON");
        e = NULL;
    }
    json_decref(def);
    return e;
}

static int load_test(void *ud, const struct store_test_row *row) {
    struct loader *l = ud;
    struct experiment *e = test_from_store(row->id, row->definition, row->created);
    if (!e) return 0;
    atomic_store(&e->rollout, row->rollout_variant >= 0 ? experiment_index_of_id(e, row->rollout_variant) : -1);
    atomic_store(&e->predictions, row->predictions);
    atomic_store(&e->last_prediction_ms, (int64_t)(row->last_prediction * 1000.0));
    experiment_restore_srm(e, row->stats);
    registry_add(l->app->reg, e);
    experiment_unref(e);
    l->tests++;
    return 0;
}

static struct experiment *find(struct loader *l, const char *id) {
    if (l->last && !strcmp(l->last->id, id)) return l->last;
    experiment_unref(l->last);
    l->last = registry_get(l->app->reg, id);
    return l->last;
}

static int load_arm(void *ud, const char *test_id, long variant_id, uint64_t n) {
    struct loader *l = ud;
    struct experiment *e = find(l, test_id);
    int arm = e ? experiment_index_of_id(e, variant_id) : -1;
    if (arm >= 0) atomic_store(&e->arm_predictions[arm], n);
    return 0;
}

/* Folds one stored event (context as JSON text) into its test; 0 when the test or the
 * variant no longer exists. */
static int apply_event(struct experiment *e, long variant_id, double reward, const char *context, double ts) {
    int arm = e ? experiment_index_of_id(e, variant_id) : -1;
    json_t *ctx;
    if (arm < 0) return 0;
    ctx = context ? json_loads(context, 0, NULL) : NULL;
    experiment_apply_reward(e, arm, reward, ctx, ts);
    json_decref(ctx);
    return 1;
}

static int load_reward(void *ud, const char *test_id, long variant_id, double reward, const char *context, double ts) {
    struct loader *l = ud;
    if (apply_event(find(l, test_id), variant_id, reward, context, ts)) l->events++;
    else l->skipped++;
    return 0;
}

static int load_assignment(void *ud, const char *test_id, const char *user, long variant_id, double propensity) {
    struct loader *l = ud;
    struct experiment *e = find(l, test_id);
    int arm = e ? experiment_index_of_id(e, variant_id) : -1;
    if (arm >= 0) experiment_restore_assignment(e, user, arm, propensity);
    return 0;
}

void app_save_counters(struct app *app, struct experiment *e, int force) {
    char *stats = experiment_srm_to_save(e, util_monotonic(), COUNTERS_SAVE_INTERVAL, force);
    if (stats) store_put_test_stats(app->store, e->id, stats);
}

void app_save_all_counters(struct app *app) {
    struct experiment **list;
    size_t n;
    if (registry_list(app->reg, &list, &n) != SCOUT_OK) return;
    for (size_t i = 0; i < n; i++) app_save_counters(app, list[i], 1);
    registry_release_list(list, n);
}

void app_on_change(void *arg, const struct store_change_event *ev) {
    struct app *app = arg;
    struct experiment *e;
    switch (ev->kind) {
    case STORE_TEST_PUT:
        if ((e = registry_get(app->reg, ev->test_id))) {   /* this replica made it */
            experiment_unref(e);
            return;
        }
        if (!(e = test_from_store(ev->test_id, ev->definition, ev->created))) return;
        registry_add(app->reg, e);
        log_fields(LOG_INFO, "test created on another replica",
                   json_pack("{s:s, s:s}", "event", "test_created", "model_id", e->id));
        experiment_unref(e);
        return;
    case STORE_TEST_DELETED:
        if (registry_remove(app->reg, ev->test_id) == SCOUT_OK)
            log_fields(LOG_INFO, "test deleted on another replica",
                       json_pack("{s:s, s:s}", "event", "test_deleted", "model_id", ev->test_id));
        return;
    case STORE_ROLLOUT:
        if ((e = registry_get(app->reg, ev->test_id))) {
            atomic_store(&e->rollout, ev->variant_id >= 0 ? experiment_index_of_id(e, ev->variant_id) : -1);
            experiment_unref(e);
        }
        return;
    case STORE_PREDICTIONS:
        if ((e = registry_get(app->reg, ev->test_id))) {
            experiment_raise_predictions(e, ev->variant_id >= 0 ? experiment_index_of_id(e, ev->variant_id) : -1,
                                         ev->count, ev->last);
            experiment_unref(e);
        }
        return;
    case STORE_SETTING:
        if (!strcmp(ev->key, "protection")) {
            if (!app->cfg->protected_api_set) atomic_store(&app->protected_api, settings_protection(app->store));
        } else {
            settings_refresh(&app->settings, app->store, app->cfg);
        }
        return;
    }
}

void app_on_event(void *arg, const char *test_id, long variant_id, double reward, const char *context, double ts) {
    struct app *app = arg;
    struct experiment *e = registry_get(app->reg, test_id);
    apply_event(e, variant_id, reward, context, ts);
    experiment_unref(e);
}

int app_take_state(void *arg, const char *test_id, unsigned char **state, size_t *len) {
    struct app *app = arg;
    struct experiment *e = registry_get(app->reg, test_id);
    int rc = e ? experiment_encode_state(e, state, len) : SCOUT_ENOTFOUND;
    experiment_unref(e);
    return rc;
}

int app_restore_state(void *arg, const char *test_id, const unsigned char *state, size_t len) {
    struct app *app = arg;
    struct experiment *e = registry_get(app->reg, test_id);
    char err[200];
    int rc = SCOUT_ENOTFOUND;
    if (e && (rc = experiment_restore_state(e, state, len, err, sizeof err)) != SCOUT_OK)
        log_fields(LOG_ERROR, "a stored snapshot of a test's learned state cannot be read",
                   json_pack("{s:s, s:s, s:s}", "event", "snapshot_unreadable", "model_id", test_id, "reason", err));
    experiment_unref(e);
    return rc;
}

int app_load(struct app *app) {
    struct loader l = {app, NULL, 0, 0, 0};
    int rc = store_load_tests(app->store, load_test, &l);
    if (rc == SCOUT_OK) rc = store_load_arm_predictions(app->store, load_arm, &l);
    if (rc == SCOUT_OK) rc = store_load_rewards(app->store, load_reward, &l);
    if (rc == SCOUT_OK) rc = store_load_assignments(app->store, load_assignment, &l);
    experiment_unref(l.last);
    if (rc != SCOUT_OK) return rc;
    log_fields(LOG_INFO, "store loaded", json_pack("{s:I, s:I, s:I}", "tests", (json_int_t)l.tests, "reward_events",
                                                   (json_int_t)l.events, "orphan_events", (json_int_t)l.skipped));
    return SCOUT_OK;
}
