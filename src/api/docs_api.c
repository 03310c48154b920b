/* docs_api.c — operations endpoints: /docs (the HTML reference the Kubernetes probes hit),
 * /metrics (Prometheus), /healthz and /readyz.
 * /healthz says the process serves; /readyz also asks the store, so a load balancer stops
 * sending traffic to a replica whose store is gone. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "obs/metrics.h"

static const char DOCS_HTML[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scout API</title>"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}"
    "code{background:#f2f2f2;padding:.1rem .3rem}td,th{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd}"
    "</style></head><body><h1>Scout API</h1>"
    "<p>Self-optimizing A/B tests. JSON in, JSON out; errors are <code>{\"detail\": \"...\"}</code>.</p>"
    "<table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>"
    "<tr><td>POST</td><td><code>/api/create_model</code></td><td>Create a test: <code>{\"name\", \"variants\": {\"0\": \"A\", \"1\": \"B\"}}</code>, optional <code>policy</code>, <code>min_updates</code>, <code>epsilon</code>, <code>features</code></td></tr>"
    "<tr><td>POST</td><td><code>/api/fetch_recommended_variant</code></td><td>Decide: <code>{\"cb_model_id\", \"context\"?, \"request_id\"?}</code></td></tr>"
    "<tr><td>POST</td><td><code>/api/update_model/{id}</code></td><td>Report rewards: <code>{\"updates\": [{\"decision\" | \"variant_id\", \"reward\", \"request_id\"?, \"context\"?}]}</code></td></tr>"
    "<tr><td>GET</td><td><code>/api/models</code></td><td>List tests with counters and traffic shares</td></tr>"
    "<tr><td>GET</td><td><code>/api/model_details/{id}</code></td><td>Analytics: request trail, exploitation, per-feature data, per-variant performance</td></tr>"
    "<tr><td>POST</td><td><code>/api/rollout_global_variant/{id}</code></td><td>Serve one variant to everyone: <code>{\"variant\"}</code></td></tr>"
    "<tr><td>POST</td><td><code>/api/clear_global_variant/{id}</code></td><td>Return to learning</td></tr>"
    "<tr><td>POST</td><td><code>/api/delete_model/{id}</code></td><td>Delete a test and its data</td></tr>"
    "<tr><td>GET</td><td><code>/admin/get_protection</code></td><td>Whether API protection is on</td></tr>"
    "<tr><td>GET, POST</td><td><code>/admin/model_config</code></td><td><code>time_window_minutes</code>, <code>bucket_granularity_seconds</code>, <code>min_update_requests</code></td></tr>"
    "<tr><td>GET, POST</td><td><code>/admin/system_config</code></td><td><code>host</code>, <code>port</code>, <code>debug</code> (apply at restart)</td></tr>"
    "<tr><td>GET, POST</td><td><code>/admin/redis_config</code></td><td><code>host</code>, <code>port</code>, <code>ttl</code> (decision TTL, applies at once)</td></tr>"
    "<tr><td>GET</td><td><code>/admin/redis_health</code></td><td>Store health and live decision records</td></tr>"
    "<tr><td>GET</td><td><code>/healthz</code>, <code>/readyz</code></td><td>Liveness; readiness (503 while the store is unreachable)</td></tr>"
    "</table></body></html>";

void api_docs(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)app;
    (void)req;
    http_raw(resp, 200, "text/html; charset=utf-8", DOCS_HTML, sizeof DOCS_HTML - 1);
}

void api_metrics(struct app *app, const struct http_req *req, struct http_resp *resp) {
    char *text = metrics_render(app->metrics);
    (void)req;
    if (!text) {
        http_error(resp, 503, "out of memory");
        return;
    }
    http_raw(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
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
