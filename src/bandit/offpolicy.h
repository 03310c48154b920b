/* offpolicy.h — off-policy evaluation: how another policy would have done on the decisions a
 * test logged, without showing it to anyone. Each logged row is (arm a, the logging policy's
 * probability p of a, reward r) plus the target policy's probability π(a|x) for that row's
 * context; with w = π(a|x)/p:
 *   IPS   = mean(w·r)                                 unbiased, high variance
 *   SNIPS = Σ w·r / Σ w                               slightly biased, much steadier
 *   DR    = mean(Σ_b π(b|x)·ĝ(b) + w·(r − ĝ(a)))      unbiased when p is right, and low variance
 *                                                     when the reward model ĝ is good
 * with 95% normal-approximation intervals, the logged policy's own mean reward, and the
 * effective sample size (Σw)²/Σw² (how many uniform rows the weighted log is worth).
 * Pure arithmetic over arrays the caller owns: no I/O, no allocation. */
#ifndef SCOUT_OFFPOLICY_H
#define SCOUT_OFFPOLICY_H

#include <stddef.h>

/* One logged decision with its reward, as the estimators read it. */
struct ope_row {
    int arm;              /* index of the logged arm, 0..narms-1 */
    double propensity;    /* the logging policy's probability of that arm, in (0, 1] */
    double reward;
    double target;        /* the target policy's probability of that arm here, π(a|x), in [0, 1] */
    double direct;        /* Σ_b π(b|x)·ĝ(b) (ope_direct): read only for DR, when a model is given */
};

/* An estimate of a mean reward with its 95% interval. */
struct ope_estimate {
    int defined;          /* 0: no estimate (no rows; SNIPS with Σw = 0; DR without a model) */
    int has_ci;           /* 0: no interval (fewer than two rows) */
    double estimate, ci_low, ci_high;
};

struct ope_result {
    size_t n;
    struct ope_estimate logged;   /* the logging policy: the plain mean reward */
    struct ope_estimate ips, snips, dr;
    double ess;                   /* (Σw)²/Σw²; 0 when every weight is 0 or there are no rows */
};

/* The reward model of DR: model[a] = sum[a]/count[a], the mean reward of arm a in the log; an
 * arm never logged gets the mean over all arms (0 for an empty log). */
void ope_reward_model(const double *sum, const double *count, int narms, double *model);

/* The reward model's value of the target policy at one context: Σ_b targets[b]·model[b]. */
double ope_direct(const double *targets, const double *model, int narms);

/* Estimates the target policy's mean reward from n rows into *out. model (narms entries, or
 * NULL to skip DR) is ĝ. SCOUT_EINVAL when a row is out of range (arm, propensity not in
 * (0, 1], target not in [0, 1], a non-finite number); n == 0 gives undefined estimates. */
int ope_evaluate(const struct ope_row *rows, size_t n, const double *model, int narms, struct ope_result *out);

#endif
