/* test_store.c — unit tests for the SQLite store (store/store_sqlite.c) and the settings that
 * persist in it (settings.c).
 *
 * Every test gets a fresh data directory under /tmp (mkdtemp) and removes it afterwards.
 * What must hold:
 *   - an acknowledged write (store_append_rewards returned SCOUT_OK) survives close + reopen,
 *     and store_load_rewards replays the events in commit order with the same values;
 *   - the event handler sees events in that same order, so live state == state rebuilt on restart;
 *   - rewards join a live decision by request_id; expired decisions are neither joined nor kept;
 *   - deleting a test removes it and its events, and later rewards for it are refused;
 *   - settings, rollouts and decision counters persist; concurrent writers lose nothing;
 *   - an asynchronous append answers once, after its commit and after the event handler saw its
 *     events, with the status a waiting append would have had; what it acknowledged survives.
 * Waiting on the writer is done by polling with a deadline, never by a fixed sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tempdir.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bandit/policy.h"
#include "config.h"
#include "settings.h"
#include "store/store.h"
#include "util/common.h"
#include "util/util.h"

#define T1 "11111111-1111-4111-8111-111111111111"
#define T2 "22222222-2222-4222-8222-222222222222"
#define DEF "{\"name\":\"t\",\"variants\":{\"0\":\"a\",\"1\":\"b\",\"2\":\"c\",\"3\":\"d\"}}"

/* ---- fixture: a store in a fresh temporary directory ------------------------------------- */

struct fx {
    char dir[64];
    char db[128];
    struct store *s;
};

static int setup(void **state) {
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (tempdir_make(f->dir, sizeof f->dir, "store") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/scout.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fx *f = *state;
    store_close(f->s);
    int rc = tempdir_remove(f->dir);
    free(f);
    return rc;
}

/* Opens the store of the fixture; `start` also starts the writer. */
static struct store *open_store(struct fx *f, int start) {
    assert_null(f->s);
    assert_int_equal(store_open_sqlite(&f->s, f->dir, false), SCOUT_OK);
    if (start) assert_int_equal(store_start(f->s), SCOUT_OK);
    return f->s;
}

static void close_store(struct fx *f) {
    store_close(f->s);
    f->s = NULL;
}

/* Closes and reopens without starting the writer: the state a restart loads from. */
static struct store *reopen_for_loading(struct fx *f) {
    close_store(f);
    return open_store(f, 0);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static struct store_decision *new_decision(const char *test_id, const char *request_id, long variant,
                                           const char *context, double created, double expires) {
    struct store_decision *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->test_id, sizeof d->test_id, "%s", test_id);
    snprintf(d->request_id, sizeof d->request_id, "%s", request_id);
    d->variant_id = variant;
    d->propensity = 0.5;
    d->context = context ? strdup(context) : NULL;
    d->created = created;
    d->expires = expires;
    return d;
}

/* Rows in the decisions table, read through an independent read-only connection. */
static long decision_rows(const struct fx *f) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM decisions", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* ---- what store_load_* hands back --------------------------------------------------------- */

struct event {
    char test_id[SCOUT_ID_LEN + 1];
    long variant;
    double reward;
    char *context;
    double ts;
};

struct events {
    struct event *v;
    size_t n, cap;
    pthread_mutex_t lock;   /* the event handler runs on the writer thread */
};

static void events_init(struct events *e) {
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
}

static void events_push(struct events *e, const char *test_id, long variant, double reward, const char *context,
                        double ts) {
    pthread_mutex_lock(&e->lock);
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 64;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        assert_non_null(e->v);
    }
    struct event *x = &e->v[e->n++];
    snprintf(x->test_id, sizeof x->test_id, "%s", test_id ? test_id : "");
    x->variant = variant;
    x->reward = reward;
    x->context = context ? strdup(context) : NULL;
    x->ts = ts;
    pthread_mutex_unlock(&e->lock);
}

static void events_free(struct events *e) {
    for (size_t i = 0; i < e->n; i++) free(e->v[i].context);
    free(e->v);
    pthread_mutex_destroy(&e->lock);
}

static int load_event(void *ud, const char *test_id, long variant, double reward, const char *context, double ts) {
    events_push(ud, test_id, variant, reward, context, ts);
    return 0;
}

static void load_all(struct store *s, struct events *out) {
    events_init(out);
    assert_int_equal(store_load_rewards(s, load_event, out), SCOUT_OK);
}

/* The event handler: records the stored events in the order the writer commits them. */
static void log_event(void *arg, const char *test_id, long variant, double reward, const char *context, double ts) {
    events_push(arg, test_id, variant, reward, context, ts);
}

/* Opens and starts a store whose events go to log. */
static struct store *open_logged(struct fx *f, struct events *log) {
    events_init(log);
    open_store(f, 0);
    store_set_event_handler(f->s, log_event, log);
    assert_int_equal(store_start(f->s), SCOUT_OK);
    return f->s;
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void expect_same_events(const struct events *got, const struct events *want) {
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < got->n; i++) {
        const struct event *g = &got->v[i], *w = &want->v[i];
        if (strcmp(g->test_id, w->test_id) || g->variant != w->variant || !same_bits(g->reward, w->reward) ||
            !same_bits(g->ts, w->ts) || (!g->context != !w->context) ||
            (g->context && strcmp(g->context, w->context))) {
            print_error("event %zu differs: got (%s, %ld, %.17g, %s, %.17g), want (%s, %ld, %.17g, %s, %.17g)\n", i,
                        g->test_id, g->variant, g->reward, g->context ? g->context : "NULL", g->ts, w->test_id,
                        w->variant, w->reward, w->context ? w->context : "NULL", w->ts);
            fail();
        }
    }
}

static void put_test(struct store *s, const char *id, double created) {
    assert_int_equal(store_put_test(s, id, DEF, created), SCOUT_OK);
}

/* ---- durability ------------------------------------------------------------------------ */

