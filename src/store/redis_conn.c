/* redis_conn.c — connecting, authenticating and reconnecting (see redis_conn.h). Errors are
 * classified from Redis's own replies: WRONGPASS / "invalid password" (wrong credentials),
 * NOAUTH (a password is required), "without any password configured" (one was given, none is
 * set); everything else is reported as Redis said it, which never echoes a password. */
#include "store/redis_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "util/common.h"
#include "util/util.h"

#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0

static struct timeval to_timeval(double seconds) {
    struct timeval tv;
    if (seconds <= 0) seconds = 2.0;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

/* Turns an error reply to AUTH or PING into a sentence and a return code. */
static int auth_error(const struct redis_config *cfg, const char *msg, char *err, size_t errlen) {
    if (!strncmp(msg, "WRONGPASS", 9) || strstr(msg, "invalid password") || strstr(msg, "invalid username")) {
        snprintf(err, errlen, "Redis at %s:%d refused the credentials: wrong password%s", cfg->host, cfg->port,
                 cfg->user ? " or user" : "");
        return SCOUT_EINVAL;
    }
    if (!strncmp(msg, "NOAUTH", 6)) {
        snprintf(err, errlen, "Redis at %s:%d requires a password: set REDIS_PASSWORD or REDIS_PASSWORD_FILE",
                 cfg->host, cfg->port);
        return SCOUT_EINVAL;
    }
    if (strstr(msg, "without any password configured") || strstr(msg, "no password is set")) {
        snprintf(err, errlen, "Redis at %s:%d has no password set, but one was given: protect Redis with "
                              "requirepass (or unset REDIS_PASSWORD)", cfg->host, cfg->port);
        return SCOUT_EINVAL;
    }
    snprintf(err, errlen, "Redis at %s:%d answered: %.120s", cfg->host, cfg->port, msg);
    return SCOUT_ESTORE;
}

/* Runs one setup command; SCOUT_OK or the classified error. */
static int setup_command(redisContext *c, const struct redis_config *cfg, char *err, size_t errlen, int argc,
                         const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    int rc = SCOUT_OK;
    if (!r) {
        snprintf(err, errlen, "Redis at %s:%d: %s", cfg->host, cfg->port, c->errstr[0] ? c->errstr : "connection lost");
        return SCOUT_ESTORE;
    }
    if (r->type == REDIS_REPLY_ERROR) rc = auth_error(cfg, r->str, err, errlen);
    freeReplyObject(r);
    return rc;
}

int redis_open(const struct redis_config *cfg, redisContext **out, char *err, size_t errlen) {
    redisContext *c;
    char db[16];
    int rc;
    *out = NULL;
    c = redisConnectWithTimeout(cfg->host, cfg->port, to_timeval(cfg->timeout));
    if (!c || c->err) {
        snprintf(err, errlen, "cannot reach Redis at %s:%d: %s", cfg->host, cfg->port,
                 c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return SCOUT_ESTORE;
    }
    redisSetTimeout(c, to_timeval(cfg->timeout));
    if (cfg->password) {
        const char *auth_user[] = {"AUTH", cfg->user, cfg->password}, *auth[] = {"AUTH", cfg->password};
        rc = cfg->user ? setup_command(c, cfg, err, errlen, 3, auth_user) : setup_command(c, cfg, err, errlen, 2, auth);
        if (rc != SCOUT_OK) goto fail;
    }
    if (cfg->db > 0) {
        const char *sel[] = {"SELECT", db};
        snprintf(db, sizeof db, "%d", cfg->db);
        if ((rc = setup_command(c, cfg, err, errlen, 2, sel)) != SCOUT_OK) goto fail;
    }
    {
        const char *ping[] = {"PING"};
        if ((rc = setup_command(c, cfg, err, errlen, 1, ping)) != SCOUT_OK) goto fail;   /* NOAUTH shows here */
    }
    *out = c;
    return SCOUT_OK;
fail:
    redisFree(c);
    return rc;
}

void redis_link_init(struct redis_link *l, const struct redis_config *cfg) {
    memset(l, 0, sizeof *l);
    l->cfg = cfg;
    l->backoff = BACKOFF_MIN;
}

void redis_link_close(struct redis_link *l) {
    if (l->c) redisFree(l->c);
    l->c = NULL;
}

void redis_link_fail(struct redis_link *l, const char *why) {
    snprintf(l->last_error, sizeof l->last_error, "%s", why ? why : "connection lost");
    redis_link_close(l);
    l->next_attempt = util_monotonic() + l->backoff;
}

redisContext *redis_link_get(struct redis_link *l) {
    double now;
    if (l->c) return l->c;
    now = util_monotonic();
    if (now < l->next_attempt) return NULL;
    if (redis_open(l->cfg, &l->c, l->last_error, sizeof l->last_error) != SCOUT_OK) {
        l->next_attempt = now + l->backoff;
        l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
        return NULL;
    }
    l->backoff = BACKOFF_MIN;
    l->connects++;
    l->last_error[0] = '\0';
    return l->c;
}

redisReply *redis_link_vcommand(struct redis_link *l, const char *fmt, va_list ap) {
    redisContext *c = redis_link_get(l);
    redisReply *r;
    if (!c) return NULL;
    r = redisvCommand(c, fmt, ap);
    if (!r) redis_link_fail(l, c->errstr[0] ? c->errstr : "connection lost");
    return r;
}

redisReply *redis_link_command(struct redis_link *l, const char *fmt, ...) {
    redisReply *r;
    va_list ap;
    va_start(ap, fmt);
    r = redis_link_vcommand(l, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- the pool ------------------------------------------------------------------------- */

int redis_pool_init(struct redis_pool *p, const struct redis_config *cfg, int n, redisContext *first) {
    memset(p, 0, sizeof *p);
    p->links = calloc((size_t)n, sizeof *p->links);
    p->free = calloc((size_t)n, sizeof *p->free);
    p->connected = calloc((size_t)n, sizeof *p->connected);
    if (!p->links || !p->free || !p->connected) {
        free(p->links);
        free(p->free);
        free(p->connected);
        memset(p, 0, sizeof *p);
        return SCOUT_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->n = p->nfree = n;
    for (int i = 0; i < n; i++) {
        redis_link_init(&p->links[i], cfg);
        p->free[i] = n - 1 - i;   /* link 0 (the one already connected) is taken first */
    }
    if (first) {
        p->links[0].c = first;
        p->links[0].connects = 1;
        p->connected[0] = 1;
    }
    return SCOUT_OK;
}

void redis_pool_destroy(struct redis_pool *p) {
    if (!p->links) return;
    for (int i = 0; i < p->n; i++) redis_link_close(&p->links[i]);
    free(p->links);
    free(p->free);
    free(p->connected);
    p->links = NULL;
    p->free = NULL;
    p->connected = NULL;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
}

struct redis_link *redis_pool_take(struct redis_pool *p) {
    struct redis_link *l;
    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0) pthread_cond_wait(&p->freed, &p->lock);
    l = &p->links[p->free[--p->nfree]];
    pthread_mutex_unlock(&p->lock);
    return l;
}

void redis_pool_give(struct redis_pool *p, struct redis_link *l) {
    pthread_mutex_lock(&p->lock);
    int i = (int)(l - p->links);
    p->connected[i] = l->c != NULL;
    p->free[p->nfree++] = i;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void redis_pool_reconnect(struct redis_pool *p) {
    struct redis_link *idle[p->n];
    int k = 0, i;
    pthread_mutex_lock(&p->lock);
    while (p->nfree > 0) idle[k++] = &p->links[p->free[--p->nfree]];
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < k; i++)
        if (!idle[i]->c && !redis_link_get(idle[i])) break;   /* Redis still away: the rest would fail alike */
    for (i = 0; i < k; i++) redis_pool_give(p, idle[i]);
}

int redis_pool_up(struct redis_pool *p) {
    int up = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n; i++) up += p->connected[i];
    pthread_mutex_unlock(&p->lock);
    return up;
}
