/* docs_api.c — operations endpoints: /docs (the HTML reference the Kubernetes probes hit),
 * /metrics (Prometheus), /healthz and /readyz.
 * /healthz says the process serves; /readyz also asks the store, so a load balancer stops
 * sending traffic to a replica whose store is gone. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/assets.h"
#include "backup.h"
#include "obs/metrics.h"
#include "registry.h"

void api_docs(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)app;
    (void)req;
    /* The page renders /openapi.json in the browser with its own script: no CDN, works offline. */
    http_raw(resp, 200, "text/html; charset=utf-8", ASSET(docs_html));
}

void api_openapi(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)app;
    (void)req;
    http_raw(resp, 200, "application/json", ASSET(openapi_json));
}

/* Per-test series: one label value per live test, so cardinality follows the number of
 * tests an operator created, not anything a client sends. */
static void test_metrics(struct app *app, struct metrics_text *t) {
    struct experiment **list;
    size_t n;
    if (registry_list(app->reg, &list, &n) != SCOUT_OK) return;
    metrics_printf(t, "# HELP scout_tests Tests defined.\n# TYPE scout_tests gauge\nscout_tests %zu\n", n);
    metrics_printf(t, "# HELP scout_decisions_total Decisions served, by test.\n# TYPE scout_decisions_total counter\n");
    for (size_t i = 0; i < n; i++)
        metrics_printf(t, "scout_decisions_total{model_id=\"%s\"} %llu\n", list[i]->id,
                       (unsigned long long)atomic_load(&list[i]->predictions));
    metrics_printf(t, "# HELP scout_rewards_total Rewards applied, by test.\n# TYPE scout_rewards_total counter\n");
    for (size_t i = 0; i < n; i++)
        metrics_printf(t, "scout_rewards_total{model_id=\"%s\"} %llu\n", list[i]->id,
                       (unsigned long long)experiment_updates(list[i], NULL));
    registry_release_list(list, n);
}

/* The latest backup of the store, whoever made it (backup_note): 0 until the first one; left
 * out while the store cannot be read (scout_store_up says so). */
static void backup_metrics(struct app *app, struct metrics_text *t) {
    struct backup_note note;
    if (backup_note_load(app->store, &note) != SCOUT_OK) return;
    metrics_printf(t, "# HELP scout_last_backup_timestamp_seconds When the latest backup of the store was taken "
                      "(0: never).\n# TYPE scout_last_backup_timestamp_seconds gauge\n"
                      "scout_last_backup_timestamp_seconds %.3f\n", note.created);
    metrics_printf(t, "# HELP scout_last_backup_size_bytes Size of the latest backup file of the store (0: none).\n"
                      "# TYPE scout_last_backup_size_bytes gauge\nscout_last_backup_size_bytes %lld\n", note.size);
}

void api_metrics(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct metrics_text t;
    int up = store_ping(app->store) == SCOUT_OK;
    (void)req;
    metrics_render(app->metrics, &t);
    test_metrics(app, &t);
    store_render_metrics(app->store, &t);
    metrics_printf(&t, "# HELP scout_store_up Whether the store answers (1) or not (0).\n"
                       "# TYPE scout_store_up gauge\nscout_store_up %d\n", up);
    backup_metrics(app, &t);
    if (!t.p) {
        http_error(resp, 503, "out of memory");
        return;
    }
    http_raw(resp, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len);
    free(t.p);
}

void api_logs_stream(struct app *app, const struct http_req *req, struct http_resp *resp) {
    static const char *LEVELS[] = {"debug", "info", "warn", "error"};
    const char *want = http_query(req, "level");
    int level = 0;
    if (want) {
        for (level = 0; level < 4 && strcmp(want, LEVELS[level]); level++) {
        }
        if (level == 4) {
            http_error(resp, 400, "level must be debug, info, warn or error");
            return;
        }
    }
    if (!(resp->stream = logstream_subscribe(app->logstream, level))) {
        http_error(resp, 503, "too many live log viewers (at most %d)", LOGSTREAM_MAX_SUBSCRIBERS);
        return;
    }
    resp->status = 200;
}

void api_healthz(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)app;
    (void)req;
    http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)req;
    if (store_ping(app->store) == SCOUT_OK) http_json(resp, 200, json_pack("{s:s}", "status", "ready"));
    else http_json(resp, 503, json_pack("{s:s}", "detail", "the store is unreachable"));
}