static void test_acknowledged_rewards_survive_reopen(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct events want, got;
    struct store_reward a[3] = {
        {.variant_id = 0, .reward = 0.25},
        {.variant_id = 1, .reward = -7.5, .context = strdup("{\"country\":\"de\"}")},
        {.variant_id = 0, .reward = 1e10 / 3},
    };
    struct store_reward b[2] = {{.variant_id = 3, .reward = 1.0}, {.variant_id = 2, .reward = 0.1}};
    put_test(s, T1, 1000.0);

    assert_int_equal(store_append_rewards(s, T1, a, 3), SCOUT_OK);
    assert_int_equal(store_append_rewards(s, T1, b, 2), SCOUT_OK);
    events_init(&want);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].applied, 1);
        assert_true(a[i].ts > 0);
        events_push(&want, T1, a[i].variant_id, a[i].reward, a[i].context, a[i].ts);
    }
    for (int i = 0; i < 2; i++) events_push(&want, T1, b[i].variant_id, b[i].reward, b[i].context, b[i].ts);

    s = reopen_for_loading(f);
    load_all(s, &got);
    expect_same_events(&got, &want);
    events_free(&got);
    events_free(&want);
    free(a[1].context);
}

static int count_test_rows(void *ud, const struct store_test_row *row) {
    struct store_test_row *seen = ud;
    if (!strcmp(row->id, T1)) {
        seen->created = row->created;
        seen->rollout_variant = row->rollout_variant;
        seen->predictions = row->predictions;
        seen->last_prediction = row->last_prediction;
        seen->definition = strcmp(row->definition, DEF) == 0 ? "same" : "different";
    }
    seen->id = "any";
    return 0;
}

static void test_put_test_survives_reopen_and_refuses_duplicate(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    put_test(s, T1, 1234.5);
    assert_int_not_equal(store_put_test(s, T1, "{\"name\":\"other\"}", 99.0), SCOUT_OK);
    s = reopen_for_loading(f);
    struct store_test_row seen = {.id = NULL, .rollout_variant = 99};
    assert_int_equal(store_load_tests(s, count_test_rows, &seen), SCOUT_OK);
    assert_non_null(seen.definition);
    assert_string_equal(seen.definition, "same");   /* the first definition is kept */
    assert_true(seen.created == 1234.5);
    assert_int_equal(seen.rollout_variant, -1);
    assert_int_equal(seen.predictions, 0);
    assert_true(seen.last_prediction == 0.0);
}

static void test_writes_before_start_are_refused(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 0);
    struct store_reward r = {.variant_id = 0, .reward = 1.0};
    assert_int_equal(store_put_test(s, T1, DEF, 1.0), SCOUT_ECLOSED);
    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_ECLOSED);
    assert_int_equal(store_put_setting(s, "k", "1"), SCOUT_ECLOSED);
    store_put_decision(s, new_decision(T1, "r", 0, "{}", 1.0, 2.0));   /* dropped and freed */
    assert_int_equal(store_ping(s), SCOUT_OK);
}

/* ---- joins by request id ------------------------------------------------------------------ */

static void test_reward_joins_stored_decision_by_request_id(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    struct store_reward r = {.variant_id = -1, .reward = 1.0, .request_id = "req-42"};
    struct events got;
    put_test(s, T1, now);
    store_put_decision(s, new_decision(T1, "req-42", 2, "{\"country\":\"de\"}", now, now + 3600));

    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_OK);
    assert_int_equal(r.found, 1);
    assert_int_equal(r.applied, 1);
    assert_int_equal(r.variant_id, 2);
    assert_non_null(r.context);
    assert_string_equal(r.context, "{\"country\":\"de\"}");

    s = reopen_for_loading(f);
    load_all(s, &got);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.v[0].variant, 2);
    assert_string_equal(got.v[0].context, "{\"country\":\"de\"}");
    events_free(&got);
    free(r.context);
}

static void test_reward_with_own_variant_and_context_keeps_them(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    char *own = strdup("{\"device\":\"ios\"}");
    struct store_reward r = {.variant_id = 1, .reward = 0.0, .request_id = "req-1", .context = own};
    put_test(s, T1, now);
    store_put_decision(s, new_decision(T1, "req-1", 3, "{\"country\":\"de\"}", now, now + 3600));
    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_OK);
    assert_int_equal(r.found, 1);
    assert_int_equal(r.variant_id, 1);
    assert_ptr_equal(r.context, own);
    free(own);
}

static void test_reward_can_skip_the_decision_context(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    struct store_reward r = {.variant_id = -1, .reward = 1.0, .request_id = "req-7", .skip_stored_context = 1};
    put_test(s, T1, now);
    store_put_decision(s, new_decision(T1, "req-7", 1, "{\"country\":\"de\"}", now, now + 3600));
    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_OK);
    assert_int_equal(r.found, 1);
    assert_int_equal(r.variant_id, 1);   /* the variant is still joined */
    assert_null(r.context);              /* the context is not */
}

static void test_expired_decision_is_not_joined(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    struct store_reward r = {.variant_id = -1, .reward = 1.0, .request_id = "old"};
    struct events got;
    put_test(s, T1, now);
    store_put_decision(s, new_decision(T1, "old", 1, "{\"a\":1}", now - 100, now - 10));

    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_OK);
    assert_int_equal(r.found, 0);
    assert_int_equal(r.applied, 0);   /* no variant: nothing to store */
    assert_int_equal(r.variant_id, -1);
    assert_null(r.context);

    s = reopen_for_loading(f);
    load_all(s, &got);
    assert_int_equal(got.n, 0);
    events_free(&got);
}

static void test_decision_of_another_test_is_not_joined(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    struct store_reward r = {.variant_id = -1, .reward = 1.0, .request_id = "shared-id"};
    put_test(s, T1, now);
    put_test(s, T2, now);
    store_put_decision(s, new_decision(T2, "shared-id", 1, NULL, now, now + 3600));
    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_OK);
    assert_int_equal(r.found, 0);
    assert_int_equal(r.applied, 0);
}

