/* auth.h — the gate in front of every handler: who may call what while protection is on.
 * Each route declares an access level; this module reads the bearer token, checks it and its
 * scope, slows down addresses that keep failing (but never a request with a valid token),
 * counts every refusal and logs it as a security event without the token. */
#ifndef SCOUT_AUTH_H
#define SCOUT_AUTH_H

#include "http.h"

struct app;

enum access {
    ACCESS_OPEN = 0,     /* docs, health, UI files */
    ACCESS_METRICS,      /* open unless SCOUT_METRICS_REQUIRE_TOKEN; then any valid token */
    ACCESS_CLIENT,       /* fetch and update: client or admin tokens */
    ACCESS_ADMIN,        /* everything else under /api and /admin */
};

/* 1 when the request may proceed; else 0 with resp filled (401, 403 or 429). */
int auth_check(struct app *app, const struct http_req *req, enum access level, const char *route,
               struct http_resp *resp);

#endif
