/* store_redis.c — the shared store: tests, reward events, decision records, settings and
 * tokens in Redis, so several scoutd replicas serve and learn together.
 *
 * Keys (every per-test key carries the hash tag {<test>} so Redis Cluster keeps a test on one
 * node):
 *   scout:tests                  HASH  test id → definition (JSON)
 *   scout:{T}:meta               HASH  created, rollout, predictions, last_prediction, stats
 *   scout:{T}:events             STREAM reward events: v (variant), r (reward), c (context), q (request id), t
 *   scout:{T}:armpred            HASH  variant → decisions
 *   scout:{T}:d:<request id>     HASH  a decision record (v, p, x, c, t, s, a, dr, n, sum, st, mv), expiring
 *   scout:{T}:dt                 ZSET  request ids by creation time (analytics, export)
 *   scout:{T}:dx                 ZSET  request ids by expiry (live count, trimming dt)
 *   scout:{T}:settle             ZSET  request ids by the end of their reward window
 *   scout:{T}:sticky             HASH  user → "variant propensity"
 *   scout:settings               HASH  key → JSON
 *   scout:tokens                 HASH  token id → JSON (hash of the secret, never the secret)
 *   scout:tokens:version         counter bumped by every token change
 *   scout:catalog                STREAM changes replicas follow: test put/delete, rollout, setting
 *
 * Rewards: one Lua script per update request joins each reward to its decision, applies the
 * test's aggregation rules and XADDs the events, atomically; the request is acknowledged once
 * Redis answered. Events are learned by the reader thread, which follows every test's stream
 * (XREAD BLOCK) and hands each event to the event handler in stream order — on every replica
 * alike, so all converge to the same state. An update waits (briefly) until its own events
 * were read back, so a client reads its writes on the replica it talks to.
 * Sticky assignments are claimed synchronously (the first replica to assign a user wins).
 * Decision records, counters and token touches are queued and written by
 * the writer thread in pipelined batches: a decision never waits for Redis. The writer also
 * settles decisions whose reward window ended (one replica at a time, under a lock key) and
 * trims expired decisions from the indexes.
 * While Redis is unreachable, synchronous calls fail at once with SCOUT_ESTORE (503 for the
 * client) and the links reconnect with backoff; queued writes wait (up to a bound) and are
 * written when Redis is back. */
#include "store/store_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "obs/log.h"
#include "obs/metrics.h"
#include "store/redis_conn.h"
#include "util/util.h"

#define MAX_QUEUE 65536           /* queued async writes; past it the oldest kind is dropped (logged) */
#define BATCH_MAX 512             /* async writes per pipeline */
#define READ_BLOCK_MS 100         /* XREAD BLOCK: how long the reader waits for new events */
#define READ_COUNT 1000           /* events per stream per XREAD */
#define READBACK_WAIT 1.0         /* seconds an update waits to see its own events applied */
#define SETTLE_INTERVAL 0.25
#define SETTLE_SLICE 1000
#define TRIM_INTERVAL 1.0
#define LOCK_TTL_MS 5000

/* ---- the Lua scripts ----------------------------------------------------------------- */

/* KEYS: events stream, meta. ARGV: now, prefix of decision keys, then per event 5 values:
 * request id ('' = none), variant (-1 = from the decision), reward, context ('' = none),
 * skip stored context (0/1). Returns per event {found, variant, outcome, context joined,
 * event id ('' when no event was added)}. */
static const char APPEND_LUA[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOTFOUND') end\n"
    "local now = tonumber(ARGV[1]); local out = {}\n"
    "for i = 3, #ARGV, 5 do\n"
    "  local rid, v, r, c, skip = ARGV[i], tonumber(ARGV[i+1]), ARGV[i+2], ARGV[i+3], ARGV[i+4]\n"
    "  local found, outcome, joined = 0, 0, ''\n"
    "  if rid ~= '' then\n"
    "    local dk = ARGV[2] .. rid\n"
    "    local d = redis.call('HMGET', dk, 'v', 'c', 'a', 'n', 'st', 's')\n"
    "    if d[1] then\n"
    "      found = 1\n"
    "      if v < 0 then v = tonumber(d[1]) end\n"
    "      if c == '' and skip == '0' and d[2] then c = d[2]; joined = d[2] end\n"
    "      local settle_at = tonumber(d[6] or '0')\n"
    "      if d[5] == '1' or (settle_at > 0 and now >= settle_at) then outcome = 3\n"
    "      elseif d[3] == '1' and tonumber(d[4] or '0') > 0 then outcome = 2\n"
    "      elseif d[3] == '2' then outcome = 1 end\n"
    "      if outcome <= 1 then redis.call('HINCRBY', dk, 'n', 1); redis.call('HINCRBYFLOAT', dk, 'sum', r) end\n"
    "    end\n"
    "  end\n"
    "  local id = ''\n"
    "  if outcome == 0 and v >= 0 then\n"
    "    id = redis.call('XADD', KEYS[1], '*', 'v', v, 'r', r, 'c', c, 'q', rid, 't', ARGV[1])\n"
    "  end\n"
    "  out[#out + 1] = {found, v, outcome, joined, id}\n"
    "end\n"
    "return out\n";

/* KEYS: events stream, settle zset. ARGV: now, decision key prefix, request ids...
 * Settles each decision once: its sum (aggregation sum) or its default reward becomes an
 * event. Returns the number of events made. */
static const char SETTLE_LUA[] =
    "local made = 0\n"
    "for i = 3, #ARGV do\n"
    "  local rid = ARGV[i]; local dk = ARGV[2] .. rid\n"
    "  local d = redis.call('HMGET', dk, 'st', 'a', 'n', 'sum', 'dr', 'v', 'c')\n"
    "  if d[6] and d[1] ~= '1' then\n"
    "    redis.call('HSET', dk, 'st', '1')\n"
    "    local r = nil\n"
    "    if d[2] == '2' and tonumber(d[3] or '0') > 0 then r = d[4]\n"
    "    elseif tonumber(d[3] or '0') == 0 and d[5] and d[5] ~= '' then r = d[5] end\n"
    "    if r then\n"
    "      redis.call('XADD', KEYS[1], '*', 'v', d[6], 'r', r, 'c', d[7] or '', 'q', rid, 't', ARGV[1])\n"
    "      made = made + 1\n"
    "    end\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[2], rid)\n"
    "end\n"
    "return made\n";

/* KEYS: a lock; ARGV: the holder's token. Deletes the lock only if this holder has it. */
static const char UNLOCK_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* ---- state ------------------------------------------------------------------------- */

/* A stream position "ms-seq", comparable. */
struct stream_pos {
    uint64_t ms, seq;
};

/* A test the reader follows. */
struct followed {
    char id[SCOUT_ID_LEN + 1];
    char last[48];               /* last event id read ("0-0" at first) */
    struct stream_pos pos;
};

/* A caller waiting for the writer to reach its flush marker; heap-allocated because a caller
 * that gives up (timeout) leaves it to the writer to free. */
struct flush_wait {
    int state;                   /* 0 pending, 1 written, -1 given up */
    int abandoned;
};

#define FLUSH_WAIT 3.0            /* seconds a flush waits for the writer */

enum aop_kind { AOP_DECISION, AOP_STATS, AOP_TOUCH, AOP_FLUSH };

/* Operations as /metrics counts them: the same names as the embedded store's. */
enum rop { ROP_DECISION, ROP_REWARDS, ROP_PUT_TEST, ROP_DELETE_TEST, ROP_ROLLOUT, ROP_SETTING, ROP_FLUSH, ROP_TOKEN,
           ROP_TOKEN_DELETE, ROP_ASSIGN, ROP_TEST_STATS, ROP_TOKEN_TOUCH, ROP_COUNT };
static const char *const ROP_NAMES[ROP_COUNT] = {
    "decision", "rewards", "put_test", "delete_test", "rollout", "setting", "flush", "token", "token_delete",
    "assignment", "test_stats", "token_touch",
};
static const enum rop AOP_ROP[] = {[AOP_DECISION] = ROP_DECISION,
                                   [AOP_STATS] = ROP_TEST_STATS, [AOP_TOUCH] = ROP_TOKEN_TOUCH,
                                   [AOP_FLUSH] = ROP_FLUSH};

/* A queued asynchronous write (or a flush marker a caller waits on). */
struct aop {
    enum aop_kind kind;
    struct aop *next;
    union {
        struct store_decision *decision;
        struct {
            char test_id[SCOUT_ID_LEN + 1];
            char *json;
        } stats;
        struct {
            char id[17];
            double when;
        } touch;
        struct flush_wait *wait; /* AOP_FLUSH: who waits for the writes queued before it */
    } u;
};

struct rs {
    struct store base;           /* first: a struct store * is a struct rs * */
    struct redis_config cfg;     /* strings owned below */
    char *host, *user, *password;

    pthread_mutex_t sync_lock;   /* one synchronous link shared by request threads */
    struct redis_link sync;
    char append_sha[41], settle_sha[41];

    /* Followed tests: the reader's list, guarded by follow_lock; readers of positions wait on
     * applied (an update waiting for its own events). */
    pthread_mutex_t follow_lock;
    pthread_cond_t applied;
    struct followed *follow;
    size_t nfollow, capfollow;
    uint64_t follow_version;     /* bumped when the list changes */

    /* The async queue. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond, qdone;
    struct aop *qhead, *qtail;
    long qlen;

    store_event_fn on_event;
    void *event_arg;
    store_change_fn on_change;
    void *change_arg;
    char catalog_last[48];       /* the reader's position in scout:catalog (reader thread only) */
    char replica[33];            /* this process's random token (lock values) */

    pthread_t writer, reader;
    int started;
    _Atomic int stopping;
    _Atomic int reader_up, writer_up;   /* whether those threads' connections are up */
    _Atomic uint64_t events_read, writes_dropped, settled, purged;
    _Atomic long pending_decisions;
    _Atomic uint64_t ops_ok[ROP_COUNT], ops_err[ROP_COUNT];
    struct histogram latency;    /* one synchronous operation or one pipelined batch */
    double last_settle, last_trim;
};

static const struct store_ops redis_ops;
static int rs_flush(struct store *base);

#define RS(base) ((struct rs *)(base))

/* Counts one operation and, for a synchronous one, its time since `started` (0: none). */
static void count_op(struct rs *s, enum rop op, int ok, double started) {
    atomic_fetch_add(ok ? &s->ops_ok[op] : &s->ops_err[op], 1);
    if (started > 0) histogram_observe(&s->latency, util_monotonic() - started);
}

static void fmt_double(char *buf, size_t len, double v) {
    snprintf(buf, len, "%.17g", v);
}

static int parse_pos(const char *id, struct stream_pos *p) {
    return sscanf(id, "%" SCNu64 "-%" SCNu64, &p->ms, &p->seq) == 2;
}

static int pos_le(struct stream_pos a, struct stream_pos b) {
    return a.ms < b.ms || (a.ms == b.ms && a.seq <= b.seq);
}

/* Runs a command on the synchronous link (lock held by the caller). NULL: Redis is down. */
static redisReply *sync_cmd(struct rs *s, const char *fmt, ...) {
    redisReply *r;
    va_list ap;
    va_start(ap, fmt);
    r = redis_link_vcommand(&s->sync, fmt, ap);
    va_end(ap);
    return r;
}

static const char *hash_field(const redisReply *h, const char *name) {
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->str && !strcmp(h->element[i]->str, name)) return h->element[i + 1]->str;
    return NULL;
}

