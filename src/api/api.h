/* api.h — the HTTP endpoints: one file per endpoint group, one route table.
 * tests_api.c: create/delete/list/details/rollout; decide_api.c: fetch and update;
 * admin_api.c: /admin/...; docs_api.c: /docs, /openapi.json and health. */
#ifndef SCOUT_API_H
#define SCOUT_API_H

#include <stddef.h>

#include "app.h"
#include "http.h"

typedef void (*api_handler)(struct app *app, const struct http_req *req, struct http_resp *resp);

/* The handler for method and path, with the {id} segment copied into param. NULL when none:
 * *status is then 404 (no such path) or 405 (path exists, method does not). */
api_handler api_route(const char *method, const char *path, char *param, size_t plen, int *status);

/* The route template of a path ("/api/update_model/{id}"), for logs and metrics. */
const char *api_route_template(const char *method, const char *path);

void api_create_model(struct app *, const struct http_req *, struct http_resp *);
void api_delete_model(struct app *, const struct http_req *, struct http_resp *);
void api_models(struct app *, const struct http_req *, struct http_resp *);
void api_model_details(struct app *, const struct http_req *, struct http_resp *);
void api_rollout(struct app *, const struct http_req *, struct http_resp *);
void api_clear_rollout(struct app *, const struct http_req *, struct http_resp *);
void api_fetch(struct app *, const struct http_req *, struct http_resp *);
void api_update(struct app *, const struct http_req *, struct http_resp *);
void api_get_protection(struct app *, const struct http_req *, struct http_resp *);
void api_model_config(struct app *, const struct http_req *, struct http_resp *);
void api_system_config(struct app *, const struct http_req *, struct http_resp *);
void api_redis_config(struct app *, const struct http_req *, struct http_resp *);
void api_redis_health(struct app *, const struct http_req *, struct http_resp *);
void api_docs(struct app *, const struct http_req *, struct http_resp *);
void api_healthz(struct app *, const struct http_req *, struct http_resp *);
void api_readyz(struct app *, const struct http_req *, struct http_resp *);

#endif
