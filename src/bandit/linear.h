/* linear.h — the contextual half of learning: a context encoder and one ridge regression per
 * arm, from which LinUCB and linear Thompson sampling choose.
 * Encoding (DESIGN.md "Learning"): slot 0 is the intercept; a boolean is 0/1; a number is
 * standardised with its running mean and deviation (clipped to ±5); a string is one-hot per
 * (feature, value) with at most LIN_MAX_VALUES values per feature, later values sharing one
 * overflow slot. The encoder grows only when a reward is folded in — never on a decision —
 * so replaying the same events rebuilds exactly the same model. Each arm keeps A⁻¹ (updated
 * with Sherman–Morrison, O(d²)), b and θ = A⁻¹b. With a discount γ < 1 an arm's evidence
 * decays as it learns: A ← γA + (1−γ)λI + xxᵀ, b ← γb + rx (A⁻¹ then recomputed by
 * Cholesky, O(d³), only for discounted tests).
 * For people, the model also keeps per arm reward statistics for every string or boolean
 * feature value it has slots for. Not thread-safe: the owner (policy.c via experiment.c) locks. */
#ifndef SCOUT_LINEAR_H
#define SCOUT_LINEAR_H

#include <stdint.h>
#include <jansson.h>

#include "bandit/rng.h"

#define LIN_MAX_DIM 128      /* encoded dimension, intercept included */
#define LIN_MAX_CELLS (1 << 20)   /* arms × d² ≤ this: at most 8 MiB of A⁻¹ per test (d ≤ 64 at 256 arms) */
#define LIN_MAX_VALUES 32    /* one-hot slots per string feature before the overflow slot */

enum lin_type { LIN_NUMBER, LIN_BOOL, LIN_STRING };

/* Reward statistics of the rewards whose context had one feature value, per arm. */
struct lin_value_stats {
    uint64_t n;
    double sum, sumsq;
};

#define LIN_OVERFLOW_TEXT "(other)"

struct lin_value {
    char *text;                    /* the value ("red", "true"); LIN_OVERFLOW_TEXT for the overflow */
    int slot;
    int overflow;                  /* the shared slot of values beyond the cap */
    struct lin_value_stats *arms;  /* narms entries */
};

struct lin_feature {
    char *name;
    enum lin_type type;
    int slot;                      /* number / bool: its slot; string: overflow slot or -1 */
    double n, mean, m2;            /* running statistics of a number (Welford) */
    int nvalues;
    struct lin_value *values;      /* strings and booleans: LIN_MAX_VALUES + 1 entries at most */
};

struct lin_model {
    int narms, d, cap;             /* dimension in use, allocated dimension */
    double lambda;                 /* ridge prior: A starts as λI */
    double discount;               /* γ in (0,1]; 1 = no decay */
    double *ainv;                  /* narms blocks of cap×cap, row-major */
    double *a;                     /* A itself, only when discount < 1 */
    double *b, *theta;             /* narms blocks of cap */
    uint64_t *arm_updates;
    int nfeat;
    struct lin_feature *feat;
    uint64_t dropped;              /* feature values that found no slot (dimension full) */
    double rn, rmean, rm2;         /* running statistics of all rewards: the noise scale */
};

/* NULL when out of memory. discount 1 for none. */
struct lin_model *lin_new(int narms, double discount);
void lin_free(struct lin_model *m);
/* A deep copy (NULL when out of memory). */
struct lin_model *lin_clone(const struct lin_model *m);

/* Folds one reward for arm with its context (NULL: intercept only). Grows the encoder. */
void lin_update(struct lin_model *m, int arm, double reward, const json_t *ctx);

/* Encodes ctx into x[LIN_MAX_DIM] with the slots learned so far (nothing is added); returns
 * the dimension d. Unknown features are ignored; an unseen string value uses the overflow slot
 * if the feature has one, else nothing. */
int lin_encode(const struct lin_model *m, const json_t *ctx, double *x);

/* Per arm: the predicted reward θ·x and its standard deviation σ̂·√(xᵀA⁻¹x), σ̂ the reward
 * noise scale. */
void lin_predict(const struct lin_model *m, const double *x, double *mu, double *sd);

/* Probability that each of k independent normals N(mu_i, sd_i²) is the largest: Gauss–Hermite
 * quadrature for up to 16 arms, Monte Carlo (with rng) above. probs sums to 1. */
void lin_max_probabilities(const double *mu, const double *sd, int k, rng_t *rng, double *probs);

#endif