static double num_field(const redisReply *h, const char *name, double dflt) {
    const char *v = hash_field(h, name);
    return v && *v ? strtod(v, NULL) : dflt;
}

static int reply_ok(const redisReply *r) {
    return r && r->type != REDIS_REPLY_ERROR;
}

/* Runs an EVALSHA command (argv[1] the script's hash). A Redis that restarted has forgotten
 * Scout's scripts (NOSCRIPT): they are loaded again and the command retried once. NULL when
 * the connection broke (the caller fails the link). */
static redisReply *evalsha(redisContext *c, int argc, const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        redisReply *a = redisCommand(c, "SCRIPT LOAD %s", APPEND_LUA);
        redisReply *b = a ? redisCommand(c, "SCRIPT LOAD %s", SETTLE_LUA) : NULL;
        int ok = a && b && a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING;
        if (a) freeReplyObject(a);
        if (b) freeReplyObject(b);
        if (ok) {
            freeReplyObject(r);
            r = redisCommandArgv(c, argc, argv, NULL);
        }
    }
    return r;
}

/* ---- opening --------------------------------------------------------------------------- */

static int load_scripts(struct rs *s, redisContext *c, char *err, size_t errlen) {
    redisReply *a = redisCommand(c, "SCRIPT LOAD %s", APPEND_LUA);
    redisReply *b = redisCommand(c, "SCRIPT LOAD %s", SETTLE_LUA);
    int ok = a && b && a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING;
    if (ok) {
        snprintf(s->append_sha, sizeof s->append_sha, "%s", a->str);
        snprintf(s->settle_sha, sizeof s->settle_sha, "%s", b->str);
    } else {
        snprintf(err, errlen, "Redis refused Scout's scripts: %s",
                 a && a->type == REDIS_REPLY_ERROR ? a->str : b && b->type == REDIS_REPLY_ERROR ? b->str : "no answer");
    }
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

int store_open_redis(struct store **out, const char *host, int port, const char *user, const char *password,
                     char *err, size_t errlen) {
    struct rs *s = calloc(1, sizeof *s);
    redisContext *c;
    int rc;
    if (!s) return SCOUT_ENOMEM;
    s->base.ops = &redis_ops;
    s->host = strdup(host);
    s->user = user ? strdup(user) : NULL;
    s->password = password ? strdup(password) : NULL;
    if (!s->host || (user && !s->user) || (password && !s->password)) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    s->cfg = (struct redis_config){s->host, port, s->user, s->password, 0, 2.0};
    {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(s->replica, sizeof s->replica, raw, sizeof raw);
    }
    pthread_mutex_init(&s->sync_lock, NULL);
    pthread_mutex_init(&s->follow_lock, NULL);
    pthread_cond_init(&s->applied, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->qdone, NULL);
    redis_link_init(&s->sync, &s->cfg);
    /* The first connection says clearly what is wrong (wrong password: SCOUT_EINVAL). */
    if ((rc = redis_open(&s->cfg, &c, err, errlen)) != SCOUT_OK) goto fail;
    s->sync.c = c;
    s->sync.connects = 1;
    if ((rc = load_scripts(s, c, err, errlen)) != SCOUT_OK) goto fail;
    {   /* Changes from here on reach this process (what came before, loading reads). */
        redisReply *last = redisCommand(c, "XREVRANGE scout:catalog + - COUNT 1");
        snprintf(s->catalog_last, sizeof s->catalog_last, "%s",
                 last && last->type == REDIS_REPLY_ARRAY && last->elements == 1 ? last->element[0]->element[0]->str
                                                                                 : "0-0");
        if (last) freeReplyObject(last);
    }
    *out = &s->base;
    return SCOUT_OK;
fail:
    redis_ops.close(&s->base);
    return rc;
}

/* ---- following tests ------------------------------------------------------------------- */

static struct followed *find_followed(struct rs *s, const char *id) {
    for (size_t i = 0; i < s->nfollow; i++)
        if (!strcmp(s->follow[i].id, id)) return &s->follow[i];
    return NULL;
}

/* Starts following a test's stream after `last` ("0-0": from the start). */
static void follow(struct rs *s, const char *id, const char *last) {
    pthread_mutex_lock(&s->follow_lock);
    if (!find_followed(s, id)) {
        if (s->nfollow == s->capfollow) {
            size_t cap = s->capfollow ? s->capfollow * 2 : 16;
            struct followed *grown = realloc(s->follow, cap * sizeof *grown);
            if (!grown) goto out;
            s->follow = grown;
            s->capfollow = cap;
        }
        struct followed *f = &s->follow[s->nfollow++];
        memset(f, 0, sizeof *f);
        snprintf(f->id, sizeof f->id, "%s", id);
        snprintf(f->last, sizeof f->last, "%s", last);
        parse_pos(last, &f->pos);
        s->follow_version++;
    }
out:
    pthread_mutex_unlock(&s->follow_lock);
}

static void unfollow(struct rs *s, const char *id) {
    pthread_mutex_lock(&s->follow_lock);
    struct followed *f = find_followed(s, id);
    if (f) {
        *f = s->follow[--s->nfollow];
        s->follow_version++;
    }
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->follow_lock);
}

/* Applies one stream entry: fields v, r, c, q, t. */
static void apply_entry(struct rs *s, const char *test_id, const redisReply *fields) {
    long variant = -1;
    double reward = NAN, ts = 0;
    const char *ctx = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (!k || !v) continue;
        if (!strcmp(k, "v")) variant = strtol(v, NULL, 10);
        else if (!strcmp(k, "r")) reward = strtod(v, NULL);
        else if (!strcmp(k, "c")) ctx = *v ? v : NULL;
        else if (!strcmp(k, "t")) ts = strtod(v, NULL);
    }
    if (variant < 0 || !isfinite(reward)) return;
    if (s->on_event) s->on_event(s->event_arg, test_id, variant, reward, ctx, ts);
    atomic_fetch_add(&s->events_read, 1);
}

/* Applies one catalog entry: tells the app, then follows (or forgets) the test's stream — in
 * that order, so a new test is registered before any of its events arrive. */
