/* store.h — where Scout keeps what must outlive the process: tests, reward events, decision
 * records (with an expiry), settings.
 * Writes go through one writer thread that batches everything queued into one transaction
 * (group commit). Rewards and definitions wait for their commit — "acknowledged" means
 * committed —; decision records do not wait (a decision must never block on the disk) and are
 * committed within a few milliseconds. The event handler runs on the writer thread, in commit
 * order, so the in-memory state folds events in exactly the order a restart replays them. */
#ifndef SCOUT_STORE_H
#define SCOUT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/common.h"

struct store;

/* How rewards for one request are folded in (a test setting, copied into each decision). */
enum store_aggregate {
    STORE_AGG_ALL = 0,    /* every reward is an observation (the original's behaviour) */
    STORE_AGG_FIRST = 1,  /* only the first reward counts; later ones are duplicates */
    STORE_AGG_SUM = 2,    /* rewards add up; the sum is one observation when the wait ends */
};

/* A decision record: request_id -> (test, context, variant, propensity). */
struct store_decision {
    char test_id[SCOUT_ID_LEN + 1];
    char request_id[SCOUT_MAX_REQUEST_ID + 1];
    long variant_id;
    double propensity;
    int explored;
    char *context;        /* JSON text or NULL; owned by the record */
    double created, expires;
    uint64_t model_version;   /* reward events the model had learned when it decided */
    double settle_at;     /* end of the reward window (0: none) */
    int aggregate;        /* enum store_aggregate */
    int has_default;      /* default_reward applies when no reward came by settle_at */
    double default_reward;
};

/* What became of one reward of an update request. */
enum store_reward_outcome {
    STORE_REWARD_APPLIED = 0,   /* stored as an event (when it had or found a variant) */
    STORE_REWARD_DEFERRED,      /* added to its decision's sum, applied when the window ends */
    STORE_REWARD_DUPLICATE,     /* aggregation "first": the decision already had its reward */
    STORE_REWARD_LATE,          /* the decision's reward window had ended */
};

/* A sticky assignment: the variant a user of a test got first. */
struct store_assignment {
    char test_id[SCOUT_ID_LEN + 1];
    char user[SCOUT_MAX_STICKY_USER + 1];
    long variant_id;
    double propensity;
    double created;
    int existing;         /* set by store_claim_assignment: the user had one already */
};

/* One reward event of an update_model request. */
struct store_reward {
    long variant_id;      /* -1: take the variant of the decision named by request_id */
    double reward;
    const char *request_id;   /* borrowed; NULL when the client sent none */
    char *context;        /* JSON text or NULL; owned by the caller. When NULL and the
                             decision is found, the store fills in the decision's context
                             unless skip_stored_context is set. */
    int skip_stored_context;  /* the client said context_used_for_prediction: false */
    /* Set by the store: */
    int found;            /* request_id named a live decision of this test */
    int applied;          /* the event was stored (it had or found a variant) */
    int outcome;          /* enum store_reward_outcome */
    double ts;
};


struct store_test_row {
    const char *id;
    const char *definition;   /* JSON text */
    double created;
    long rollout_variant;     /* -1: none */
    uint64_t predictions;
    double last_prediction;   /* 0: never */
    const char *stats;        /* JSON text kept by store_put_test_stats, or NULL */
};

/* Opens (creating if needed) the embedded store in dir. sync_full: fsync every commit. */
int store_open_sqlite(struct store **out, const char *dir, bool sync_full);

/* Opens the shared store on Redis at host:port, authenticating with password (and user, for an
 * ACL user) when given. SCOUT_EINVAL when Redis refused the credentials, SCOUT_ESTORE when it
 * cannot be reached; err gets a sentence either way (never the password). */
int store_open_redis(struct store **out, const char *host, int port, const char *user, const char *password,
                     char *err, size_t errlen);

/* The store the configuration names: Redis when it has a Redis host, else SQLite in its data
 * directory. Same results as the two openers. */
struct config;
int store_open_configured(struct store **out, const struct config *cfg, char *err, size_t errlen);

/* "sqlite" or "redis". */
const char *store_backend_name(const struct store *s);

/* Starts the writer thread; call after loading. */
int store_start(struct store *s);

/* Commits everything queued, stops the writer, closes the database. */
void store_close(struct store *s);

/* Loading at start-up (before store_start), in a stable order. A callback returning
 * non-zero stops the walk and the function returns SCOUT_ERR. */
int store_load_tests(struct store *s, int (*cb)(void *ud, const struct store_test_row *row), void *ud);
int store_load_arm_predictions(struct store *s,
                               int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud);
