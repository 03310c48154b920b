/* experiment.h — one test ("model" in the original's API) in memory: its definition, its
 * learned state and its live counters.
 * The definition is a JSON document, parsed by the same function whether it comes from a
 * client or from the store, so what was accepted once always loads again. The learned state
 * sits behind a per-test mutex held only for in-memory work (microseconds): a decision never
 * waits for the disk. Tests are reference-counted so a delete never frees one in use. */
#ifndef SCOUT_EXPERIMENT_H
#define SCOUT_EXPERIMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <jansson.h>

#include "bandit/policy.h"
#include "sticky.h"
#include "util/common.h"

struct variant {
    long id;              /* the integer id the client chose ("0", "1", ...) */
    json_t *label;        /* string or integer, as the client sent it */
    char *key;            /* the label as text: the key of per-label maps in responses */
};

struct experiment {
    char id[SCOUT_ID_LEN + 1];
    char *name;
    double created_at;
    int nvariants;
    struct variant *variants;   /* sorted by id */
    json_t *definition;         /* the stored definition document */
    json_t *features;           /* allow-list of context keys (array) or NULL */
    int min_updates;            /* -1: follow the global min_update_requests setting */
    int burn_in;                /* warm-up also lasts until every variant has this many rewards */
    double reward_wait;         /* seconds a decision waits for its rewards (0: forever) */
    int has_default_reward;     /* when the wait ends without a reward, default_reward applies */
    double default_reward;
    int aggregate;              /* enum store_aggregate: rewards of one request */
    char *sticky_key;           /* context key (or body field) naming a user; NULL: not sticky */
    enum policy_kind kind;

    pthread_mutex_t lock;       /* guards policy, probs, last_update_at, sticky, srm_* */
    struct policy policy;
    double *probs;              /* cached choice probabilities, nvariants entries */
    uint64_t probs_version;     /* policy.version the cache was computed for (+1 offset) */
    int probs_warmup;
    double probs_time;
    double last_update_at;      /* 0 = never */
    struct sticky_map sticky;   /* user → first assignment (sticky tests) */
    int sticky_full_logged;
    uint64_t *srm_observed;     /* policy decisions per variant since load (SRM check) */
    double *srm_expected;       /* Σ of their logged probabilities per variant */
    uint64_t srm_saved;         /* decisions drawn when the counters were last handed out to save */
    double srm_saved_at;

    _Atomic int rollout;        /* index of the globally rolled-out variant, -1 = none */
    _Atomic uint64_t predictions;
    _Atomic uint64_t *arm_predictions;
    _Atomic int64_t last_prediction_ms;  /* 0 = never */
    _Atomic int refs;
};

/* A decision as experiment_decide made it. */
struct decision {
    int arm;
    double propensity;
    int explored;
    int rollout;          /* 1 when a global rollout overrode the policy */
    int sticky;           /* 1 when the user's earlier assignment decided */
    int assigned;         /* 1 when this decision became the user's sticky assignment */
    uint64_t model_version;   /* reward events the model had learned when it decided */
};

/* Builds a test from a definition document (what create_model received, or what the store
 * kept). On a bad definition returns SCOUT_EINVAL, writes a sentence to err and sets *status
 * to 422 (wrong shape) or 400 (invalid value). Borrows def. The result has one reference. */
int experiment_from_definition(const json_t *def, const char *id, double created_at,
                               struct experiment **out, int *status, char *err, size_t errlen);

void experiment_ref(struct experiment *e);
void experiment_unref(struct experiment *e);

/* Index of the variant a client names: an integer is matched as an id, then as an integer
 * label; a string as a label, then as a decimal id. -1 when none matches. */
int experiment_find_variant(const struct experiment *e, const json_t *ref);

/* "all", "first" or "sum". */
const char *experiment_aggregation_name(const struct experiment *e);

/* Index of the variant with this id, or -1. */
int experiment_index_of_id(const struct experiment *e, long id);

/* The part of a request's context the test learns from: every key, or those of its features
 * allow-list. NULL when nothing is left; else a new reference. */
json_t *experiment_features(const struct experiment *e, const json_t *ctx);

/* Decides for one request; min_updates_default is the global warm-up length. When probs is
 * not NULL it receives every variant's probability for this request (nvariants entries). */
struct decision experiment_decide(struct experiment *e, const json_t *ctx, int min_updates_default, double *probs);

/* The same for a user of a sticky test (user NULL: not sticky): the user's earlier assignment
 * wins; a first decision becomes the assignment (d.assigned) unless the test holds
 * STICKY_MAX_USERS already. */
struct decision experiment_decide_for(struct experiment *e, const json_t *ctx, const char *user,
                                      int min_updates_default, double *probs);

/* Restores a stored sticky assignment (loading). */
void experiment_restore_assignment(struct experiment *e, const char *user, int arm, double propensity);

/* Copies the SRM counters: observed[nvariants] decisions and expected[nvariants] Σ probabilities. */
void experiment_srm(struct experiment *e, uint64_t *observed, double *expected);

/* The SRM counters as JSON text to store (malloc'd) when they changed and, unless force, the
 * last copy is older than `every` seconds at `now`; NULL otherwise. */
char *experiment_srm_to_save(struct experiment *e, double now, double every, int force);

/* Restores counters saved by experiment_srm_to_save (loading; unknown variants are skipped). */
void experiment_restore_srm(struct experiment *e, const char *text);

/* Folds one acknowledged reward into the learned state (called in commit order). */
void experiment_apply_reward(struct experiment *e, int arm, double reward, const json_t *ctx, double ts);

/* Adds a decision to the live counters. */
void experiment_count_decision(struct experiment *e, int arm, double ts);

/* Raises a decision counter to a count stored by all replicas together (never lowers it):
 * arm -1 is the whole test, whose latest decision time `last` is raised too. */
void experiment_raise_predictions(struct experiment *e, int arm, uint64_t count, double last);

/* Rewards applied so far, and (when not NULL) the time of the latest. */
uint64_t experiment_updates(struct experiment *e, double *last_update_at);

/* Copies the learned state (linear models included) under the lock: the caller frees with
 * policy_free. */
int experiment_snapshot(struct experiment *e, struct policy *out, double *last_update_at);

/* The learned state as bytes (bandit/snapshot.h): *out malloc'd, the caller frees it.
 * SCOUT_OK or SCOUT_ENOMEM. */
int experiment_encode_state(struct experiment *e, unsigned char **out, size_t *len);

/* Replaces the learned state by one experiment_encode_state made (for a test of the same
 * shape). SCOUT_EINVAL with a sentence in err when the bytes are not such a state; the state is
 * then unchanged. */
int experiment_restore_state(struct experiment *e, const unsigned char *buf, size_t len, char *err, size_t errlen);

/* Current choice probabilities for a request with this context (NULL: none), copied into
 * probs[nvariants]. */
void experiment_probabilities(struct experiment *e, const json_t *ctx, int min_updates_default, double *probs);

/* Whether the test is still drawing uniformly. */
int experiment_in_warmup(struct experiment *e, int min_updates_default);

#endif