static void apply_change(struct rs *s, redisContext *c, const redisReply *entry) {
    struct store_change_event ev = {0};
    const redisReply *f;
    const char *op, *id;
    redisReply *def = NULL, *meta = NULL;
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return;
    snprintf(s->catalog_last, sizeof s->catalog_last, "%s", entry->element[0]->str);
    f = entry->element[1];
    op = hash_field(f, "op");
    id = hash_field(f, "id");
    if (!op) return;
    ev.test_id = id;
    if (!strcmp(op, "put") && id) {
        def = redisCommand(c, "HGET scout:tests %s", id);
        meta = redisCommand(c, "HMGET scout:{%s}:meta created", id);
        if (!def || def->type != REDIS_REPLY_STRING) goto out;   /* deleted meanwhile */
        ev.kind = STORE_TEST_PUT;
        ev.definition = def->str;
        ev.created = meta && meta->type == REDIS_REPLY_ARRAY && meta->element[0]->str ? strtod(meta->element[0]->str, NULL) : 0;
        if (s->on_change) s->on_change(s->change_arg, &ev);
        follow(s, id, "0-0");
    } else if (!strcmp(op, "delete") && id) {
        ev.kind = STORE_TEST_DELETED;
        unfollow(s, id);
        if (s->on_change) s->on_change(s->change_arg, &ev);
    } else if (!strcmp(op, "rollout") && id) {
        meta = redisCommand(c, "HMGET scout:{%s}:meta rollout", id);
        if (!meta || meta->type != REDIS_REPLY_ARRAY || !meta->element[0]->str) goto out;
        ev.kind = STORE_ROLLOUT;
        ev.variant_id = strtol(meta->element[0]->str, NULL, 10);   /* the latest value, whichever came first */
        if (s->on_change) s->on_change(s->change_arg, &ev);
    } else if (!strcmp(op, "setting")) {
        ev.kind = STORE_SETTING;
        ev.key = hash_field(f, "key");
        if (ev.key && s->on_change) s->on_change(s->change_arg, &ev);
    }
out:
    if (def) freeReplyObject(def);
    if (meta) freeReplyObject(meta);
}

/* One XREAD over every followed stream; applies what came, in stream order per test. */
static void read_once(struct rs *s, struct redis_link *l) {
    size_t n, i, nids;
    const char **argv;
    size_t *lens;
    char **ids;
    redisContext *c = redis_link_get(l);
    redisReply *r;
    if (!c) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    pthread_mutex_lock(&s->follow_lock);
    n = s->nfollow;
    nids = 2 * n;
    argv = calloc(8 + 2 * n, sizeof *argv);
    lens = calloc(8 + 2 * n, sizeof *lens);
    ids = calloc(2 * n + 1, sizeof *ids);
    if (!argv || !lens || !ids) n = 0;
    for (i = 0; i < n; i++) {
        if (asprintf(&ids[2 * i], "scout:{%s}:events", s->follow[i].id) < 0) ids[2 * i] = NULL;
        ids[2 * i + 1] = strdup(s->follow[i].last);
        if (!ids[2 * i] || !ids[2 * i + 1]) n = i;
    }
    pthread_mutex_unlock(&s->follow_lock);
    if (!argv || !lens || !ids) goto done;
    {
        char count[16], block[16];
        int argc = 0;
        snprintf(count, sizeof count, "%d", READ_COUNT);
        snprintf(block, sizeof block, "%d", READ_BLOCK_MS);
        argv[argc++] = "XREAD";
        argv[argc++] = "COUNT";
        argv[argc++] = count;
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
        argv[argc++] = "STREAMS";
        argv[argc++] = "scout:catalog";
        for (i = 0; i < n; i++) argv[argc++] = ids[2 * i];
        argv[argc++] = s->catalog_last;
        for (i = 0; i < n; i++) argv[argc++] = ids[2 * i + 1];
        for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    if (!r) {
        redis_link_fail(l, c->errstr);
        goto done;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k < r->elements; k++) {
            redisReply *stream = r->element[k], *entries;
            char test_id[SCOUT_ID_LEN + 1] = "";
            const char *key;
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
            key = stream->element[0]->str;
            entries = stream->element[1];
            if (key && !strcmp(key, "scout:catalog")) {
                for (size_t e = 0; e < entries->elements; e++) apply_change(s, c, entries->element[e]);
                continue;
            }
            if (!key || sscanf(key, "scout:{%36[^}]}:events", test_id) != 1) continue;
            for (size_t e = 0; e < entries->elements; e++) {
                redisReply *entry = entries->element[e];
                struct followed *f;
                struct stream_pos pos;
                if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 || !parse_pos(entry->element[0]->str, &pos))
                    continue;
                apply_entry(s, test_id, entry->element[1]);
                pthread_mutex_lock(&s->follow_lock);
                if ((f = find_followed(s, test_id))) {
                    snprintf(f->last, sizeof f->last, "%s", entry->element[0]->str);
                    f->pos = pos;
                }
                pthread_mutex_unlock(&s->follow_lock);
            }
        }
        pthread_mutex_lock(&s->follow_lock);
        pthread_cond_broadcast(&s->applied);
        pthread_mutex_unlock(&s->follow_lock);
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_ERROR, "store: reading events failed: %s", r->str);
    }
    freeReplyObject(r);
done:
    for (i = 0; ids && i < nids; i++) free(ids[i]);
    free(ids);
    free(argv);
    free(lens);
}

static void *reader_main(void *arg) {
    struct rs *s = arg;
    struct redis_link l;
    redis_link_init(&l, &s->cfg);
    while (!atomic_load(&s->stopping)) {
        read_once(s, &l);
        atomic_store(&s->reader_up, l.c != NULL);
    }
    redis_link_close(&l);
    return NULL;
}

/* Waits until the reader applied the test's stream up to pos (bounded). */
static void wait_applied(struct rs *s, const char *test_id, struct stream_pos pos) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(READBACK_WAIT * 1e9);
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->follow_lock);
    for (;;) {
        struct followed *f = find_followed(s, test_id);
        if (!f || pos_le(pos, f->pos) || atomic_load(&s->stopping)) break;
        if (pthread_cond_timedwait(&s->applied, &s->follow_lock, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&s->follow_lock);
}

/* ---- the asynchronous writer ---------------------------------------------------------- */

static void aop_free(struct aop *op) {
    if (op->kind == AOP_DECISION) {   /* the caller took it off the pending count */
        free(op->u.decision->context);
        free(op->u.decision);
    } else if (op->kind == AOP_STATS) {
        free(op->u.stats.json);
    }
    free(op);
}

/* Queues op; the queue is bounded: past MAX_QUEUE a write is dropped (and counted) rather
 * than letting memory grow while Redis is away. Flush markers are never dropped. */
static void enqueue(struct rs *s, struct aop *op) {
    pthread_mutex_lock(&s->qlock);
    if (op->kind != AOP_FLUSH && (s->qlen >= MAX_QUEUE || atomic_load(&s->stopping))) {
        pthread_mutex_unlock(&s->qlock);
        atomic_fetch_add(&s->writes_dropped, 1);
        count_op(s, AOP_ROP[op->kind], 0, 0);
        aop_free(op);
        return;
    }
    if (op->kind == AOP_DECISION) atomic_fetch_add(&s->pending_decisions, 1);
    op->next = NULL;
    if (s->qtail) s->qtail->next = op;
    else s->qhead = op;
    s->qtail = op;
    s->qlen++;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
}

/* Appends the commands of one queued write to the pipeline; returns how many replies follow. */
static int append_aop(struct rs *s, redisContext *c, const struct aop *op) {
    char num[40], key[128];
    (void)s;
    switch (op->kind) {
    case AOP_DECISION: {
        const struct store_decision *d = op->u.decision;
        char created[40], expires[40], settle[40], dflt[40], mv[24];
        long long expire_ms = (long long)(d->expires * 1000.0);
        fmt_double(num, sizeof num, d->propensity);
        fmt_double(created, sizeof created, d->created);
        fmt_double(expires, sizeof expires, d->expires);
        fmt_double(settle, sizeof settle, d->settle_at);
        if (d->has_default) fmt_double(dflt, sizeof dflt, d->default_reward);
        else dflt[0] = '\0';
        snprintf(mv, sizeof mv, "%" PRIu64, d->model_version);
        snprintf(key, sizeof key, "scout:{%s}:d:", d->test_id);
        redisAppendCommand(c, "HSET %s%s v %ld p %s x %d c %s t %s e %s s %s a %d dr %s mv %s", key, d->request_id,
                           d->variant_id, num, d->explored, d->context ? d->context : "", created, expires, settle,
                           d->aggregate, dflt, mv);
        redisAppendCommand(c, "PEXPIREAT %s%s %lld", key, d->request_id, expire_ms);
        redisAppendCommand(c, "ZADD scout:{%s}:dt %s %s", d->test_id, created, d->request_id);
        redisAppendCommand(c, "ZADD scout:{%s}:dx %s %s", d->test_id, expires, d->request_id);
        redisAppendCommand(c, "HINCRBY scout:{%s}:armpred %ld 1", d->test_id, d->variant_id);
        redisAppendCommand(c, "HINCRBY scout:{%s}:meta predictions 1", d->test_id);
        redisAppendCommand(c, "HSET scout:{%s}:meta last_prediction %s", d->test_id, created);
        if (d->settle_at > 0) {
            redisAppendCommand(c, "ZADD scout:{%s}:settle %s %s", d->test_id, settle, d->request_id);
            return 8;
        }
        return 7;
    }
    case AOP_STATS:
        redisAppendCommand(c, "HSET scout:{%s}:meta stats %s", op->u.stats.test_id, op->u.stats.json);
        return 1;
    case AOP_TOUCH:
        fmt_double(num, sizeof num, op->u.touch.when);
        redisAppendCommand(c, "HSET scout:token:%s last_used %s", op->u.touch.id, num);
        return 1;
    case AOP_FLUSH:
        return 0;
    }
    return 0;
}

/* Writes a batch in one pipeline. 0 when the connection broke (the batch is kept for a retry). */
static int write_batch(struct rs *s, struct redis_link *l, struct aop *batch) {
    redisContext *c = redis_link_get(l);
    int replies = 0;
    double started = util_monotonic();
    if (!c) return 0;
    for (struct aop *op = batch; op; op = op->next) replies += append_aop(s, c, op);
    for (int i = 0; i < replies; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            redis_link_fail(l, c->errstr);
            return 0;
        }
        if (r && r->type == REDIS_REPLY_ERROR) log_msg(LOG_ERROR, "store: a queued write failed: %s", r->str);
        freeReplyObject(r);
    }
    histogram_observe(&s->latency, util_monotonic() - started);
    return 1;
}

