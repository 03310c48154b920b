/* decide_api.c — the two calls applications make: fetch a decision, report rewards.
 * A fetch touches only memory: the test's policy under its mutex, then a decision record
 * queued for the store without waiting. An update is validated whole first (an unknown variant
 * refuses the entire request, nothing applied), then committed as one transaction; the answer
 * goes out only after the commit, and the learned state has folded the events in by then,
 * through the store's event handler (app_on_event), in commit order. */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_util.h"
#include "bandit/context.h"
#include "registry.h"
#include "util/util.h"

/* Reads an optional request_id: 1 when absent or valid (*out borrowed from body). */
static int read_request_id(const json_t *obj, const char **out, struct http_resp *resp) {
    json_t *rid = json_object_get(obj, "request_id");
    *out = NULL;
    if (!rid || json_is_null(rid)) return 1;
    if (!json_is_string(rid)) {
        http_error(resp, 422, "field 'request_id' must be a string");
        return 0;
    }
    if (json_string_length(rid) > SCOUT_MAX_REQUEST_ID) {
        http_error(resp, 400, "request_id is longer than %d characters", SCOUT_MAX_REQUEST_ID);
        return 0;
    }
    if (json_string_length(rid) > 0) *out = json_string_value(rid);
    return 1;
}

/* The user of a sticky test: the context's or the body's field named by the test's sticky
 * key, as text in buf. 1 with *out NULL when the test is not sticky or the request names no
 * user; 0 after answering an error. */
static int read_user(const struct experiment *e, const json_t *body, const json_t *ctx, char *buf, size_t len,
                     const char **out, struct http_resp *resp) {
    json_t *v;
    *out = NULL;
    if (!e->sticky_key) return 1;
    v = json_object_get(ctx, e->sticky_key);
    if (!v || json_is_null(v)) v = json_object_get(body, e->sticky_key);
    if (!v || json_is_null(v)) return 1;
    if (json_is_integer(v)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_string(v) && json_string_length(v) > 0) {
        if (json_string_length(v) >= len) {
            http_error(resp, 400, "'%s' is longer than %zu characters", e->sticky_key, len - 1);
            return 0;
        }
        snprintf(buf, len, "%s", json_string_value(v));
    } else {
        http_error(resp, 422, "'%s' (the user of this sticky test) must be a non-empty string or an integer",
                   e->sticky_key);
        return 0;
    }
    *out = buf;
    return 1;
}

void api_fetch(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL, *idv, *ctx = NULL;
    struct experiment *e = NULL;
    struct store_decision *rec;
    struct decision d;
    const char *rid, *user;
    char err[256], gen[SCOUT_ID_LEN + 1], userbuf[SCOUT_MAX_STICKY_USER + 1];
    double now = util_now(), probs[SCOUT_MAX_VARIANTS];

    if (!http_parse_body(req, resp, &body)) return;
    if (!json_is_object(body)) {
        http_error(resp, 422, "body must be a JSON object");
        goto done;
    }
    idv = json_object_get(body, "cb_model_id");
    if (!idv) idv = json_object_get(body, "model_id");
    if (!idv) {
        http_error(resp, 422, "field 'cb_model_id' is required");
        goto done;
    }
    if (!json_is_string(idv)) {
        http_error(resp, 422, "field 'cb_model_id' must be a string");
        goto done;
    }
    if (!(e = registry_get(app->reg, json_string_value(idv)))) {
        http_error(resp, 404, "Model not found");
        goto done;
    }
    if (context_normalize(json_object_get(body, "context"), &ctx, err, sizeof err) != SCOUT_OK) {
        json_t *c = json_object_get(body, "context");
        http_error(resp, json_is_object(c) ? 400 : 422, "%s", err);
        goto done;
    }
    if (!read_request_id(body, &rid, resp)) goto done;
    if (!read_user(e, body, ctx, userbuf, sizeof userbuf, &user, resp)) goto done;
    if (!rid) {
        util_uuid4_timed(now, gen);   /* time-ordered: the store's decision index grows at its end */
        rid = gen;
    }

    d = experiment_decide_for(e, ctx, user, api_min_updates(app, e), probs);
    if (d.assigned) {
        /* The store may know this user already (another replica assigned them first): its
         * assignment stands, here too. */
        struct store_assignment a = {.variant_id = e->variants[d.arm].id, .propensity = d.propensity, .created = now};
        int arm;
        snprintf(a.test_id, sizeof a.test_id, "%s", e->id);
        snprintf(a.user, sizeof a.user, "%s", user);
        if (store_claim_assignment(app->store, &a) == SCOUT_OK && a.existing &&
            (arm = experiment_index_of_id(e, a.variant_id)) >= 0) {
            experiment_restore_assignment(e, user, arm, a.propensity);
            d.arm = arm;
            d.propensity = a.propensity;
            d.sticky = 1;
            d.explored = 0;
            for (int i = 0; i < e->nvariants; i++) probs[i] = i == arm;
        }
    }
    experiment_count_decision(e, d.arm, now);
    app_save_counters(app, e, 0);

    if ((rec = calloc(1, sizeof *rec))) {
        snprintf(rec->test_id, sizeof rec->test_id, "%s", e->id);
        snprintf(rec->request_id, sizeof rec->request_id, "%s", rid);
        rec->variant_id = e->variants[d.arm].id;
        rec->propensity = d.propensity;
        rec->explored = d.explored;
        rec->model_version = d.model_version;
        rec->context = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
        rec->created = now;
        rec->expires = now + atomic_load(&app->settings.context_ttl);
        if (e->reward_wait > 0) {
            rec->settle_at = now + e->reward_wait;
            if (rec->expires < rec->settle_at) rec->expires = rec->settle_at;   /* kept until settled */
        }
        rec->aggregate = e->aggregate;
        rec->has_default = e->has_default_reward;
        rec->default_reward = e->default_reward;
        store_put_decision(app->store, rec);
    }
    http_json(resp, 200,
              json_pack("{s:O, s:O, s:I, s:s, s:s, s:b, s:f, s:b, s:b, s:I}", "recommended_variant",
                        e->variants[d.arm].label, "variant_label", e->variants[d.arm].label, "variant_id",
                        (json_int_t)e->variants[d.arm].id, "request_id", rid, "cb_model_id", e->id,
                        "is_global_rollout", d.rollout, "propensity", d.propensity, "explored", d.explored,
                        "sticky", d.sticky, "model_version", (json_int_t)d.model_version));
    if (json_is_true(json_object_get(body, "return_probabilities"))) {
        /* Every variant's probability for this request (what off-policy evaluation logs). */
        json_t *map = json_object();
        for (int i = 0; i < e->nvariants; i++) json_object_set_new(map, e->variants[i].key, json_real(probs[i]));
        json_object_set_new(resp->json, "probabilities", map);
    }
done:
    json_decref(ctx);
    json_decref(body);
    experiment_unref(e);
}

