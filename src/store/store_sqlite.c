/* store_sqlite.c — the embedded store: tests, reward events, decision records and settings in
 * one SQLite database (WAL) in the data directory.
 * Rewards are appended, never updated. One writer thread owns the write connection: callers
 * push operations onto a lock-free stack, the writer takes them all at once, runs them in one
 * transaction and commits (group commit: one WAL write — one fsync with SCOUT_SYNC=full — for
 * many requests), then wakes the callers that wait. With synchronous=NORMAL (the default) a
 * commit survives a crash or SIGKILL of scoutd; with FULL it also survives power loss.
 * Reads (analytics, health) use a second connection, which WAL lets run beside the writer; a
 * third, the checkpointer thread's, copies the WAL into the database beside it too, so no
 * commit waits for a checkpoint.
 * Expired decision records are purged by the writer in slices of PURGE_SLICE rows.
 * A decision of a test with a reward wait time is settled by the writer when the wait is over
 * (at most SETTLE_SLICE per step): its summed rewards (aggregation "sum") or the test's default
 * reward (no reward came) become one reward event, committed and then handed to the event
 * handler, exactly like the events of an update request.
 * Learned state is the fold of a test's events, with one exception: a test may have a snapshot
 * (table snapshots: its state as bytes and the seq of the last reward event it covers), made by
 * an import from another installation or by the restore of a Redis backup whose events were
 * trimmed. Loading puts the snapshot back and folds only the test's events after that seq; the
 * events it covers stay as history. The store never takes snapshots of its own. */
#include "store/store_backend.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "obs/log.h"
#include "obs/metrics.h"
#include "util/util.h"

#define SCHEMA_VERSION 1
#define PURGE_SLICE 1000          /* rows per purge step: bounded work between batches */
#define PURGE_INTERVAL 1.0        /* seconds between purge steps when nothing is left over */
/* Decision records queued and not yet committed. Past this, a fetch waits for its record's
 * commit: the queue (and scoutd's memory) stays bounded when decisions arrive faster than the
 * disk takes them, at the price of latency only under that overload. */
#define MAX_PENDING_DECISIONS 65536
#define BATCH_MAX 2048            /* ops per transaction */
#define SETTLE_SLICE 1000         /* decisions settled per step */
#define SETTLE_INTERVAL 0.25      /* seconds between settle steps when nothing is left over */
/* After a batch that nobody waited for (decision records, counters), the writer gathers more
 * for up to this long before the next commit, unless a caller starts waiting: a commit writes
 * every page it changed, so fewer, larger batches write far fewer pages per record. */
#define GATHER_INTERVAL 0.005
#define WRITER_CACHE_KIB 16384    /* the writer's page cache: the decision indexes' hot pages */
/* WAL pages written since the last checkpoint after which the checkpointer thread copies the
 * log into the database (SQLite's own automatic checkpoint would run inside a commit of the
 * writer, making that batch's callers wait for it). The WAL file is cut back to WAL_KEEP_BYTES
 * when it restarts. */
#define CHECKPOINT_PAGES 1000
/* The log restarts (from its beginning) only at a write that finds it wholly copied, which a
 * checkpointer racing a busy writer never leaves behind; past this many pages the writer copies
 * the last frames itself, between batches, so that its next write restarts the log. 15,000
 * frames of a 4 KiB page and its 24-byte header: the file stays under WAL_KEEP_BYTES. */
#define WAL_RESTART_PAGES 15000
#define RESTART_RETRY 0.1         /* seconds */
#define CHECKPOINT_INTERVAL 1.0   /* seconds: a smaller log is checkpointed this often anyway */
#define WAL_KEEP_BYTES (64 * 1024 * 1024)

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tests("
    "  id TEXT PRIMARY KEY, definition TEXT NOT NULL, created REAL NOT NULL,"
    "  rollout INTEGER NOT NULL DEFAULT -1, predictions INTEGER NOT NULL DEFAULT 0,"
    "  last_prediction REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS arm_predictions("
    "  test_id TEXT NOT NULL, variant INTEGER NOT NULL, predictions INTEGER NOT NULL,"
    "  PRIMARY KEY(test_id, variant)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rewards("
    "  seq INTEGER PRIMARY KEY, test_id TEXT NOT NULL, variant INTEGER NOT NULL,"
    "  reward REAL NOT NULL, request_id TEXT, context TEXT, ts REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rewards_by_test ON rewards(test_id, seq);"
    "CREATE INDEX IF NOT EXISTS rewards_by_time ON rewards(test_id, ts);"
    "CREATE TABLE IF NOT EXISTS decisions("
    "  test_id TEXT NOT NULL, request_id TEXT NOT NULL, variant INTEGER NOT NULL,"
    "  propensity REAL NOT NULL, explored INTEGER NOT NULL, context TEXT,"
    "  created REAL NOT NULL, expires REAL NOT NULL, UNIQUE(test_id, request_id));"
    "CREATE INDEX IF NOT EXISTS decisions_by_expiry ON decisions(expires);"
    "CREATE INDEX IF NOT EXISTS decisions_by_test_time ON decisions(test_id, created, variant, explored);"
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS assignments("
    "  test_id TEXT NOT NULL, user_key TEXT NOT NULL, variant INTEGER NOT NULL, propensity REAL NOT NULL,"
    "  created REAL NOT NULL, PRIMARY KEY(test_id, user_key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS tokens("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, scope INTEGER NOT NULL, hash BLOB NOT NULL,"
    "  created REAL NOT NULL, expires REAL NOT NULL, last_used REAL NOT NULL,"
    "  revoked REAL NOT NULL, rotated REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshots("
    "  test_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL, t REAL NOT NULL,"
    "  format INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('tokens_version', '0');";

enum op_kind {
    OP_DECISION, OP_REWARDS, OP_PUT_TEST, OP_DELETE_TEST, OP_ROLLOUT, OP_SETTING, OP_FLUSH, OP_TOKEN, OP_TOKEN_DELETE,
    OP_ASSIGN, OP_TEST_STATS, OP_TOKEN_TOUCH, OP_IMPORT, OP_COUNT
};

/* A queued write. Waiting ops live on the caller's stack; decisions are malloc'd and freed
 * by the writer. */
struct op {
    enum op_kind kind;
    struct op *next;
    int status;
    int wait;                 /* someone waits: sleeping on `done`, or for `then` */
    sem_t done;
    store_done_fn then;       /* set: an asynchronous op (malloc'd); then(then_arg, status) after commit */
    void *then_arg;
    const char *test_id;
    union {
        struct store_decision *decision;
        struct store_assignment *assignment;
        char *stats;          /* OP_TEST_STATS: malloc'd JSON text */
        struct {
            struct store_reward *ev;
            int n;
        } rewards;
        struct {
            const char *definition;
            double created;
        } put;
        long rollout;
        struct {
            const char *key, *value;
        } setting;
        const struct store_token *token;
        struct {
            char id[17];
            double when;
        } touch;
        struct {
            const struct store_record *recs;
            size_t n;
            char *err;
            size_t errlen;
        } import;
    } u;
};

enum stmt_id {
    ST_INSERT_DECISION, ST_FIND_DECISION, ST_TEST_EXISTS, ST_INSERT_REWARD,
    ST_COUNT_PREDICTIONS, ST_ARM_PREDICTIONS, ST_PUT_TEST, ST_ROLLOUT, ST_SETTING, ST_PURGE, ST_PUT_TOKEN,
    ST_TOKENS_VERSION, ST_TOUCH_TOKEN, ST_DELETE_TOKEN, ST_DECISION_REWARDED, ST_TO_SETTLE, ST_SETTLED, ST_ASSIGN, ST_TEST_STATS,
    /* Transaction control, prepared once: parsing "COMMIT" again for every batch showed in profiles. */
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO, ST_COUNT
};

static const char *STMT_SQL[ST_COUNT] = {
    [ST_INSERT_DECISION] = "INSERT OR REPLACE INTO decisions(test_id, request_id, variant, propensity,"
                           " explored, context, created, expires, settle_at, aggregate, default_reward, model_version)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_FIND_DECISION] = "SELECT variant, context, rowid, aggregate, rewards, settled, settle_at FROM decisions"
                         " WHERE test_id=? AND request_id=? AND expires>=?",
    [ST_DECISION_REWARDED] = "UPDATE decisions SET rewards=rewards+1, reward_sum=reward_sum+? WHERE rowid=?",
    [ST_TO_SETTLE] = "SELECT rowid, test_id, request_id, variant, context, aggregate, rewards, reward_sum,"
                     " default_reward FROM decisions WHERE settled=0 AND settle_at>0 AND settle_at<=?"
                     " ORDER BY settle_at LIMIT ?",
    [ST_SETTLED] = "UPDATE decisions SET settled=1 WHERE rowid=?",
    [ST_TEST_STATS] = "UPDATE tests SET stats=? WHERE id=?",
    [ST_ASSIGN] = "INSERT OR IGNORE INTO assignments(test_id, user_key, variant, propensity, created) VALUES(?,?,?,?,?)",
    [ST_TEST_EXISTS] = "SELECT 1 FROM tests WHERE id=?",
    [ST_INSERT_REWARD] = "INSERT INTO rewards(test_id, variant, reward, request_id, context, ts) VALUES(?,?,?,?,?,?)",
    [ST_COUNT_PREDICTIONS] = "UPDATE tests SET predictions=predictions+?, last_prediction=max(last_prediction, ?) WHERE id=?",
    [ST_ARM_PREDICTIONS] = "INSERT INTO arm_predictions(test_id, variant, predictions) VALUES(?,?,?)"
                           " ON CONFLICT(test_id, variant) DO UPDATE SET predictions=predictions+excluded.predictions",
    [ST_PUT_TEST] = "INSERT INTO tests(id, definition, created) VALUES(?,?,?)",
    [ST_ROLLOUT] = "UPDATE tests SET rollout=? WHERE id=?",
    [ST_SETTING] = "INSERT INTO settings(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    [ST_PURGE] = "DELETE FROM decisions WHERE rowid IN (SELECT rowid FROM decisions WHERE expires<?"
                 " AND (settled=1 OR settle_at=0) LIMIT ?)",
    [ST_PUT_TOKEN] = "INSERT OR REPLACE INTO tokens(id, name, scope, hash, created, expires, last_used, revoked, rotated)"
                     " VALUES(?,?,?,?,?,?,?,?,?)",
    [ST_TOKENS_VERSION] = "UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='tokens_version'",
    [ST_TOUCH_TOKEN] = "UPDATE tokens SET last_used=max(last_used, ?) WHERE id=?",
    [ST_DELETE_TOKEN] = "DELETE FROM tokens WHERE id=?",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
};

/* Statements of the readers' connection that run once per test of a listing (GET /api/models
 * asks for the decision counts of every test): prepared once, used under rlock. */
enum rstmt_id { RST_DECISION_COUNTS, RST_REWARD_COUNTS, RST_COUNT };

static const char *RSTMT_SQL[RST_COUNT] = {
    [RST_DECISION_COUNTS] = "SELECT CAST((created-?1)/?2 AS INTEGER) AS b, variant, count(*), sum(explored)"
                            " FROM decisions WHERE test_id=?3 AND created>=?1 GROUP BY b, variant",
    [RST_REWARD_COUNTS] = "SELECT CAST((ts-?1)/?2 AS INTEGER) AS b, variant, count(*), sum(reward)"
                          " FROM rewards WHERE test_id=?3 AND ts>=?1 GROUP BY b, variant",
};

struct sq {
    struct store base;            /* first: a struct store * is a struct sq * */
    sqlite3 *wdb;                 /* writer's connection (used by the loader before start) */
    sqlite3 *rdb;                 /* readers' connection */
    sqlite3 *cdb;                 /* the checkpointer's connection */
    bool sync_full;
    char *dir;                    /* the data directory (backups stage their copy there) */
    pthread_mutex_t rlock;        /* serialises use of rdb */
    sqlite3_stmt *st[ST_COUNT];
    sqlite3_stmt *rst[RST_COUNT];  /* on rdb, under rlock */
    _Atomic(struct op *) head;    /* lock-free stack of queued ops (newest first) */
    sem_t wake;
    _Atomic int stopping;
    _Atomic long pending_decisions;
    _Atomic int waiters;          /* callers queued and sleeping until their op is committed */
    int started;
    pthread_t writer;
    pthread_t checkpointer;
    sem_t checkpoint;             /* posted when CHECKPOINT_PAGES were written since the last checkpoint */
    _Atomic int checkpoint_asked;
    _Atomic int checkpointed;     /* the log's length in pages at the last checkpoint */
    bool restart_log;             /* writer only: the log is past WAL_RESTART_PAGES */
    double restart_after;         /* writer only: when to try again after a reader held it up */
    pthread_mutex_t ckpt_lock;    /* one checkpoint at a time: the checkpointer's or the writer's */
    int checkpointer_started;
    double last_purge;
    int purge_backlog;
    double last_settle;
    int settle_backlog;
    store_event_fn on_event;      /* receives every event after its commit */
    void *event_arg;
    struct store_snapshots snap;  /* restore: hands stored snapshots back when loading */
    /* Figures for /metrics, updated by the writer. */
    _Atomic uint64_t ops_done[OP_COUNT];
    _Atomic uint64_t ops_failed[OP_COUNT];
    _Atomic uint64_t purged;
    _Atomic uint64_t settled;
    struct histogram commit_latency;
};

static const char *OP_NAMES[OP_COUNT] = {
    [OP_DECISION] = "decision", [OP_REWARDS] = "rewards",   [OP_PUT_TEST] = "put_test",
    [OP_DELETE_TEST] = "delete_test", [OP_ROLLOUT] = "rollout", [OP_SETTING] = "setting",
    [OP_FLUSH] = "flush", [OP_TOKEN] = "token", [OP_TOKEN_DELETE] = "token_delete", [OP_TOKEN_TOUCH] = "token_touch",
    [OP_IMPORT] = "import",
    [OP_ASSIGN] = "assignment", [OP_TEST_STATS] = "test_stats",
};

/* Per-batch aggregation of decision counts, so a batch of N decisions costs N inserts and
 * only one counter update per (test, variant). */
struct tally {
    const char *test_id;
    long variant;
    int64_t n;
    double last;
};

static int exec_sql(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return SCOUT_ESTORE;
    }
    return SCOUT_OK;
}

static int open_db(const char *path, sqlite3 **db, bool sync_full) {
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: cannot open %s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        return SCOUT_ESTORE;
    }
    sqlite3_busy_timeout(*db, 5000);
    if (exec_sql(*db, "PRAGMA journal_mode=WAL") != SCOUT_OK) return SCOUT_ESTORE;
    return exec_sql(*db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

/* Columns added after the first schema: added to older databases on open. */
static const char *const DECISION_COLUMNS[][2] = {
    {"settle_at", "REAL NOT NULL DEFAULT 0"},    {"aggregate", "INTEGER NOT NULL DEFAULT 0"},
    {"default_reward", "REAL"},                  {"rewards", "INTEGER NOT NULL DEFAULT 0"},
    {"reward_sum", "REAL NOT NULL DEFAULT 0"},   {"settled", "INTEGER NOT NULL DEFAULT 0"},
    {"model_version", "INTEGER NOT NULL DEFAULT 0"},
};

static int migrate(sqlite3 *db) {
    char sql[256];
    sqlite3_stmt *q = NULL;
    int have_stats;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('tests') WHERE name='stats'", -1, &q, NULL) != SQLITE_OK)
        return SCOUT_ESTORE;
    have_stats = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    if (!have_stats && exec_sql(db, "ALTER TABLE tests ADD COLUMN stats TEXT") != SCOUT_OK) return SCOUT_ESTORE;
    for (size_t i = 0; i < sizeof DECISION_COLUMNS / sizeof DECISION_COLUMNS[0]; i++) {
        sqlite3_stmt *st = NULL;
        int have;
        snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('decisions') WHERE name='%s'", DECISION_COLUMNS[i][0]);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return SCOUT_ESTORE;
        have = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (have) continue;
        snprintf(sql, sizeof sql, "ALTER TABLE decisions ADD COLUMN %s %s", DECISION_COLUMNS[i][0], DECISION_COLUMNS[i][1]);
        if (exec_sql(db, sql) != SCOUT_OK) return SCOUT_ESTORE;
    }
    /* decisions_by_test_time replaced decisions_by_test(test_id, created): it also covers the
     * counts of the analytics, which then read no table rows (a test's records are spread over
     * the table, interleaved with every other test's). */
    if (exec_sql(db, "DROP INDEX IF EXISTS decisions_by_test") != SCOUT_OK) return SCOUT_ESTORE;
    return exec_sql(db, "CREATE INDEX IF NOT EXISTS decisions_to_settle ON decisions(settle_at)"
                        " WHERE settled=0 AND settle_at>0");
}

static const struct store_ops sqlite_ops;
static void sq_close(struct store *base);

int store_open_sqlite(struct store **out, const char *dir, bool sync_full) {
    char path[4096];
    struct sq *s = calloc(1, sizeof *s);
    if (!s) return SCOUT_ENOMEM;
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->rlock, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    sem_init(&s->wake, 0, 0);
    sem_init(&s->checkpoint, 0, 0);
    s->sync_full = sync_full;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_msg(LOG_ERROR, "store: cannot create data directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/scout.db", dir);
    if (!(s->dir = strdup(dir))) goto fail;
    if (open_db(path, &s->wdb, sync_full) != SCOUT_OK) goto fail;
    {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", WRITER_CACHE_KIB);
        if (exec_sql(s->wdb, sql) != SCOUT_OK) goto fail;
        snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%d", WAL_KEEP_BYTES);
        if (exec_sql(s->wdb, sql) != SCOUT_OK) goto fail;
    }
    if (exec_sql(s->wdb, SCHEMA) != SCOUT_OK || migrate(s->wdb) != SCOUT_OK) goto fail;
    if (exec_sql(s->wdb, "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1')") != SCOUT_OK) goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->wdb, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            log_msg(LOG_ERROR, "store: %s", sqlite3_errmsg(s->wdb));
            goto fail;
        }
    }
    if (open_db(path, &s->rdb, sync_full) != SCOUT_OK) goto fail;
    for (int i = 0; i < RST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->rdb, RSTMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->rst[i], NULL) != SQLITE_OK) {
            log_msg(LOG_ERROR, "store: %s", sqlite3_errmsg(s->rdb));
            goto fail;
        }
    }
    s->last_purge = s->last_settle = util_monotonic();
    *out = &s->base;
    return SCOUT_OK;