/* A copy of the followed tests (the caller frees it); NULL with *n 0 when there are none. */
static struct followed *copy_followed(struct rs *s, size_t *n) {
    struct followed *list;
    pthread_mutex_lock(&s->follow_lock);
    *n = s->nfollow;
    list = *n ? malloc(*n * sizeof *list) : NULL;
    if (list) memcpy(list, s->follow, *n * sizeof *list);
    else *n = 0;
    pthread_mutex_unlock(&s->follow_lock);
    return list;
}

/* Settles the decisions whose reward window ended, on one replica at a time. */
static void settle_step(struct rs *s, struct redis_link *l) {
    redisContext *c = redis_link_get(l);
    redisReply *lock, *ids;
    char now[40];
    struct followed *list;
    size_t n;
    if (!c) return;
    /* The lock holds this replica's token and is released by compare-and-delete: a replica never
     * frees another's lock, and a crashed holder's lock expires after LOCK_TTL_MS. */
    lock = redisCommand(c, "SET scout:settle:lock %s NX PX %d", s->replica, LOCK_TTL_MS);
    if (!lock) {
        redis_link_fail(l, c->errstr);
        return;
    }
    int mine = lock->type == REDIS_REPLY_STATUS;
    freeReplyObject(lock);
    if (!mine) return;
    fmt_double(now, sizeof now, util_now());
    list = copy_followed(s, &n);
    for (size_t i = 0; list && i < n; i++) {
        ids = redisCommand(c, "ZRANGEBYSCORE scout:{%s}:settle -inf %s LIMIT 0 %d", list[i].id, now, SETTLE_SLICE);
        if (!ids) {
            redis_link_fail(l, c->errstr);
            break;
        }
        if (ids->type == REDIS_REPLY_ARRAY && ids->elements > 0) {
            size_t argc = 5 + ids->elements;
            const char **argv = calloc(argc, sizeof *argv);
            char ev[128], zs[128], prefix[128];
            snprintf(ev, sizeof ev, "scout:{%s}:events", list[i].id);
            snprintf(zs, sizeof zs, "scout:{%s}:settle", list[i].id);
            snprintf(prefix, sizeof prefix, "scout:{%s}:d:", list[i].id);
            if (argv) {
                redisReply *r;
                argv[0] = "EVALSHA";
                argv[1] = s->settle_sha;
                argv[2] = "2";
                argv[3] = ev;
                argv[4] = zs;
                /* ARGV: now, prefix, ids — appended after the two keys */
                const char **full = calloc(argc + 2, sizeof *full);
                if (full) {
                    size_t k = 0;
                    for (; k < 5; k++) full[k] = argv[k];
                    full[k++] = now;
                    full[k++] = prefix;
                    for (size_t j = 0; j < ids->elements; j++) full[k++] = ids->element[j]->str;
                    r = evalsha(c, (int)k, full);
                    if (!r) redis_link_fail(l, c->errstr);
                    else if (r->type == REDIS_REPLY_INTEGER) atomic_fetch_add(&s->settled, (uint64_t)r->integer);
                    else if (r->type == REDIS_REPLY_ERROR) log_msg(LOG_ERROR, "store: settling failed: %s", r->str);
                    if (r) freeReplyObject(r);
                    free(full);
                }
                free(argv);
            }
        }
        freeReplyObject(ids);
        if (!l->c) break;
    }
    free(list);
    redisReply *unlock = l->c ? redisCommand(l->c, "EVAL %s 1 scout:settle:lock %s", UNLOCK_LUA, s->replica) : NULL;
    if (unlock) freeReplyObject(unlock);
}

/* Drops expired decisions from the per-test indexes (the decision hashes expire by themselves). */
static void trim_step(struct rs *s, struct redis_link *l) {
    redisContext *c = redis_link_get(l);
    char now[40];
    struct followed *list;
    size_t n;
    if (!c) return;
    fmt_double(now, sizeof now, util_now());
    list = copy_followed(s, &n);
    for (size_t i = 0; list && i < n; i++) {
        redisReply *ids = redisCommand(c, "ZRANGEBYSCORE scout:{%s}:dx -inf (%s LIMIT 0 1000", list[i].id, now);
        if (!ids) {
            redis_link_fail(l, c->errstr);
            break;
        }
        if (ids->type == REDIS_REPLY_ARRAY) atomic_fetch_add(&s->purged, ids->elements);
        for (size_t j = 0; ids->type == REDIS_REPLY_ARRAY && j < ids->elements; j++) {
            redisAppendCommand(c, "ZREM scout:{%s}:dt %s", list[i].id, ids->element[j]->str);
            redisAppendCommand(c, "ZREM scout:{%s}:dx %s", list[i].id, ids->element[j]->str);
        }
        for (size_t j = 0; ids->type == REDIS_REPLY_ARRAY && j < 2 * ids->elements; j++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                redis_link_fail(l, c->errstr);
                break;
            }
            freeReplyObject(r);
        }
        freeReplyObject(ids);
        if (!l->c) break;
    }
    free(list);
}

/* Tells the flush's caller how it ended (or frees the wait if the caller gave up). */
static void finish_flush(struct rs *s, struct aop *op, int state) {
    struct flush_wait *w = op->u.wait;
    pthread_mutex_lock(&s->qlock);
    if (w->abandoned) {
        free(w);
    } else {
        w->state = state;
        pthread_cond_broadcast(&s->qdone);
    }
    pthread_mutex_unlock(&s->qlock);
    free(op);
}

static void *writer_main(void *arg) {
    struct rs *s = arg;
    struct redis_link l;
    redis_link_init(&l, &s->cfg);
    for (;;) {
        struct aop *batch, *tail;
        int n = 0;
        struct timespec until;
        pthread_mutex_lock(&s->qlock);
        if (!s->qhead && !atomic_load(&s->stopping)) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->qcond, &s->qlock, &until);
        }
        batch = s->qhead;
        for (tail = batch; tail && tail->next && n < BATCH_MAX - 1; tail = tail->next) n++;
        if (tail) {
            s->qhead = tail->next;
            if (!s->qhead) s->qtail = NULL;
            tail->next = NULL;
            s->qlen -= n + 1;
        }
        pthread_mutex_unlock(&s->qlock);
        if (!batch) {
            if (atomic_load(&s->stopping)) break;
        } else if (!write_batch(s, &l, batch)) {
            /* Redis is away: keep the batch at the head of the queue and retry after backoff. */
            if (atomic_load(&s->stopping) && !redis_link_get(&l)) {
                for (struct aop *op = batch, *next; op; op = next) {
                    next = op->next;
                    if (op->kind == AOP_DECISION) atomic_fetch_sub(&s->pending_decisions, 1);
                    if (op->kind != AOP_FLUSH) atomic_fetch_add(&s->writes_dropped, 1);
                    count_op(s, AOP_ROP[op->kind], 0, 0);
                    if (op->kind == AOP_FLUSH) finish_flush(s, op, -1);
                    else aop_free(op);
                }
                continue;
            }
            pthread_mutex_lock(&s->qlock);
            tail->next = s->qhead;
            s->qhead = batch;
            if (!s->qtail) s->qtail = tail;
            s->qlen += n + 1;
            pthread_mutex_unlock(&s->qlock);
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        } else {
            for (struct aop *op = batch, *next; op; op = next) {
                next = op->next;
                count_op(s, AOP_ROP[op->kind], 1, 0);
                if (op->kind == AOP_DECISION) atomic_fetch_sub(&s->pending_decisions, 1);
                if (op->kind == AOP_FLUSH) {
                    finish_flush(s, op, 1);
                    continue;
                }
                aop_free(op);
            }
        }
        atomic_store(&s->writer_up, redis_link_get(&l) != NULL);
        if (util_monotonic() - s->last_settle >= SETTLE_INTERVAL) {
            s->last_settle = util_monotonic();
            settle_step(s, &l);
        }
        if (util_monotonic() - s->last_trim >= TRIM_INTERVAL) {
            s->last_trim = util_monotonic();
            trim_step(s, &l);
        }
    }
    redis_link_close(&l);
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void rs_set_change_handler(struct store *base, store_change_fn fn, void *arg) {
    RS(base)->on_change = fn;
    RS(base)->change_arg = arg;
}

