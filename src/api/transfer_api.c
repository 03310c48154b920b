/* transfer_api.c — one test moved between installations: GET /admin/tests/{id}/export answers
 * the test as one JSON document (its definition, counters, learned state and, on request, its
 * reward events; the format is backup.h's test export), POST /admin/tests/import makes a test
 * from one on this store, learned state included, so it serves and learns on at once.
 * An export is bounded by what an import takes — SCOUT_MAX_BODY (1 MiB) of JSON and
 * TEST_EXPORT_MAX_EVENTS events —: one that would not fit is refused with 413, never cut short,
 * and the events are read with a running estimate of their size, so an export holds about that
 * much in memory however many events the test has. A whole store moves with scoutd backup. */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_util.h"
#include "backup.h"
#include "bandit/snapshot.h"
#include "obs/log.h"
#include "registry.h"
#include "util/util.h"

#define EVENT_OVERHEAD 160   /* bytes of a reward record besides its context and request id */

struct event_acc {
    json_t *doc;
    size_t count, bytes;
    int over;            /* the events would not fit an import */
    int failed;          /* out of memory */
};

static int add_event(void *ud, const struct store_record *r) {
    struct event_acc *a = ud;
    a->bytes += EVENT_OVERHEAD + (r->u.reward.context ? strlen(r->u.reward.context) : 0) +
                (r->u.reward.request_id ? strlen(r->u.reward.request_id) : 0);
    if (++a->count > TEST_EXPORT_MAX_EVENTS || a->bytes > SCOUT_MAX_BODY) {
        a->over = 1;
        return 1;
    }
    if (test_export_add(a->doc, r) != SCOUT_OK) {
        a->failed = 1;
        return 1;
    }
    return 0;
}

static void answer_too_large(struct http_resp *resp, const char *why) {
    http_error(resp, 413, "%s, more than one import takes (%d events, %d bytes of JSON): export it without its events "
                          "(events=false), or move the whole store with scoutd backup and restore", why,
               TEST_EXPORT_MAX_EVENTS, SCOUT_MAX_BODY);
}

/* GET /admin/tests/{id}/export?events=true|false (default false). The events are read first and
 * the state taken after them, so the state covers every event the document carries (a reward
 * arriving meanwhile may be in the state and not among the events: the state is what the test
 * learned, the events are its history). */
void api_export_test(struct app *app, const struct http_req *req, struct http_resp *resp) {
    const char *flag = http_query(req, "events");
    struct experiment *e = api_get_test(app, req, resp);
    struct store_record rec;
    struct event_acc acc = {0};
    unsigned char *state = NULL;
    size_t len = 0;
    char *def = NULL, *text = NULL;
    int events, rollout, rc;
    if (!e) return;
    if (!flag || !strcmp(flag, "false") || !strcmp(flag, "0")) {
        events = 0;
    } else if (!strcmp(flag, "true") || !strcmp(flag, "1")) {
        events = 1;
    } else {
        http_error(resp, 400, "events must be true or false");
        goto done;
    }
    store_flush(app->store);   /* every reward and decision answered before is in */
    if (!(def = json_dumps(e->definition, JSON_COMPACT))) goto nomem;
    rollout = atomic_load(&e->rollout);
    memset(&rec, 0, sizeof rec);
    rec.kind = STORE_REC_TEST;
    rec.test_id = e->id;
    rec.u.test.definition = def;
    rec.u.test.created = e->created_at;
    rec.u.test.rollout_variant = rollout >= 0 ? e->variants[rollout].id : -1;
    rec.u.test.predictions = atomic_load(&e->predictions);
    rec.u.test.last_prediction = (double)atomic_load(&e->last_prediction_ms) / 1000.0;
    if (!(acc.doc = test_export_begin(&rec, store_backend_name(app->store), e->name, experiment_updates(e, NULL),
                                      events)))
        goto nomem;
    for (int i = 0; i < e->nvariants; i++) {
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_ARM;
        rec.test_id = e->id;
        rec.u.arm.variant_id = e->variants[i].id;
        rec.u.arm.predictions = atomic_load(&e->arm_predictions[i]);
        if (test_export_add(acc.doc, &rec) != SCOUT_OK) goto nomem;
    }
    if (events) {
        rc = store_scan_rewards(app->store, e->id, add_event, &acc);
        if (acc.over) {
            answer_too_large(resp, "the test has too many reward events to export with them");
            goto done;
        }
        if (acc.failed) goto nomem;
        if (rc != SCOUT_OK) {
            api_store_error(resp, rc);
            goto done;
        }
    }
    if (experiment_encode_state(e, &state, &len) != SCOUT_OK) goto nomem;
    memset(&rec, 0, sizeof rec);
    rec.kind = STORE_REC_SNAPSHOT;
    rec.test_id = e->id;
    rec.u.snapshot.id = "0-0";
    rec.u.snapshot.state = state;
    rec.u.snapshot.len = len;
    rec.u.snapshot.t = floor(util_now() * 1000.0);
    rec.u.snapshot.format = SNAPSHOT_FORMAT;
    if (test_export_add(acc.doc, &rec) != SCOUT_OK) goto nomem;
    if (!(text = json_dumps(acc.doc, JSON_COMPACT | JSON_REAL_PRECISION(17)))) goto nomem;
    if (strlen(text) > SCOUT_MAX_BODY) {
        answer_too_large(resp, events ? "the test's learned state and events make an export too large"
                                      : "the test's learned state makes an export too large");
        goto done;
    }
    http_raw(resp, 200, "application/json", text, strlen(text));
    log_fields(LOG_INFO, "test exported", json_pack("{s:s, s:s, s:b, s:I, s:s}", "event", "test_exported", "model_id",
                                                    e->id, "events", events, "event_count", (json_int_t)acc.count,
                                                    "client", req->client));
    goto done;
nomem:
    http_error(resp, 503, "out of memory");
done:
    free(text);
    free(state);
    free(def);
    json_decref(acc.doc);
    experiment_unref(e);
}

