/* experiment.c — a test's definition, learned state and counters in memory.
 * Decisions lock the test's mutex only to read the policy and, at most every
 * PROBS_REFRESH seconds per test, to refresh the cached choice probabilities (a Monte Carlo
 * estimate for Thompson sampling); rewards lock it to fold one event in. Neither touches I/O. */
#include "experiment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit/rng.h"
#include "bandit/snapshot.h"
#include "obs/log.h"
#include "store/store.h"
#include "util/util.h"

#define PROBS_DRAWS 1000       /* Monte Carlo draws per probability estimate */
#define PROBS_REFRESH 0.02     /* seconds a stale estimate may be reused after an update */
#define DEFAULT_EPSILON 0.1
#define DEFAULT_FLOOR 0.01     /* every variant keeps at least 1% of traffic (when k·1% ≤ 1) */
#define MAX_REWARD_WAIT (30 * 86400)

static void experiment_free(struct experiment *e) {
    if (!e) return;
    for (int i = 0; i < e->nvariants && e->variants; i++) {
        json_decref(e->variants[i].label);
        free(e->variants[i].key);
    }
    free(e->variants);
    free(e->name);
    free(e->sticky_key);
    json_decref(e->definition);
    json_decref(e->features);
    policy_free(&e->policy);
    sticky_free(&e->sticky);
    free(e->srm_observed);
    free(e->srm_expected);
    free(e->probs);
    free((void *)e->arm_predictions);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void experiment_ref(struct experiment *e) {
    atomic_fetch_add(&e->refs, 1);
}

void experiment_unref(struct experiment *e) {
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) experiment_free(e);
}