static void test_expired_decisions_are_purged(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    long live = -1;
    char rid[32];
    put_test(s, T1, now);
    for (int i = 0; i < 5; i++) {
        snprintf(rid, sizeof rid, "expired-%d", i);
        store_put_decision(s, new_decision(T1, rid, i % 4, NULL, now - 100, now - 1));
    }
    store_put_decision(s, new_decision(T1, "live", 0, NULL, now, now + 3600));
    assert_int_equal(store_flush(s), SCOUT_OK);

    /* The writer purges at most once a second: poll for up to 5 s. */
    long rows = decision_rows(f);
    for (int i = 0; i < 500 && rows != 1; i++) {
        assert_int_equal(store_count_decisions(s, util_now(), &live), SCOUT_OK);
        assert_true(live >= 0);
        sleep_ms(10);
        rows = decision_rows(f);
    }
    assert_int_equal(rows, 1);   /* only the live decision is left */
    assert_int_equal(store_count_decisions(s, util_now(), &live), SCOUT_OK);
    assert_int_equal(live, 1);
}

/* ---- deletes ------------------------------------------------------------------------------ */

static void test_rewards_for_deleted_test_are_refused(void **state) {
    struct fx *f = *state;
    struct events log;
    struct store *s = open_logged(f, &log);
    struct store_reward r = {.variant_id = 0, .reward = 1.0};
    put_test(s, T1, 1.0);
    assert_int_equal(store_delete_test(s, T1), SCOUT_OK);

    assert_int_equal(store_append_rewards(s, T1, &r, 1), SCOUT_ENOTFOUND);
    assert_int_equal(r.applied, 0);
    assert_int_equal(store_append_rewards(s, T2, &r, 1), SCOUT_ENOTFOUND);   /* never existed */
    assert_int_equal(log.n, 0);   /* nothing committed: nothing to fold */
    assert_int_equal(store_delete_test(s, T1), SCOUT_ENOTFOUND);
    assert_int_equal(store_set_rollout(s, T1, 1), SCOUT_ENOTFOUND);
    events_free(&log);
}

static int collect_test_ids(void *ud, const struct store_test_row *row) {
    struct events *e = ud;
    events_push(e, row->id, row->rollout_variant, 0, row->definition, row->created);
    return 0;
}

static void test_delete_removes_test_and_its_events(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    double now = util_now();
    struct store_reward r1[2] = {{.variant_id = 0, .reward = 1.0}, {.variant_id = 1, .reward = 0.0}};
    struct store_reward r2 = {.variant_id = 2, .reward = 0.5};
    struct events tests, got;
    long live = -1;
    put_test(s, T1, 1.0);
    put_test(s, T2, 2.0);
    store_put_decision(s, new_decision(T1, "a", 0, NULL, now, now + 3600));
    store_put_decision(s, new_decision(T2, "b", 0, NULL, now, now + 3600));
    assert_int_equal(store_append_rewards(s, T1, r1, 2), SCOUT_OK);
    assert_int_equal(store_append_rewards(s, T2, &r2, 1), SCOUT_OK);

    assert_int_equal(store_delete_test(s, T1), SCOUT_OK);
    assert_int_equal(store_count_decisions(s, now, &live), SCOUT_OK);
    assert_int_equal(live, 1);   /* T1's decision went with it */

    s = reopen_for_loading(f);
    events_init(&tests);
    assert_int_equal(store_load_tests(s, collect_test_ids, &tests), SCOUT_OK);
    assert_int_equal(tests.n, 1);
    assert_string_equal(tests.v[0].test_id, T2);
    load_all(s, &got);
    assert_int_equal(got.n, 1);   /* only T2's event is left */
    assert_string_equal(got.v[0].test_id, T2);
    assert_int_equal(got.v[0].variant, 2);
    events_free(&got);
    events_free(&tests);
}

/* ---- asynchronous appends ----------------------------------------------------------------- */

struct async_call {
    struct store_reward ev[2];
    struct events *log;       /* the event handler's log */
    _Atomic int calls;        /* times done ran */
    int rc;
    size_t logged;            /* events the handler had seen when done ran */
};

static void async_done(void *arg, int rc) {
    struct async_call *c = arg;
    pthread_mutex_lock(&c->log->lock);
    c->logged = c->log->n;
    pthread_mutex_unlock(&c->log->lock);
    c->rc = rc;
    atomic_fetch_add(&c->calls, 1);
}

static void wait_calls(struct async_call *c, int n) {
    for (int waited = 0; waited < 5000; waited++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= atomic_load(&c[i].calls) > 0;
        if (all) return;
        sleep_ms(1);
    }
    fail_msg("asynchronous appends not answered within 5 s");
}

static void test_async_appends_answer_after_their_commit(void **state) {
    enum { N = 50 };
    struct fx *f = *state;
    struct events log, got;
    struct async_call *c = calloc(N + 1, sizeof *c);
    long live = 0;
    double now = util_now();
    assert_non_null(c);
    struct store *s = open_logged(f, &log);
    put_test(s, T1, 1.0);
    store_put_decision(s, new_decision(T1, "rid-7", 3, "{\"k\":\"v\"}", now, now + 3600));
    for (int i = 0; i < N; i++) {
        c[i].log = &log;
        c[i].ev[0] = (struct store_reward){.variant_id = i % 4, .reward = i};
        c[i].ev[1] = (struct store_reward){.variant_id = -1, .reward = 0.5, .request_id = i == 7 ? "rid-7" : NULL};
        store_append_rewards_async(s, T1, c[i].ev, 2, async_done, &c[i]);
    }
    c[N].log = &log;   /* a test that does not exist: refused, nothing stored */
    c[N].ev[0] = (struct store_reward){.variant_id = 0, .reward = 1};
    store_append_rewards_async(s, T2, c[N].ev, 1, async_done, &c[N]);
    wait_calls(c, N + 1);
    sleep_ms(20);   /* a second call of done would come with the same batch */
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&c[i].calls), 1);
        assert_int_equal(c[i].rc, SCOUT_OK);
        assert_int_equal(c[i].ev[0].applied, 1);
        /* Only request 7's second reward names a decision; the others have no variant. */
        assert_int_equal(c[i].ev[1].applied, i == 7);
        assert_true(c[i].logged >= (size_t)(i + 1) + (i >= 7));   /* its own events were folded first */
    }
    assert_int_equal(c[7].ev[1].found, 1);
    assert_int_equal(c[7].ev[1].variant_id, 3);
    assert_int_equal(atomic_load(&c[N].calls), 1);
    assert_int_equal(c[N].rc, SCOUT_ENOTFOUND);
    assert_int_equal(c[N].ev[0].applied, 0);
    assert_int_equal(log.n, N + 1);
    assert_int_equal(store_count_decisions(s, now, &live), SCOUT_OK);
    assert_int_equal(live, 1);

    free(c[7].ev[1].context);   /* the store filled in the decision's context */
    s = reopen_for_loading(f);
    load_all(s, &got);
    expect_same_events(&got, &log);
    events_free(&got);
    events_free(&log);
    free(c);
}

