/* admin_api.c — /admin/...: protection state, the operator's settings, store health and
 * backups on demand. Settings are validated and committed by settings.c and backups written
 * by backup.c; this file only maps HTTP onto them. */
#include "api/api.h"

#include <string.h>

#include "api/api_util.h"
#include "auth/tokens.h"
#include "backup.h"
#include "obs/log.h"
#include "util/util.h"

void api_get_protection(struct app *app, const struct http_req *req, struct http_resp *resp) {
    double now = util_now();
    json_t *list = tokens_list(app->tokens, now);
    (void)req;
    /* Metadata only: the original returned the token itself here. */
    http_json(resp, 200, json_pack("{s:b, s:b, s:b, s:I, s:o}", "protected_api", atomic_load(&app->protected_api),
                                   "metrics_require_token", app->cfg->metrics_require_token, "admin_token_available",
                                   tokens_have_admin(app->tokens, now), "tokens_count",
                                   (json_int_t)json_array_size(list), "tokens", list));
}

void api_set_protection(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL, *v;
    int on, rc;
    if (!http_parse_body(req, resp, &body)) return;
    v = json_is_object(body) ? json_object_get(body, "protected_api") : body;
    if (!json_is_boolean(v)) {
        http_error(resp, 422, "body must be true, false or {\"protected_api\": bool}");
        goto done;
    }
    on = json_is_true(v);
    if (on && !tokens_have_admin(app->tokens, util_now())) {
        http_error(resp, 409, "create an admin token first (POST /admin/generate_token): "
                              "turning protection on without one would lock everyone out");
        goto done;
    }
    if ((rc = store_put_setting(app->store, "protection", on ? "{\"protected_api\":true}" : "{\"protected_api\":false}")) !=
        SCOUT_OK) {
        api_store_error(resp, rc);
        goto done;
    }
    atomic_store(&app->protected_api, on);
    log_fields(LOG_INFO, "protection changed", json_pack("{s:s, s:b, s:s, s:s}", "event", "protection_changed",
                                                         "protected_api", on, "via", "api", "client", req->client));
    http_json(resp, 200, json_pack("{s:b, s:s}", "protected_api", on, "message",
                                   on ? "API protection enabled" : "API protection disabled"));
done:
    json_decref(body);
}

/* Reads the optional token options of generate_token; 0 after answering an error. */
static int token_options(const json_t *body, const char **name, enum token_scope *scope, double *ttl,
                         struct http_resp *resp) {
    json_t *v;
    *name = "api token";
    *scope = SCOPE_ADMIN;
    *ttl = -1;
    if (!body || json_is_null(body)) return 1;
    if (!json_is_object(body)) {
        http_error(resp, 422, "body must be a JSON object");
        return 0;
    }
    if ((v = json_object_get(body, "name"))) {
        if (!json_is_string(v)) {
            http_error(resp, 422, "field 'name' must be a string");
            return 0;
        }
        if (json_string_length(v) == 0 || json_string_length(v) > TOKEN_NAME_MAX) {
            http_error(resp, 400, "token names are 1 to %d characters long", TOKEN_NAME_MAX);
            return 0;
        }
        *name = json_string_value(v);
    }
    if ((v = json_object_get(body, "scope"))) {
        if (!json_is_string(v)) {
            http_error(resp, 422, "field 'scope' must be a string");
            return 0;
        }
        if (!tokens_parse_scope(json_string_value(v), scope)) {
            http_error(resp, 400, "scope must be \"admin\" or \"client\"");
            return 0;
        }
    }
    if ((v = json_object_get(body, "ttl_hours"))) {
        if (!json_is_number(v)) {
            http_error(resp, 422, "field 'ttl_hours' must be a number");
            return 0;
        }
        if (!(json_number_value(v) >= 0 && json_number_value(v) <= 24.0 * 365 * 100)) {
            http_error(resp, 400, "ttl_hours must be between 0 (never expires) and 876000");
            return 0;
        }
        *ttl = json_number_value(v) * 3600.0;
    }
    if ((v = json_object_get(body, "ttl_seconds"))) {
        if (!json_is_integer(v)) {
            http_error(resp, 422, "field 'ttl_seconds' must be an integer");
            return 0;
        }
        if (json_integer_value(v) < 1 || json_integer_value(v) > 3153600000LL) {
            http_error(resp, 400, "ttl_seconds must be between 1 and 3153600000");
            return 0;
        }
        *ttl = (double)json_integer_value(v);
    }
    return 1;
}

static void log_token_event(const char *event, const json_t *tk, const char *client) {
    log_fields(LOG_INFO, event, json_pack("{s:s, s:O, s:O, s:O, s:s, s:s}", "event", event, "token_id",
                                          json_object_get(tk, "id"), "scope", json_object_get(tk, "scope"),
                                          "token_fingerprint", json_object_get(tk, "fingerprint"), "via", "api",
                                          "client", client));
}

void api_generate_token(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL, *out = NULL;
    const char *name;
    enum token_scope scope;
    double ttl;
    int rc;
    if (req->body_len > 0 && !http_parse_body(req, resp, &body)) return;
    if (!token_options(body, &name, &scope, &ttl, resp)) goto done;
    rc = tokens_create(app->tokens, name, scope, ttl, util_now(), &out);
    if (rc == SCOUT_EINVAL) {
        http_error(resp, 400, "too many tokens (at most %d); revoke some first", TOKENS_MAX);
    } else if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
    } else {
        log_token_event("token_created", out, req->client);
        json_object_set_new(out, "message", json_string("Store this token now: it is not shown again"));
        http_json(resp, 200, out);
    }
done:
    json_decref(body);
}

void api_list_tokens(struct app *app, const struct http_req *req, struct http_resp *resp) {
    (void)req;
    http_json(resp, 200, tokens_list(app->tokens, util_now()));
}