static void rs_set_event_handler(struct store *base, store_event_fn fn, void *arg) {
    RS(base)->on_event = fn;
    RS(base)->event_arg = arg;
}

static int rs_start(struct store *base) {
    struct rs *s = RS(base);
    s->last_settle = s->last_trim = util_monotonic();
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) return SCOUT_ERR;
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
        atomic_store(&s->stopping, 1);
        pthread_join(s->writer, NULL);
        return SCOUT_ERR;
    }
    s->started = 1;
    return SCOUT_OK;
}

/* Waits (at most FLUSH_WAIT) until everything queued before the call is written. SCOUT_ESTORE
 * when Redis is away for that long. Counted by the writer. */
static int rs_flush(struct store *base) {
    struct rs *s = RS(base);
    struct aop *op;
    struct flush_wait *w;
    struct timespec until;
    int state;
    if (!s->started || atomic_load(&s->stopping)) return SCOUT_ECLOSED;
    op = calloc(1, sizeof *op);
    w = calloc(1, sizeof *w);
    if (!op || !w) {
        free(op);
        free(w);
        return SCOUT_ENOMEM;
    }
    op->kind = AOP_FLUSH;
    op->u.wait = w;
    enqueue(s, op);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)FLUSH_WAIT;
    pthread_mutex_lock(&s->qlock);
    while (w->state == 0)
        if (pthread_cond_timedwait(&s->qdone, &s->qlock, &until) == ETIMEDOUT) break;
    state = w->state;
    if (state == 0) w->abandoned = 1;   /* the writer frees it when it gets there */
    else free(w);
    pthread_mutex_unlock(&s->qlock);
    return state > 0 ? SCOUT_OK : SCOUT_ESTORE;
}

static void rs_close(struct store *base) {
    struct rs *s = RS(base);
    if (!s) return;
    if (s->started) {   /* the writer writes what is queued (or gives it up if Redis is away), then ends */
        atomic_store(&s->stopping, 1);
        pthread_mutex_lock(&s->qlock);
        pthread_cond_broadcast(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->writer, NULL);
        pthread_join(s->reader, NULL);
    }
    while (s->qhead) {   /* only when start never ran: the writer drains the queue itself */
        struct aop *op = s->qhead;
        s->qhead = op->next;
        aop_free(op);
    }
    redis_link_close(&s->sync);
    free(s->follow);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_mutex_destroy(&s->follow_lock);
    pthread_cond_destroy(&s->applied);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->qdone);
    if (s->password) sodium_memzero(s->password, strlen(s->password));
    free(s->host);
    free(s->user);
    free(s->password);
    free(s);
}