static long file_size(const char *path) {
    FILE *fp = fopen(path, "rb");
    long n = -1;
    if (fp && fseek(fp, 0, SEEK_END) == 0) n = ftell(fp);
    if (fp) fclose(fp);
    return n;
}

static void add_count(void *ud, long bucket, long variant, long count, double sum) {
    (void)bucket;
    (void)variant;
    (void)sum;
    *(long *)ud += count;
}

/* A busy writer never leaves the log wholly copied by the checkpointer beside it, yet the log
 * must still restart: under a steady stream of commits three times its size, the WAL file stays
 * within the 64 MiB it is cut back to, and every event is kept. */
static void test_the_log_restarts_under_a_steady_stream_of_commits(void **state) {
    enum { CONTEXT = 60 * 1024, LOG_CAP = 64 * 1024 * 1024 };
    struct fx *f = *state;
    char wal[160], *ctx = malloc(CONTEXT + 1);
    long written = 0, largest = 0, n = 0, rewards = 0;
    assert_non_null(ctx);
    memset(ctx, 'x', CONTEXT);
    ctx[0] = '"';
    ctx[CONTEXT - 1] = '"';
    ctx[CONTEXT] = '\0';
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    struct store *s = open_store(f, 1);
    put_test(s, T1, 1.0);
    while (written < 3L * LOG_CAP) {
        struct store_reward ev = {.variant_id = n % 4, .reward = 1, .context = ctx};
        assert_int_equal(store_append_rewards(s, T1, &ev, 1), SCOUT_OK);
        assert_int_equal(ev.applied, 1);
        written += CONTEXT;
        n++;
        long size = file_size(wal);
        if (size > largest) largest = size;
    }
    assert_true(largest > 0);
    assert_true(largest <= LOG_CAP);   /* restarted rather than growing on */
    assert_int_equal(store_reward_counts(s, T1, 0, 1e12, add_count, &rewards), SCOUT_OK);
    assert_int_equal(rewards, n);
    free(ctx);
}

static void test_async_append_to_a_closed_store_answers_closed_at_once(void **state) {
    struct fx *f = *state;
    struct events log;
    struct async_call c = {.log = &log};
    open_store(f, 0);   /* never started: like a closed store, it takes no writes */
    events_init(&log);
    c.ev[0] = (struct store_reward){.variant_id = 0, .reward = 1};
    store_append_rewards_async(f->s, T1, c.ev, 1, async_done, &c);
    assert_int_equal(atomic_load(&c.calls), 1);   /* before the call returned */
    assert_int_equal(c.rc, SCOUT_ECLOSED);
    events_free(&log);
}

/* ---- commit order ------------------------------------------------------------------------ */

struct appender {
    struct store *s;
    int thread, calls, per_call;
    int failures;
};

static void *append_main(void *p) {
    struct appender *a = p;
    struct store_reward ev[4];
    for (int i = 0; i < a->calls; i++) {
        memset(ev, 0, sizeof ev);
        for (int j = 0; j < a->per_call; j++) {
            ev[j].variant_id = a->thread;
            ev[j].reward = (double)(i * a->per_call + j) + a->thread / 10.0;   /* unique per event */
        }
        if (store_append_rewards(a->s, T1, ev, a->per_call) != SCOUT_OK)
            a->failures++;
    }
    return NULL;
}

static void run_appenders(struct store *s, int threads, int calls, int per_call) {
    pthread_t th[8];
    struct appender a[8];
    assert_true(threads <= 8 && per_call <= 4);
    for (int t = 0; t < threads; t++) {
        a[t] = (struct appender){s, t, calls, per_call, 0};
        assert_int_equal(pthread_create(&th[t], NULL, append_main, &a[t]), 0);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(a[t].failures, 0);
    }
}

static void test_events_reach_the_handler_in_commit_order(void **state) {
    struct fx *f = *state;
    struct events log, got;
    struct store *s = open_logged(f, &log);
    put_test(s, T1, 1.0);

    run_appenders(s, 4, 50, 3);   /* concurrent callers: batches mix their events */
    assert_int_equal(log.n, 600);

    s = reopen_for_loading(f);
    load_all(s, &got);
    expect_same_events(&got, &log);   /* the live fold order is the replay order */
    events_free(&got);
    events_free(&log);
}

/* The event handler folding into a policy, as the server does. */
struct live_policy {
    struct policy p;
    int events;
};

static void fold_event(void *arg, const char *test_id, long variant, double reward, const char *context, double ts) {
    struct live_policy *l = arg;
    (void)test_id;
    (void)context;
    (void)ts;
    l->events++;
    policy_update(&l->p, (int)variant, reward, NULL);
}

static int fold_loaded(void *ud, const char *test_id, long variant, double reward, const char *context, double ts) {
    (void)test_id;
    (void)context;
    (void)ts;
    policy_update(ud, (int)variant, reward, NULL);
    return 0;
}