fail:
    sq_close(&s->base);
    return SCOUT_ESTORE;
}

/* ---- the writer ---------------------------------------------------------------------- */

static void push_op(struct sq *s, struct op *op) {
    struct op *old = atomic_load(&s->head);
    int wait = op->wait;   /* read first: once pushed, an op nobody waits for is the writer's to free */
    do {
        op->next = old;
    } while (!atomic_compare_exchange_weak(&s->head, &old, op));
    /* The stack was empty: the writer may be asleep. A waiting op also ends a gathering pause. */
    if (!old || wait) sem_post(&s->wake);
}

/* Queues op and, for a waiting op, sleeps until the writer committed it. */
static int submit(struct sq *s, struct op *op) {
    int rc;
    if (!s->started || atomic_load(&s->stopping)) return SCOUT_ECLOSED;
    op->wait = 1;
    sem_init(&op->done, 0, 0);
    atomic_fetch_add(&s->waiters, 1);
    push_op(s, op);
    while (sem_wait(&op->done) != 0 && errno == EINTR) {
    }
    rc = op->status;
    sem_destroy(&op->done);
    return rc;
}

static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SCOUT_OK : SCOUT_ESTORE;
}

static void tally_add(struct tally **t, size_t *n, size_t *cap, const char *test_id, long variant, double ts) {
    for (size_t i = 0; i < *n; i++) {
        if ((*t)[i].variant == variant && !strcmp((*t)[i].test_id, test_id)) {
            (*t)[i].n++;
            if (ts > (*t)[i].last) (*t)[i].last = ts;
            return;
        }
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct tally *g = realloc(*t, nc * sizeof *g);
        if (!g) return;   /* the counter misses a few decisions; the records are still stored */
        *t = g;
        *cap = nc;
    }
    (*t)[(*n)++] = (struct tally){test_id, variant, 1, ts};
}

static int do_decision(struct sq *s, struct store_decision *d) {
    sqlite3_stmt *st = s->st[ST_INSERT_DECISION];
    sqlite3_bind_text(st, 1, d->test_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->variant_id);
    sqlite3_bind_double(st, 4, d->propensity);
    sqlite3_bind_int(st, 5, d->explored);
    if (d->context) sqlite3_bind_text(st, 6, d->context, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 7, d->created);
    sqlite3_bind_double(st, 8, d->expires);
    sqlite3_bind_double(st, 9, d->settle_at);
    sqlite3_bind_int(st, 10, d->aggregate);
    if (d->has_default) sqlite3_bind_double(st, 11, d->default_reward);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)d->model_version);
    return step_done(st);
}

/* Runs one prepared transaction-control statement (ST_BEGIN ... ST_ROLLBACK_TO) on the writer. */
static int tx(struct sq *s, enum stmt_id id) {
    sqlite3_stmt *st = s->st[id];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return SCOUT_OK;
    log_msg(LOG_ERROR, "store: %s: %s", STMT_SQL[id], sqlite3_errmsg(s->wdb));
    return SCOUT_ESTORE;
}

static int test_exists(struct sq *s, const char *id) {
    sqlite3_stmt *st = s->st[ST_TEST_EXISTS];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW;
}

/* Resolves request ids and inserts the events of one update request, all or nothing. */
static int do_rewards(struct sq *s, struct op *op) {
    struct store_reward *ev = op->u.rewards.ev;
    double now = util_now();
    if (!test_exists(s, op->test_id)) return SCOUT_ENOTFOUND;
    if (tx(s, ST_SAVEPOINT) != SCOUT_OK) return SCOUT_ESTORE;
    for (int i = 0; i < op->u.rewards.n; i++) {
        struct store_reward *r = &ev[i];
        r->ts = now;
        if (r->request_id) {
            sqlite3_stmt *st = s->st[ST_FIND_DECISION];
            sqlite3_bind_text(st, 1, op->test_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, r->request_id, -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 3, now);
            if (sqlite3_step(st) == SQLITE_ROW) {
                int64_t rowid = sqlite3_column_int64(st, 2);
                int agg = sqlite3_column_int(st, 3), before = sqlite3_column_int(st, 4);
                double settle_at = sqlite3_column_double(st, 6);
                r->found = 1;
                if (r->variant_id < 0) r->variant_id = (long)sqlite3_column_int64(st, 0);
                if (!r->context && !r->skip_stored_context && sqlite3_column_type(st, 1) == SQLITE_TEXT)
                    r->context = strdup((const char *)sqlite3_column_text(st, 1));
                /* The decision's reward window decides what this reward does. */
                if (sqlite3_column_int(st, 5) || (settle_at > 0 && now >= settle_at)) r->outcome = STORE_REWARD_LATE;
                else if (agg == STORE_AGG_FIRST && before > 0) r->outcome = STORE_REWARD_DUPLICATE;
                else if (agg == STORE_AGG_SUM) r->outcome = STORE_REWARD_DEFERRED;
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
                if (r->outcome == STORE_REWARD_APPLIED || r->outcome == STORE_REWARD_DEFERRED) {
                    st = s->st[ST_DECISION_REWARDED];
                    sqlite3_bind_double(st, 1, r->reward);
                    sqlite3_bind_int64(st, 2, rowid);
                    if (step_done(st) != SCOUT_OK) goto fail;
                }
                if (r->outcome != STORE_REWARD_APPLIED) continue;
            } else {
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
            }
        }
        if (r->variant_id < 0) continue;
        sqlite3_stmt *st = s->st[ST_INSERT_REWARD];
        sqlite3_bind_text(st, 1, op->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->variant_id);
        sqlite3_bind_double(st, 3, r->reward);
        if (r->request_id) sqlite3_bind_text(st, 4, r->request_id, -1, SQLITE_STATIC);
        if (r->context) sqlite3_bind_text(st, 5, r->context, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 6, now);
        if (step_done(st) != SCOUT_OK) goto fail;
        r->applied = 1;
    }
    return tx(s, ST_RELEASE);
fail:
    tx(s, ST_ROLLBACK_TO);
    tx(s, ST_RELEASE);
    for (int j = 0; j < op->u.rewards.n; j++) {
        ev[j].applied = 0;
        ev[j].outcome = STORE_REWARD_APPLIED;
    }
    return SCOUT_ESTORE;
}