static int rs_ping(struct store *base) {
    struct rs *s = RS(base);
    redisReply *r;
    int ok;
    pthread_mutex_lock(&s->sync_lock);
    r = sync_cmd(s, "PING");
    ok = reply_ok(r);
    pthread_mutex_unlock(&s->sync_lock);
    if (r) freeReplyObject(r);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

/* ---- settings, tests ------------------------------------------------------------------- */

#define CATALOG_MAXLEN 10000   /* changes kept for replicas that fall behind */

/* Announces a change to the other replicas (sync lock held). 0 when Redis did not take it. */
static int announce(struct rs *s, const char *op, const char *field, const char *value) {
    redisReply *r = field ? sync_cmd(s, "XADD scout:catalog MAXLEN ~ %d * op %s %s %s", CATALOG_MAXLEN, op, field, value)
                          : sync_cmd(s, "XADD scout:catalog MAXLEN ~ %d * op %s", CATALOG_MAXLEN, op);
    int ok = reply_ok(r);
    if (r) freeReplyObject(r);
    return ok;
}

static int rs_put_setting(struct store *base, const char *key, const char *json) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    pthread_mutex_lock(&s->sync_lock);
    redisReply *r = sync_cmd(s, "HSET scout:settings %s %s", key, json);
    int ok = reply_ok(r) && announce(s, "setting", "key", key);
    pthread_mutex_unlock(&s->sync_lock);
    if (r) freeReplyObject(r);
    count_op(s, ROP_SETTING, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_get_setting(struct store *base, const char *key, char **out) {
    struct rs *s = RS(base);
    int rc = SCOUT_ESTORE;
    *out = NULL;
    pthread_mutex_lock(&s->sync_lock);
    redisReply *r = sync_cmd(s, "HGET scout:settings %s", key);
    if (r && r->type == REDIS_REPLY_STRING) rc = (*out = strdup(r->str)) ? SCOUT_OK : SCOUT_ENOMEM;
    else if (r && r->type == REDIS_REPLY_NIL) rc = SCOUT_OK;
    pthread_mutex_unlock(&s->sync_lock);
    if (r) freeReplyObject(r);
    return rc;
}

static int rs_put_test(struct store *base, const char *id, const char *definition, double created) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    char num[40];
    int ok = 1;
    fmt_double(num, sizeof num, created);
    pthread_mutex_lock(&s->sync_lock);
    redisReply *a = sync_cmd(s, "HSET scout:{%s}:meta created %s rollout -1 predictions 0 last_prediction 0", id, num);
    redisReply *b = a ? sync_cmd(s, "HSET scout:tests %s %s", id, definition) : NULL;
    ok = reply_ok(a) && reply_ok(b) && announce(s, "put", "id", id);
    pthread_mutex_unlock(&s->sync_lock);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (ok) follow(s, id, "0-0");
    count_op(s, ROP_PUT_TEST, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_delete_test(struct store *base, const char *id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    pthread_mutex_lock(&s->sync_lock);
    redisReply *r = sync_cmd(s, "HDEL scout:tests %s", id);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        rc = r->integer ? SCOUT_OK : SCOUT_ENOTFOUND;
        /* Decision hashes expire on their own; their indexes and the rest go now. */
        redisReply *d = sync_cmd(s, "DEL scout:{%s}:meta scout:{%s}:events scout:{%s}:armpred scout:{%s}:dt "
                                    "scout:{%s}:dx scout:{%s}:settle scout:{%s}:sticky",
                                 id, id, id, id, id, id, id);
        if (!reply_ok(d) || (rc == SCOUT_OK && !announce(s, "delete", "id", id))) rc = SCOUT_ESTORE;
        if (d) freeReplyObject(d);
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (r) freeReplyObject(r);
    if (rc == SCOUT_OK) unfollow(s, id);
    count_op(s, ROP_DELETE_TEST, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

static int rs_set_rollout(struct store *base, const char *id, long variant_id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    pthread_mutex_lock(&s->sync_lock);
    redisReply *e = sync_cmd(s, "HEXISTS scout:tests %s", id);
    if (e && e->type == REDIS_REPLY_INTEGER && e->integer == 0) {
        rc = SCOUT_ENOTFOUND;
    } else if (reply_ok(e)) {
        redisReply *r = sync_cmd(s, "HSET scout:{%s}:meta rollout %ld", id, variant_id);
        rc = reply_ok(r) && announce(s, "rollout", "id", id) ? SCOUT_OK : SCOUT_ESTORE;
        if (r) freeReplyObject(r);
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (e) freeReplyObject(e);
    count_op(s, ROP_ROLLOUT, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

/* ---- rewards, decisions ---------------------------------------------------------------- */

static int rs_append_rewards(struct store *base, const char *test_id, struct store_reward *ev, int n) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    char evkey[128], metakey[128], prefix[128], now[40];
    const char **argv = calloc((size_t)(7 + 5 * n), sizeof *argv);
    char (*nums)[2][40] = calloc((size_t)n, sizeof *nums);
    struct stream_pos last = {0, 0};
    int argc = 0, rc = SCOUT_ESTORE, have_last = 0;
    double t = util_now();
    redisReply *r = NULL;
    if (!argv || !nums) {
        rc = SCOUT_ENOMEM;
        goto out;
    }
    /* A reward joins its decision by request id: the decisions this replica answered before
     * must be in Redis first (they are queued, not written on the request path). */
    pthread_mutex_lock(&s->sync_lock);
    int up = redis_link_get(&s->sync) != NULL;   /* Redis away: answer at once, not after waits */
    pthread_mutex_unlock(&s->sync_lock);
    if (!up) goto out;
    for (int i = 0; i < n; i++)
        if (ev[i].request_id) {   /* (queued or in the writer's hands: the flush waits for both) */
            if (rs_flush(base) != SCOUT_OK) goto out;
            break;
        }
    snprintf(evkey, sizeof evkey, "scout:{%s}:events", test_id);
    snprintf(metakey, sizeof metakey, "scout:{%s}:meta", test_id);
    snprintf(prefix, sizeof prefix, "scout:{%s}:d:", test_id);
    fmt_double(now, sizeof now, t);
    argv[argc++] = "EVALSHA";
    argv[argc++] = s->append_sha;
    argv[argc++] = "2";
    argv[argc++] = evkey;
    argv[argc++] = metakey;
    argv[argc++] = now;
    argv[argc++] = prefix;
    for (int i = 0; i < n; i++) {
        snprintf(nums[i][0], sizeof nums[i][0], "%ld", ev[i].variant_id);
        fmt_double(nums[i][1], sizeof nums[i][1], ev[i].reward);
        argv[argc++] = ev[i].request_id ? ev[i].request_id : "";
        argv[argc++] = nums[i][0];
        argv[argc++] = nums[i][1];
        argv[argc++] = ev[i].context ? ev[i].context : "";
        argv[argc++] = ev[i].skip_stored_context ? "1" : "0";
    }
    pthread_mutex_lock(&s->sync_lock);
    {
        redisContext *c = redis_link_get(&s->sync);
        if (c && !(r = evalsha(c, argc, argv))) redis_link_fail(&s->sync, c->errstr);
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (!r) goto out;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = strstr(r->str, "NOTFOUND") ? SCOUT_ENOTFOUND : SCOUT_ESTORE;
        if (rc == SCOUT_ESTORE) log_msg(LOG_ERROR, "store: appending rewards failed: %s", r->str);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n) goto out;
    for (int i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        struct stream_pos pos;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 5) goto out;
        ev[i].found = e->element[0]->integer == 1;
        ev[i].variant_id = (long)e->element[1]->integer;
        ev[i].outcome = (int)e->element[2]->integer;
        ev[i].ts = t;
        if (!ev[i].context && e->element[3]->len > 0) ev[i].context = strdup(e->element[3]->str);
        ev[i].applied = e->element[4]->len > 0;
        if (ev[i].applied && parse_pos(e->element[4]->str, &pos) && (!have_last || pos_le(last, pos))) {
            last = pos;
            have_last = 1;
        }
    }
    rc = SCOUT_OK;
    /* Read-your-writes: the answer goes out once this replica learned its own events. */
    if (have_last) wait_applied(s, test_id, last);
out:
    if (r) freeReplyObject(r);
    free(argv);
    free(nums);
    count_op(s, ROP_REWARDS, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

static void rs_put_decision(struct store *base, struct store_decision *d) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) {
        free(d->context);
        free(d);
        return;
    }
    op->kind = AOP_DECISION;
    op->u.decision = d;
    enqueue(RS(base), op);
}

/* HSETNX then, if another replica was first, its assignment: one round trip in a script. */
static const char CLAIM_LUA[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return {0, ARGV[2]} end\n"
    "return {1, redis.call('HGET', KEYS[1], ARGV[1])}\n";

static int rs_claim_assignment(struct store *base, struct store_assignment *a) {
    struct rs *s = RS(base);
    char value[80], p[40];
    long v;
    double prop;
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    fmt_double(p, sizeof p, a->propensity);
    snprintf(value, sizeof value, "%ld %s", a->variant_id, p);
    pthread_mutex_lock(&s->sync_lock);
    redisReply *r = sync_cmd(s, "EVAL %s 1 scout:{%s}:sticky %s %s", CLAIM_LUA, a->test_id, a->user, value);
    pthread_mutex_unlock(&s->sync_lock);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        sscanf(r->element[1]->str, "%ld %lf", &v, &prop) == 2) {
        a->existing = r->element[0]->integer == 1;
        a->variant_id = v;
        a->propensity = prop;
        rc = SCOUT_OK;
    }
    if (r) freeReplyObject(r);
    count_op(s, ROP_ASSIGN, rc == SCOUT_OK, t0);
    return rc;
}

static void rs_put_test_stats(struct store *base, const char *test_id, char *stats) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) {
        free(stats);
        return;
    }
    op->kind = AOP_STATS;
    snprintf(op->u.stats.test_id, sizeof op->u.stats.test_id, "%s", test_id);
    op->u.stats.json = stats;
    enqueue(RS(base), op);
}

/* ---- loading (before start, on the synchronous link) --------------------------------- */

struct test_entry {
    char *id, *definition;
    double created;
};

static int cmp_test_entry(const void *a, const void *b) {
    const struct test_entry *x = a, *y = b;
    if (x->created != y->created) return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int rs_load_tests(struct store *base, int (*cb)(void *ud, const struct store_test_row *row), void *ud) {
    struct rs *s = RS(base);
    redisReply *all = sync_cmd(s, "HGETALL scout:tests");
    struct test_entry *list = NULL;
    size_t n = 0;
    int rc = SCOUT_ESTORE;
    if (!all || all->type != REDIS_REPLY_ARRAY) goto out;
    list = calloc(all->elements / 2 + 1, sizeof *list);
    if (!list) goto out;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        redisReply *meta = sync_cmd(s, "HGETALL scout:{%s}:meta", all->element[i]->str);
        if (!meta) goto out;
        list[n].id = all->element[i]->str;
        list[n].definition = all->element[i + 1]->str;
        list[n].created = num_field(meta, "created", 0);
        freeReplyObject(meta);
        n++;
    }
    qsort(list, n, sizeof *list, cmp_test_entry);   /* the embedded store's order: created, id */
    rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *meta = sync_cmd(s, "HGETALL scout:{%s}:meta", list[i].id);
        struct store_test_row row = {
            .id = list[i].id,
            .definition = list[i].definition,
            .created = list[i].created,
            .rollout_variant = (long)num_field(meta, "rollout", -1),
            .predictions = (uint64_t)num_field(meta, "predictions", 0),
            .last_prediction = num_field(meta, "last_prediction", 0),
            .stats = hash_field(meta, "stats"),
        };
        if (!meta) {
            rc = SCOUT_ESTORE;
            break;
        }
        follow(s, list[i].id, "0-0");
        if (cb(ud, &row)) rc = SCOUT_ERR;
        freeReplyObject(meta);
    }
out:
    free(list);
    if (all) freeReplyObject(all);
    return rc;
}

static int rs_load_arm_predictions(struct store *base,
                                   int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *h = sync_cmd(s, "HGETALL scout:{%s}:armpred", ids[i].id);
        if (!h || h->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
        for (size_t k = 0; rc == SCOUT_OK && k + 1 < h->elements; k += 2)
            if (cb(ud, ids[i].id, strtol(h->element[k]->str, NULL, 10), strtoull(h->element[k + 1]->str, NULL, 10)))
                rc = SCOUT_ERR;
        if (h) freeReplyObject(h);
    }
    free(ids);
    return rc;
}

/* Replays a test's whole stream; the reader then continues after its last event. */
static int rs_load_rewards(struct store *base,
                           int (*cb)(void *ud, const char *test_id, long variant_id, double reward,
                                     const char *context, double ts),
                           void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        char from[48] = "-";
        for (;;) {
            redisReply *r = sync_cmd(s, "XRANGE scout:{%s}:events %s + COUNT %d", ids[i].id, from, READ_COUNT);
            size_t got;
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r) freeReplyObject(r);
                rc = SCOUT_ESTORE;
                break;
            }
            got = r->elements;
            for (size_t e = 0; e < got && rc == SCOUT_OK; e++) {
                redisReply *entry = r->element[e], *f = entry->element[1];
                const char *v = hash_field(f, "v"), *rw = hash_field(f, "r"), *c = hash_field(f, "c");
                if (v && rw && cb(ud, ids[i].id, strtol(v, NULL, 10), strtod(rw, NULL), c && *c ? c : NULL,
                                  num_field(f, "t", 0)))
                    rc = SCOUT_ERR;
                snprintf(from, sizeof from, "(%s", entry->element[0]->str);   /* exclusive: after this one */
                pthread_mutex_lock(&s->follow_lock);
                struct followed *fl = find_followed(s, ids[i].id);
                if (fl) {
                    snprintf(fl->last, sizeof fl->last, "%s", entry->element[0]->str);
                    parse_pos(fl->last, &fl->pos);
                }
                pthread_mutex_unlock(&s->follow_lock);
            }
            freeReplyObject(r);
            if (got < READ_COUNT || rc != SCOUT_OK) break;
        }
    }
    free(ids);
    return rc;
}

