/* api.h — the HTTP endpoints: one file per endpoint group, one route table.
 * tests_api.c: create/delete/list/details/rollout; decide_api.c: fetch and update;
 * eval_api.c: export of logged decisions and off-policy evaluation;
 * admin_api.c: /admin/...; transfer_api.c: one test's export and import;
 * docs_api.c: /docs, /openapi.json and health. */
#ifndef SCOUT_API_H
#define SCOUT_API_H

#include <stddef.h>

#include "app.h"
#include "auth/auth.h"
#include "http.h"

typedef void (*api_handler)(struct app *app, const struct http_req *req, struct http_resp *resp);

struct api_route {
    const char *method;
    const char *prefix;       /* the path, or for {id} routes the part before the id */
    const char *suffix;       /* after the id ("" or "/revoke"); NULL for routes without an id */
    api_handler fn;
    enum access access;       /* who may call it while protection is on */
    const char *template;     /* "/api/update_model/{id}": the label of logs and metrics */
};

/* The route for method and path, with the {id} segment copied into param. NULL when none:
 * *status is then 404 (no such path) or 405 (path exists, method does not). */
const struct api_route *api_route(const char *method, const char *path, char *param, size_t plen, int *status);

/* The route template of a path, or "unmatched", for logs and metrics. */
const char *api_route_template(const char *path);

void api_create_model(struct app *, const struct http_req *, struct http_resp *);
void api_delete_model(struct app *, const struct http_req *, struct http_resp *);
void api_models(struct app *, const struct http_req *, struct http_resp *);
void api_model_details(struct app *, const struct http_req *, struct http_resp *);
void api_rollout(struct app *, const struct http_req *, struct http_resp *);
void api_clear_rollout(struct app *, const struct http_req *, struct http_resp *);
void api_export(struct app *, const struct http_req *, struct http_resp *);
void api_evaluate(struct app *, const struct http_req *, struct http_resp *);
void api_fetch(struct app *, const struct http_req *, struct http_resp *);
void api_update(struct app *, const struct http_req *, struct http_resp *);
void api_get_protection(struct app *, const struct http_req *, struct http_resp *);
void api_model_config(struct app *, const struct http_req *, struct http_resp *);
void api_system_config(struct app *, const struct http_req *, struct http_resp *);
void api_redis_config(struct app *, const struct http_req *, struct http_resp *);
void api_redis_health(struct app *, const struct http_req *, struct http_resp *);
void api_backup(struct app *, const struct http_req *, struct http_resp *);
void api_export_test(struct app *, const struct http_req *, struct http_resp *);
void api_import_test(struct app *, const struct http_req *, struct http_resp *);
void api_set_protection(struct app *, const struct http_req *, struct http_resp *);
void api_generate_token(struct app *, const struct http_req *, struct http_resp *);
void api_list_tokens(struct app *, const struct http_req *, struct http_resp *);
void api_revoke_token(struct app *, const struct http_req *, struct http_resp *);
void api_rotate_token(struct app *, const struct http_req *, struct http_resp *);
void api_metrics(struct app *, const struct http_req *, struct http_resp *);
void api_docs(struct app *, const struct http_req *, struct http_resp *);
void api_openapi(struct app *, const struct http_req *, struct http_resp *);
void api_logs_stream(struct app *, const struct http_req *, struct http_resp *);
void api_healthz(struct app *, const struct http_req *, struct http_resp *);
void api_readyz(struct app *, const struct http_req *, struct http_resp *);

#endif
