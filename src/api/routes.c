/* routes.c — the route table: method, path (exact, or a prefix followed by one {id}
 * segment) and handler. A linear scan over two dozen entries costs less than hashing. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#define R(m, p, fn, a) {m, p, NULL, fn, a, p}
#define RP(m, p, fn, a) {m, p, "", fn, a, p "{id}"}
#define RPS(m, p, sfx, fn, a) {m, p, sfx, fn, a, p "{id}" sfx}

static const struct api_route ROUTES[] = {
    R("POST", "/api/create_model", api_create_model, ACCESS_ADMIN),
    RP("POST", "/api/delete_model/", api_delete_model, ACCESS_ADMIN),
    R("GET", "/api/models", api_models, ACCESS_ADMIN),
    RP("GET", "/api/model_details/", api_model_details, ACCESS_ADMIN),
    R("POST", "/api/fetch_recommended_variant", api_fetch, ACCESS_CLIENT),
    RP("POST", "/api/update_model/", api_update, ACCESS_CLIENT),
    RP("POST", "/api/rollout_global_variant/", api_rollout, ACCESS_ADMIN),
    RP("POST", "/api/clear_global_variant/", api_clear_rollout, ACCESS_ADMIN),
    RP("GET", "/api/export/", api_export, ACCESS_ADMIN),       /* logs hold contexts: admin only */
    RP("POST", "/api/evaluate/", api_evaluate, ACCESS_ADMIN),
    R("GET", "/admin/get_protection", api_get_protection, ACCESS_ADMIN),
    R("POST", "/admin/set_protection", api_set_protection, ACCESS_ADMIN),
    R("POST", "/admin/generate_token", api_generate_token, ACCESS_ADMIN),
    R("GET", "/admin/tokens", api_list_tokens, ACCESS_ADMIN),
    RPS("POST", "/admin/tokens/", "/revoke", api_revoke_token, ACCESS_ADMIN),
    RPS("POST", "/admin/tokens/", "/rotate", api_rotate_token, ACCESS_ADMIN),
    R("GET", "/admin/model_config", api_model_config, ACCESS_ADMIN),
    R("POST", "/admin/model_config", api_model_config, ACCESS_ADMIN),
    R("GET", "/admin/system_config", api_system_config, ACCESS_ADMIN),
    R("POST", "/admin/system_config", api_system_config, ACCESS_ADMIN),
    R("GET", "/admin/redis_config", api_redis_config, ACCESS_ADMIN),
    R("POST", "/admin/redis_config", api_redis_config, ACCESS_ADMIN),
    R("GET", "/admin/redis_health", api_redis_health, ACCESS_ADMIN),
    R("POST", "/admin/backup", api_backup, ACCESS_ADMIN),
    RPS("GET", "/admin/tests/", "/export", api_export_test, ACCESS_ADMIN),   /* events hold contexts */
    R("POST", "/admin/tests/import", api_import_test, ACCESS_ADMIN),
    R("GET", "/metrics", api_metrics, ACCESS_METRICS),
    R("GET", "/logs/stream", api_logs_stream, ACCESS_ADMIN),
    R("GET", "/docs", api_docs, ACCESS_OPEN),
    R("GET", "/openapi.json", api_openapi, ACCESS_OPEN),
    R("GET", "/healthz", api_healthz, ACCESS_OPEN),
    R("GET", "/readyz", api_readyz, ACCESS_OPEN),
};

#define NROUTES (sizeof ROUTES / sizeof *ROUTES)

/* Whether path matches route r; copies the {id} segment into param. */
static int path_matches(const struct api_route *r, const char *path, char *param, size_t plen) {
    size_t n = strlen(r->prefix), len = strlen(path), sl, xl;
    /* Tolerate one trailing slash, as FastAPI's redirect effectively does. */
    if (len > 1 && path[len - 1] == '/') len--;
    if (!r->suffix) return len == n && !strncmp(path, r->prefix, n);
    xl = strlen(r->suffix);
    if (len <= n + xl || strncmp(path, r->prefix, n) != 0 || strncmp(path + len - xl, r->suffix, xl) != 0) return 0;
    const char *seg = path + n;
    sl = len - n - xl;
    if (memchr(seg, '/', sl) || sl >= plen) return 0;
    memcpy(param, seg, sl);
    param[sl] = '\0';
    return 1;
}

const struct api_route *api_route(const char *method, const char *path, char *param, size_t plen, int *status) {
    int path_known = 0;
    if (!strcmp(method, "HEAD")) method = "GET";
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_matches(&ROUTES[i], path, param, plen)) continue;
        if (!strcmp(ROUTES[i].method, method)) return &ROUTES[i];
        path_known = 1;
    }
    *status = path_known ? 405 : 404;
    return NULL;
}

const char *api_route_template(const char *path) {
    char param[256];
    for (size_t i = 0; i < NROUTES; i++)
        if (path_matches(&ROUTES[i], path, param, sizeof param)) return ROUTES[i].template;
    return "unmatched";
}