static int rs_load_assignments(struct store *base,
                               int (*cb)(void *ud, const char *test_id, const char *user, long variant_id,
                                         double propensity),
                               void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *h = sync_cmd(s, "HGETALL scout:{%s}:sticky", ids[i].id);
        if (!h || h->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
        for (size_t k = 0; rc == SCOUT_OK && k + 1 < h->elements; k += 2) {
            long v;
            double p;
            if (sscanf(h->element[k + 1]->str, "%ld %lf", &v, &p) == 2 && cb(ud, ids[i].id, h->element[k]->str, v, p))
                rc = SCOUT_ERR;
        }
        if (h) freeReplyObject(h);
    }
    free(ids);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

static int rs_count_decisions(struct store *base, double now, long *out) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    char t[40];
    int rc = SCOUT_OK;
    *out = 0;
    fmt_double(t, sizeof t, now);
    pthread_mutex_lock(&s->sync_lock);
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *r = sync_cmd(s, "ZCOUNT scout:{%s}:dx %s +inf", ids[i].id, t);
        if (r && r->type == REDIS_REPLY_INTEGER) *out += (long)r->integer;
        else rc = SCOUT_ESTORE;
        if (r) freeReplyObject(r);
    }
    pthread_mutex_unlock(&s->sync_lock);
    free(ids);
    return rc;
}

/* A decision record as scans read it. */
struct dview {
    double created, propensity, sum, dflt;
    long variant, rewards;
    int explored, settled, has_default;
    const char *context;     /* borrowed from the reply */
};

#define DFIELDS "t v x c p n sum st dr"

static int read_dview(const redisReply *r, struct dview *d) {
    const char *f[9];
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 9) return 0;
    for (int i = 0; i < 9; i++) f[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
    if (!f[0] || !f[1]) return 0;   /* expired meanwhile */
    d->created = strtod(f[0], NULL);
    d->variant = strtol(f[1], NULL, 10);
    d->explored = f[2] && atoi(f[2]);
    d->context = f[3] && *f[3] ? f[3] : NULL;
    d->propensity = f[4] ? strtod(f[4], NULL) : 0;
    d->rewards = f[5] ? strtol(f[5], NULL, 10) : 0;
    d->sum = f[6] ? strtod(f[6], NULL) : 0;
    d->settled = f[7] && atoi(f[7]);
    d->has_default = f[8] && *f[8];
    d->dflt = d->has_default ? strtod(f[8], NULL) : 0;
    return 1;
}

/* Walks a test's decisions in [since, +inf) by creation time (newest first when `reverse`), in
 * slices of 1000, at most limit; visit returns non-zero to stop (then SCOUT_ERR). */
static int walk_decisions(struct rs *s, const char *test_id, double since, long limit, int reverse,
                          int (*visit)(void *ud, const char *rid, const struct dview *d), void *ud) {
    char lo[40], cursor[48];
    long seen = 0;
    int rc = SCOUT_OK;
    fmt_double(lo, sizeof lo, since);
    snprintf(cursor, sizeof cursor, "%s", reverse ? "+inf" : lo);
    while (seen < limit && rc == SCOUT_OK) {
        long want = limit - seen < 1000 ? limit - seen : 1000;
        redisReply *ids, *r;
        pthread_mutex_lock(&s->sync_lock);
        ids = reverse ? sync_cmd(s, "ZREVRANGEBYSCORE scout:{%s}:dt %s %s WITHSCORES LIMIT 0 %ld", test_id, cursor, lo, want)
                      : sync_cmd(s, "ZRANGEBYSCORE scout:{%s}:dt %s +inf WITHSCORES LIMIT 0 %ld", test_id, cursor, want);
        redisContext *c = s->sync.c;
        size_t got = ids && ids->type == REDIS_REPLY_ARRAY ? ids->elements / 2 : 0;
        for (size_t i = 0; c && i < got; i++)
            redisAppendCommand(c, "HMGET scout:{%s}:d:%s " DFIELDS, test_id, ids->element[2 * i]->str);
        struct dview *views = got ? calloc(got, sizeof *views) : NULL;
        redisReply **replies = got ? calloc(got, sizeof *replies) : NULL;
        for (size_t i = 0; c && i < got; i++) {
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                redis_link_fail(&s->sync, c->errstr);
                rc = SCOUT_ESTORE;
                break;
            }
            if (replies) replies[i] = r;
            else freeReplyObject(r);
        }
        pthread_mutex_unlock(&s->sync_lock);
        if (!ids || ids->type != REDIS_REPLY_ARRAY || (got && (!views || !replies))) rc = SCOUT_ESTORE;
        /* The visits run without the link: a slow callback never holds other requests up. */
        for (size_t i = 0; rc == SCOUT_OK && i < got; i++)
            if (read_dview(replies[i], &views[i]) && visit(ud, ids->element[2 * i]->str, &views[i])) rc = SCOUT_ERR;
        for (size_t i = 0; replies && i < got; i++)
            if (replies[i]) freeReplyObject(replies[i]);
        free(replies);
        free(views);
        seen += (long)got;
        /* Next slice: strictly past the last score seen (ties at one score stay in one slice
         * unless more than 1000 share it, which creation times in seconds with μs do not). */
        if (got) snprintf(cursor, sizeof cursor, "(%s", ids->element[2 * got - 1]->str);
        if (ids) freeReplyObject(ids);
        if ((long)got < want) break;
    }
    return rc;
}

struct scan_ctx {
    void (*cb)(void *ud, double created, long variant_id, int explored, const char *context);
    void *ud;
};

static int visit_scan(void *ud, const char *rid, const struct dview *d) {
    struct scan_ctx *x = ud;
    (void)rid;
    x->cb(x->ud, d->created, d->variant, d->explored, d->context);
    return 0;
}

static int rs_scan_decisions(struct store *base, const char *test_id, double since, int limit,
                             void (*cb)(void *ud, double created, long variant_id, int explored, const char *context),
                             void *ud) {
    struct scan_ctx x = {cb, ud};
    return walk_decisions(RS(base), test_id, since, limit, 1, visit_scan, &x);
}

struct outcome_ctx {
    int (*cb)(void *ud, const struct store_outcome *o);
    void *ud;
};

static int visit_outcome(void *ud, const char *rid, const struct dview *d) {
    struct outcome_ctx *x = ud;
    struct store_outcome o = {rid, d->created, d->variant, d->propensity, d->context, d->rewards, d->sum,
                              d->settled, d->has_default, d->dflt};
    return x->cb(x->ud, &o);
}

static int rs_scan_outcomes(struct store *base, const char *test_id, double since, long limit,
                            int (*cb)(void *ud, const struct store_outcome *o), void *ud) {
    struct outcome_ctx x = {cb, ud};
    return walk_decisions(RS(base), test_id, since, limit, 0, visit_outcome, &x);
}

struct count_ctx {
    double since, granularity;
    void (*cb)(void *ud, long bucket, long variant_id, long count, long explored);
    void *ud;
    struct {
        long bucket, variant, count, explored;
    } *rows;
    size_t n, cap;
};

static int visit_count(void *ud, const char *rid, const struct dview *d) {
    struct count_ctx *x = ud;
    long b = (long)((d->created - x->since) / x->granularity);
    (void)rid;
    for (size_t i = 0; i < x->n; i++)
        if (x->rows[i].bucket == b && x->rows[i].variant == d->variant) {
            x->rows[i].count++;
            x->rows[i].explored += d->explored;
            return 0;
        }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        void *grown = realloc(x->rows, cap * sizeof *x->rows);
        if (!grown) return 1;
        x->rows = grown;
        x->cap = cap;
    }
    x->rows[x->n].bucket = b;
    x->rows[x->n].variant = d->variant;
    x->rows[x->n].count = 1;
    x->rows[x->n].explored = d->explored;
    x->n++;
    return 0;
}

#define COUNT_SCAN_MAX 1000000   /* decisions a bucketed count reads at most */

static int rs_decision_counts(struct store *base, const char *test_id, double since, double granularity,
                              void (*cb)(void *ud, long bucket, long variant_id, long count, long explored),
                              void *ud) {
    struct count_ctx x = {since, granularity > 0 ? granularity : 1, cb, ud, NULL, 0, 0};
    int rc = walk_decisions(RS(base), test_id, since, COUNT_SCAN_MAX, 0, visit_count, &x);
    for (size_t i = 0; rc == SCOUT_OK && i < x.n; i++)
        cb(ud, x.rows[i].bucket, x.rows[i].variant, x.rows[i].count, x.rows[i].explored);
    free(x.rows);
    return rc;
}