static int cmp_variant(const void *a, const void *b) {
    const struct variant *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

#define BAD(code, ...)                                  \
    do {                                                \
        *status = (code);                               \
        snprintf(err, errlen, __VA_ARGS__);             \
        goto fail;                                      \
    } while (0)

int experiment_from_definition(const json_t *def, const char *id, double created_at,
                               struct experiment **out, int *status, char *err, size_t errlen) {
    struct experiment *e = NULL;
    json_t *name, *variants, *policy, *eps, *minu, *feats, *label;
    const char *key;
    enum policy_kind kind = POLICY_AUTO;
    double epsilon = DEFAULT_EPSILON, floor_p = DEFAULT_FLOOR, discount = 1.0;
    json_t *fl, *bi, *disc, *wait, *dflt, *agg, *sticky;
    double reward_wait = 0;
    int aggregate = STORE_AGG_ALL;
    const char *sticky_key = NULL;
    int burn_in = 0;
    int min_updates = -1, i = 0;

    *status = 500;
    if (!json_is_object(def)) BAD(422, "body must be a JSON object");
    name = json_object_get(def, "name");
    variants = json_object_get(def, "variants");
    if (!name) BAD(422, "field 'name' is required");
    if (!json_is_string(name)) BAD(422, "field 'name' must be a string");
    if (json_string_length(name) == 0) BAD(400, "the test name must not be empty");
    if (json_string_length(name) > SCOUT_MAX_NAME) BAD(400, "the test name is longer than %d characters", SCOUT_MAX_NAME);
    if (!variants) BAD(422, "field 'variants' is required");
    if (!json_is_object(variants)) BAD(422, "field 'variants' must be an object of {\"id\": label}");
    if (json_object_size(variants) == 0) BAD(400, "a test needs at least one variant");
    if (json_object_size(variants) > SCOUT_MAX_VARIANTS) BAD(400, "a test has at most %d variants", SCOUT_MAX_VARIANTS);

    if ((policy = json_object_get(def, "policy")) && !json_is_null(policy)) {
        if (!json_is_string(policy)) BAD(422, "field 'policy' must be a string");
        if (!policy_parse_kind(json_string_value(policy), &kind))
            BAD(400, "unknown policy '%.*s' (available: auto, thompson, ucb1, egreedy, linucb, lints)",
                util_utf8_prefix(json_string_value(policy), 32), json_string_value(policy));
    }
    if ((eps = json_object_get(def, "epsilon")) && !json_is_null(eps)) {
        if (!json_is_number(eps)) BAD(422, "field 'epsilon' must be a number");
        epsilon = json_number_value(eps);
        if (!(epsilon >= 0.0 && epsilon <= 1.0)) BAD(400, "epsilon must lie in [0, 1]");
    }
    if ((disc = json_object_get(def, "discount")) && !json_is_null(disc)) {
        if (!json_is_number(disc)) BAD(422, "field 'discount' must be a number");
        discount = json_number_value(disc);
        if (!(discount >= 0.5 && discount <= 1.0)) BAD(400, "discount must lie in [0.5, 1] (1: no discounting)");
    }
    if ((wait = json_object_get(def, "reward_wait_seconds")) && !json_is_null(wait)) {
        if (!json_is_number(wait)) BAD(422, "field 'reward_wait_seconds' must be a number");
        reward_wait = json_number_value(wait);
        if (!(reward_wait >= 0 && reward_wait <= MAX_REWARD_WAIT))
            BAD(400, "reward_wait_seconds must lie in [0, %d] (0: rewards are accepted as long as the decision is kept)", MAX_REWARD_WAIT);
    }
    if ((dflt = json_object_get(def, "default_reward")) && !json_is_null(dflt)) {
        if (!json_is_number(dflt) || !isfinite(json_number_value(dflt))) BAD(422, "field 'default_reward' must be a number");
        if (fabs(json_number_value(dflt)) > SCOUT_MAX_REWARD) BAD(400, "default_reward must lie in [-1e12, 1e12]");
        if (reward_wait <= 0) BAD(400, "default_reward needs reward_wait_seconds: the time after which it applies");
    } else {
        dflt = NULL;
    }
    if ((agg = json_object_get(def, "reward_aggregation")) && !json_is_null(agg)) {
        const char *a = json_is_string(agg) ? json_string_value(agg) : NULL;
        if (!a) BAD(422, "field 'reward_aggregation' must be a string");
        if (!strcmp(a, "all")) aggregate = STORE_AGG_ALL;
        else if (!strcmp(a, "first")) aggregate = STORE_AGG_FIRST;
        else if (!strcmp(a, "sum")) aggregate = STORE_AGG_SUM;
        else BAD(400, "reward_aggregation must be 'all', 'first' or 'sum'");
        if (aggregate == STORE_AGG_SUM && reward_wait <= 0)
            BAD(400, "reward_aggregation 'sum' needs reward_wait_seconds: the sum is learned when the wait ends");
    }
    if ((sticky = json_object_get(def, "sticky")) && !json_is_null(sticky) && !json_is_false(sticky)) {
        if (json_is_true(sticky)) sticky_key = "user_id";
        else if (json_is_string(sticky)) sticky_key = json_string_value(sticky);
        else BAD(422, "field 'sticky' must be true, false or the context key that names a user");
        if (!*sticky_key || strlen(sticky_key) > SCOUT_MAX_CONTEXT_KEY)
            BAD(400, "the sticky key must be 1 to %d characters long", SCOUT_MAX_CONTEXT_KEY);
    }
    if ((fl = json_object_get(def, "probability_floor")) && !json_is_null(fl)) {
        if (!json_is_number(fl)) BAD(422, "field 'probability_floor' must be a number");
        floor_p = json_number_value(fl);
        if (!(floor_p >= 0.0 && floor_p * (double)json_object_size(variants) <= 1.0))
            BAD(400, "probability_floor must lie in [0, 1/number of variants]");
    } else if (DEFAULT_FLOOR * (double)json_object_size(variants) > 1.0) {
        floor_p = 0;   /* more than 100 variants: the default floor cannot be honoured */
    }
    if ((bi = json_object_get(def, "burn_in")) && !json_is_null(bi)) {
        if (!json_is_integer(bi)) BAD(422, "field 'burn_in' must be an integer");
        if (json_integer_value(bi) < 0 || json_integer_value(bi) > 1000000) BAD(400, "burn_in must be between 0 and 1000000");
        burn_in = (int)json_integer_value(bi);
    }
    if ((minu = json_object_get(def, "min_updates")) && !json_is_null(minu)) {
        if (!json_is_integer(minu)) BAD(422, "field 'min_updates' must be an integer");
        if (json_integer_value(minu) < 0 || json_integer_value(minu) > 1000000000)
            BAD(400, "min_updates must be between 0 and 1000000000");
        min_updates = (int)json_integer_value(minu);
    }
    feats = json_object_get(def, "features");
    if (feats && !json_is_null(feats)) {
        size_t fi;
        json_t *f;
        if (!json_is_array(feats)) BAD(422, "field 'features' must be a list of context keys");
        if (json_array_size(feats) > SCOUT_MAX_FEATURES) BAD(400, "a test has at most %d features", SCOUT_MAX_FEATURES);
        json_array_foreach(feats, fi, f) {
            if (!json_is_string(f)) BAD(422, "features must be strings");
            if (json_string_length(f) == 0 || json_string_length(f) > SCOUT_MAX_CONTEXT_KEY)
                BAD(400, "feature names must be 1 to %d characters long", SCOUT_MAX_CONTEXT_KEY);
        }
    } else {
        feats = NULL;
    }

    e = calloc(1, sizeof *e);
    if (!e) BAD(500, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->refs, 1);
    atomic_init(&e->rollout, -1);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->created_at = created_at;
    e->kind = kind;
    e->min_updates = min_updates;
    e->nvariants = (int)json_object_size(variants);
    e->variants = calloc((size_t)e->nvariants, sizeof *e->variants);
    e->name = strdup(json_string_value(name));
    if (!e->variants || !e->name) BAD(500, "out of memory");

    json_object_foreach((json_t *)variants, key, label) {
        struct variant *v = &e->variants[i];
        char buf[32];
        if (!util_parse_index(key, SCOUT_MAX_VARIANT_ID, &v->id))
            BAD(400, "variant ids must be non-negative integers, got '%.*s'", util_utf8_prefix(key, 32), key);
        if (json_is_string(label)) {
            if (json_string_length(label) == 0) BAD(400, "variant labels must not be empty");
            if (json_string_length(label) > SCOUT_MAX_LABEL)
                BAD(400, "variant label of id %ld is longer than %d characters", v->id, SCOUT_MAX_LABEL);
            v->key = strdup(json_string_value(label));
        } else if (json_is_integer(label)) {
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(label));
            v->key = strdup(buf);
        } else {
            BAD(400, "variant labels must be strings or integers (id %ld)", v->id);
        }
        if (!v->key) BAD(500, "out of memory");
        v->label = json_incref(label);
        for (int j = 0; j < i; j++)
            if (!strcmp(e->variants[j].key, v->key)) BAD(400, "duplicate variant label '%.*s'", util_utf8_prefix(v->key, 64), v->key);
        i++;
    }
    qsort(e->variants, (size_t)e->nvariants, sizeof *e->variants, cmp_variant);

    if (policy_init(&e->policy, kind, e->nvariants, epsilon, discount) != SCOUT_OK) BAD(500, "out of memory");
    e->policy.floor = floor_p;
    e->burn_in = burn_in;
    e->reward_wait = reward_wait;
    e->has_default_reward = dflt != NULL;
    e->default_reward = dflt ? json_number_value(dflt) : 0;
    e->aggregate = aggregate;
    if (sticky_key && !(e->sticky_key = strdup(sticky_key))) BAD(500, "out of memory");
    e->probs = calloc((size_t)e->nvariants, sizeof *e->probs);
    e->arm_predictions = calloc((size_t)e->nvariants, sizeof *e->arm_predictions);
    e->srm_observed = calloc((size_t)e->nvariants, sizeof *e->srm_observed);
    e->srm_expected = calloc((size_t)e->nvariants, sizeof *e->srm_expected);
    if (!e->probs || !e->arm_predictions || !e->srm_observed || !e->srm_expected) BAD(500, "out of memory");
    e->features = feats ? json_deep_copy(feats) : NULL;

    /* The normalised definition: what the store keeps and loads back. */
    e->definition = json_pack("{s:s, s:O, s:s, s:f, s:f, s:f, s:i, s:o, s:O}", "name", e->name, "variants", variants,
                              "policy", policy_kind_name(kind), "epsilon", epsilon, "probability_floor", floor_p,
                              "discount", discount, "burn_in", burn_in,
                              "min_updates", min_updates >= 0 ? json_integer(min_updates) : json_null(),
                              "features", e->features ? e->features : json_null());
    if (!e->definition ||
        json_object_set_new(e->definition, "reward_wait_seconds", json_real(reward_wait)) ||
        json_object_set_new(e->definition, "default_reward", dflt ? json_real(e->default_reward) : json_null()) ||
        json_object_set_new(e->definition, "reward_aggregation", json_string(experiment_aggregation_name(e))) ||
        json_object_set_new(e->definition, "sticky", e->sticky_key ? json_string(e->sticky_key) : json_false()))
        BAD(500, "out of memory");
    *status = 200;
    *out = e;
    return SCOUT_OK;
fail:
    experiment_free(e);
    return SCOUT_EINVAL;
}
#undef BAD

