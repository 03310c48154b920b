/* redis_conn.h — one authenticated connection to Redis, and the way back after a failure.
 * redis_open connects, authenticates (AUTH password, or AUTH user password for an ACL user),
 * selects the database and PINGs, and says in one sentence what went wrong — never with the
 * password in it. A redis_link owns one connection for one thread: a command on a broken link
 * reconnects at most once per backoff period (doubling from 100 ms to 5 s), so a Redis outage
 * costs callers an immediate error rather than a stall. Not thread-safe: one link per thread. */
#ifndef SCOUT_REDIS_CONN_H
#define SCOUT_REDIS_CONN_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <hiredis.h>

struct redis_config {
    const char *host;
    int port;
    const char *user;          /* ACL user, or NULL for the default user */
    const char *password;      /* NULL: no AUTH */
    int db;
    double timeout;            /* seconds, for connecting and for each command */
};

/* Connects and authenticates. SCOUT_OK with *out set; SCOUT_EINVAL when Redis refused the
 * credentials (wrong password or user, or a password is required and none was given);
 * SCOUT_ESTORE when Redis cannot be reached or answered an error. err gets a sentence. */
int redis_open(const struct redis_config *cfg, redisContext **out, char *err, size_t errlen);

struct redis_link {
    const struct redis_config *cfg;   /* borrowed: outlives the link */
    redisContext *c;                  /* NULL while down */
    double backoff;                   /* seconds before the next attempt */
    double next_attempt;              /* monotonic time */
    unsigned long connects;           /* successful connections, the first included */
    char last_error[160];
};

void redis_link_init(struct redis_link *l, const struct redis_config *cfg);
void redis_link_close(struct redis_link *l);

/* The connection, reconnecting if it is down and the backoff allows; NULL when down. */
redisContext *redis_link_get(struct redis_link *l);

/* Runs a command (redisCommand's format). NULL when the link is down or the connection broke
 * during the command (the link then counts as down); else the reply, error replies included
 * (the caller frees it with freeReplyObject). */
redisReply *redis_link_command(struct redis_link *l, const char *fmt, ...);

/* The same with a va_list. */
redisReply *redis_link_vcommand(struct redis_link *l, const char *fmt, va_list ap);

/* Marks the link broken (after an I/O error seen through redis_link_get's context). */
void redis_link_fail(struct redis_link *l, const char *why);

/* A fixed set of links shared by request threads: a thread takes a free link for one
 * operation and gives it back, so several requests talk to Redis at once (no process-wide
 * lock) while the number of connections stays bounded. Links connect when first used and
 * reconnect as any link does; redis_pool_reconnect brings idle ones back after an outage. */
struct redis_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int n, nfree;
    struct redis_link *links;   /* n links, owned */
    int *free;                  /* indexes of the free links: free[0..nfree) */
    int *connected;             /* per link: connected when last given back */
};

/* SCOUT_OK or SCOUT_ENOMEM. The first link takes `first` (an open connection, or NULL). */
int redis_pool_init(struct redis_pool *p, const struct redis_config *cfg, int n, redisContext *first);
void redis_pool_destroy(struct redis_pool *p);

/* Waits for a free link and hands it to the caller, who gives it back with redis_pool_give. */
struct redis_link *redis_pool_take(struct redis_pool *p);
void redis_pool_give(struct redis_pool *p, struct redis_link *l);

/* Tries to reconnect the idle links that are down (each within its backoff). */
void redis_pool_reconnect(struct redis_pool *p);

/* Links that were connected when last given back (a taken link is its owner's alone). */
int redis_pool_up(struct redis_pool *p);

#endif