/* Validates one update into ev; 0 after answering the error. */
static int read_update(struct experiment *e, const json_t *u, size_t idx, struct store_reward *ev,
                       struct http_resp *resp) {
    json_t *ref, *reward, *used, *ctx = NULL;
    char err[256];
    int arm;
    if (!json_is_object(u)) {
        http_error(resp, 422, "updates[%zu] must be an object", idx);
        return 0;
    }
    ref = json_object_get(u, "decision");
    if (!ref || json_is_null(ref)) ref = json_object_get(u, "variant_id");
    if (!ref || json_is_null(ref)) ref = json_object_get(u, "variant");
    ev->variant_id = -1;
    if (ref && !json_is_null(ref)) {
        if (!json_is_string(ref) && !json_is_number(ref)) {
            http_error(resp, 422, "updates[%zu]: the variant must be an id or a label", idx);
            return 0;
        }
        if ((arm = experiment_find_variant(e, ref)) < 0) {
            http_error(resp, 400, "updates[%zu] names a variant this model does not have; nothing was applied", idx);
            return 0;
        }
        ev->variant_id = e->variants[arm].id;
    }
    reward = json_object_get(u, "reward");
    if (!reward) {
        http_error(resp, 422, "updates[%zu]: field 'reward' is required", idx);
        return 0;
    }
    if (!json_is_number(reward) || !isfinite(json_number_value(reward))) {
        http_error(resp, 422, "updates[%zu]: field 'reward' must be a number", idx);
        return 0;
    }
    ev->reward = json_number_value(reward);
    if (fabs(ev->reward) > SCOUT_MAX_REWARD) {
        http_error(resp, 400, "updates[%zu]: reward must lie in [-1e12, 1e12]", idx);
        return 0;
    }
    if (!read_request_id(u, &ev->request_id, resp)) return 0;
    /* The original's flag: true (or absent) joins the context stored with the decision, false
     * does not. Some clients send the context itself under that name: it is taken as context. */
    used = json_object_get(u, "context_used_for_prediction");
    if (json_object_get(u, "context") && !json_is_object(json_object_get(u, "context")) &&
        !json_is_null(json_object_get(u, "context"))) {
        http_error(resp, 422, "updates[%zu]: field 'context' must be an object", idx);
        return 0;
    }
    ev->skip_stored_context = json_is_false(used);
    if (context_merge(&ctx, json_object_get(u, "context"), NULL, err, sizeof err) != SCOUT_OK ||
        (json_is_object(used) && context_merge(&ctx, used, NULL, err, sizeof err) != SCOUT_OK) ||
        context_merge(&ctx, u, "feature_", err, sizeof err) != SCOUT_OK) {
        json_decref(ctx);
        http_error(resp, 400, "updates[%zu]: %s", idx, err);
        return 0;
    }
    if (ctx && json_object_size(ctx) > 0) ev->context = json_dumps(ctx, JSON_COMPACT);
    json_decref(ctx);
    return 1;
}