/* ---- tokens ----------------------------------------------------------------------------- */

static int rs_put_token(struct store *base, const struct store_token *tk) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    char hex[65], f[5][40];
    int ok;
    sodium_bin2hex(hex, sizeof hex, tk->hash, sizeof tk->hash);
    fmt_double(f[0], sizeof f[0], tk->created);
    fmt_double(f[1], sizeof f[1], tk->expires);
    fmt_double(f[2], sizeof f[2], tk->last_used);
    fmt_double(f[3], sizeof f[3], tk->revoked);
    fmt_double(f[4], sizeof f[4], tk->rotated);
    pthread_mutex_lock(&s->sync_lock);
    redisReply *a = sync_cmd(s, "HSET scout:token:%s name %s scope %d hash %s created %s expires %s last_used %s "
                                "revoked %s rotated %s",
                             tk->id, tk->name, tk->scope, hex, f[0], f[1], f[2], f[3], f[4]);
    redisReply *b = a ? sync_cmd(s, "SADD scout:tokens %s", tk->id) : NULL;
    redisReply *c = b ? sync_cmd(s, "INCR scout:tokens:version") : NULL;
    ok = reply_ok(a) && reply_ok(b) && reply_ok(c);
    pthread_mutex_unlock(&s->sync_lock);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (c) freeReplyObject(c);
    sodium_memzero(hex, sizeof hex);
    count_op(s, ROP_TOKEN, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_delete_token(struct store *base, const char *id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int ok;
    pthread_mutex_lock(&s->sync_lock);
    redisReply *a = sync_cmd(s, "DEL scout:token:%s", id);
    redisReply *b = a ? sync_cmd(s, "SREM scout:tokens %s", id) : NULL;
    redisReply *c = b ? sync_cmd(s, "INCR scout:tokens:version") : NULL;
    ok = reply_ok(a) && reply_ok(b) && reply_ok(c);
    pthread_mutex_unlock(&s->sync_lock);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (c) freeReplyObject(c);
    count_op(s, ROP_TOKEN_DELETE, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static void rs_touch_token(struct store *base, const char *id, double last_used) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) return;
    op->kind = AOP_TOUCH;
    snprintf(op->u.touch.id, sizeof op->u.touch.id, "%s", id);
    op->u.touch.when = last_used;
    enqueue(RS(base), op);
}

static int rs_load_tokens(struct store *base, int (*cb)(void *ud, const struct store_token *tk), void *ud) {
    struct rs *s = RS(base);
    redisReply *ids;
    int rc = SCOUT_OK;
    pthread_mutex_lock(&s->sync_lock);
    ids = sync_cmd(s, "SMEMBERS scout:tokens");
    if (!ids || ids->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
    for (size_t i = 0; rc == SCOUT_OK && i < ids->elements; i++) {
        redisReply *h = sync_cmd(s, "HGETALL scout:token:%s", ids->element[i]->str);
        const char *hex = hash_field(h, "hash"), *name = hash_field(h, "name");
        struct store_token tk;
        size_t got = 0;
        memset(&tk, 0, sizeof tk);
        if (!h) rc = SCOUT_ESTORE;
        else if (hex && name &&
                 sodium_hex2bin(tk.hash, sizeof tk.hash, hex, strlen(hex), NULL, &got, NULL) == 0 && got == sizeof tk.hash) {
            snprintf(tk.id, sizeof tk.id, "%s", ids->element[i]->str);
            snprintf(tk.name, sizeof tk.name, "%s", name);
            tk.scope = (int)num_field(h, "scope", 0);
            tk.created = num_field(h, "created", 0);
            tk.expires = num_field(h, "expires", 0);
            tk.last_used = num_field(h, "last_used", 0);
            tk.revoked = num_field(h, "revoked", 0);
            tk.rotated = num_field(h, "rotated", 0);
            if (cb(ud, &tk)) rc = SCOUT_ERR;
        }
        sodium_memzero(tk.hash, sizeof tk.hash);
        if (h) freeReplyObject(h);
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (ids) freeReplyObject(ids);
    return rc;
}

static int rs_tokens_version(struct store *base, long *out) {
    struct rs *s = RS(base);
    int rc = SCOUT_ESTORE;
    pthread_mutex_lock(&s->sync_lock);
    redisReply *r = sync_cmd(s, "GET scout:tokens:version");
    if (r && r->type == REDIS_REPLY_NIL) {
        *out = 0;
        rc = SCOUT_OK;
    } else if (r && r->type == REDIS_REPLY_STRING) {
        *out = strtol(r->str, NULL, 10);
        rc = SCOUT_OK;
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (r) freeReplyObject(r);
    return rc;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void rs_render_metrics(struct store *base, struct metrics_text *t) {
    struct rs *s = RS(base);
    long qlen;
    int up;
    pthread_mutex_lock(&s->qlock);
    qlen = s->qlen;
    pthread_mutex_unlock(&s->qlock);
    pthread_mutex_lock(&s->sync_lock);
    up = s->sync.c != NULL;
    pthread_mutex_unlock(&s->sync_lock);
    up += atomic_load(&s->reader_up) + atomic_load(&s->writer_up);
    store_render_operations(t, ROP_NAMES, s->ops_ok, s->ops_err, ROP_COUNT);
    metrics_printf(t, "# HELP scout_store_commit_seconds Time of one synchronous Redis operation or one pipelined "
                      "batch of queued writes.\n# TYPE scout_store_commit_seconds histogram\n");
    metrics_histogram(t, "scout_store_commit_seconds", "", &s->latency);
    metrics_printf(t, "# HELP scout_store_pending_decisions Decision records queued and not yet written.\n"
                      "# TYPE scout_store_pending_decisions gauge\nscout_store_pending_decisions %ld\n",
                   atomic_load(&s->pending_decisions));
    metrics_printf(t, "# HELP scout_store_purged_decisions_total Expired decision records dropped from the indexes.\n"
                      "# TYPE scout_store_purged_decisions_total counter\nscout_store_purged_decisions_total %llu\n",
                   (unsigned long long)atomic_load(&s->purged));
    metrics_printf(t, "# HELP scout_redis_connections Live connections to Redis (request, writer, reader).\n"
                      "# TYPE scout_redis_connections gauge\nscout_redis_connections %d\n",
                   up);
    metrics_printf(t, "# HELP scout_store_pending_writes Writes queued for Redis and not yet written.\n"
                      "# TYPE scout_store_pending_writes gauge\nscout_store_pending_writes %ld\n", qlen);
    metrics_printf(t, "# HELP scout_store_dropped_writes_total Queued writes given up (queue full, or Redis away "
                      "at shutdown).\n# TYPE scout_store_dropped_writes_total counter\n"
                      "scout_store_dropped_writes_total %llu\n",
                   (unsigned long long)atomic_load(&s->writes_dropped));
    metrics_printf(t, "# HELP scout_store_events_read_total Reward events read back from the streams and learned.\n"
                      "# TYPE scout_store_events_read_total counter\nscout_store_events_read_total %llu\n",
                   (unsigned long long)atomic_load(&s->events_read));
    metrics_printf(t, "# HELP scout_store_settled_rewards_total Reward events made when a decision's reward window "
                      "ended (summed rewards or the default reward).\n"
                      "# TYPE scout_store_settled_rewards_total counter\nscout_store_settled_rewards_total %llu\n",
                   (unsigned long long)atomic_load(&s->settled));
}

static const struct store_ops redis_ops = {
    .name = "redis",
    .set_event_handler = rs_set_event_handler,
    .set_change_handler = rs_set_change_handler,
    .start = rs_start,
    .close = rs_close,
    .put_setting = rs_put_setting,
    .put_test = rs_put_test,
    .delete_test = rs_delete_test,
    .set_rollout = rs_set_rollout,
    .put_token = rs_put_token,
    .delete_token = rs_delete_token,
    .touch_token = rs_touch_token,
    .flush = rs_flush,
    .put_decision = rs_put_decision,
    .put_test_stats = rs_put_test_stats,
    .claim_assignment = rs_claim_assignment,
    .append_rewards = rs_append_rewards,
    .load_tests = rs_load_tests,
    .load_arm_predictions = rs_load_arm_predictions,
    .load_rewards = rs_load_rewards,
    .load_assignments = rs_load_assignments,
    .get_setting = rs_get_setting,
    .count_decisions = rs_count_decisions,
    .scan_decisions = rs_scan_decisions,
    .scan_outcomes = rs_scan_outcomes,
    .decision_counts = rs_decision_counts,
    .load_tokens = rs_load_tokens,
    .tokens_version = rs_tokens_version,
    .render_metrics = rs_render_metrics,
    .ping = rs_ping,
};