static void test_replay_from_store_rebuilds_identical_policy_state(void **state) {
    struct fx *f = *state;
    struct live_policy live;
    struct policy replayed;
    struct store_reward ev[7];
    struct store *s;
    rng_t r;
    int sent = 0;
    rng_seed(&r, 314);
    assert_int_equal(policy_init(&live.p, POLICY_THOMPSON, 4, 0.1, 1.0), SCOUT_OK);
    live.events = 0;
    s = open_store(f, 0);
    store_set_event_handler(s, fold_event, &live);
    assert_int_equal(store_start(s), SCOUT_OK);
    put_test(s, T1, 1.0);
    for (int call = 0; call < 60; call++) {
        int n = 1 + (int)rng_below(&r, 7);
        memset(ev, 0, sizeof ev);
        for (int i = 0; i < n; i++) {
            ev[i].variant_id = (long)rng_below(&r, 4);
            /* arbitrary reals: negatives, fractions with no short decimal form, large amounts */
            ev[i].reward = (rng_uniform(&r) - 0.3) * pow(10.0, (double)rng_below(&r, 12) - 4);
        }
        assert_int_equal(store_append_rewards(s, T1, ev, n), SCOUT_OK);
        sent += n;
    }
    assert_int_equal(live.events, sent);

    s = reopen_for_loading(f);
    assert_int_equal(policy_init(&replayed, POLICY_THOMPSON, 4, 0.1, 1.0), SCOUT_OK);
    assert_int_equal(store_load_rewards(s, fold_loaded, &replayed), SCOUT_OK);
    assert_int_equal(replayed.updates, live.p.updates);
    assert_true(same_bits(replayed.rmin, live.p.rmin));
    assert_true(same_bits(replayed.rmax, live.p.rmax));
    for (int a = 0; a < 4; a++) {
        assert_int_equal(replayed.arms[a].n, live.p.arms[a].n);
        assert_true(same_bits(replayed.arms[a].sum, live.p.arms[a].sum));
        assert_true(same_bits(replayed.arms[a].sumsq, live.p.arms[a].sumsq));
    }
    policy_free(&replayed);
    policy_free(&live.p);
}

static void test_concurrent_appends_are_all_stored(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct events got;
    long next[4] = {0, 0, 0, 0};
    put_test(s, T1, 1.0);

    run_appenders(s, 4, 200, 1);

    s = reopen_for_loading(f);
    load_all(s, &got);
    assert_int_equal(got.n, 800);
    for (size_t i = 0; i < got.n; i++) {
        /* each caller waited for its commit, so its own events are stored in its order */
        long t = got.v[i].variant;
        assert_true(t >= 0 && t < 4);
        assert_true(got.v[i].reward == (double)next[t] + t / 10.0);
        next[t]++;
    }
    for (int t = 0; t < 4; t++) assert_int_equal(next[t], 200);
    events_free(&got);
}

/* ---- rollout, counters, analytics --------------------------------------------------------- */

static void test_rollout_persists(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct events tests;
    put_test(s, T1, 1.0);
    put_test(s, T2, 2.0);
    assert_int_equal(store_set_rollout(s, T1, 2), SCOUT_OK);
    assert_int_equal(store_set_rollout(s, T2, 3), SCOUT_OK);
    assert_int_equal(store_set_rollout(s, T2, -1), SCOUT_OK);   /* cleared */

    s = reopen_for_loading(f);
    events_init(&tests);
    assert_int_equal(store_load_tests(s, collect_test_ids, &tests), SCOUT_OK);
    assert_int_equal(tests.n, 2);   /* ordered by created */
    assert_string_equal(tests.v[0].test_id, T1);
    assert_int_equal(tests.v[0].variant, 2);
    assert_string_equal(tests.v[1].test_id, T2);
    assert_int_equal(tests.v[1].variant, -1);
    events_free(&tests);
}

struct bucket_row {
    long bucket, variant, count, explored;
};

struct bucket_rows {
    struct bucket_row v[32];
    int n;
};

static void collect_bucket(void *ud, long bucket, long variant, long count, long explored) {
    struct bucket_rows *b = ud;
    assert_true(b->n < 32);
    b->v[b->n++] = (struct bucket_row){bucket, variant, count, explored};
}

static int cmp_bucket(const void *x, const void *y) {
    const struct bucket_row *a = x, *b = y;
    if (a->bucket != b->bucket) return a->bucket < b->bucket ? -1 : 1;
    return (a->variant > b->variant) - (a->variant < b->variant);
}

static void put_decision_explored(struct store *s, const char *test, const char *rid, long variant, int explored,
                                  double created) {
    struct store_decision *d = new_decision(test, rid, variant, NULL, created, util_now() + 3600);
    d->explored = explored;
    store_put_decision(s, d);
}

static const double BUCKET_SINCE = 1000000.0, BUCKET_GRAN = 10.0;

static void put_bucket_decisions(struct store *s) {
    const double since = BUCKET_SINCE;
    put_test(s, T1, 1.0);
    put_test(s, T2, 1.0);
    put_decision_explored(s, T1, "r1", 0, 1, since + 0.5);    /* bucket 0 */
    put_decision_explored(s, T1, "r2", 0, 0, since + 9.5);    /* bucket 0 */
    put_decision_explored(s, T1, "r3", 1, 1, since + 3.0);    /* bucket 0 */
    put_decision_explored(s, T1, "r4", 0, 1, since + 10.5);   /* bucket 1 */
    put_decision_explored(s, T1, "r5", 1, 0, since + 25.0);   /* bucket 2 */
    put_decision_explored(s, T1, "r6", 1, 1, since + 29.0);   /* bucket 2 */
    put_decision_explored(s, T1, "early", 0, 1, since - 1.0); /* before the window */
    put_decision_explored(s, T2, "other", 0, 1, since + 1.0); /* another test */
    assert_int_equal(store_flush(s), SCOUT_OK);
}