/* One settle step: decisions whose reward window closed become reward events (their summed
 * rewards, or the default reward when none came) in one transaction; the handler sees them
 * after the commit, in order. */
static void settle_step(struct sq *s) {
    struct settled {
        char test_id[SCOUT_ID_LEN + 1];
        long variant;
        double reward;
        char *context;
    } *out = NULL;
    int n = 0, rows = 0, ok = tx(s, ST_BEGIN) == SCOUT_OK;
    double now = util_now();
    sqlite3_stmt *q = s->st[ST_TO_SETTLE];
    s->last_settle = util_monotonic();
    if (!ok || !(out = calloc(SETTLE_SLICE, sizeof *out))) goto done;
    sqlite3_bind_double(q, 1, now);
    sqlite3_bind_int(q, 2, SETTLE_SLICE);
    while (ok && sqlite3_step(q) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(q, 0);
        int agg = sqlite3_column_int(q, 5), got = sqlite3_column_int(q, 6);
        int event = 0;
        double reward = 0;
        rows++;
        if (agg == STORE_AGG_SUM && got > 0) {
            event = 1;
            reward = sqlite3_column_double(q, 7);
        } else if (got == 0 && sqlite3_column_type(q, 8) != SQLITE_NULL) {
            event = 1;
            reward = sqlite3_column_double(q, 8);
        }
        if (event) {
            struct settled *e = &out[n];
            sqlite3_stmt *ins = s->st[ST_INSERT_REWARD];
            snprintf(e->test_id, sizeof e->test_id, "%s", (const char *)sqlite3_column_text(q, 1));
            e->variant = (long)sqlite3_column_int64(q, 3);
            e->reward = reward;
            if (sqlite3_column_type(q, 4) == SQLITE_TEXT) e->context = strdup((const char *)sqlite3_column_text(q, 4));
            sqlite3_bind_text(ins, 1, e->test_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, e->variant);
            sqlite3_bind_double(ins, 3, reward);
            sqlite3_bind_text(ins, 4, (const char *)sqlite3_column_text(q, 2), -1, SQLITE_TRANSIENT);
            if (e->context) sqlite3_bind_text(ins, 5, e->context, -1, SQLITE_STATIC);
            sqlite3_bind_double(ins, 6, now);
            ok = step_done(ins) == SCOUT_OK;
            n++;
        }
        sqlite3_bind_int64(s->st[ST_SETTLED], 1, rowid);
        if (ok) ok = step_done(s->st[ST_SETTLED]) == SCOUT_OK;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
done:
    if (ok && tx(s, ST_COMMIT) == SCOUT_OK) {
        s->settle_backlog = rows == SETTLE_SLICE;
        for (int i = 0; i < n; i++)
            if (s->on_event) s->on_event(s->event_arg, out[i].test_id, out[i].variant, out[i].reward, out[i].context, now);
        atomic_fetch_add(&s->settled, (uint64_t)n);
    } else {
        tx(s, ST_ROLLBACK);
        log_msg(LOG_ERROR, "store: settling decisions failed: %s", sqlite3_errmsg(s->wdb));
    }
    for (int i = 0; i < n; i++) free(out[i].context);
    free(out);
}

/* One process owns the database: nothing changes behind its back (tokens, which the CLI may
 * change, are followed through store_tokens_version). */
static void sq_set_change_handler(struct store *base, store_change_fn fn, void *arg) {
    (void)base;
    (void)fn;
    (void)arg;
}

static void sq_set_snapshots(struct store *base, const struct store_snapshots *snap) {
    ((struct sq *)base)->snap = *snap;
}

static void sq_set_event_handler(struct store *base, store_event_fn fn, void *arg) {
    struct sq *s = (struct sq *)base;
    s->on_event = fn;
    s->event_arg = arg;
}

static int do_delete(struct sq *s, const char *id) {
    static const char *sql[] = {"DELETE FROM rewards WHERE test_id=?", "DELETE FROM decisions WHERE test_id=?",
                                "DELETE FROM snapshots WHERE test_id=?",
                                "DELETE FROM assignments WHERE test_id=?",
                                "DELETE FROM arm_predictions WHERE test_id=?", "DELETE FROM tests WHERE id=?"};
    int rc = SCOUT_OK;
    if (!test_exists(s, id)) return SCOUT_ENOTFOUND;
    for (size_t i = 0; i < sizeof sql / sizeof *sql && rc == SCOUT_OK; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->wdb, sql[i], -1, &st, NULL) != SQLITE_OK) return SCOUT_ESTORE;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
        sqlite3_finalize(st);
    }
    return rc;
}


/* Binds a token's columns, in the order of ST_PUT_TOKEN (id, name, scope, hash, created,
 * expires, last_used, revoked, rotated). */
static void bind_token(sqlite3_stmt *st, const struct store_token *tk) {
    sqlite3_bind_text(st, 1, tk->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tk->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, tk->scope);
    sqlite3_bind_blob(st, 4, tk->hash, sizeof tk->hash, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, tk->created);
    sqlite3_bind_double(st, 6, tk->expires);
    sqlite3_bind_double(st, 7, tk->last_used);
    sqlite3_bind_double(st, 8, tk->revoked);
    sqlite3_bind_double(st, 9, tk->rotated);
}

static int do_import(struct sq *s, struct op *op);

static int do_op(struct sq *s, struct op *op, struct tally **t, size_t *nt, size_t *ct) {
    sqlite3_stmt *st;
    switch (op->kind) {
    case OP_DECISION: {
        struct store_decision *d = op->u.decision;
        int rc = do_decision(s, d);
        if (rc == SCOUT_OK) tally_add(t, nt, ct, d->test_id, d->variant_id, d->created);
        return rc;
    }
    case OP_REWARDS:
        return do_rewards(s, op);
    case OP_PUT_TEST:
        st = s->st[ST_PUT_TEST];
        sqlite3_bind_text(st, 1, op->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->u.put.definition, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, op->u.put.created);
        return step_done(st);
    case OP_DELETE_TEST:
        return do_delete(s, op->test_id);
    case OP_ROLLOUT:
        if (!test_exists(s, op->test_id)) return SCOUT_ENOTFOUND;
        st = s->st[ST_ROLLOUT];
        sqlite3_bind_int64(st, 1, op->u.rollout);
        sqlite3_bind_text(st, 2, op->test_id, -1, SQLITE_STATIC);
        return step_done(st);
    case OP_SETTING:
        st = s->st[ST_SETTING];
        sqlite3_bind_text(st, 1, op->u.setting.key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->u.setting.value, -1, SQLITE_STATIC);
        return step_done(st);
    case OP_FLUSH:
        return SCOUT_OK;
    case OP_TEST_STATS:
        st = s->st[ST_TEST_STATS];
        sqlite3_bind_text(st, 1, op->u.stats, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->test_id, -1, SQLITE_STATIC);
        return step_done(st);
    case OP_ASSIGN: {
        const struct store_assignment *a = op->u.assignment;
        st = s->st[ST_ASSIGN];
        sqlite3_bind_text(st, 1, a->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, a->variant_id);
        sqlite3_bind_double(st, 4, a->propensity);
        sqlite3_bind_double(st, 5, a->created);
        return step_done(st);
    }
    case OP_TOKEN: {
        const struct store_token *tk = op->u.token;
        st = s->st[ST_PUT_TOKEN];
        bind_token(st, tk);
        if (step_done(st) != SCOUT_OK) return SCOUT_ESTORE;
        return step_done(s->st[ST_TOKENS_VERSION]);
    }
    case OP_TOKEN_DELETE:
        st = s->st[ST_DELETE_TOKEN];
        sqlite3_bind_text(st, 1, op->test_id, -1, SQLITE_STATIC);
        if (step_done(st) != SCOUT_OK) return SCOUT_ESTORE;
        return step_done(s->st[ST_TOKENS_VERSION]);
    case OP_TOKEN_TOUCH:
        st = s->st[ST_TOUCH_TOKEN];
        sqlite3_bind_double(st, 1, op->u.touch.when);
        sqlite3_bind_text(st, 2, op->u.touch.id, -1, SQLITE_STATIC);
        return step_done(st);
    case OP_IMPORT:
        return do_import(s, op);
    case OP_COUNT:
        break;
    }
    return SCOUT_ERR;
}

static int write_tallies(struct sq *s, struct tally *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s->st[ST_ARM_PREDICTIONS];
        sqlite3_bind_text(st, 1, t[i].test_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, t[i].variant);
        sqlite3_bind_int64(st, 3, t[i].n);
        if (step_done(st) != SCOUT_OK) return SCOUT_ESTORE;
        st = s->st[ST_COUNT_PREDICTIONS];
        sqlite3_bind_int64(st, 1, t[i].n);
        sqlite3_bind_double(st, 2, t[i].last);
        sqlite3_bind_text(st, 3, t[i].test_id, -1, SQLITE_STATIC);
        if (step_done(st) != SCOUT_OK) return SCOUT_ESTORE;
    }
    return SCOUT_OK;
}

static void run_batch(struct sq *s, struct op *ops) {
    struct tally *t = NULL;
    size_t nt = 0, ct = 0;
    double started = util_monotonic();
    int commit_rc = tx(s, ST_BEGIN);
    for (struct op *op = ops; op; op = op->next) {
        op->status = commit_rc == SCOUT_OK ? do_op(s, op, &t, &nt, &ct) : commit_rc;
        if (op->kind == OP_DECISION && op->status != SCOUT_OK)
            log_msg(LOG_ERROR, "store: a decision record was not stored: %s", sqlite3_errmsg(s->wdb));
    }
    if (commit_rc == SCOUT_OK && write_tallies(s, t, nt) != SCOUT_OK)
        log_msg(LOG_ERROR, "store: decision counters not updated: %s", sqlite3_errmsg(s->wdb));
    if (commit_rc == SCOUT_OK) commit_rc = tx(s, ST_COMMIT);
    if (commit_rc != SCOUT_OK) {
        tx(s, ST_ROLLBACK);
        log_msg(LOG_ERROR, "store: a batch failed to commit; its requests get an error");
    }
    free(t);
    histogram_observe(&s->commit_latency, util_monotonic() - started);
    for (struct op *op = ops, *next; op; op = next) {
        next = op->next;   /* a woken caller may free its op at once */
        if (commit_rc != SCOUT_OK) op->status = SCOUT_ESTORE;
        atomic_fetch_add(op->status == SCOUT_OK ? &s->ops_done[op->kind] : &s->ops_failed[op->kind], 1);
        if (op->kind == OP_REWARDS && op->status == SCOUT_OK && s->on_event) {
            const struct store_reward *ev = op->u.rewards.ev;
            for (int i = 0; i < op->u.rewards.n; i++)
                if (ev[i].applied)
                    s->on_event(s->event_arg, op->test_id, ev[i].variant_id, ev[i].reward, ev[i].context, ev[i].ts);
        }
        if (op->kind == OP_DECISION) atomic_fetch_sub(&s->pending_decisions, 1);
        if (op->wait) {
            atomic_fetch_sub(&s->waiters, 1);
            if (op->then) {
                store_done_fn then = op->then;
                void *arg = op->then_arg;
                int status = op->status;
                free(op);
                then(arg, status);
            } else {
                sem_post(&op->done);
            }
            continue;
        }
        if (op->kind == OP_DECISION) {
            free(op->u.decision->context);
            free(op->u.decision);
        }
        if (op->kind == OP_ASSIGN) free(op->u.assignment);
        if (op->kind == OP_TEST_STATS) {
            free((char *)op->test_id);
            free(op->u.stats);
        }
        free(op);   /* every op nobody waits for was malloc'd by its producer */
    }
}