void api_revoke_token(struct app *app, const struct http_req *req, struct http_resp *resp) {
    int rc = tokens_revoke(app->tokens, req->param, util_now());
    if (rc == SCOUT_ENOTFOUND) {
        http_error(resp, 404, "no token with this id");
    } else if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
    } else {
        log_fields(LOG_INFO, "token_revoked", json_pack("{s:s, s:s, s:s, s:s}", "event", "token_revoked", "token_id",
                                                        req->param, "via", "api", "client", req->client));
        http_json(resp, 200, json_pack("{s:s, s:s}", "message", "Token revoked", "id", req->param));
    }
}

void api_rotate_token(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL, *grace, *out = NULL;
    double g = 3600;
    int rc;
    if (req->body_len > 0 && !http_parse_body(req, resp, &body)) return;
    grace = json_is_object(body) ? json_object_get(body, "grace_seconds") : NULL;
    if (body && !json_is_object(body) && !json_is_null(body)) {
        http_error(resp, 422, "body must be a JSON object");
        goto done;
    }
    if (grace) {
        if (!json_is_integer(grace)) {
            http_error(resp, 422, "field 'grace_seconds' must be an integer");
            goto done;
        }
        if (json_integer_value(grace) < 0 || json_integer_value(grace) > 30 * 86400) {
            http_error(resp, 400, "grace_seconds must be between 0 and 2592000");
            goto done;
        }
        g = (double)json_integer_value(grace);
    }
    rc = tokens_rotate(app->tokens, req->param, g, util_now(), &out);
    if (rc == SCOUT_ENOTFOUND) {
        http_error(resp, 404, "no token with this id");
    } else if (rc == SCOUT_EINVAL) {
        http_error(resp, 400, "too many tokens (at most %d); revoke some first", TOKENS_MAX);
    } else if (rc == SCOUT_ECONFLICT) {
        http_error(resp, 409, "only an active token that was not rotated yet can be rotated");
    } else if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
    } else {
        log_token_event("token_rotated", out, req->client);
        json_object_set_new(out, "old_valid_for_seconds", json_real(g));
        http_json(resp, 200, out);
    }
done:
    json_decref(body);
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
    int healthy = store_flush(app->store) == SCOUT_OK && store_ping(app->store) == SCOUT_OK &&
                  store_count_decisions(app->store, util_now(), &count) == SCOUT_OK;
    json_t *cfg = settings_redis_config(&app->settings);
    (void)req;
    http_json(resp, 200, json_pack("{s:b, s:I, s:O, s:O, s:O, s:s, s:s}", "redis_healthy", healthy,
                                   "context_keys_count", (json_int_t)count, "redis_host", json_object_get(cfg, "host"),
                                   "redis_port", json_object_get(cfg, "port"), "ttl_seconds",
                                   json_object_get(cfg, "ttl"), "store", "embedded", "store_status",
                                   healthy ? "ok" : "unreachable"));
    json_decref(cfg);
}

/* POST /admin/backup {"keep"?: N}: a backup of the whole store into <data dir>/backups, the
 * same as `scoutd backup --out-dir`. It runs on the request's thread (the store keeps serving
 * beside it); a second one while it runs gets 409. */
void api_backup(struct app *app, const struct http_req *req, struct http_resp *resp) {
    json_t *body = NULL, *v, *out;
    struct backup_summary sum;
    char dir[4200], name[64], err[768];
    int keep, pruned = 0, rc;
    if (req->body_len > 0 && !http_parse_body(req, resp, &body)) return;
    if (body && !json_is_object(body) && !json_is_null(body)) {
        http_error(resp, 422, "body must be a JSON object");
        goto done;
    }
    if (backup_keep_from_env(&keep, err, sizeof err) != SCOUT_OK) {
        http_error(resp, 500, "%s", err);
        goto done;
    }
    if ((v = json_object_get(body, "keep"))) {
        if (!json_is_integer(v)) {
            http_error(resp, 422, "field 'keep' must be an integer");
            goto done;
        }
        if (json_integer_value(v) < 1 || json_integer_value(v) > BACKUP_KEEP_MAX) {
            http_error(resp, 400, "keep must be between 1 and %d", BACKUP_KEEP_MAX);
            goto done;
        }
        keep = (int)json_integer_value(v);
    }
    if ((size_t)snprintf(dir, sizeof dir, "%s/backups", app->cfg->data_dir) >= sizeof dir) {
        http_error(resp, 500, "the data directory's path is too long");
        goto done;
    }
    rc = backup_to_dir(app->store, dir, keep, &sum, name, sizeof name, &pruned, err, sizeof err);
    if (rc == SCOUT_ECONFLICT) {
        http_error(resp, 409, "a backup is already running; try again when it is done");
        goto done;
    }
    if (rc != SCOUT_OK) {
        log_fields(LOG_ERROR, "backup failed", json_pack("{s:s, s:s, s:s}", "event", "backup_failed", "reason", err,
                                                        "client", req->client));
        if (rc == SCOUT_ESTORE) http_error(resp, 503, "the store could not be read; no backup was made, retry later");
        else http_error(resp, 500, "the backup failed and nothing was kept: %s", err);
        goto done;
    }
    log_fields(LOG_INFO, "backup created", json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "event", "backup_created",
                                                     "file", name, "size", (json_int_t)sum.size, "records",
                                                     (json_int_t)sum.records, "via", "api", "client", req->client));
    out = backup_summary_json(name, &sum, true);
    json_object_set_new(out, "directory", json_string(dir));
    json_object_set_new(out, "keep", json_integer(keep));
    json_object_set_new(out, "pruned", json_integer(pruned));
    http_json(resp, 200, out);
done:
    json_decref(body);
}