static void expect_bucket_counts(struct store *s) {
    struct bucket_rows rows = {.n = 0};
    assert_int_equal(store_decision_counts(s, T1, BUCKET_SINCE, BUCKET_GRAN, collect_bucket, &rows), SCOUT_OK);
    qsort(rows.v, (size_t)rows.n, sizeof rows.v[0], cmp_bucket);
    const struct bucket_row want[] = {{0, 0, 2, 1}, {0, 1, 1, 1}, {1, 0, 1, 1}, {2, 1, 2, 1}};
    assert_int_equal(rows.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rows.v[i].bucket, want[i].bucket);
        assert_int_equal(rows.v[i].variant, want[i].variant);
        assert_int_equal(rows.v[i].count, want[i].count);
        assert_int_equal(rows.v[i].explored, want[i].explored);
    }
}

static void test_decision_counts_group_by_bucket_and_variant(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    put_bucket_decisions(s);
    expect_bucket_counts(s);
}

/* Runs sql on its own connection to the database, handing each row to row (may be NULL). */
static void exec_raw(const char *db, const char *sql, int (*row)(void *, int, char **, char **), void *ud) {
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(db, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, sql, row, ud, NULL), SQLITE_OK);
    sqlite3_close(c);
}

static int plan_detail(void *ud, int n, char **values, char **names) {
    (void)names;
    if (n >= 4 && values[3] && strstr(values[3], "USING COVERING INDEX")) *(int *)ud = 1;
    return 0;
}

/* A database from before the covering index (decisions by test and time only) is given it on
 * open: the analytics' counts read the index alone, not one table row per decision, and they
 * are the same as before. */
static void test_an_older_database_gets_the_covering_index_of_the_counts(void **state) {
    struct fx *f = *state;
    int covered = 0;
    put_bucket_decisions(open_store(f, 1));
    close_store(f);
    exec_raw(f->db, "DROP INDEX decisions_by_test_time; CREATE INDEX decisions_by_test ON decisions(test_id, created)",
             NULL, NULL);
    expect_bucket_counts(open_store(f, 1));
    close_store(f);
    exec_raw(f->db, "EXPLAIN QUERY PLAN SELECT CAST((created-1)/1 AS INTEGER) AS b, variant, count(*), sum(explored)"
                    " FROM decisions WHERE test_id='x' AND created>=1 GROUP BY b, variant", plan_detail, &covered);
    assert_true(covered);
}

struct scanned {
    double created[16];
    long variant[16];
    int n;
};

static void collect_scan(void *ud, double created, long variant, int explored, const char *context) {
    struct scanned *sc = ud;
    (void)explored;
    (void)context;
    assert_true(sc->n < 16);
    sc->created[sc->n] = created;
    sc->variant[sc->n++] = variant;
}

static void test_scan_decisions_newest_first_with_limit(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct scanned sc = {.n = 0};
    char rid[16];
    put_test(s, T1, 1.0);
    for (int i = 0; i < 6; i++) {
        snprintf(rid, sizeof rid, "r%d", i);
        put_decision_explored(s, T1, rid, i % 4, 0, 100.0 + i);
    }
    assert_int_equal(store_flush(s), SCOUT_OK);
    assert_int_equal(store_scan_decisions(s, T1, 101.0, 3, collect_scan, &sc), SCOUT_OK);
    assert_int_equal(sc.n, 3);
    assert_true(sc.created[0] == 105.0 && sc.created[1] == 104.0 && sc.created[2] == 103.0);
    assert_int_equal(sc.variant[0], 1);
}

/* ---- outcomes: the scan behind export and off-policy evaluation ------------------------- */

#define OUTCOMES 2500

struct outcomes {
    int seen[OUTCOMES];
    double last_created;
    int n, out_of_order, stop_after;
    struct store_outcome r7, settled;   /* copies without the borrowed strings */
};

static int collect_outcome(void *ud, const struct store_outcome *o) {
    struct outcomes *c = ud;
    int i = atoi(o->request_id + 1);
    if (o->request_id[0] == 'r' && i >= 0 && i < OUTCOMES) c->seen[i]++;
    if (o->created < c->last_created) c->out_of_order++;
    c->last_created = o->created;
    if (!strcmp(o->request_id, "r7")) c->r7 = *o;
    if (!strcmp(o->request_id, "settled")) c->settled = *o;
    return ++c->n == c->stop_after;
}