/* The import's own options, beside the export's fields: "name" renames the test, "keep_id"
 * keeps its id. 0 after answering an error. */
static int import_options(const json_t *doc, const char **name, int *keep_id, struct http_resp *resp) {
    json_t *v;
    *name = NULL;
    *keep_id = 0;
    if ((v = json_object_get(doc, "keep_id")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            http_error(resp, 422, "field 'keep_id' must be true or false");
            return 0;
        }
        *keep_id = json_is_true(v);
    }
    if ((v = json_object_get(doc, "name")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            http_error(resp, 422, "field 'name' must be a string");
            return 0;
        }
        *name = json_string_value(v);
    }
    return 1;
}

/* The test the export describes, under id, with its learned state and counters in memory; NULL
 * after answering why not. */
static struct experiment *imported_test(const struct test_export *x, const char *id, const char *name,
                                        struct http_resp *resp) {
    const struct store_record *t = &x->recs[0];
    struct experiment *e = NULL;
    json_t *def = json_loads(t->u.test.definition, 0, NULL);
    char err[400];
    int status, arm;
    (void)status;
    if (!json_is_object(def)) {
        http_error(resp, 422, "the export's test definition is not a JSON object");
        goto fail;
    }
    if (name && (!name[0] || strlen(name) > SCOUT_MAX_NAME)) {
        http_error(resp, 400, "the test name must be 1 to %d characters long", SCOUT_MAX_NAME);
        goto fail;
    }
    if (name && json_object_set_new(def, "name", json_string(name)) != 0) {
        http_error(resp, 400, "the new name is not valid UTF-8 text");
        goto fail;
    }
    if (experiment_from_definition(def, id, t->u.test.created, &e, &status, err, sizeof err) != SCOUT_OK) {
        http_error(resp, 422, "the export's test definition: %s", err);
        goto fail;
    }
    if (experiment_restore_state(e, x->state, x->state_len, err, sizeof err) != SCOUT_OK) {
        http_error(resp, 422, "the export's learned state does not fit its test (variants and policy): %s", err);
        goto fail;
    }
    for (size_t i = 1; i < x->n; i++) {
        const struct store_record *r = &x->recs[i];
        json_t *ctx;
        if (r->kind == STORE_REC_ARM && (arm = experiment_index_of_id(e, r->u.arm.variant_id)) >= 0) {
            atomic_store(&e->arm_predictions[arm], r->u.arm.predictions);
        } else if (r->kind == STORE_REC_ARM || (r->kind == STORE_REC_REWARD &&
                                                 experiment_index_of_id(e, r->u.reward.variant_id) < 0)) {
            http_error(resp, 422, "the export names variant %ld, which its test does not have",
                       r->kind == STORE_REC_ARM ? r->u.arm.variant_id : r->u.reward.variant_id);
            goto fail;
        }
        if (r->kind == STORE_REC_REWARD && r->u.reward.context) {
            ctx = json_loads(r->u.reward.context, 0, NULL);
            if (!json_is_object(ctx)) {
                json_decref(ctx);
                http_error(resp, 422, "the export's events: a context must be a JSON object (as text) or null");
                goto fail;
            }
            json_decref(ctx);
        }
    }
    arm = t->u.test.rollout_variant >= 0 ? experiment_index_of_id(e, t->u.test.rollout_variant) : -1;
    if (t->u.test.rollout_variant >= 0 && arm < 0) {
        http_error(resp, 422, "the export's rollout names variant %ld, which its test does not have",
                   t->u.test.rollout_variant);
        goto fail;
    }
    atomic_store(&e->rollout, arm);
    atomic_store(&e->predictions, t->u.test.predictions);
    atomic_store(&e->last_prediction_ms, (int64_t)(t->u.test.last_prediction * 1000.0));
    json_decref(def);
    return e;
fail:
    experiment_unref(e);
    json_decref(def);
    return NULL;
}