int store_load_rewards(struct store *s,
                       int (*cb)(void *ud, const char *test_id, long variant_id, double reward,
                                 const char *context, double ts),
                       void *ud);

/* Settings: small JSON documents by key. *out is malloc'd (caller frees) or NULL if unset. */
int store_get_setting(struct store *s, const char *key, char **out);
int store_put_setting(struct store *s, const char *key, const char *json);
/* The same, also before store_start (a CLI that records its backup and serves nothing):
 * committed at once on the caller's thread without starting the writer. */
int store_put_setting_now(struct store *s, const char *key, const char *json);

int store_put_test(struct store *s, const char *id, const char *definition, double created);
int store_delete_test(struct store *s, const char *id);          /* SCOUT_ENOTFOUND if none */
int store_set_rollout(struct store *s, const char *id, long variant_id);  /* -1 clears */

/* Queues a snapshot of a test's counters that are not events (the SRM check's); not waited
 * for. The store takes ownership of stats (malloc'd JSON text). */
void store_put_test_stats(struct store *s, const char *test_id, char *stats);

/* Records a user's first assignment unless the user already has one in the store (assigned
 * by another replica): on return *a is the assignment that stands. SCOUT_OK, or SCOUT_ESTORE
 * when the store cannot say (the caller keeps its own). The embedded store, whose one process
 * decides alone, queues the write and returns at once. */
int store_claim_assignment(struct store *s, struct store_assignment *a);

/* Every stored sticky assignment, grouped by test (loading, before store_start). */
int store_load_assignments(struct store *s,
                           int (*cb)(void *ud, const char *test_id, const char *user, long variant_id, double propensity),
                           void *ud);

/* Queues a decision record; the store takes ownership of d (malloc'd) and its context. */
void store_put_decision(struct store *s, struct store_decision *d);

/* Stores the events durably in one transaction (all or nothing), resolving request ids; the
 * event handler has seen them when this returns SCOUT_OK. SCOUT_ENOTFOUND when the test is
 * gone. */
int store_append_rewards(struct store *s, const char *test_id, struct store_reward *ev, int n);

/* Called once when an asynchronous write has finished, with what the waiting call would have
 * returned. Runs on a store thread (keep it short), or on the caller's before
 * store_append_rewards_async returns when the store cannot defer. */
typedef void (*store_done_fn)(void *arg, int rc);

/* store_append_rewards without blocking the caller's thread: done(arg, rc) follows once the
 * events are durable (and the event handler has seen them) or have failed. test_id and ev
 * must stay valid until then. Both stores defer (their writer threads answer); the Redis store
 * answers in place while Redis is away. */
void store_append_rewards_async(struct store *s, const char *test_id, struct store_reward *ev, int n,
                                store_done_fn done, void *arg);

/* Receives every reward event once it is durable, in the order of the store's log (the order a
 * restart replays): the events of update requests and those made by settling decisions. Runs
 * on a store thread; context is JSON text or NULL. */
typedef void (*store_event_fn)(void *arg, const char *test_id, long variant_id, double reward,
                               const char *context, double ts);

/* Sets who folds events into the learned state; call before store_start. */
void store_set_event_handler(struct store *s, store_event_fn fn, void *arg);

/* A change another process made to what this one serves (a shared store's replicas): a test
 * created or deleted, a rollout set or cleared, a setting saved, and (about once a second) the
 * decision counts all replicas stored together — a count never goes down. A process also sees its own
 * changes come back: handlers must be idempotent. */
enum store_change { STORE_TEST_PUT, STORE_TEST_DELETED, STORE_ROLLOUT, STORE_SETTING, STORE_PREDICTIONS };

struct store_change_event {
    enum store_change kind;
    const char *test_id;      /* TEST_PUT, TEST_DELETED, ROLLOUT */
    const char *definition;   /* TEST_PUT: JSON text */
    double created;           /* TEST_PUT */
    long variant_id;          /* ROLLOUT: -1 = cleared; PREDICTIONS: the variant, -1 = the whole test */
    const char *key;          /* SETTING */
    uint64_t count;           /* PREDICTIONS: decisions stored by every replica together */
    double last;              /* PREDICTIONS (whole test): time of the latest stored decision */
};

typedef void (*store_change_fn)(void *arg, const struct store_change_event *ev);

/* Sets who applies changes made elsewhere; call before store_start. The embedded store has one
 * process and never calls it. */
void store_set_change_handler(struct store *s, store_change_fn fn, void *arg);