const char *experiment_aggregation_name(const struct experiment *e) {
    return e->aggregate == STORE_AGG_FIRST ? "first" : e->aggregate == STORE_AGG_SUM ? "sum" : "all";
}

int experiment_index_of_id(const struct experiment *e, long id) {
    int lo = 0, hi = e->nvariants - 1;
    while (lo <= hi) {   /* variants are sorted by id */
        int mid = (lo + hi) / 2;
        if (e->variants[mid].id == id) return mid;
        if (e->variants[mid].id < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int experiment_find_variant(const struct experiment *e, const json_t *ref) {
    if (json_is_integer(ref) || (json_is_real(ref) && json_real_value(ref) == floor(json_real_value(ref)))) {
        double want = json_number_value(ref);
        int by_id = want >= 0 && want <= SCOUT_MAX_VARIANT_ID ? experiment_index_of_id(e, (long)want) : -1;
        if (by_id >= 0) return by_id;
        for (int i = 0; i < e->nvariants; i++)
            if (json_is_integer(e->variants[i].label) && (double)json_integer_value(e->variants[i].label) == want)
                return i;
        return -1;
    }
    if (json_is_string(ref)) {
        const char *s = json_string_value(ref);
        long id;
        for (int i = 0; i < e->nvariants; i++)
            if (!strcmp(e->variants[i].key, s)) return i;
        if (util_parse_index(s, SCOUT_MAX_VARIANT_ID, &id)) return experiment_index_of_id(e, id);
    }
    return -1;
}

static int in_warmup_locked(const struct experiment *e, int min_updates_default) {
    int need = e->min_updates >= 0 ? e->min_updates : min_updates_default;
    if (e->policy.updates < (uint64_t)(need > 0 ? need : 0)) return 1;
    for (int i = 0; i < e->nvariants && e->burn_in > 0; i++)   /* O(k), k <= 256 */
        if (e->policy.arms[i].n < (uint64_t)e->burn_in) return 1;
    return 0;
}

int experiment_in_warmup(struct experiment *e, int min_updates_default) {
    pthread_mutex_lock(&e->lock);
    int w = in_warmup_locked(e, min_updates_default);
    pthread_mutex_unlock(&e->lock);
    return w;
}

/* Probability estimates draw from a generator seeded by the state's version, not from the
 * decision stream: the estimate for a state is reproducible, and so is a seeded run of
 * decisions however often estimates are refreshed. */
static void estimate_rng(const struct experiment *e, rng_t *rng) {
    rng_seed(rng, e->policy.version * 0x9E3779B97F4A7C15ULL + 0x5C07);
}

/* Refreshes the cached probabilities when the state moved on (throttled). Lock held. */
static void refresh_probs_locked(struct experiment *e, int warmup) {
    double now;
    rng_t rng;
    if (e->probs_version == e->policy.version + 1 && e->probs_warmup == warmup) return;
    now = util_monotonic();
    if (e->probs_version != 0 && e->probs_warmup == warmup && now - e->probs_time < PROBS_REFRESH) return;
    estimate_rng(e, &rng);
    policy_probabilities(&e->policy, &rng, NULL, warmup, PROBS_DRAWS, e->probs);
    e->probs_version = e->policy.version + 1;
    e->probs_warmup = warmup;
    e->probs_time = now;
}

json_t *experiment_features(const struct experiment *e, const json_t *ctx) {
    json_t *out, *f;
    size_t i;
    if (!json_is_object(ctx) || json_object_size(ctx) == 0) return NULL;
    if (!e->features) {
        /* A sticky test's user key identifies, it does not describe: never a feature. */
        if (!e->sticky_key || !json_object_get(ctx, e->sticky_key)) return json_incref((json_t *)ctx);
        if (!(out = json_copy((json_t *)ctx))) return NULL;
        json_object_del(out, e->sticky_key);
    } else {
        if (!(out = json_object())) return NULL;
        json_array_foreach(e->features, i, f) {
            json_t *v = json_object_get(ctx, json_string_value(f));
            if (v) json_object_set(out, json_string_value(f), v);
        }
    }
    if (json_object_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Choice probabilities for this request: the throttled cache for a decision without context,
 * computed for this context otherwise. Lock held. */
static const double *probs_locked(struct experiment *e, const json_t *x, int warmup, double *buf) {
    if (!warmup && policy_uses_context(&e->policy, x)) {
        rng_t rng;
        estimate_rng(e, &rng);
        policy_probabilities(&e->policy, &rng, x, warmup, PROBS_DRAWS, buf);
        return buf;
    }
    refresh_probs_locked(e, warmup);
    return e->probs;
}

struct decision experiment_decide_for(struct experiment *e, const json_t *ctx, const char *user,
                                      int min_updates_default, double *probs) {
    struct decision d = {0, 1.0, 0, 0, 0, 0, 0};
    rng_t *rng = rng_thread();
    int rollout = atomic_load(&e->rollout);
    double buf[SCOUT_MAX_VARIANTS];
    const struct sticky_entry *se;
    json_t *x;
    if (rollout >= 0 && rollout < e->nvariants) {
        d.arm = rollout;
        d.rollout = 1;
        for (int i = 0; probs && i < e->nvariants; i++) probs[i] = i == rollout;
        return d;
    }
    x = experiment_features(e, ctx);
    pthread_mutex_lock(&e->lock);
    int warmup = in_warmup_locked(e, min_updates_default);
    const double *p = probs_locked(e, x, warmup, buf);
    d.model_version = e->policy.version;
    if (probs) memcpy(probs, p, sizeof *probs * (size_t)e->nvariants);
    if (user && (se = sticky_get(&e->sticky, user))) {
        /* The user's variant is fixed: this decision is certain; its propensity is the one the
         * user was assigned with (the randomised event an evaluation should weigh). */
        d.arm = se->arm;
        d.propensity = se->propensity;
        d.sticky = 1;
        for (int i = 0; probs && i < e->nvariants; i++) probs[i] = i == d.arm;
        goto out;
    }
    struct choice c = policy_choose(&e->policy, rng, x, warmup);
    d.arm = c.arm;
    d.explored = c.explored;
    d.propensity = p[c.arm];
    e->srm_observed[c.arm]++;   /* the SRM check counts decisions the policy drew */
    for (int i = 0; i < e->nvariants; i++) e->srm_expected[i] += p[i];
    if (user) {
        int rc = sticky_put(&e->sticky, user, d.arm, d.propensity);
        d.assigned = rc == SCOUT_OK;
        if (rc == SCOUT_ECONFLICT && !e->sticky_full_logged) {
            e->sticky_full_logged = 1;
            log_msg(LOG_WARN, "test %s holds %d sticky users: new users are not sticky", e->id, STICKY_MAX_USERS);
        }
    }
out:
    pthread_mutex_unlock(&e->lock);
    json_decref(x);
    return d;
}

struct decision experiment_decide(struct experiment *e, const json_t *ctx, int min_updates_default, double *probs) {
    return experiment_decide_for(e, ctx, NULL, min_updates_default, probs);
}

void experiment_restore_assignment(struct experiment *e, const char *user, int arm, double propensity) {
    pthread_mutex_lock(&e->lock);
    sticky_put(&e->sticky, user, arm, propensity);
    pthread_mutex_unlock(&e->lock);
}

char *experiment_srm_to_save(struct experiment *e, double now, double every, int force) {
    json_t *obs, *expct;
    uint64_t drawn = 0;
    char key[24], *text = NULL;
    pthread_mutex_lock(&e->lock);
    if (!force && now - e->srm_saved_at < every) {
        pthread_mutex_unlock(&e->lock);
        return NULL;
    }
    for (int i = 0; i < e->nvariants; i++) drawn += e->srm_observed[i];
    if (drawn == e->srm_saved) {
        pthread_mutex_unlock(&e->lock);
        return NULL;
    }
    obs = json_object();
    expct = json_object();
    for (int i = 0; i < e->nvariants; i++) {   /* keyed by variant id: labels may change meaning, ids do not */
        snprintf(key, sizeof key, "%ld", e->variants[i].id);
        json_object_set_new(obs, key, json_integer((json_int_t)e->srm_observed[i]));
        json_object_set_new(expct, key, json_real(e->srm_expected[i]));
    }
    e->srm_saved = drawn;
    e->srm_saved_at = now;
    pthread_mutex_unlock(&e->lock);
    json_t *doc = json_pack("{s:o, s:o}", "srm_observed", obs, "srm_expected", expct);
    if (doc) text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

void experiment_restore_srm(struct experiment *e, const char *text) {
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    json_t *obs = json_object_get(doc, "srm_observed"), *expct = json_object_get(doc, "srm_expected"), *v;
    const char *key;
    long id;
    pthread_mutex_lock(&e->lock);
    json_object_foreach(obs, key, v) {
        int i = util_parse_index(key, SCOUT_MAX_VARIANT_ID, &id) ? experiment_index_of_id(e, id) : -1;
        json_t *x = json_object_get(expct, key);
        if (i < 0 || !json_is_integer(v) || json_integer_value(v) < 0 || !json_is_number(x)) continue;
        e->srm_observed[i] = (uint64_t)json_integer_value(v);
        e->srm_expected[i] = json_number_value(x);
        e->srm_saved += e->srm_observed[i];
    }
    pthread_mutex_unlock(&e->lock);
    json_decref(doc);
}

void experiment_srm(struct experiment *e, uint64_t *observed, double *expected) {
    pthread_mutex_lock(&e->lock);
    memcpy(observed, e->srm_observed, sizeof *observed * (size_t)e->nvariants);
    memcpy(expected, e->srm_expected, sizeof *expected * (size_t)e->nvariants);
    pthread_mutex_unlock(&e->lock);
}

void experiment_probabilities(struct experiment *e, const json_t *ctx, int min_updates_default, double *probs) {
    int rollout = atomic_load(&e->rollout);
    double buf[SCOUT_MAX_VARIANTS];
    json_t *x;
    if (rollout >= 0 && rollout < e->nvariants) {
        for (int i = 0; i < e->nvariants; i++) probs[i] = i == rollout;
        return;
    }
    x = experiment_features(e, ctx);
    pthread_mutex_lock(&e->lock);
    const double *p = probs_locked(e, x, in_warmup_locked(e, min_updates_default), buf);
    memcpy(probs, p, sizeof *probs * (size_t)e->nvariants);
    pthread_mutex_unlock(&e->lock);
    json_decref(x);
}

void experiment_apply_reward(struct experiment *e, int arm, double reward, const json_t *ctx, double ts) {
    json_t *x = experiment_features(e, ctx);
    pthread_mutex_lock(&e->lock);
    policy_update(&e->policy, arm, reward, x);
    if (ts > e->last_update_at) e->last_update_at = ts;
    pthread_mutex_unlock(&e->lock);
    json_decref(x);
}

/* Raises an atomic to at least value; counters and times only ever move forward. */
static void raise_to(_Atomic uint64_t *counter, uint64_t value) {
    uint64_t cur = atomic_load(counter);
    while (value > cur && !atomic_compare_exchange_weak(counter, &cur, value)) {
    }
}

static void raise_time(_Atomic int64_t *ms_since_epoch, double t) {
    int64_t ms = (int64_t)(t * 1000.0), cur = atomic_load(ms_since_epoch);
    while (ms > cur && !atomic_compare_exchange_weak(ms_since_epoch, &cur, ms)) {
    }
}

void experiment_count_decision(struct experiment *e, int arm, double ts) {
    atomic_fetch_add(&e->predictions, 1);
    atomic_fetch_add(&e->arm_predictions[arm], 1);
    raise_time(&e->last_prediction_ms, ts);
}

void experiment_raise_predictions(struct experiment *e, int arm, uint64_t count, double last) {
    if (arm >= 0 && arm < e->nvariants) {
        raise_to(&e->arm_predictions[arm], count);
        return;
    }
    if (arm >= 0) return;
    raise_to(&e->predictions, count);
    raise_time(&e->last_prediction_ms, last);
}

uint64_t experiment_updates(struct experiment *e, double *last_update_at) {
    uint64_t n;
    pthread_mutex_lock(&e->lock);
    n = e->policy.updates;
    if (last_update_at) *last_update_at = e->last_update_at;
    pthread_mutex_unlock(&e->lock);
    return n;
}

int experiment_snapshot(struct experiment *e, struct policy *out, double *last_update_at) {
    int rc;
    pthread_mutex_lock(&e->lock);
    rc = policy_copy(out, &e->policy);
    if (last_update_at) *last_update_at = e->last_update_at;
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int experiment_encode_state(struct experiment *e, unsigned char **out, size_t *len) {
    struct policy copy;
    double last_update_at;
    int rc;
    /* Encoding the largest contextual model takes ~100 ms; copying it (a few ms) is all that
     * holds the test's lock, so decisions never wait for a snapshot. */
    if ((rc = experiment_snapshot(e, &copy, &last_update_at)) != SCOUT_OK) return rc;
    rc = snapshot_encode(&copy, last_update_at, out, len);
    policy_free(&copy);
    return rc;
}

int experiment_restore_state(struct experiment *e, const unsigned char *buf, size_t len, char *err, size_t errlen) {
    struct policy fresh;
    double last_update_at = 0;
    int rc;
    pthread_mutex_lock(&e->lock);
    rc = policy_init(&fresh, e->policy.kind, e->policy.narms, e->policy.epsilon, e->policy.discount);
    if (rc != SCOUT_OK) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fresh.floor = e->policy.floor;
    if ((rc = snapshot_decode(buf, len, &fresh, &last_update_at, err, errlen)) != SCOUT_OK) {
        policy_free(&fresh);
        goto out;
    }
    policy_free(&e->policy);
    e->policy = fresh;
    e->last_update_at = last_update_at;
    e->probs_version = 0;   /* the cached probabilities belong to the state replaced */
out:
    pthread_mutex_unlock(&e->lock);
    return rc;
}

