/* admin_api.c — /admin/...: protection state, the operator's settings and store health.
 * Settings are validated and committed by settings.c; this file only maps HTTP onto it. */
#include "api/api.h"

#include <string.h>

#include "api/api_util.h"
#include "util/util.h"

void api_get_protection(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)req;
    http_json(resp, 200, json_pack("{s:b}", "protected_api", app->cfg->protected_api));
}

typedef int (*settings_update_fn)(struct settings *, struct store *, const json_t *, int *, char *, size_t);
typedef json_t *(*settings_get_fn)(struct settings *);

/* GET answers the current document; POST validates, persists and answers the new one. */
static void config_endpoint(struct app *app, const struct http_req *req, struct http_resp *resp, settings_get_fn get,
                            settings_update_fn update, int restart_required) {
    json_t *body = NULL, *out;
    char err[256];
    int status, rc;
    if (strcmp(req->method, "POST") != 0) {
        http_json(resp, 200, get(&app->settings));
        return;
    }
    if (!http_parse_body(req, resp, &body)) return;
    rc = update(&app->settings, app->store, body, &status, err, sizeof err);
    json_decref(body);
    if (rc == SCOUT_EINVAL) {
        http_error(resp, status, "%s", err);
        return;
    }
    if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
        return;
    }
    out = get(&app->settings);
    json_object_set_new(out, "message", json_string("Configuration saved"));
    if (restart_required) json_object_set_new(out, "restart_required", json_true());
    http_json(resp, 200, out);
}

void api_model_config(struct app *app, const struct http_req *req, struct http_resp *resp) {
    config_endpoint(app, req, resp, settings_model_config, settings_update_model_config, 0);
}

void api_system_config(struct app *app, const struct http_req *req, struct http_resp *resp) {
    config_endpoint(app, req, resp, settings_system_config, settings_update_system_config, 1);
}

void api_redis_config(struct app *app, const struct http_req *req, struct http_resp *resp) {
    /* ttl applies at once; host and port take effect when scoutd next starts on Redis. */
    config_endpoint(app, req, resp, settings_redis_config, settings_update_redis_config, 0);
}

void api_redis_health(struct app *app, const struct http_req *req, struct http_resp *resp) {
    long count = 0;
    int healthy = store_ping(app->store) == SCOUT_OK && store_count_decisions(app->store, util_now(), &count) == SCOUT_OK;
    json_t *cfg = settings_redis_config(&app->settings);
    (void)req;
    http_json(resp, 200, json_pack("{s:b, s:I, s:O, s:O, s:O, s:s, s:s}", "redis_healthy", healthy,
                                   "context_keys_count", (json_int_t)count, "redis_host", json_object_get(cfg, "host"),
                                   "redis_port", json_object_get(cfg, "port"), "ttl_seconds",
                                   json_object_get(cfg, "ttl"), "store", "embedded", "store_status",
                                   healthy ? "ok" : "unreachable"));
    json_decref(cfg);
}