/* An update between its validation and its answer: owned by whoever holds it (the store's
 * write, then the server's finish). */
struct update {
    struct experiment *e;     /* a reference */
    json_t *body;             /* the request's, which the events' request ids point into */
    struct store_reward *ev;
    size_t n;
    int rc;                   /* the store's answer */
    struct http_deferred *d;
};

static void update_free(struct update *up) {
    for (size_t i = 0; up->ev && i < up->n; i++) free(up->ev[i].context);
    free(up->ev);
    json_decref(up->body);
    experiment_unref(up->e);
    free(up);
}

/* On the store's writer: the events are committed (or not); the answer is built on a server
 * thread, in update_finish. */
static void update_stored(void *arg, int rc) {
    struct update *up = arg;
    up->rc = rc;
    http_deferred_done(up->d);
}

/* Answers an update whose events the store has committed (or refused). */
static void update_finish(void *arg, struct http_resp *resp) {
    struct update *up = arg;
    const struct store_reward *ev = up->ev;
    int applied = 0, hits = 0, missing = 0, deferred = 0, duplicate = 0, late = 0;
    double total = 0;
    if (up->rc != SCOUT_OK) {
        api_store_error(resp, up->rc);
        update_free(up);
        return;
    }
    for (size_t i = 0; i < up->n; i++) {
        if (ev[i].applied || ev[i].outcome == STORE_REWARD_DEFERRED) {
            applied++;
            total += ev[i].reward;
        }
        deferred += ev[i].outcome == STORE_REWARD_DEFERRED;
        duplicate += ev[i].outcome == STORE_REWARD_DUPLICATE;
        late += ev[i].outcome == STORE_REWARD_LATE;
        /* The store fills in a context only from a found decision: an event that is not
         * found and has none carried no inline context either. */
        if (ev[i].request_id && ev[i].found) hits++;
        if (ev[i].request_id && !ev[i].found && !ev[i].context) missing++;
    }
    http_json(resp, 200, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:i}", "message", "Model updated",
                                   "cb_model_id", up->e->id, "processed_updates", applied, "failed_updates",
                                   (int)up->n - applied, "missing_context", missing, "redis_hits", hits,
                                   "total_reward", total, "deferred_updates", deferred, "duplicate_updates",
                                   duplicate, "late_updates", late));
    update_free(up);
}

/* Validates every update first (one bad update refuses the request, nothing applied), then
 * hands them to the store and answers once they are durable, without holding a server thread
 * while the store commits: many updates share one commit. */
void api_update(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    json_t *body = NULL, *updates, *u;
    struct update *up = NULL;
    size_t i;
    if (!e) return;
    if (!http_parse_body(req, resp, &body)) goto fail;
    updates = json_is_object(body) ? json_object_get(body, "updates") : NULL;
    if (!updates || !json_is_array(updates)) {
        http_error(resp, 422, "field 'updates' must be a list of updates");
        goto fail;
    }
    if (json_array_size(updates) > SCOUT_MAX_UPDATES) {
        http_error(resp, 400, "at most %d updates per request", SCOUT_MAX_UPDATES);
        goto fail;
    }
    if (!(up = calloc(1, sizeof *up))) {
        http_error(resp, 503, "out of memory");
        goto fail;
    }
    up->e = e;
    up->body = body;
    e = NULL;   /* up holds the references now */
    body = NULL;
    up->n = json_array_size(updates);
    if (!(up->ev = calloc(up->n ? up->n : 1, sizeof *up->ev))) {
        http_error(resp, 503, "out of memory");
        goto fail;
    }
    json_array_foreach(updates, i, u) {
        if (!read_update(up->e, u, i, &up->ev[i], resp)) goto fail;
    }
    if (up->n == 0) {
        up->rc = SCOUT_OK;
        update_finish(up, resp);
        return;
    }
    if (!(up->d = http_defer(resp, update_finish, up))) {
        http_error(resp, 503, "out of memory");
        goto fail;
    }
    store_append_rewards_async(app->store, up->e->id, up->ev, (int)up->n, update_stored, up);
    return;
fail:
    if (up) update_free(up);
    json_decref(body);
    experiment_unref(e);
}