/* One bounded purge step of expired decision records. */
static void purge_step(struct sq *s) {
    sqlite3_stmt *st = s->st[ST_PURGE];
    sqlite3_bind_double(st, 1, util_now());
    sqlite3_bind_int(st, 2, PURGE_SLICE);
    if (step_done(st) != SCOUT_OK) {
        log_msg(LOG_ERROR, "store: purge failed: %s", sqlite3_errmsg(s->wdb));
        return;
    }
    s->purge_backlog = sqlite3_changes(s->wdb) == PURGE_SLICE;
    atomic_fetch_add(&s->purged, (uint64_t)sqlite3_changes(s->wdb));
    s->last_purge = util_monotonic();
}

/* Called by SQLite after each commit of the writer, with the pages now in the WAL (replaces
 * the automatic checkpoint). The log only grows until it restarts, so what counts is what was
 * written since the last checkpoint: asking on the log's length alone would run a checkpoint
 * (two fsyncs) after every commit once the log is long. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages) {
    struct sq *s = arg;
    (void)db;
    (void)name;
    int done = atomic_load(&s->checkpointed);
    int fresh = pages >= done ? pages - done : pages;   /* shorter: the log has restarted */
    if (fresh >= CHECKPOINT_PAGES && !atomic_exchange(&s->checkpoint_asked, 1)) sem_post(&s->checkpoint);
    if (pages >= WAL_RESTART_PAGES) s->restart_log = true;
    return SQLITE_OK;
}

/* Writer, between batches: copies what the checkpointer has not yet copied, so that the next
 * write finds the log complete and restarts it. A reader still on an old snapshot (a backup, a
 * long scan) holds the copy back: then the writer tries again RESTART_RETRY later, not after
 * every batch (each try syncs the files). */
static void restart_log(struct sq *s) {
    int log = 0, copied = 0;
    if (util_monotonic() < s->restart_after) return;
    s->restart_after = util_monotonic() + RESTART_RETRY;
    pthread_mutex_lock(&s->ckpt_lock);   /* the checkpointer's copy would make ours busy */
    if (sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) == SQLITE_OK && copied == log)
        s->restart_log = false;
    pthread_mutex_unlock(&s->ckpt_lock);
}

/* Sleeps until GATHER_INTERVAL after `since`, or until a caller waits or the store stops. */
static void gather(struct sq *s, double since) {
    for (;;) {
        double left = since + GATHER_INTERVAL - util_monotonic();
        struct timespec ts;
        if (left <= 0 || atomic_load(&s->waiters) > 0 || atomic_load(&s->stopping)) return;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(left * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        sem_timedwait(&s->wake, &ts);
    }
}

static void *writer_main(void *arg) {
    struct sq *s = arg;
    for (;;) {
        struct op *ops = atomic_exchange(&s->head, NULL), *rev = NULL;
        if (!ops) {
            if (atomic_load(&s->stopping)) break;
            if (s->purge_backlog || util_monotonic() - s->last_purge >= PURGE_INTERVAL) {
                purge_step(s);
                continue;
            }
            if (s->settle_backlog || util_monotonic() - s->last_settle >= SETTLE_INTERVAL) {
                settle_step(s);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            sem_timedwait(&s->wake, &ts);
            continue;
        }
        double batch_start = util_monotonic();
        int urgent = 0;
        while (ops) {   /* the stack is newest-first: reverse to commit in arrival order */
            struct op *next = ops->next;
            urgent |= ops->wait;
            ops->next = rev;
            rev = ops;
            ops = next;
        }
        /* Commit in transactions of at most BATCH_MAX ops, so that under overload the first
         * requests of a huge backlog are answered without waiting for the last ones. */
        while (rev) {
            struct op *chunk = rev, *tail = rev;
            for (int k = 1; k < BATCH_MAX && tail->next; k++) tail = tail->next;
            rev = tail->next;
            tail->next = NULL;
            run_batch(s, chunk);
        }
        if (util_monotonic() - s->last_purge >= PURGE_INTERVAL) purge_step(s);
        if (util_monotonic() - s->last_settle >= SETTLE_INTERVAL) settle_step(s);
        if (s->restart_log) restart_log(s);
        if (!urgent) gather(s, batch_start);
    }
    return NULL;
}

/* Copies the WAL into the database beside the writer (PASSIVE: it never blocks the writer or
 * readers), when asked and at least every CHECKPOINT_INTERVAL. */
static void *checkpointer_main(void *arg) {
    struct sq *s = arg;
    while (!atomic_load(&s->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)CHECKPOINT_INTERVAL;
        sem_timedwait(&s->checkpoint, &ts);
        atomic_store(&s->checkpoint_asked, 0);
        if (atomic_load(&s->stopping)) break;
        int log = 0, copied = 0;
        pthread_mutex_lock(&s->ckpt_lock);
        int rc = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        pthread_mutex_unlock(&s->ckpt_lock);
        if (rc == SQLITE_OK) atomic_store(&s->checkpointed, log);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) log_msg(LOG_ERROR, "store: checkpoint failed: %s", sqlite3_errmsg(s->cdb));
    }
    return NULL;
}

static int sq_start(struct store *base) {
    struct sq *s = (struct sq *)base;
    char path[4096];
    snprintf(path, sizeof path, "%s/scout.db", s->dir);
    if (open_db(path, &s->cdb, s->sync_full) == SCOUT_OK &&
        pthread_create(&s->checkpointer, NULL, checkpointer_main, s) == 0) {
        s->checkpointer_started = 1;
        sqlite3_wal_hook(s->wdb, on_wal_commit, s);
    } else {
        log_msg(LOG_WARN, "store: no checkpointer thread; commits checkpoint the log themselves");
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) return SCOUT_ERR;
    s->started = 1;
    return SCOUT_OK;
}

static void sq_close(struct store *base) {
    struct sq *s = (struct sq *)base;
    if (!s) return;
    if (s->started) {
        atomic_store(&s->stopping, 1);
        sem_post(&s->wake);
        pthread_join(s->writer, NULL);
    }
    if (s->checkpointer_started) {
        atomic_store(&s->stopping, 1);
        sem_post(&s->checkpoint);
        pthread_join(s->checkpointer, NULL);
    }
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->st[i]);
    for (int i = 0; i < RST_COUNT; i++) sqlite3_finalize(s->rst[i]);
    if (s->cdb) sqlite3_close(s->cdb);
    if (s->rdb) sqlite3_close(s->rdb);
    if (s->wdb) sqlite3_close(s->wdb);   /* the last connection to close checkpoints what is left */
    pthread_mutex_destroy(&s->rlock);
    pthread_mutex_destroy(&s->ckpt_lock);
    sem_destroy(&s->wake);
    sem_destroy(&s->checkpoint);
    free(s->dir);
    free(s);
}

/* ---- public writes ----------------------------------------------------------------- */

static int sq_put_setting(struct store *base, const char *key, const char *json) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_SETTING, .u.setting = {key, json}};
    return submit(s, &op);
}

/* Before store_start (a CLI that only records its backup) the write connection is the
 * caller's: one statement, committed at once, without starting the writer (whose settling of
 * decisions belongs to the server). Once started, the writer takes it like any setting. */
static int sq_put_setting_now(struct store *base, const char *key, const char *json) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = s->st[ST_SETTING];
    if (s->started) return sq_put_setting(base, key, json);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
    return step_done(st);
}

static int sq_put_test(struct store *base, const char *id, const char *definition, double created) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_PUT_TEST, .test_id = id, .u.put = {definition, created}};
    return submit(s, &op);
}

static int sq_delete_test(struct store *base, const char *id) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_DELETE_TEST, .test_id = id};
    return submit(s, &op);
}

static int sq_set_rollout(struct store *base, const char *id, long variant_id) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_ROLLOUT, .test_id = id, .u.rollout = variant_id};
    return submit(s, &op);
}

static int sq_put_token(struct store *base, const struct store_token *tk) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_TOKEN, .u.token = tk};
    return submit(s, &op);
}

static int sq_delete_token(struct store *base, const char *id) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_TOKEN_DELETE, .test_id = id};   /* test_id carries the key */
    return submit(s, &op);
}

static void sq_touch_token(struct store *base, const char *id, double last_used) {
    struct sq *s = (struct sq *)base;
    struct op *op;
    if (!s->started || atomic_load(&s->stopping) || !(op = calloc(1, sizeof *op))) return;
    op->kind = OP_TOKEN_TOUCH;
    snprintf(op->u.touch.id, sizeof op->u.touch.id, "%s", id);
    op->u.touch.when = last_used;
    push_op(s, op);
}

static int sq_flush(struct store *base) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_FLUSH};
    return submit(s, &op);
}

static void sq_put_decision(struct store *base, struct store_decision *d) {
    struct sq *s = (struct sq *)base;
    struct op *op;
    if (!s->started || atomic_load(&s->stopping)) goto drop;
    if (atomic_fetch_add(&s->pending_decisions, 1) >= MAX_PENDING_DECISIONS) {
        struct op wait_op = {.kind = OP_DECISION, .test_id = d->test_id, .u.decision = d};
        int rc = submit(s, &wait_op);
        if (rc == SCOUT_ECLOSED) atomic_fetch_sub(&s->pending_decisions, 1);   /* never queued */
        if (rc != SCOUT_OK) log_msg(LOG_ERROR, "store: a decision record was not stored");
        goto drop;
    }
    if (!(op = calloc(1, sizeof *op))) {
        atomic_fetch_sub(&s->pending_decisions, 1);
        goto drop;
    }
    op->kind = OP_DECISION;
    op->test_id = d->test_id;
    op->u.decision = d;
    push_op(s, op);
    return;
drop:
    free(d->context);
    free(d);
}

static void sq_put_test_stats(struct store *base, const char *test_id, char *stats) {
    struct sq *s = (struct sq *)base;
    struct op *op;
    char *id = strdup(test_id);
    if (!id || !s->started || atomic_load(&s->stopping) || !(op = calloc(1, sizeof *op))) {
        free(id);
        free(stats);
        return;
    }
    op->kind = OP_TEST_STATS;
    op->test_id = id;
    op->u.stats = stats;
    push_op(s, op);
}

static int sq_claim_assignment(struct store *base, struct store_assignment *claim) {
    struct sq *s = (struct sq *)base;
    struct store_assignment *a = malloc(sizeof *a);
    struct op *op;
    if (!a || !s->started || atomic_load(&s->stopping) || !(op = calloc(1, sizeof *op))) {
        free(a);
        return SCOUT_OK;   /* this process's memory decides; the row is a copy for restarts */
    }
    *a = *claim;
    op->kind = OP_ASSIGN;
    op->test_id = a->test_id;
    op->u.assignment = a;
    push_op(s, op);
    return SCOUT_OK;
}

static int sq_append_rewards(struct store *base, const char *test_id, struct store_reward *ev, int n) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_REWARDS, .test_id = test_id, .u.rewards = {ev, n}};
    return submit(s, &op);
}

/* The same op as sq_append_rewards, queued without a caller asleep on it: `then` follows the
 * commit, on the writer. */
static void sq_append_rewards_async(struct store *base, const char *test_id, struct store_reward *ev, int n,
                                    store_done_fn then, void *arg) {
    struct sq *s = (struct sq *)base;
    struct op *op;
    if (!s->started || atomic_load(&s->stopping)) {
        then(arg, SCOUT_ECLOSED);
        return;
    }
    if (!(op = calloc(1, sizeof *op))) {
        then(arg, SCOUT_ENOMEM);
        return;
    }
    op->kind = OP_REWARDS;
    op->test_id = test_id;
    op->u.rewards.ev = ev;
    op->u.rewards.n = n;
    op->wait = 1;
    op->then = then;
    op->then_arg = arg;
    atomic_fetch_add(&s->waiters, 1);
    push_op(s, op);
}

/* ---- reads ------------------------------------------------------------------------- */

/* Runs a query on the loader connection (before start) and hands each row to cb. */
static int each_row(sqlite3 *db, const char *sql, int (*row)(void *ud, sqlite3_stmt *st), void *ud) {
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: %s", sqlite3_errmsg(db));
        return SCOUT_ESTORE;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row(ud, st) != 0) {
            sqlite3_finalize(st);
            return SCOUT_ERR;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
}

