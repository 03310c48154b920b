/* auth.c — enforcement of API protection for one request.
 * Every refusal that is not about scope answers the same 401 sentence, so a client learns
 * nothing about which tokens exist; the reason goes only to the metric and the security log,
 * together with the presented token's fingerprint (never the token). */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "app.h"
#include "auth/ratelimit.h"
#include "auth/tokens.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/util.h"

#define DETAIL_401 "Not authenticated: a valid bearer token is required"

static void security_event(const struct http_req *req, const char *route, enum auth_reason reason,
                           const char *fingerprint) {
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "auth_failure", "reason",
                          metrics_auth_reason_name(reason), "method", req->method, "route", route, "client",
                          req->client);
    if (fingerprint) json_object_set_new(f, "token_fingerprint", json_string(fingerprint));
    log_fields(LOG_WARN, "request refused", f);
}

static int refuse(struct app *app, const struct http_req *req, const char *route, enum auth_reason reason,
                  const char *secret, struct http_resp *resp) {
    char fp[9];
    double now = util_now();
    metrics_auth_failure(app->metrics, reason);
    if (secret) tokens_fingerprint(secret, fp);
    security_event(req, route, reason, secret ? fp : NULL);
    if (reason == AUTH_SCOPE) {
        http_error(resp, 403, "this token's scope does not allow %s %s", req->method, route);
        return 0;
    }
    ratelimit_fail(app->ratelimit, req->client, now);
    http_error(resp, 401, DETAIL_401);
    http_header_add(resp, "WWW-Authenticate", "Bearer realm=\"scout\"");
    return 0;
}

/* Extracts the token of "Authorization: Bearer <token>"; NULL when malformed. */
static const char *bearer(const char *header, char *buf, size_t len) {
    size_t n;
    if (strncasecmp(header, "Bearer ", 7) != 0) return NULL;
    header += 7;
    while (*header == ' ') header++;
    n = strlen(header);
    while (n > 0 && header[n - 1] == ' ') n--;
    if (n == 0 || n >= len || memchr(header, ' ', n)) return NULL;
    memcpy(buf, header, n);
    buf[n] = '\0';
    return buf;
}

int auth_check(struct app *app, const struct http_req *req, enum access level, const char *route,
               struct http_resp *resp) {
    char buf[TOKEN_MAX_PRESENTED + 1], id[TOKEN_ID_LEN + 1];
    const char *header, *secret;
    enum token_scope scope;
    enum token_check c;
    double now;
    int wait, rc;
    if (level == ACCESS_OPEN) return 1;
    if (level == ACCESS_METRICS && !app->cfg->metrics_require_token) return 1;
    if (level != ACCESS_METRICS && !atomic_load(&app->protected_api)) return 1;

    now = util_now();
    header = http_header(req, "Authorization");
    secret = header ? bearer(header, buf, sizeof buf) : NULL;
    c = secret ? tokens_verify(app->tokens, secret, now, &scope, id) : TOKEN_UNKNOWN;
    if (c == TOKEN_OK) {
        if (level == ACCESS_ADMIN && scope != SCOPE_ADMIN) return refuse(app, req, route, AUTH_SCOPE, secret, resp);
        return 1;   /* a valid token is never rate limited */
    }
    if ((wait = ratelimit_blocked(app->ratelimit, req->client, now)) > 0) {
        metrics_auth_failure(app->metrics, AUTH_RATE_LIMITED);
        security_event(req, route, AUTH_RATE_LIMITED, NULL);
        http_error(resp, 429, "too many failed authentications from this address; retry in %d s", wait);
        http_header_add(resp, "Retry-After", "%d", wait);
        return 0;
    }
    if (!header) rc = refuse(app, req, route, AUTH_MISSING, NULL, resp);
    else if (!secret) rc = refuse(app, req, route, AUTH_MALFORMED, NULL, resp);
    else rc = refuse(app, req, route,
                     c == TOKEN_EXPIRED ? AUTH_EXPIRED : c == TOKEN_REVOKED ? AUTH_REVOKED : AUTH_INVALID, secret,
                     resp);
    sodium_memzero(buf, sizeof buf);
    return rc;
}