/* Snapshots of learned state. A test's learned state is a fold over its reward events; a
 * shared store keeps, per test, the state at some event with that event's id, so a starting
 * replica loads the snapshot and replays only the events after it, and events both covered by
 * a snapshot and older than the retention period can be trimmed. The store asks for states
 * (take) on the thread that applies events, so a state always matches the event it is filed
 * under, and hands stored ones back (restore) when loading and when a replica fell behind
 * events trimmed meanwhile. States are opaque bytes to the store. The embedded store keeps
 * every event and never takes snapshots; it holds the ones it is given (a restored backup of
 * the shared store whose events were trimmed, an imported test) and hands them back when
 * loading, before the events after them. */
struct store_snapshots {
    /* The test's learned state now (*state malloc'd, the store frees it); non-zero: none. */
    int (*take)(void *arg, const char *test_id, unsigned char **state, size_t *len);
    /* Replaces the test's learned state by a stored one; SCOUT_ENOTFOUND when the test is gone
     * (not served), another non-zero value when the bytes are not a state this build reads. */
    int (*restore)(void *arg, const char *test_id, const unsigned char *state, size_t len);
    void *arg;
    double interval;          /* seconds between snapshots of a test that learned something */
    double retention;         /* seconds events covered by a snapshot are kept (0: trim at once) */
};

/* Sets the snapshot handlers; call before loading. The store copies *snap. */
void store_set_snapshots(struct store *s, const struct store_snapshots *snap);

/* Creates one test, learned state included, on a running store (a test moved from another
 * installation: POST /admin/tests/import). recs[0] is its STORE_REC_TEST record (its rollout,
 * decision counts and last decision time are kept); then its STORE_REC_ARM records, exactly one
 * STORE_REC_SNAPSHOT (the state; its id, t and trimmed are ignored: the store files it under
 * its own position) and its STORE_REC_REWARD records in log order (their ids are ignored).
 * The snapshot covers every one of those events: they are kept as history (analytics, export,
 * backups) and are never folded into the state, neither now nor at a restart; events appended
 * later are folded after the snapshot, here and at every restart. All or nothing. The event
 * handler is not called: the caller puts the state in memory. SCOUT_ECONFLICT when a test
 * with this id exists, SCOUT_EINVAL for records of the wrong shape, SCOUT_ESTORE when the
 * store failed; err gets a sentence. */
struct store_record;
int store_import_test(struct store *s, const struct store_record *recs, size_t n, char *err, size_t errlen);

/* The reward events of a test in log order (the order a restart folds them), as
 * STORE_REC_REWARD records (borrowed for the duration of the callback; id set by the shared
 * store only). Reads in slices without holding the store between them. cb returning non-zero
 * stops the walk (SCOUT_ERR). */
int store_scan_rewards(struct store *s, const char *test_id, int (*cb)(void *ud, const struct store_record *r),
                       void *ud);

/* Waits until everything queued before the call is committed. */
int store_flush(struct store *s);

/* Live (unexpired) decision records. */
int store_count_decisions(struct store *s, double now, long *out);

/* Decisions of a test created at or after `since`, newest first, at most `limit`. */
int store_scan_decisions(struct store *s, const char *test_id, double since, int limit,
                         void (*cb)(void *ud, double created, long variant_id, int explored,
                                    const char *context),
                         void *ud);

/* A decision record with what became of it, for export and off-policy evaluation. The strings
 * are borrowed for the duration of the callback. */
struct store_outcome {
    const char *request_id;
    double created;
    long variant_id;
    double propensity;
    const char *context;      /* JSON text or NULL */
    long rewards;             /* rewards joined to the decision so far */
    double reward_sum;        /* their sum */
    int settled;              /* its reward window ended */
    int has_default;          /* the default reward applied when it settled without a reward */
    double default_reward;
};

/* Decisions of a test created at or after `since`, oldest first, at most `limit`. Reads in
 * slices and calls cb between them without holding the store: a long scan never stalls
 * health checks or token reloads, and cb may take its time. A callback returning non-zero
 * stops the walk and the function returns SCOUT_ERR. */
int store_scan_outcomes(struct store *s, const char *test_id, double since, long limit,
                        int (*cb)(void *ud, const struct store_outcome *o), void *ud);

/* Decision counts of a test since `since`, grouped by time bucket (index from `since`, of
 * `granularity` seconds) and variant; explored is how many of them explored. */
int store_decision_counts(struct store *s, const char *test_id, double since, double granularity,
                          void (*cb)(void *ud, long bucket, long variant_id, long count, long explored),
                          void *ud);

/* Reward events of a test logged at or after `since` (rewards as sent and those a reward window
 * settled), grouped by time bucket and variant: how many and their sum. A (bucket, variant) pair
 * may come more than once: add them up. */
int store_reward_counts(struct store *s, const char *test_id, double since, double granularity,
                        void (*cb)(void *ud, long bucket, long variant_id, long count, double sum), void *ud);