struct load_ctx {
    void *cb;
    void *ud;
};

static int test_row(void *ud, sqlite3_stmt *st) {
    struct load_ctx *l = ud;
    struct store_test_row r = {
        .id = (const char *)sqlite3_column_text(st, 0),
        .definition = (const char *)sqlite3_column_text(st, 1),
        .created = sqlite3_column_double(st, 2),
        .rollout_variant = (long)sqlite3_column_int64(st, 3),
        .predictions = (uint64_t)sqlite3_column_int64(st, 4),
        .last_prediction = sqlite3_column_double(st, 5),
        .stats = (const char *)sqlite3_column_text(st, 6),
    };
    return ((int (*)(void *, const struct store_test_row *))l->cb)(l->ud, &r);
}

static int sq_load_tests(struct store *base, int (*cb)(void *ud, const struct store_test_row *row), void *ud) {
    struct sq *s = (struct sq *)base;
    struct load_ctx l = {(void *)cb, ud};
    return each_row(s->wdb, "SELECT id, definition, created, rollout, predictions, last_prediction, stats"
                            " FROM tests ORDER BY created, id", test_row, &l);
}

static int arm_row(void *ud, sqlite3_stmt *st) {
    struct load_ctx *l = ud;
    return ((int (*)(void *, const char *, long, uint64_t))l->cb)(
        l->ud, (const char *)sqlite3_column_text(st, 0), (long)sqlite3_column_int64(st, 1),
        (uint64_t)sqlite3_column_int64(st, 2));
}

static int sq_load_arm_predictions(struct store *base,
                               int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud) {
    struct sq *s = (struct sq *)base;
    struct load_ctx l = {(void *)cb, ud};
    return each_row(s->wdb, "SELECT test_id, variant, predictions FROM arm_predictions", arm_row, &l);
}

static int reward_row(void *ud, sqlite3_stmt *st) {
    struct load_ctx *l = ud;
    return ((int (*)(void *, const char *, long, double, const char *, double))l->cb)(
        l->ud, (const char *)sqlite3_column_text(st, 0), (long)sqlite3_column_int64(st, 1),
        sqlite3_column_double(st, 2), (const char *)sqlite3_column_text(st, 3), sqlite3_column_double(st, 4));
}

/* Hands every stored snapshot back (loading, after the tests). One that cannot be read stops
 * the start: the events before it are not the history its state was folded from, so a replay
 * would serve part of the learned state as if it were all of it. */