/* POST /admin/tests/import: an export document, with optional "name" and "keep_id". The test is
 * served from memory first (so that a shared store's replicas, told of it by the store, find
 * it here whole), then stored; a store failure takes it back. */
void api_import_test(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct test_export x;
    struct store_record *recs = NULL;
    struct experiment *e = NULL, *cur;
    const char *name;
    char id[SCOUT_ID_LEN + 1], err[600] = "", *def = NULL;
    int status, keep_id, rc;
    rc = test_export_parse(req->body ? req->body : "", req->body_len, &x, &status, err, sizeof err);
    if (rc != SCOUT_OK) {
        http_error(resp, rc == SCOUT_ENOMEM ? 503 : status, "%s", err);
        goto done;
    }
    if (!import_options(x.doc, &name, &keep_id, resp)) goto done;
    if (keep_id) snprintf(id, sizeof id, "%s", x.recs[0].test_id);
    else util_uuid4(id);
    if (!(e = imported_test(&x, id, name, resp))) goto done;
    if (!(def = json_dumps(e->definition, JSON_COMPACT)) || !(recs = malloc(x.n * sizeof *recs))) {
        http_error(resp, 503, "out of memory");
        goto done;
    }
    memcpy(recs, x.recs, x.n * sizeof *recs);
    for (size_t i = 0; i < x.n; i++) recs[i].test_id = id;
    recs[0].u.test.definition = def;
    if (registry_add(app->reg, e) != SCOUT_OK) {
        http_error(resp, 409, "a test with id %s exists; import it without keep_id to give it a new id", id);
        goto done;
    }
    rc = store_import_test(app->store, recs, x.n, err, sizeof err);
    if (rc != SCOUT_OK) {
        if ((cur = registry_get(app->reg, id)) == e) registry_remove(app->reg, id);
        experiment_unref(cur);
        if (rc == SCOUT_ECONFLICT)
            http_error(resp, 409, "a test with id %s exists; import it without keep_id to give it a new id", id);
        else if (rc == SCOUT_EINVAL) http_error(resp, 422, "%s", err);
        else api_store_error(resp, rc);
        goto done;
    }
    log_fields(LOG_INFO, "test imported", json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "event", "test_imported",
                                                    "model_id", id, "from_model_id", x.recs[0].test_id, "source",
                                                    x.source, "events", (json_int_t)x.events, "client", req->client));
    http_json(resp, 200, json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I, s:I}", "message", "Test imported",
                                   "model_id", id, "cb_model_id", id, "name", e->name, "variants",
                                   json_object_get(e->definition, "variants"), "imported_from", x.recs[0].test_id,
                                   "source", x.source, "updates", (json_int_t)experiment_updates(e, NULL), "events",
                                   (json_int_t)x.events));
done:
    free(recs);
    free(def);
    experiment_unref(e);
    test_export_free(&x);
}
