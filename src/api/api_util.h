/* api_util.h — what several endpoint groups share: looking a test up by the path's id,
 * turning store failures into answers, time fields, and the summary of a test. */
#ifndef SCOUT_API_UTIL_H
#define SCOUT_API_UTIL_H

#include <jansson.h>

#include "app.h"
#include "experiment.h"
#include "http.h"

/* A new reference to the test named by req->param, or NULL after answering 404. */
struct experiment *api_get_test(struct app *app, const struct http_req *req, struct http_resp *resp);

/* Answers a failed store call: 404 for a vanished test, else 503. */
void api_store_error(struct http_resp *resp, int rc);

/* The warm-up length of a test, with the global default resolved. */
int api_min_updates(struct app *app, const struct experiment *e);

/* The summary /api/models lists for a test (new reference). */
json_t *api_test_summary(struct app *app, struct experiment *e);

/* Shares of decisions per variant in the recent window, keyed by label; *total gets the count. */
json_t *api_recent_shares(struct app *app, struct experiment *e, long *total);

/* The contextual model of a test for people (learning_stats.c), from a policy snapshot; json
 * null for non-contextual policies. */
json_t *api_contextual_model(const struct experiment *e, const struct policy *snap);

/* The sample-ratio-mismatch check of a test (learning_stats.c). */
json_t *api_srm(struct experiment *e);

#endif