static int restore_snapshots(struct sq *s) {
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_OK, step;
    if (sqlite3_prepare_v2(s->wdb, "SELECT test_id, state FROM snapshots ORDER BY test_id", -1, &st, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "store: %s", sqlite3_errmsg(s->wdb));
        return SCOUT_ESTORE;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const unsigned char *state = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        int got = s->snap.restore && id ? s->snap.restore(s->snap.arg, id, state, len) : SCOUT_ERR;
        if (got == SCOUT_OK || got == SCOUT_ENOTFOUND) continue;   /* not found: the test is not served */
        log_msg(LOG_ERROR, "store: test %s has a snapshot of its learned state that this build cannot read, and "
                           "its events before it are not the whole history: refusing to start with part of its "
                           "learned state (run the release that wrote it)", id ? id : "?");
        rc = SCOUT_ESTORE;
        break;
    }
    if (rc == SCOUT_OK && step != SQLITE_DONE) rc = SCOUT_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

static int sq_load_rewards(struct store *base,
                       int (*cb)(void *ud, const char *test_id, long variant_id, double reward,
                                 const char *context, double ts),
                       void *ud) {
    struct sq *s = (struct sq *)base;
    struct load_ctx l = {(void *)cb, ud};
    int rc = restore_snapshots(s);
    if (rc != SCOUT_OK) return rc;
    /* Replayed in commit order: the fold then equals the state before the restart exactly. A
     * test with a snapshot gets only the events after it. */
    return each_row(s->wdb, "SELECT r.test_id, r.variant, r.reward, r.context, r.ts FROM rewards r"
                            " LEFT JOIN snapshots n ON n.test_id=r.test_id WHERE n.seq IS NULL OR r.seq>n.seq"
                            " ORDER BY r.seq", reward_row, &l);
}

static int assignment_row(void *ud, sqlite3_stmt *st) {
    struct load_ctx *l = ud;
    return ((int (*)(void *, const char *, const char *, long, double))l->cb)(
        l->ud, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
        (long)sqlite3_column_int64(st, 2), sqlite3_column_double(st, 3));
}

static int sq_load_assignments(struct store *base,
                           int (*cb)(void *ud, const char *test_id, const char *user, long variant_id, double propensity),
                           void *ud) {
    struct sq *s = (struct sq *)base;
    struct load_ctx l = {(void *)cb, ud};
    return each_row(s->wdb, "SELECT test_id, user_key, variant, propensity FROM assignments ORDER BY test_id",
                    assignment_row, &l);
}

static int sq_get_setting(struct store *base, const char *key, char **out) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE;
    *out = NULL;
    pthread_mutex_lock(&s->rlock);
    if (sqlite3_prepare_v2(s->rdb, "SELECT value FROM settings WHERE key=?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            *out = strdup((const char *)sqlite3_column_text(st, 0));
            rc = *out ? SCOUT_OK : SCOUT_ENOMEM;
        } else if (step == SQLITE_DONE) {
            rc = SCOUT_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static int sq_count_decisions(struct store *base, double now, long *out) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE;
    pthread_mutex_lock(&s->rlock);
    if (sqlite3_prepare_v2(s->rdb, "SELECT count(*) FROM decisions WHERE expires>=?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_double(st, 1, now);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *out = (long)sqlite3_column_int64(st, 0);
            rc = SCOUT_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static int sq_scan_decisions(struct store *base, const char *test_id, double since, int limit,
                         void (*cb)(void *ud, double created, long variant_id, int explored, const char *context),
                         void *ud) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE, step;
    pthread_mutex_lock(&s->rlock);
    if (sqlite3_prepare_v2(s->rdb, "SELECT created, variant, explored, context FROM decisions"
                                   " WHERE test_id=? AND created>=? ORDER BY created DESC LIMIT ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, since);
        sqlite3_bind_int(st, 3, limit);
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            cb(ud, sqlite3_column_double(st, 0), (long)sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2),
               (const char *)sqlite3_column_text(st, 3));
        rc = step == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

/* Rows per slice of store_scan_outcomes: the readers' lock is held for one slice at a time. */
#define OUTCOME_SLICE 1000

struct outcome_slot {
    struct store_outcome o;
    char *request_id, *context;   /* owned copies, valid after the lock is released */
};

/* Copies the next slice — rows after (*created, *rowid) in (created, rowid) order — into slots
 * and moves the cursor past it. */
static int read_outcomes(struct sq *s, const char *test_id, double *created, int64_t *rowid, int want,
                         struct outcome_slot *slots, int *got) {
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE, step = SQLITE_ERROR;
    *got = 0;
    pthread_mutex_lock(&s->rlock);
    /* created >= ?2 is the index range; the rowid breaks ties between equal timestamps. */
    if (sqlite3_prepare_v2(s->rdb, "SELECT rowid, request_id, created, variant, propensity, context, rewards,"
                                   " reward_sum, settled, default_reward FROM decisions"
                                   " WHERE test_id=?1 AND created>=?2 AND (created>?2 OR rowid>?3)"
                                   " ORDER BY created, rowid LIMIT ?4",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, *created);
        sqlite3_bind_int64(st, 3, *rowid);
        sqlite3_bind_int(st, 4, want);
        rc = SCOUT_OK;
        while (rc == SCOUT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
            struct outcome_slot *x = &slots[*got];
            const char *rid = (const char *)sqlite3_column_text(st, 1), *ctx = (const char *)sqlite3_column_text(st, 5);
            x->request_id = strdup(rid ? rid : "");
            x->context = ctx ? strdup(ctx) : NULL;
            if (!x->request_id || (ctx && !x->context)) {
                free(x->request_id);
                free(x->context);
                rc = SCOUT_ENOMEM;
                break;
            }
            x->o = (struct store_outcome){
                .request_id = x->request_id,
                .created = sqlite3_column_double(st, 2),
                .variant_id = (long)sqlite3_column_int64(st, 3),
                .propensity = sqlite3_column_double(st, 4),
                .context = x->context,
                .rewards = (long)sqlite3_column_int64(st, 6),
                .reward_sum = sqlite3_column_double(st, 7),
                .settled = sqlite3_column_int(st, 8),
                .has_default = sqlite3_column_type(st, 9) != SQLITE_NULL,
                .default_reward = sqlite3_column_double(st, 9),
            };
            *rowid = sqlite3_column_int64(st, 0);
            *created = x->o.created;
            (*got)++;
        }
        if (rc == SCOUT_OK && step != SQLITE_DONE) rc = SCOUT_ESTORE;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static int sq_scan_outcomes(struct store *base, const char *test_id, double since, long limit,
                        int (*cb)(void *ud, const struct store_outcome *o), void *ud) {
    struct sq *s = (struct sq *)base;
    struct outcome_slot *slots = calloc(OUTCOME_SLICE, sizeof *slots);
    double created = since;
    int64_t rowid = INT64_MIN;
    long seen = 0;
    int rc = slots ? SCOUT_OK : SCOUT_ENOMEM;
    while (rc == SCOUT_OK && seen < limit) {
        int want = limit - seen < OUTCOME_SLICE ? (int)(limit - seen) : OUTCOME_SLICE, got;
        rc = read_outcomes(s, test_id, &created, &rowid, want, slots, &got);
        for (int i = 0; i < got; i++) {
            if (rc == SCOUT_OK && cb(ud, &slots[i].o) != 0) rc = SCOUT_ERR;
            free(slots[i].request_id);
            free(slots[i].context);
        }
        seen += got;
        if (got < want) break;
    }
    free(slots);
    return rc;
}

static int sq_decision_counts(struct store *base, const char *test_id, double since, double granularity,
                          void (*cb)(void *ud, long bucket, long variant_id, long count, long explored),
                          void *ud) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = s->rst[RST_DECISION_COUNTS];
    int step;
    pthread_mutex_lock(&s->rlock);
    sqlite3_bind_double(st, 1, since);
    sqlite3_bind_double(st, 2, granularity);
    sqlite3_bind_text(st, 3, test_id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (long)sqlite3_column_int64(st, 0), (long)sqlite3_column_int64(st, 1), (long)sqlite3_column_int64(st, 2),
           (long)sqlite3_column_int64(st, 3));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->rlock);
    return step == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
}

static int sq_reward_counts(struct store *base, const char *test_id, double since, double granularity,
                            void (*cb)(void *ud, long bucket, long variant_id, long count, double sum), void *ud) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = s->rst[RST_REWARD_COUNTS];
    int step;
    pthread_mutex_lock(&s->rlock);
    sqlite3_bind_double(st, 1, since);
    sqlite3_bind_double(st, 2, granularity > 0 ? granularity : 1);
    sqlite3_bind_text(st, 3, test_id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (long)sqlite3_column_int64(st, 0), (long)sqlite3_column_int64(st, 1), (long)sqlite3_column_int64(st, 2),
           sqlite3_column_double(st, 3));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->rlock);
    return step == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
}

static int sq_load_tokens(struct store *base, int (*cb)(void *ud, const struct store_token *tk), void *ud) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE, step = SQLITE_ERROR;
    pthread_mutex_lock(&s->rlock);
    if (sqlite3_prepare_v2(s->rdb, "SELECT id, name, scope, hash, created, expires, last_used, revoked, rotated"
                                   " FROM tokens ORDER BY created, id", -1, &st, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct store_token tk = {0};
            snprintf(tk.id, sizeof tk.id, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(tk.name, sizeof tk.name, "%s", (const char *)sqlite3_column_text(st, 1));
            tk.scope = sqlite3_column_int(st, 2);
            if (sqlite3_column_bytes(st, 3) != (int)sizeof tk.hash) continue;
            memcpy(tk.hash, sqlite3_column_blob(st, 3), sizeof tk.hash);
            tk.created = sqlite3_column_double(st, 4);
            tk.expires = sqlite3_column_double(st, 5);
            tk.last_used = sqlite3_column_double(st, 6);
            tk.revoked = sqlite3_column_double(st, 7);
            tk.rotated = sqlite3_column_double(st, 8);
            if (cb(ud, &tk) != 0) break;
        }
        rc = step == SQLITE_DONE || step == SQLITE_ROW ? SCOUT_OK : SCOUT_ESTORE;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static int sq_tokens_version(struct store *base, long *out) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE;
    pthread_mutex_lock(&s->rlock);
    if (sqlite3_prepare_v2(s->rdb, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='tokens_version'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = (long)sqlite3_column_int64(st, 0);
        rc = SCOUT_OK;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static void sq_render_metrics(struct store *base, struct metrics_text *t) {
    struct sq *s = (struct sq *)base;
    store_render_operations(t, OP_NAMES, s->ops_done, s->ops_failed, OP_COUNT);
    metrics_printf(t, "# HELP scout_store_commit_seconds Time to run and commit one batch of store operations.\n"
                      "# TYPE scout_store_commit_seconds histogram\n");
    metrics_histogram(t, "scout_store_commit_seconds", "", &s->commit_latency);
    metrics_scalar(t, "gauge", "scout_store_pending_decisions",
                   "Decision records queued and not yet committed.",
                   (long long)atomic_load(&s->pending_decisions));
    metrics_scalar(t, "counter", "scout_store_purged_decisions_total",
                   "Expired decision records purged.",
                   (long long)atomic_load(&s->purged));
    metrics_scalar(t, "counter", "scout_store_settled_rewards_total",
                   "Reward events made when a decision's reward window ended (summed rewards or the default "
                   "reward).",
                   (long long)atomic_load(&s->settled));
    metrics_scalar(t, "gauge", "scout_redis_connections",
                   "Live connections to Redis (0 on the embedded store).",
                   0);
}

static int sq_ping(struct store *base) {
    struct sq *s = (struct sq *)base;
    int rc;
    pthread_mutex_lock(&s->rlock);
    rc = exec_sql(s->rdb, "SELECT 1");
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

/* ---- backup and restore ------------------------------------------------------------ */

/* A dump reads an online backup copy (sqlite3_backup) of the live database, staged in the
 * data directory under a fresh name (mode 0600, as mkstemp makes it) and removed at the end:
 * the copy is one point in time however long the reading takes, and the copying itself is a
 * read transaction that a running server's writer goes on committing beside (WAL). The copy
 * costs disk space of the size of the database for the duration of the dump. */

static const char *const DUMP_SQL[] = {
    "SELECT key, value FROM settings ORDER BY key",
    "SELECT id, name, scope, hash, created, expires, last_used, revoked, rotated FROM tokens ORDER BY created, id",
    "SELECT id, definition, created, rollout, predictions, last_prediction, stats FROM tests ORDER BY created, id",
    "SELECT variant, predictions FROM arm_predictions WHERE test_id=? ORDER BY variant",
    "SELECT variant, reward, context, request_id, ts, seq FROM rewards WHERE test_id=? ORDER BY seq",
    "SELECT request_id, context, variant, propensity, created, expires, settle_at, explored, aggregate,"
    " default_reward, rewards, reward_sum, settled, model_version FROM decisions WHERE test_id=?"
    " ORDER BY created, rowid",
    "SELECT user_key, variant, propensity, created FROM assignments WHERE test_id=? ORDER BY user_key",
    "SELECT seq, state, t, format FROM snapshots WHERE test_id=?",
};
enum { DQ_SETTINGS, DQ_TOKENS, DQ_TESTS, DQ_ARMS, DQ_REWARDS, DQ_DECISIONS, DQ_ASSIGN, DQ_SNAP, DQ_COUNT };

static const char *col_text(sqlite3_stmt *st, int i) {
    return (const char *)sqlite3_column_text(st, i);
}

/* Fills r from the current row of query q; 0 when the row is to be left out. */
static int fill_record(int q, sqlite3_stmt *st, struct store_record *r) {
    switch (q) {
    case DQ_SETTINGS:
        r->kind = STORE_REC_SETTING;
        r->u.setting.key = col_text(st, 0);
        r->u.setting.json = col_text(st, 1);
        return 1;
    case DQ_TOKENS: {
        struct store_token *tk = &r->u.token;
        r->kind = STORE_REC_TOKEN;
        memset(tk, 0, sizeof *tk);
        if (sqlite3_column_bytes(st, 3) != (int)sizeof tk->hash) return 0;   /* unusable: the server skips it too */
        snprintf(tk->id, sizeof tk->id, "%s", col_text(st, 0));
        snprintf(tk->name, sizeof tk->name, "%s", col_text(st, 1));
        tk->scope = sqlite3_column_int(st, 2);
        memcpy(tk->hash, sqlite3_column_blob(st, 3), sizeof tk->hash);
        tk->created = sqlite3_column_double(st, 4);
        tk->expires = sqlite3_column_double(st, 5);
        tk->last_used = sqlite3_column_double(st, 6);
        tk->revoked = sqlite3_column_double(st, 7);
        tk->rotated = sqlite3_column_double(st, 8);
        return 1;
    }
    case DQ_TESTS:
        r->kind = STORE_REC_TEST;
        r->test_id = col_text(st, 0);
        r->u.test.definition = col_text(st, 1);
        r->u.test.created = sqlite3_column_double(st, 2);
        r->u.test.rollout_variant = (long)sqlite3_column_int64(st, 3);
        r->u.test.predictions = (uint64_t)sqlite3_column_int64(st, 4);
        r->u.test.last_prediction = sqlite3_column_double(st, 5);
        r->u.test.stats = col_text(st, 6);
        return 1;
    case DQ_ARMS:
        r->kind = STORE_REC_ARM;
        r->u.arm.variant_id = (long)sqlite3_column_int64(st, 0);
        r->u.arm.predictions = (uint64_t)sqlite3_column_int64(st, 1);
        return 1;
    case DQ_REWARDS:
        r->kind = STORE_REC_REWARD;
        r->u.reward.variant_id = (long)sqlite3_column_int64(st, 0);
        r->u.reward.reward = sqlite3_column_double(st, 1);
        r->u.reward.context = col_text(st, 2);
        r->u.reward.request_id = col_text(st, 3);
        r->u.reward.ts = sqlite3_column_double(st, 4);
        r->u.reward.id = NULL;
        return 1;
    case DQ_DECISIONS:
        r->kind = STORE_REC_DECISION;
        r->u.decision.request_id = col_text(st, 0);
        r->u.decision.context = col_text(st, 1);
        r->u.decision.variant_id = (long)sqlite3_column_int64(st, 2);
        r->u.decision.propensity = sqlite3_column_double(st, 3);
        r->u.decision.created = sqlite3_column_double(st, 4);
        r->u.decision.expires = sqlite3_column_double(st, 5);
        r->u.decision.settle_at = sqlite3_column_double(st, 6);
        r->u.decision.explored = sqlite3_column_int(st, 7);
        r->u.decision.aggregate = sqlite3_column_int(st, 8);
        r->u.decision.has_default = sqlite3_column_type(st, 9) != SQLITE_NULL;
        r->u.decision.default_reward = sqlite3_column_double(st, 9);
        r->u.decision.rewards = (long)sqlite3_column_int64(st, 10);
        r->u.decision.reward_sum = sqlite3_column_double(st, 11);
        r->u.decision.settled = sqlite3_column_int(st, 12);
        r->u.decision.model_version = (uint64_t)sqlite3_column_int64(st, 13);
        return r->u.decision.request_id != NULL;
    case DQ_ASSIGN:
        r->kind = STORE_REC_ASSIGNMENT;
        r->u.assignment.user = col_text(st, 0);
        r->u.assignment.variant_id = (long)sqlite3_column_int64(st, 1);
        r->u.assignment.propensity = sqlite3_column_double(st, 2);
        r->u.assignment.created = sqlite3_column_double(st, 3);
        return r->u.assignment.user != NULL;
    case DQ_SNAP:
        return 0;   /* dump_learning writes it */
    }
    return 0;
}

/* Emits every row of query q (bound to test_id for the per-test ones). */
static int dump_query(sqlite3 *db, sqlite3_stmt *st, int q, const char *test_id,
                      int (*emit)(void *ud, const struct store_record *r), void *ud, char *err, size_t errlen) {
    struct store_record r;
    int step, rc = SCOUT_OK;
    if (test_id) sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&r, 0, sizeof r);
        r.test_id = test_id;
        if (fill_record(q, st, &r) && emit(ud, &r) != 0) {
            rc = SCOUT_ERR;
            break;
        }
    }
    if (rc == SCOUT_OK && step != SQLITE_DONE) {
        snprintf(err, errlen, "reading the backup copy failed: %s", sqlite3_errmsg(db));
        rc = SCOUT_ESTORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Walks a test's reward events numbering them as the shared store would (store_next_event_id,
 * from their times) and, when emit is set, hands them over with those ids. covered: the seq of
 * the last event the test's snapshot covers. The snapshot's own id is that of the last covered
 * event, or, when it covers none, one numbered before the first event: snap_id gets it. */
static int walk_rewards(sqlite3 *db, sqlite3_stmt *st, const char *test_id, sqlite3_int64 covered, char *snap_id,
                        size_t idlen, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
                        size_t errlen) {
    struct store_event_pos pos = {0, 0};
    char id[48];
    int step, placed = 0, rc = SCOUT_OK;
    sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_record r;
        memset(&r, 0, sizeof r);
        r.test_id = test_id;
        fill_record(DQ_REWARDS, st, &r);
        if (sqlite3_column_int64(st, 5) > covered && !placed) {
            if (!emit) store_next_event_id(&pos, 0, snap_id, idlen);
            else store_next_event_id(&pos, 0, id, sizeof id);
            placed = 1;
        }
        if (sqlite3_column_int64(st, 5) <= covered) placed = 1;
        store_next_event_id(&pos, r.u.reward.ts, id, sizeof id);
        if (!emit) {
            if (sqlite3_column_int64(st, 5) <= covered) snprintf(snap_id, idlen, "%s", id);
            continue;
        }
        r.u.reward.id = id;
        if (emit(ud, &r) != 0) {
            rc = SCOUT_ERR;
            break;
        }
    }
    if (rc == SCOUT_OK && !placed && !emit) store_next_event_id(&pos, 0, snap_id, idlen);
    if (rc == SCOUT_OK && step != SQLITE_DONE) {
        snprintf(err, errlen, "reading the backup copy failed: %s", sqlite3_errmsg(db));
        rc = SCOUT_ESTORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* A test's snapshot, if it has one, then its reward events. With a snapshot the events carry
 * ids and the snapshot the id of the last one it covers, "trimmed" at that id: a restore into
 * either store then knows which events it covers and that those are not the whole history its
 * state was folded from. */
static int dump_learning(sqlite3 *db, sqlite3_stmt **st, const char *test_id,
                         int (*emit)(void *ud, const struct store_record *r), void *ud, char *err, size_t errlen) {
    sqlite3_stmt *snap = st[DQ_SNAP];
    struct store_record r;
    char snap_id[48] = "";
    int step, rc;
    sqlite3_bind_text(snap, 1, test_id, -1, SQLITE_STATIC);
    if ((step = sqlite3_step(snap)) != SQLITE_ROW) {
        sqlite3_reset(snap);
        sqlite3_clear_bindings(snap);
        if (step == SQLITE_DONE) return dump_query(db, st[DQ_REWARDS], DQ_REWARDS, test_id, emit, ud, err, errlen);
        snprintf(err, errlen, "reading the backup copy failed: %s", sqlite3_errmsg(db));
        return SCOUT_ESTORE;
    }
    rc = walk_rewards(db, st[DQ_REWARDS], test_id, sqlite3_column_int64(snap, 0), snap_id, sizeof snap_id, NULL, NULL,
                      err, errlen);
    if (rc == SCOUT_OK) {
        memset(&r, 0, sizeof r);
        r.kind = STORE_REC_SNAPSHOT;
        r.test_id = test_id;
        r.u.snapshot.id = snap_id;
        r.u.snapshot.state = sqlite3_column_blob(snap, 1);
        r.u.snapshot.len = (size_t)sqlite3_column_bytes(snap, 1);
        r.u.snapshot.t = sqlite3_column_double(snap, 2);
        r.u.snapshot.format = (long)sqlite3_column_int64(snap, 3);
        r.u.snapshot.trimmed = snap_id;
        if (emit(ud, &r) != 0) rc = SCOUT_ERR;
    }
    if (rc == SCOUT_OK)
        rc = walk_rewards(db, st[DQ_REWARDS], test_id, sqlite3_column_int64(snap, 0), snap_id, sizeof snap_id, emit,
                          ud, err, errlen);
    sqlite3_reset(snap);
    sqlite3_clear_bindings(snap);
    return rc;
}

static int dump_copy(sqlite3 *db, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
                     size_t errlen) {
    sqlite3_stmt *st[DQ_COUNT] = {0};
    int rc = SCOUT_ESTORE, step;
    for (int i = 0; i < DQ_COUNT; i++) {
        if (sqlite3_prepare_v2(db, DUMP_SQL[i], -1, &st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "reading the backup copy failed: %s", sqlite3_errmsg(db));
            goto out;
        }
    }
    if ((rc = dump_query(db, st[DQ_SETTINGS], DQ_SETTINGS, NULL, emit, ud, err, errlen)) != SCOUT_OK) goto out;
    if ((rc = dump_query(db, st[DQ_TOKENS], DQ_TOKENS, NULL, emit, ud, err, errlen)) != SCOUT_OK) goto out;
    while ((step = sqlite3_step(st[DQ_TESTS])) == SQLITE_ROW) {
        struct store_record r = {0};
        fill_record(DQ_TESTS, st[DQ_TESTS], &r);
        if (!r.test_id || !r.u.test.definition) continue;
        if (emit(ud, &r) != 0) {
            rc = SCOUT_ERR;
            goto out;
        }
        if ((rc = dump_query(db, st[DQ_ARMS], DQ_ARMS, r.test_id, emit, ud, err, errlen)) != SCOUT_OK ||
            (rc = dump_learning(db, st, r.test_id, emit, ud, err, errlen)) != SCOUT_OK)
            goto out;
        for (int q = DQ_DECISIONS; q <= DQ_ASSIGN; q++)
            if ((rc = dump_query(db, st[q], q, r.test_id, emit, ud, err, errlen)) != SCOUT_OK) goto out;
    }
    if (step != SQLITE_DONE) {
        snprintf(err, errlen, "reading the backup copy failed: %s", sqlite3_errmsg(db));
        rc = SCOUT_ESTORE;
    }
out:
    for (int i = 0; i < DQ_COUNT; i++) sqlite3_finalize(st[i]);
    return rc;
}

static int sq_dump(struct store *base, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
                   size_t errlen) {
    struct sq *s = (struct sq *)base;
    char path[4096], journal[4200];
    sqlite3 *copy = NULL;
    sqlite3_backup *b;
    int fd, rc = SCOUT_ESTORE;
    if ((size_t)snprintf(path, sizeof path, "%s/.scout-backup-XXXXXX", s->dir) >= sizeof path) {
        snprintf(err, errlen, "the data directory's path is too long");
        return SCOUT_EINVAL;
    }
    if ((fd = mkstemp(path)) < 0) {
        snprintf(err, errlen, "cannot stage a copy of the database in %s: %s", s->dir, strerror(errno));
        return SCOUT_ESTORE;
    }
    close(fd);
    snprintf(journal, sizeof journal, "%s-journal", path);
    if (sqlite3_open_v2(path, &copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open the staged copy: %s", copy ? sqlite3_errmsg(copy) : "out of memory");
        goto out;
    }
    pthread_mutex_lock(&s->rlock);
    /* One step of every page: the copy is the database at one instant. */
    b = sqlite3_backup_init(copy, "main", s->rdb, "main");
    if (b) {
        int step = sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
        if (step == SQLITE_DONE) rc = SCOUT_OK;
    }
    pthread_mutex_unlock(&s->rlock);
    if (rc != SCOUT_OK) {
        snprintf(err, errlen, "the online backup of the database failed: %s", sqlite3_errmsg(copy));
        goto out;
    }
    rc = dump_copy(copy, emit, ud, err, errlen);
out:
    if (copy) sqlite3_close(copy);
    unlink(path);
    unlink(journal);
    return rc;
}

static const char *const RESTORE_SQL[] = {
    [STORE_REC_SETTING] = "INSERT INTO settings(key, value) VALUES(?1,?2)",
    [STORE_REC_TOKEN] = "INSERT INTO tokens(id, name, scope, hash, created, expires, last_used, revoked, rotated)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [STORE_REC_TEST] = "INSERT INTO tests(id, definition, created, rollout, predictions, last_prediction, stats)"
                       " VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [STORE_REC_ARM] = "INSERT INTO arm_predictions(test_id, variant, predictions) VALUES(?1,?2,?3)",
    [STORE_REC_SNAPSHOT] = NULL,
    [STORE_REC_REWARD] = "INSERT INTO rewards(test_id, variant, reward, context, request_id, ts) VALUES(?1,?2,?3,?4,?5,?6)",
    [STORE_REC_DECISION] = "INSERT INTO decisions(test_id, request_id, context, variant, propensity, created, expires,"
                           " settle_at, explored, aggregate, default_reward, rewards, reward_sum, settled, model_version)"
                           " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
    [STORE_REC_ASSIGNMENT] = "INSERT INTO assignments(test_id, user_key, variant, propensity, created) VALUES(?1,?2,?3,?4,?5)",
};
#define RESTORE_KINDS (STORE_REC_ASSIGNMENT + 1)

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

/* Binds r to the insert of its kind. */
static void bind_record(sqlite3_stmt *st, const struct store_record *r) {
    switch (r->kind) {
    case STORE_REC_SETTING:
        sqlite3_bind_text(st, 1, r->u.setting.key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->u.setting.json, -1, SQLITE_STATIC);
        return;
    case STORE_REC_TOKEN: {
        const struct store_token *tk = &r->u.token;
        bind_token(st, tk);
        return;
    }
    case STORE_REC_TEST:
        sqlite3_bind_text(st, 1, r->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->u.test.definition, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, r->u.test.created);
        sqlite3_bind_int64(st, 4, r->u.test.rollout_variant);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)r->u.test.predictions);
        sqlite3_bind_double(st, 6, r->u.test.last_prediction);
        bind_text_or_null(st, 7, r->u.test.stats);
        return;
    case STORE_REC_ARM:
        sqlite3_bind_text(st, 1, r->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->u.arm.variant_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)r->u.arm.predictions);
        return;
    case STORE_REC_REWARD:
        sqlite3_bind_text(st, 1, r->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->u.reward.variant_id);
        sqlite3_bind_double(st, 3, r->u.reward.reward);
        bind_text_or_null(st, 4, r->u.reward.context);
        bind_text_or_null(st, 5, r->u.reward.request_id);
        sqlite3_bind_double(st, 6, r->u.reward.ts);
        return;
    case STORE_REC_DECISION:
        sqlite3_bind_text(st, 1, r->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->u.decision.request_id, -1, SQLITE_STATIC);
        bind_text_or_null(st, 3, r->u.decision.context);
        sqlite3_bind_int64(st, 4, r->u.decision.variant_id);
        sqlite3_bind_double(st, 5, r->u.decision.propensity);
        sqlite3_bind_double(st, 6, r->u.decision.created);
        sqlite3_bind_double(st, 7, r->u.decision.expires);
        sqlite3_bind_double(st, 8, r->u.decision.settle_at);
        sqlite3_bind_int(st, 9, r->u.decision.explored);
        sqlite3_bind_int(st, 10, r->u.decision.aggregate);
        if (r->u.decision.has_default) sqlite3_bind_double(st, 11, r->u.decision.default_reward);
        else sqlite3_bind_null(st, 11);
        sqlite3_bind_int64(st, 12, r->u.decision.rewards);
        sqlite3_bind_double(st, 13, r->u.decision.reward_sum);
        sqlite3_bind_int(st, 14, r->u.decision.settled ? 1 : 0);
        sqlite3_bind_int64(st, 15, (sqlite3_int64)r->u.decision.model_version);
        return;
    case STORE_REC_ASSIGNMENT:
        sqlite3_bind_text(st, 1, r->test_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->u.assignment.user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r->u.assignment.variant_id);
        sqlite3_bind_double(st, 4, r->u.assignment.propensity);
        sqlite3_bind_double(st, 5, r->u.assignment.created);
        return;
    case STORE_REC_SNAPSHOT:
        return;
    }
}

/* Whether the database holds any of Scout's data (the tables' bookkeeping in meta aside). */
static int sq_holds_data(sqlite3 *db, int *out) {
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_ESTORE;
    if (sqlite3_prepare_v2(db, "SELECT EXISTS(SELECT 1 FROM tests) OR EXISTS(SELECT 1 FROM tokens)"
                               " OR EXISTS(SELECT 1 FROM settings) OR EXISTS(SELECT 1 FROM rewards)"
                               " OR EXISTS(SELECT 1 FROM decisions) OR EXISTS(SELECT 1 FROM assignments)"
                               " OR EXISTS(SELECT 1 FROM arm_predictions) OR EXISTS(SELECT 1 FROM snapshots)",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SCOUT_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Which of a restored test's events its snapshot covers: those whose ids are at or before the
 * snapshot's (a snapshot comes before its test's events, as both stores write them). */
struct cover {
    char test[SCOUT_ID_LEN + 1];
    int active, rewards;
    struct store_event_pos pos;
    sqlite3_int64 covered;    /* seq of the last covered event written, 0: none */
};

/* Files the seq the current test's snapshot covers. */
static int cover_finish(struct sq *s, struct cover *c) {
    sqlite3_stmt *st = NULL;
    int rc = SCOUT_OK;
    if (c->active && c->covered > 0) {
        if (sqlite3_prepare_v2(s->wdb, "UPDATE snapshots SET seq=?1 WHERE test_id=?2", -1, &st, NULL) != SQLITE_OK)
            return SCOUT_ESTORE;
        sqlite3_bind_int64(st, 1, c->covered);
        sqlite3_bind_text(st, 2, c->test, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
        sqlite3_finalize(st);
    }
    memset(c, 0, sizeof *c);
    return rc;
}

/* Inserts a snapshot row covering nothing yet (seq 0). */
static int insert_snapshot(struct sq *s, const char *test_id, const unsigned char *state, size_t len, double t,
                           long format, sqlite3_int64 seq) {
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(s->wdb, "INSERT INTO snapshots(test_id, seq, state, t, format) VALUES(?1,?2,?3,?4,?5)", -1,
                           &st, NULL) != SQLITE_OK)
        return SCOUT_ESTORE;
    sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_blob(st, 3, len ? (const void *)state : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, t);
    sqlite3_bind_int64(st, 5, format);
    rc = sqlite3_step(st) == SQLITE_DONE ? SCOUT_OK : SCOUT_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* Everything in one transaction on the writer's connection: on any failure it rolls back and
 * the database is as it was. */
static int sq_restore(struct store *base, bool force, int (*next)(void *ud, struct store_record *r), void *ud,
                      char *err, size_t errlen) {
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *ins[RESTORE_KINDS] = {0};
    struct store_record r;
    struct cover cov;
    int rc = SCOUT_ESTORE, got, holds = 0, began = 0;
    memset(&cov, 0, sizeof cov);
    for (int k = 0; k < RESTORE_KINDS; k++)
        if (RESTORE_SQL[k] && sqlite3_prepare_v2(s->wdb, RESTORE_SQL[k], -1, &ins[k], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "the embedded store cannot take the restore: %s", sqlite3_errmsg(s->wdb));
            goto out;
        }
    if (tx(s, ST_BEGIN) != SCOUT_OK) {
        snprintf(err, errlen, "the embedded store is busy (is a server using it? stop it first)");
        goto out;
    }
    began = 1;
    if (sq_holds_data(s->wdb, &holds) != SCOUT_OK) {
        snprintf(err, errlen, "cannot read the embedded store: %s", sqlite3_errmsg(s->wdb));
        goto out;
    }
    if (holds && !force) {
        snprintf(err, errlen, "the data directory %s already holds Scout data; restore into an empty one, or pass "
                              "--force to replace what it holds", s->dir);
        rc = SCOUT_ECONFLICT;
        goto out;
    }
    if (holds && exec_sql(s->wdb, "DELETE FROM rewards; DELETE FROM decisions; DELETE FROM assignments;"
                                  " DELETE FROM arm_predictions; DELETE FROM tests; DELETE FROM settings;"
                                  " DELETE FROM tokens; DELETE FROM snapshots;") != SCOUT_OK) {
        snprintf(err, errlen, "cannot clear the embedded store: %s", sqlite3_errmsg(s->wdb));
        goto out;
    }
    memset(&r, 0, sizeof r);
    while ((got = next(ud, &r)) > 0) {
        sqlite3_stmt *st;
        if (r.kind == STORE_REC_TEST && cover_finish(s, &cov) != SCOUT_OK) {
            snprintf(err, errlen, "writing a snapshot failed: %s", sqlite3_errmsg(s->wdb));
            goto out;
        }
        if (r.kind == STORE_REC_TEST) snprintf(cov.test, sizeof cov.test, "%s", r.test_id);
        if (r.kind == STORE_REC_SNAPSHOT) {
            /* The test's state as the shared store filed it: it stays the state (events it
             * covers may be trimmed, or be history it was not folded from), and only the
             * events after it are folded at loading. */
            if (cov.rewards || cov.active || !store_parse_event_id(r.u.snapshot.id, &cov.pos)) {
                snprintf(err, errlen, "test %s: its snapshot must come once, before its reward events, with the id "
                                      "of the last event it covers", r.test_id);
                rc = SCOUT_EINVAL;
                goto out;
            }
            if (insert_snapshot(s, r.test_id, r.u.snapshot.state, r.u.snapshot.len, r.u.snapshot.t,
                                r.u.snapshot.format, 0) != SCOUT_OK) {
                snprintf(err, errlen, "writing a snapshot failed: %s", sqlite3_errmsg(s->wdb));
                goto out;
            }
            cov.active = 1;
            memset(&r, 0, sizeof r);
            continue;
        }
        if ((int)r.kind < 0 || (int)r.kind >= RESTORE_KINDS || !(st = ins[r.kind])) {
            snprintf(err, errlen, "a record of an unknown kind");
            rc = SCOUT_EINVAL;
            goto out;
        }
        bind_record(st, &r);
        if (sqlite3_step(st) != SQLITE_DONE) {
            snprintf(err, errlen, "writing a record failed: %s", sqlite3_errmsg(s->wdb));
            sqlite3_reset(st);
            goto out;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r.kind == STORE_REC_REWARD) {
            struct store_event_pos pos;
            cov.rewards = 1;
            if (cov.active) {
                if (!store_parse_event_id(r.u.reward.id, &pos)) {
                    snprintf(err, errlen, "test %s: a reward event after its snapshot has no event id, so whether "
                                          "the snapshot covers it is unknown", r.test_id);
                    rc = SCOUT_EINVAL;
                    goto out;
                }
                if (pos.ms < cov.pos.ms || (pos.ms == cov.pos.ms && pos.seq <= cov.pos.seq))
                    cov.covered = sqlite3_last_insert_rowid(s->wdb);
            }
        }
        memset(&r, 0, sizeof r);
    }
    if (got < 0) {
        rc = SCOUT_ERR;   /* the source said why */
        goto out;
    }
    if (cover_finish(s, &cov) != SCOUT_OK) {
        snprintf(err, errlen, "writing a snapshot failed: %s", sqlite3_errmsg(s->wdb));
        goto out;
    }
    /* Running token caches reload on a version change. */
    if (exec_sql(s->wdb, "UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='tokens_version'") != SCOUT_OK ||
        tx(s, ST_COMMIT) != SCOUT_OK) {
        snprintf(err, errlen, "committing the restore failed: %s", sqlite3_errmsg(s->wdb));
        goto out;
    }
    began = 0;
    rc = SCOUT_OK;
out:
    if (began) tx(s, ST_ROLLBACK);
    for (int k = 0; k < RESTORE_KINDS; k++) sqlite3_finalize(ins[k]);
    return rc;
}

/* ---- one test moved in, one test's events read ----------------------------------------- */

/* On the writer: the test, its counters, its events (history) and its snapshot covering them,
 * in one savepoint of the batch's transaction. */
static int do_import(struct sq *s, struct op *op) {
    const struct store_record *recs = op->u.import.recs;
    const struct store_record *snap = NULL;
    size_t n = op->u.import.n;
    sqlite3_stmt *ins[RESTORE_KINDS] = {0};
    sqlite3_int64 covered = 0;
    int rc = SCOUT_ESTORE;
    if (test_exists(s, recs[0].test_id)) {
        snprintf(op->u.import.err, op->u.import.errlen, "a test with id %s exists", recs[0].test_id);
        return SCOUT_ECONFLICT;
    }
    if (tx(s, ST_SAVEPOINT) != SCOUT_OK) return SCOUT_ESTORE;
    for (size_t i = 0; i < n; i++) {
        const struct store_record *r = &recs[i];
        enum store_record_kind k = r->kind;
        if ((k == STORE_REC_TEST) != (i == 0) || !r->test_id || strcmp(r->test_id, recs[0].test_id) ||
            (k != STORE_REC_TEST && k != STORE_REC_ARM && k != STORE_REC_SNAPSHOT && k != STORE_REC_REWARD) ||
            (k == STORE_REC_SNAPSHOT && snap)) {
            snprintf(op->u.import.err, op->u.import.errlen, "an import holds one test, its counters, one snapshot and "
                                                            "its events");
            rc = SCOUT_EINVAL;
            goto fail;
        }
        if (k == STORE_REC_SNAPSHOT) {
            snap = r;
            continue;
        }
        if (!ins[k] && sqlite3_prepare_v2(s->wdb, RESTORE_SQL[k], -1, &ins[k], NULL) != SQLITE_OK) goto store_failed;
        bind_record(ins[k], r);
        if (sqlite3_step(ins[k]) != SQLITE_DONE) goto store_failed;
        sqlite3_reset(ins[k]);
        sqlite3_clear_bindings(ins[k]);
        if (k == STORE_REC_REWARD) covered = sqlite3_last_insert_rowid(s->wdb);
    }
    if (!snap) {
        snprintf(op->u.import.err, op->u.import.errlen, "an import needs the test's learned state");
        rc = SCOUT_EINVAL;
        goto fail;
    }
    if (insert_snapshot(s, recs[0].test_id, snap->u.snapshot.state, snap->u.snapshot.len, util_now() * 1000.0,
                        snap->u.snapshot.format, covered) != SCOUT_OK)
        goto store_failed;
    for (int k = 0; k < RESTORE_KINDS; k++) sqlite3_finalize(ins[k]);
    return tx(s, ST_RELEASE);
store_failed:
    snprintf(op->u.import.err, op->u.import.errlen, "the embedded store failed: %s", sqlite3_errmsg(s->wdb));
    rc = SCOUT_ESTORE;
fail:
    for (int k = 0; k < RESTORE_KINDS; k++) sqlite3_finalize(ins[k]);
    tx(s, ST_ROLLBACK_TO);
    tx(s, ST_RELEASE);
    return rc;
}

static int sq_import_test(struct store *base, const struct store_record *recs, size_t n, char *err, size_t errlen) {
    struct sq *s = (struct sq *)base;
    struct op op = {.kind = OP_IMPORT, .test_id = recs[0].test_id, .u.import = {recs, n, err, errlen}};
    int rc = submit(s, &op);
    if (rc == SCOUT_ESTORE && !err[0]) snprintf(err, errlen, "the embedded store failed to commit the import");
    return rc;
}

#define REWARD_SLICE 1000   /* events copied per hold of the readers' lock */

struct reward_slot {
    long variant;
    double reward, ts;
    char *context, *request_id;
};

static int sq_scan_rewards(struct store *base, const char *test_id, int (*cb)(void *ud, const struct store_record *r),
                           void *ud) {
    struct sq *s = (struct sq *)base;
    struct reward_slot *slots = calloc(REWARD_SLICE, sizeof *slots);
    sqlite3_int64 after = 0;
    int rc = slots ? SCOUT_OK : SCOUT_ENOMEM, got;
    do {
        sqlite3_stmt *st = NULL;
        int step = SQLITE_ERROR;
        got = 0;
        pthread_mutex_lock(&s->rlock);
        if (sqlite3_prepare_v2(s->rdb, "SELECT seq, variant, reward, context, request_id, ts FROM rewards"
                                       " WHERE test_id=?1 AND seq>?2 ORDER BY seq LIMIT ?3", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, test_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, after);
            sqlite3_bind_int(st, 3, REWARD_SLICE);
            while (rc == SCOUT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
                struct reward_slot *x = &slots[got];
                const char *c = (const char *)sqlite3_column_text(st, 3), *q = (const char *)sqlite3_column_text(st, 4);
                after = sqlite3_column_int64(st, 0);
                x->variant = (long)sqlite3_column_int64(st, 1);
                x->reward = sqlite3_column_double(st, 2);
                x->ts = sqlite3_column_double(st, 5);
                x->context = c ? strdup(c) : NULL;
                x->request_id = q ? strdup(q) : NULL;
                got++;
                if ((c && !x->context) || (q && !x->request_id)) rc = SCOUT_ENOMEM;
            }
            if (rc == SCOUT_OK && step != SQLITE_DONE) rc = SCOUT_ESTORE;
        } else {
            rc = SCOUT_ESTORE;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        for (int i = 0; i < got; i++) {
            struct store_record r;
            memset(&r, 0, sizeof r);
            r.kind = STORE_REC_REWARD;
            r.test_id = test_id;
            r.u.reward.variant_id = slots[i].variant;
            r.u.reward.reward = slots[i].reward;
            r.u.reward.ts = slots[i].ts;
            r.u.reward.context = slots[i].context;
            r.u.reward.request_id = slots[i].request_id;
            if (rc == SCOUT_OK && cb(ud, &r) != 0) rc = SCOUT_ERR;
            free(slots[i].context);
            free(slots[i].request_id);
        }
    } while (rc == SCOUT_OK && got == REWARD_SLICE);
    free(slots);
    return rc;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .set_event_handler = sq_set_event_handler,
    .set_change_handler = sq_set_change_handler,
    .start = sq_start,
    .close = sq_close,
    .put_setting = sq_put_setting,
    .put_setting_now = sq_put_setting_now,
    .put_test = sq_put_test,
    .delete_test = sq_delete_test,
    .set_rollout = sq_set_rollout,
    .put_token = sq_put_token,
    .delete_token = sq_delete_token,
    .touch_token = sq_touch_token,
    .flush = sq_flush,
    .put_decision = sq_put_decision,
    .put_test_stats = sq_put_test_stats,
    .claim_assignment = sq_claim_assignment,
    .append_rewards = sq_append_rewards,
    .append_rewards_async = sq_append_rewards_async,
    .load_tests = sq_load_tests,
    .load_arm_predictions = sq_load_arm_predictions,
    .load_rewards = sq_load_rewards,
    .load_assignments = sq_load_assignments,
    .get_setting = sq_get_setting,
    .count_decisions = sq_count_decisions,
    .scan_decisions = sq_scan_decisions,
    .scan_outcomes = sq_scan_outcomes,
    .decision_counts = sq_decision_counts,
    .reward_counts = sq_reward_counts,
    .load_tokens = sq_load_tokens,
    .tokens_version = sq_tokens_version,
    .render_metrics = sq_render_metrics,
    .ping = sq_ping,
    .dump = sq_dump,
    .restore = sq_restore,
    .import_test = sq_import_test,
    .scan_rewards = sq_scan_rewards,
    .set_snapshots = sq_set_snapshots,
};