static void test_scan_outcomes_oldest_first_each_row_once_with_rewards(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct outcomes *c = calloc(1, sizeof *c);
    double now = util_now(), deadline = util_monotonic() + 10;
    struct store_reward r[2] = {{.variant_id = -1, .reward = 1.0, .request_id = "r7"},
                                {.variant_id = -1, .reward = 0.5, .request_id = "r7"}};
    struct store_decision *d;
    char rid[16];
    assert_non_null(c);
    put_test(s, T1, 1.0);
    put_test(s, T2, 1.0);
    /* 1200 decisions share one timestamp: the scan's slices (1000 rows) must split the tie
     * without losing or repeating a row. */
    for (int i = 0; i < OUTCOMES; i++) {
        snprintf(rid, sizeof rid, "r%d", i);
        store_put_decision(s, new_decision(T1, rid, i % 4, i % 2 ? "{\"k\":1}" : NULL,
                                           i < 1200 ? 100.0 : 100.0 + i, now + 3600));
    }
    store_put_decision(s, new_decision(T1, "early", 0, NULL, 99.0, now + 3600));
    store_put_decision(s, new_decision(T2, "r1", 0, NULL, 100.0, now + 3600));
    d = new_decision(T1, "settled", 1, NULL, 5000.0, now + 3600);
    d->settle_at = now - 1;   /* its window is over: the writer settles it with the default */
    d->has_default = 1;
    d->default_reward = 0.25;
    store_put_decision(s, d);
    assert_int_equal(store_append_rewards(s, T1, r, 2), SCOUT_OK);
    free(r[0].context);
    free(r[1].context);
    do {   /* poll until the writer settled it */
        memset(c, 0, sizeof *c);
        assert_int_equal(store_scan_outcomes(s, T1, 100.0, 100000, collect_outcome, c), SCOUT_OK);
        if (c->settled.settled) break;
        sleep_ms(20);
    } while (util_monotonic() < deadline);

    assert_int_equal(c->n, OUTCOMES + 1);   /* not "early", not T2's */
    assert_int_equal(c->out_of_order, 0);
    for (int i = 0; i < OUTCOMES; i++) assert_int_equal(c->seen[i], 1);
    assert_int_equal(c->r7.rewards, 2);
    assert_true(c->r7.reward_sum == 1.5 && c->r7.propensity == 0.5 && c->r7.variant_id == 3);
    assert_false(c->r7.settled || c->r7.has_default);
    assert_true(c->settled.settled && c->settled.has_default && c->settled.default_reward == 0.25);
    assert_int_equal(c->settled.rewards, 0);

    memset(c, 0, sizeof *c);   /* limit: the oldest rows */
    assert_int_equal(store_scan_outcomes(s, T1, 0, 1500, collect_outcome, c), SCOUT_OK);
    assert_int_equal(c->n, 1500);
    assert_int_equal(c->seen[1499], 0);
    assert_int_equal(c->seen[1498], 1);   /* "early" came first */

    memset(c, 0, sizeof *c);   /* a callback can stop the walk */
    c->stop_after = 3;
    assert_int_equal(store_scan_outcomes(s, T1, 0, 100000, collect_outcome, c), SCOUT_ERR);
    assert_int_equal(c->n, 3);
    free(c);
}

struct arm_counts {
    uint64_t n[4];
    int other;
};

static int collect_arm(void *ud, const char *test_id, long variant, uint64_t n) {
    struct arm_counts *c = ud;
    if (strcmp(test_id, T1) || variant < 0 || variant > 3) c->other++;
    else c->n[variant] = n;
    return 0;
}

static void test_decision_tallies_persist_per_arm(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct arm_counts c = {{0}, 0};
    struct store_test_row seen = {.id = NULL};
    put_test(s, T1, 1.0);
    put_decision_explored(s, T1, "a", 0, 0, 500.0);
    put_decision_explored(s, T1, "b", 0, 0, 700.0);
    put_decision_explored(s, T1, "c", 0, 0, 600.0);
    assert_int_equal(store_flush(s), SCOUT_OK);
    put_decision_explored(s, T1, "d", 3, 0, 650.0);   /* a second batch adds to the first */
    put_decision_explored(s, T1, "e", 3, 0, 550.0);
    assert_int_equal(store_flush(s), SCOUT_OK);

    s = reopen_for_loading(f);
    assert_int_equal(store_load_arm_predictions(s, collect_arm, &c), SCOUT_OK);
    assert_int_equal(c.other, 0);
    assert_int_equal(c.n[0], 3);
    assert_int_equal(c.n[1], 0);
    assert_int_equal(c.n[3], 2);
    assert_int_equal(store_load_tests(s, count_test_rows, &seen), SCOUT_OK);
    assert_int_equal(seen.predictions, 5);
    assert_true(seen.last_prediction == 700.0);
}

static void test_many_queued_decisions_are_all_committed(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    enum { N = 5000 };   /* more than one transaction's worth */
    double now = util_now();
    long live = -1;
    struct arm_counts c = {{0}, 0};
    char rid[32];
    put_test(s, T1, now);
    for (int i = 0; i < N; i++) {
        snprintf(rid, sizeof rid, "bulk-%d", i);
        store_put_decision(s, new_decision(T1, rid, i % 4, NULL, now, now + 3600));
    }
    assert_int_equal(store_flush(s), SCOUT_OK);
    assert_int_equal(store_count_decisions(s, now, &live), SCOUT_OK);
    assert_int_equal(live, N);

    s = reopen_for_loading(f);
    assert_int_equal(store_load_arm_predictions(s, collect_arm, &c), SCOUT_OK);
    for (int v = 0; v < 4; v++) assert_int_equal(c.n[v], N / 4);
}

/* ---- settings --------------------------------------------------------------------------- */

static void test_settings_put_get_round_trip_across_reopen(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    char *v = (char *)0x1;
    assert_int_equal(store_get_setting(s, "model_config", &v), SCOUT_OK);
    assert_null(v);   /* unset */
    assert_int_equal(store_put_setting(s, "model_config", "{\"a\":1}"), SCOUT_OK);
    assert_int_equal(store_put_setting(s, "model_config", "{\"a\":2}"), SCOUT_OK);   /* overwrite */
    assert_int_equal(store_put_setting(s, "redis_config", "{\"ttl\":60}"), SCOUT_OK);
    assert_int_equal(store_get_setting(s, "model_config", &v), SCOUT_OK);
    assert_string_equal(v, "{\"a\":2}");
    free(v);

    s = reopen_for_loading(f);
    assert_int_equal(store_get_setting(s, "model_config", &v), SCOUT_OK);
    assert_non_null(v);
    assert_string_equal(v, "{\"a\":2}");
    free(v);
    assert_int_equal(store_get_setting(s, "redis_config", &v), SCOUT_OK);
    assert_string_equal(v, "{\"ttl\":60}");
    free(v);
}

static void default_config(struct config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = strdup("127.0.0.1");
    cfg->port = 8000;
    cfg->redis_port = 6379;
    cfg->context_ttl = 86400;
}

