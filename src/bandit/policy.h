/* policy.h — a test's learned state and the bandit policies that decide from it.
 * The state is a fold over reward events: per arm the count, the reward sum and the sum of
 * squares (with a discount γ < 1 every event first multiplies every arm's weighted sums by γ,
 * so old evidence fades), the smallest and largest reward seen, and for contextual policies a
 * linear model per arm (linear.h). Replaying the same events in the same order rebuilds
 * exactly the same state, which is how restart works.
 * Contextual policies (LinUCB, linear Thompson) read the `ctx` arguments that the
 * non-contextual ones ignore; `auto` is Thompson sampling on the per-arm statistics for a
 * request without context and linear Thompson sampling for one with context.
 * Not thread-safe: the owner (experiment.c) locks. */
#ifndef SCOUT_POLICY_H
#define SCOUT_POLICY_H

#include <stdint.h>
#include <jansson.h>

#include "bandit/linear.h"
#include "bandit/rng.h"

enum policy_kind { POLICY_THOMPSON = 0, POLICY_EGREEDY, POLICY_UCB1, POLICY_AUTO, POLICY_LINUCB, POLICY_LINTS };

struct arm_stats {
    uint64_t n;       /* rewards applied */
    double sum;       /* sum of rewards */
    double sumsq;     /* sum of squared rewards */
    double w, ws, wss;   /* the same three, discounted (equal to them when there is no discount) */
};

struct policy {
    enum policy_kind kind;
    double epsilon;           /* exploration rate of ε-greedy */
    double floor;             /* every arm's probability is at least this (guardrail; 0 = none) */
    double discount;          /* γ in (0,1]: weight kept by old evidence at each event */
    struct lin_model *lin;    /* contextual kinds (auto, linucb, lints); owned; NULL otherwise */
    int narms;
    struct arm_stats *arms;   /* narms entries, owned */
    uint64_t updates;         /* rewards applied in all */
    double rmin, rmax;        /* range of rewards seen (valid when updates > 0) */
    uint64_t version;         /* bumped by every update: caches compare it */
};

/* What one decision picked, and how likely it was. */
struct choice {
    int arm;
    int explored;             /* 1 when the pick was not the current best arm */
};

/* Per-arm statistics for people. */
struct arm_summary {
    double mean;              /* posterior mean of the arm's reward */
    double ci_low, ci_high;   /* 95% credible interval of the mean */
    double prob_best;         /* posterior probability that this arm has the highest mean */
};

/* "auto", "thompson", "egreedy", "ucb1", "linucb", "lints"; 0 for an unknown name. */
int policy_parse_kind(const char *name, enum policy_kind *out);
const char *policy_kind_name(enum policy_kind kind);

/* discount: 1 for none. */
int policy_init(struct policy *p, enum policy_kind kind, int narms, double epsilon, double discount);
void policy_free(struct policy *p);

/* A deep copy of src into dst (policy_free it); SCOUT_ENOMEM on failure. */
int policy_copy(struct policy *dst, const struct policy *src);

/* Whether a decision with this context (NULL: none) uses the linear model. */
int policy_uses_context(const struct policy *p, const json_t *ctx);

/* Folds one reward event into the state. */
void policy_update(struct policy *p, int arm, double reward, const json_t *ctx);

/* Decides. warmup != 0 means "draw uniformly" (the test has fewer than min_updates rewards). */
struct choice policy_choose(const struct policy *p, rng_t *rng, const json_t *ctx, int warmup);

/* Fills probs[narms] with the probability that policy_choose picks each arm now (exact for
 * ε-greedy, UCB, LinUCB and warm-up; by quadrature for linear Thompson sampling; a Monte
 * Carlo estimate over `draws` draws for Thompson sampling). */
void policy_probabilities(const struct policy *p, rng_t *rng, const json_t *ctx, int warmup,
                          int draws, double *probs);

/* Fills out[narms] with posterior summaries (Monte Carlo over `draws` draws). */
void policy_summarize(const struct policy *p, rng_t *rng, int draws, struct arm_summary *out);

/* True when rewards stay within [0,1] (Beta–Bernoulli model), else Gaussian. */
int policy_is_bernoulli(const struct policy *p);

#endif