/* An API token as stored: only the hash of its secret. Times are epoch seconds, 0 = unset. */
struct store_token {
    char id[17];
    char name[65];
    int scope;
    unsigned char hash[32];
    double created, expires, last_used, revoked, rotated;
};

/* Inserts or replaces a token (waits for the commit). */
int store_put_token(struct store *s, const struct store_token *tk);

/* Deletes a token row (waits for the commit). */
int store_delete_token(struct store *s, const char *id);

/* Records a token's last use; does not wait. */
void store_touch_token(struct store *s, const char *id, double last_used);

/* Every stored token; works while the writer runs. */
int store_load_tokens(struct store *s, int (*cb)(void *ud, const struct store_token *tk), void *ud);

/* A number that changes whenever any process changed the tokens. */
int store_tokens_version(struct store *s, long *out);

/* Appends the store's series (operations by kind, commit latency, queue depth) to t. */
struct metrics_text;
void store_render_metrics(struct store *s, struct metrics_text *t);

/* SCOUT_OK when the database answers. */
int store_ping(struct store *s);

/* ---- backup and restore (scoutd backup / restore, src/backup.c) ---------------------- */

/* One logical record of a store's contents, the same on both backends. Records of a test
 * follow its STORE_REC_TEST record. Strings and bytes are borrowed for the duration of the
 * callback (dump) or until the next call of the record source (restore). */
enum store_record_kind {
    STORE_REC_SETTING,      /* u.setting */
    STORE_REC_TOKEN,        /* u.token: the hash of the secret, never the secret */
    STORE_REC_TEST,         /* u.test (its id is test_id) */
    STORE_REC_ARM,          /* u.arm: decisions counted per variant */
    STORE_REC_SNAPSHOT,     /* u.snapshot: learned state the store holds (the shared store's periodic
                               one; the embedded store's of an imported or restored test) */
    STORE_REC_REWARD,       /* u.reward: one reward event, in log order */
    STORE_REC_DECISION,     /* u.decision: a decision record with what became of it */
    STORE_REC_ASSIGNMENT,   /* u.assignment: a sticky assignment */
};

struct store_record {
    enum store_record_kind kind;
    const char *test_id;      /* every kind but SETTING and TOKEN */
    union {
        struct {
            const char *key, *json;
        } setting;
        struct store_token token;
        struct {
            const char *definition;   /* JSON text */
            double created, last_prediction;
            long rollout_variant;     /* -1: none */
            uint64_t predictions;
            const char *stats;        /* JSON text or NULL */
        } test;
        struct {
            long variant_id;
            uint64_t predictions;
        } arm;
        struct {
            const char *id;           /* the last event it covers ("ms-seq") */
            const unsigned char *state;
            size_t len;
            double t;                 /* when it was filed, epoch ms as the shared store keeps it */
            long format;
            const char *trimmed;      /* events before this id may be gone, or NULL: all kept */
        } snapshot;
        struct {
            long variant_id;
            double reward, ts;
            const char *context, *request_id;   /* NULL: none */
            const char *id;           /* the shared store's event id, or NULL */
        } reward;
        struct {
            const char *request_id, *context;   /* context NULL: none */
            long variant_id;
            double propensity, created, expires, settle_at;
            int explored, aggregate, has_default, settled;
            double default_reward, reward_sum;
            long rewards;
            uint64_t model_version;
        } decision;
        struct {
            const char *user;
            long variant_id;
            double propensity, created;
        } assignment;
    } u;
};

/* Hands everything the store holds to emit: settings, tokens, then each test followed by its
 * records (arm counts, snapshot, reward events in log order, decisions, assignments). The
 * embedded store reads an online backup copy of its database, so the whole dump is one point
 * in time; the shared store reads each test atomically (one point in time per test; settings,
 * tokens and tests are read one after another). Works beside running servers. emit returning
 * non-zero stops the walk (SCOUT_ERR). err gets a sentence on failure. */
int store_dump(struct store *s, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
               size_t errlen);

/* Writes the records next hands over into a store no server is using; next returns 1 with a
 * record, 0 at the end, or a negative value to abandon the restore. SCOUT_ECONFLICT when the
 * store holds Scout data and force is false; with force, Scout's data is cleared first. The
 * embedded store does all of it in one transaction (nothing changes unless all of it was
 * written); the shared store, which has no such transaction, deletes what it wrote when it
 * fails. SCOUT_EINVAL for a record the store cannot hold. Call before store_start. err gets a
 * sentence on failure. */
int store_restore(struct store *s, bool force, int (*next)(void *ud, struct store_record *r), void *ud, char *err,
                  size_t errlen);

#endif
