/* routes.c — the route table: method, path (exact, or a prefix followed by one {id}
 * segment) and handler. A linear scan over two dozen entries costs less than hashing. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

struct route {
    const char *method;
    const char *path;         /* for {id} routes, the prefix up to and including the '/' */
    int has_param;
    api_handler fn;
    const char *template;
};

#define R(m, p, fn) {m, p, 0, fn, p}
#define RP(m, p, fn) {m, p, 1, fn, p "{id}"}

static const struct route ROUTES[] = {
    R("POST", "/api/create_model", api_create_model),
    RP("POST", "/api/delete_model/", api_delete_model),
    R("GET", "/api/models", api_models),
    RP("GET", "/api/model_details/", api_model_details),
    R("POST", "/api/fetch_recommended_variant", api_fetch),
    RP("POST", "/api/update_model/", api_update),
    RP("POST", "/api/rollout_global_variant/", api_rollout),
    RP("POST", "/api/clear_global_variant/", api_clear_rollout),
    R("GET", "/admin/get_protection", api_get_protection),
    R("GET", "/admin/model_config", api_model_config),
    R("POST", "/admin/model_config", api_model_config),
    R("GET", "/admin/system_config", api_system_config),
    R("POST", "/admin/system_config", api_system_config),
    R("GET", "/admin/redis_config", api_redis_config),
    R("POST", "/admin/redis_config", api_redis_config),
    R("GET", "/admin/redis_health", api_redis_health),
    R("GET", "/docs", api_docs),
    R("GET", "/healthz", api_healthz),
    R("GET", "/readyz", api_readyz),
};

#define NROUTES (sizeof ROUTES / sizeof *ROUTES)

/* Whether path matches route r; copies the {id} segment into param. */
static int path_matches(const struct route *r, const char *path, char *param, size_t plen) {
    size_t n = strlen(r->path), len = strlen(path);
    /* Tolerate one trailing slash, as FastAPI's redirect effectively does. */
    if (len > 1 && path[len - 1] == '/') len--;
    if (!r->has_param) return len == n && !strncmp(path, r->path, n);
    if (len <= n || strncmp(path, r->path, n) != 0) return 0;
    const char *seg = path + n;
    size_t sl = len - n;
    if (memchr(seg, '/', sl) || sl >= plen) return 0;
    memcpy(param, seg, sl);
    param[sl] = '\0';
    return 1;
}

api_handler api_route(const char *method, const char *path, char *param, size_t plen, int *status) {
    int path_known = 0;
    if (!strcmp(method, "HEAD")) method = "GET";
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_matches(&ROUTES[i], path, param, plen)) continue;
        if (!strcmp(ROUTES[i].method, method)) return ROUTES[i].fn;
        path_known = 1;
    }
    *status = path_known ? 405 : 404;
    return NULL;
}

const char *api_route_template(const char *method, const char *path) {
    char param[256];
    (void)method;
    for (size_t i = 0; i < NROUTES; i++)
        if (path_matches(&ROUTES[i], path, param, sizeof param)) return ROUTES[i].template;
    return "unmatched";
}