static json_t *J(const char *text) {
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static int update(int (*fn)(struct settings *, struct store *, const json_t *, int *, char *, size_t),
                  struct settings *st, struct store *s, const char *body, int *status) {
    json_t *b = J(body);
    char err[256] = "";
    *status = 0;
    int rc = fn(st, s, b, status, err, sizeof err);
    if (rc == SCOUT_EINVAL) assert_true(err[0] != '\0');
    json_decref(b);
    return rc;
}

static void test_settings_updates_survive_reopen(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct config cfg;
    struct settings st;
    int status;
    default_config(&cfg);
    assert_int_equal(settings_load(&st, s, &cfg), SCOUT_OK);
    assert_int_equal(atomic_load(&st.min_update_requests), 10);   /* defaults */
    assert_int_equal(atomic_load(&st.context_ttl), 86400);
    assert_int_equal(update(settings_update_model_config, &st, s, "{\"min_update_requests\": 3,"
                            " \"time_window_minutes\": 30}", &status), SCOUT_OK);
    assert_int_equal(update(settings_update_redis_config, &st, s, "{\"ttl\": 120}", &status), SCOUT_OK);
    assert_int_equal(update(settings_update_system_config, &st, s, "{\"host\": \"0.0.0.0\", \"port\": 9000}",
                            &status), SCOUT_OK);
    assert_int_equal(atomic_load(&st.min_update_requests), 3);
    settings_free(&st);
    config_free(&cfg);

    close_store(f);
    s = open_store(f, 1);
    default_config(&cfg);
    assert_int_equal(settings_load(&st, s, &cfg), SCOUT_OK);
    assert_int_equal(atomic_load(&st.min_update_requests), 3);
    assert_int_equal(atomic_load(&st.time_window_minutes), 30);
    assert_int_equal(atomic_load(&st.bucket_granularity_seconds), 60);   /* untouched: default */
    assert_int_equal(atomic_load(&st.context_ttl), 120);
    assert_string_equal(st.host, "0.0.0.0");   /* stored system_config applies when no flag says */
    assert_int_equal(st.port, 9000);
    settings_free(&st);
    config_free(&cfg);

    /* flags win over stored values */
    default_config(&cfg);
    cfg.port_set = cfg.host_set = cfg.context_ttl_set = true;
    assert_int_equal(settings_load(&st, s, &cfg), SCOUT_OK);
    assert_string_equal(st.host, "127.0.0.1");
    assert_int_equal(st.port, 8000);
    assert_int_equal(atomic_load(&st.context_ttl), 86400);
    settings_free(&st);
    config_free(&cfg);
}

static void test_settings_updates_refuse_bad_values(void **state) {
    struct fx *f = *state;
    struct store *s = open_store(f, 1);
    struct config cfg;
    struct settings st;
    int status;
    char *stored = NULL;
    default_config(&cfg);
    assert_int_equal(settings_load(&st, s, &cfg), SCOUT_OK);

    assert_int_equal(update(settings_update_model_config, &st, s, "[1]", &status), SCOUT_EINVAL);
    assert_int_equal(status, 422);
    assert_int_equal(update(settings_update_model_config, &st, s, "{\"min_update_requests\": \"3\"}", &status),
                     SCOUT_EINVAL);
    assert_int_equal(status, 422);
    assert_int_equal(update(settings_update_model_config, &st, s, "{\"min_update_requests\": -1}", &status),
                     SCOUT_EINVAL);
    assert_int_equal(status, 400);
    assert_int_equal(update(settings_update_model_config, &st, s, "{\"time_window_minutes\": 10080,"
                            " \"bucket_granularity_seconds\": 1}", &status), SCOUT_EINVAL);   /* too many buckets */
    assert_int_equal(status, 400);
    assert_int_equal(update(settings_update_system_config, &st, s, "{\"port\": 0}", &status), SCOUT_EINVAL);
    assert_int_equal(status, 400);
    assert_int_equal(update(settings_update_system_config, &st, s, "{\"debug\": \"yes\"}", &status), SCOUT_EINVAL);
    assert_int_equal(status, 422);
    assert_int_equal(update(settings_update_redis_config, &st, s, "{\"host\": \"\"}", &status), SCOUT_EINVAL);
    assert_int_equal(status, 400);
    assert_int_equal(update(settings_update_redis_config, &st, s, "{\"ttl\": 0}", &status), SCOUT_EINVAL);
    assert_int_equal(status, 400);

    /* nothing was applied or stored */
    assert_int_equal(atomic_load(&st.min_update_requests), 10);
    assert_int_equal(atomic_load(&st.context_ttl), 86400);
    assert_int_equal(st.port, 8000);
    assert_int_equal(store_get_setting(s, "model_config", &stored), SCOUT_OK);
    assert_null(stored);
    assert_int_equal(store_get_setting(s, "system_config", &stored), SCOUT_OK);
    assert_null(stored);
    settings_free(&st);
    config_free(&cfg);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        T(test_acknowledged_rewards_survive_reopen),
        T(test_put_test_survives_reopen_and_refuses_duplicate),
        T(test_writes_before_start_are_refused),
        T(test_reward_joins_stored_decision_by_request_id),
        T(test_reward_with_own_variant_and_context_keeps_them),
        T(test_reward_can_skip_the_decision_context),
        T(test_expired_decision_is_not_joined),
        T(test_decision_of_another_test_is_not_joined),
        T(test_expired_decisions_are_purged),
        T(test_many_queued_decisions_are_all_committed),
        T(test_rewards_for_deleted_test_are_refused),
        T(test_delete_removes_test_and_its_events),
        T(test_events_reach_the_handler_in_commit_order),
        T(test_replay_from_store_rebuilds_identical_policy_state),
        T(test_concurrent_appends_are_all_stored),
        T(test_async_appends_answer_after_their_commit),
        T(test_async_append_to_a_closed_store_answers_closed_at_once),
        T(test_the_log_restarts_under_a_steady_stream_of_commits),
        T(test_rollout_persists),
        T(test_decision_counts_group_by_bucket_and_variant),
        T(test_an_older_database_gets_the_covering_index_of_the_counts),
        T(test_scan_decisions_newest_first_with_limit),
        T(test_scan_outcomes_oldest_first_each_row_once_with_rewards),
        T(test_decision_tallies_persist_per_arm),
        T(test_settings_put_get_round_trip_across_reopen),
        T(test_settings_updates_survive_reopen),
        T(test_settings_updates_refuse_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
