/* policy.c — Thompson sampling, ε-greedy and UCB1 over additive per-arm statistics.
 * Thompson sampling uses a Beta–Bernoulli posterior while every reward lies in [0,1] (clicks,
 * conversions, fractional scores) and switches to a Gaussian posterior for the mean once any
 * reward falls outside it (purchase amounts). The Gaussian model shrinks each arm's variance
 * toward the pooled variance of all arms with one pseudo-observation, so an arm with one or two
 * rewards neither freezes nor explodes. Probabilities of Thompson choices have no closed form
 * for more than two arms and are estimated by Monte Carlo; callers cache them. UCB1's
 * exploration bonus is scaled by the range of rewards seen, so it works for amounts as well as
 * clicks. A probability floor mixes in a uniform draw with probability k·floor, which keeps the
 * probabilities exact: p' = floor + (1 − k·floor)·p. */
#include "bandit/policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bandit/sample.h"
#include "util/common.h"

int policy_parse_kind(const char *name, enum policy_kind *out) {
    if (!strcmp(name, "auto") || !strcmp(name, "thompson")) *out = POLICY_THOMPSON;
    else if (!strcmp(name, "egreedy") || !strcmp(name, "epsilon_greedy")) *out = POLICY_EGREEDY;
    else if (!strcmp(name, "ucb1") || !strcmp(name, "ucb")) *out = POLICY_UCB1;
    else return 0;
    return 1;
}

const char *policy_kind_name(enum policy_kind kind) {
    return kind == POLICY_EGREEDY ? "egreedy" : kind == POLICY_UCB1 ? "ucb1" : "thompson";
}

int policy_init(struct policy *p, enum policy_kind kind, int narms, double epsilon) {
    memset(p, 0, sizeof *p);
    p->arms = calloc((size_t)narms, sizeof *p->arms);
    if (!p->arms) return SCOUT_ENOMEM;
    p->kind = kind;
    p->narms = narms;
    p->epsilon = epsilon;
    return SCOUT_OK;
}

void policy_free(struct policy *p) {
    free(p->arms);
    p->arms = NULL;
}

void policy_update(struct policy *p, int arm, double reward, const json_t *ctx) {
    struct arm_stats *a;
    (void)ctx;
    if (arm < 0 || arm >= p->narms || !isfinite(reward)) return;
    a = &p->arms[arm];
    a->n++;
    a->sum += reward;
    a->sumsq += reward * reward;
    if (p->updates == 0 || reward < p->rmin) p->rmin = reward;
    if (p->updates == 0 || reward > p->rmax) p->rmax = reward;
    p->updates++;
    p->version++;
}

int policy_is_bernoulli(const struct policy *p) {
    return p->updates == 0 || (p->rmin >= 0.0 && p->rmax <= 1.0);
}

/* The Gaussian model's prior: the mean over all arms and the pooled within-arm variance. */
struct gauss_prior {
    double mean, var;
};

static struct gauss_prior gauss_prior(const struct policy *p) {
    struct gauss_prior g = {0.0, 1.0};
    double sum = 0, ss = 0, dof = 0;
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        sum += a->sum;
        if (a->n >= 2) {
            double dev = a->sumsq - a->sum * a->sum / (double)a->n;
            ss += dev > 0 ? dev : 0;
            dof += (double)(a->n - 1);
        }
    }
    if (p->updates > 0) g.mean = sum / (double)p->updates;
    if (dof > 0 && ss > 0) g.var = ss / dof;
    else if (p->updates > 0 && p->rmax > p->rmin) g.var = (p->rmax - p->rmin) * (p->rmax - p->rmin) / 4;
    else g.var = fmax(1.0, g.mean * g.mean);
    return g;
}

/* Posterior mean and standard deviation of an arm's mean reward under the Gaussian model. */
static void gauss_posterior(const struct arm_stats *a, struct gauss_prior g, double *mean, double *sd) {
    if (a->n == 0) {
        *mean = g.mean;
        *sd = sqrt(g.var);
        return;
    }
    double n = (double)a->n;
    double dev = a->sumsq - a->sum * a->sum / n;
    double var = ((dev > 0 ? dev : 0) + g.var) / n;   /* one pseudo-observation of the pooled variance */
    *mean = a->sum / n;
    *sd = sqrt(var / n);
}

static double arm_mean(const struct policy *p, int i, struct gauss_prior g) {
    const struct arm_stats *a = &p->arms[i];
    if (policy_is_bernoulli(p)) return (1.0 + a->sum) / (2.0 + (double)a->n);
    return a->n ? a->sum / (double)a->n : g.mean;
}

static int best_mean_arm(const struct policy *p, struct gauss_prior g) {
    int best = 0;
    double bm = -INFINITY;
    for (int i = 0; i < p->narms; i++) {
        double m = arm_mean(p, i, g);
        if (m > bm) {
            bm = m;
            best = i;
        }
    }
    return best;
}

/* A draw from the posterior of an arm's mean reward. */
static double sample_arm_mean(const struct arm_stats *a, rng_t *rng, struct gauss_prior g, int bern) {
    double m, sd;
    if (bern) return sample_beta(rng, 1.0 + a->sum, 1.0 + (double)a->n - a->sum);
    gauss_posterior(a, g, &m, &sd);
    return m + sd * sample_normal(rng);
}

/* One Thompson draw: a sample of every arm's mean, the index of the largest. */
static int thompson_draw(const struct policy *p, rng_t *rng, struct gauss_prior g, int bern) {
    int best = 0;
    double bv = -INFINITY;
    for (int i = 0; i < p->narms; i++) {
        double v = sample_arm_mean(&p->arms[i], rng, g, bern);
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

/* ε-greedy's greedy set: arms never rewarded count as best (each gets tried), else the
 * highest empirical mean; ties are broken uniformly. Returns the size of the set. */
static int greedy_set(const struct policy *p, int *set) {
    int n = 0;
    double bm = -INFINITY;
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        double m = a->n ? a->sum / (double)a->n : INFINITY;
        if (m > bm) {
            bm = m;
            n = 0;
        }
        if (m == bm) set[n++] = i;
    }
    return n;
}

/* UCB1's set of arms with the highest upper bound (never-rewarded arms first); returns its size. */
static int ucb_set(const struct policy *p, int *set) {
    int n = 0;
    double best = -INFINITY;
    double scale = policy_is_bernoulli(p) ? 1.0 : (p->rmax > p->rmin ? p->rmax - p->rmin : 1.0);
    double logn = log((double)(p->updates > 1 ? p->updates : 1));
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        double u = a->n ? a->sum / (double)a->n + scale * sqrt(2.0 * logn / (double)a->n) : INFINITY;
        if (u > best) {
            best = u;
            n = 0;
        }
        if (u == best) set[n++] = i;
    }
    return n;
}

/* Whether the floor is in force: only when it is positive and can be honoured. */
static int floor_applies(const struct policy *p) {
    return p->floor > 0 && p->floor * p->narms <= 1.0;
}

struct choice policy_choose(const struct policy *p, rng_t *rng, const json_t *ctx, int warmup) {
    struct choice c = {0, 1};
    (void)ctx;
    if (warmup || p->narms == 1 || (floor_applies(p) && rng_uniform(rng) < p->floor * p->narms)) {
        c.arm = (int)rng_below(rng, (uint32_t)p->narms);
        return c;
    }
    if (p->kind == POLICY_UCB1) {
        int set[SCOUT_MAX_VARIANTS];
        int n = ucb_set(p, set);
        c.arm = set[rng_below(rng, (uint32_t)n)];
        c.explored = c.arm != best_mean_arm(p, gauss_prior(p));
        return c;
    }
    if (p->kind == POLICY_EGREEDY) {
        int set[SCOUT_MAX_VARIANTS];
        int n = greedy_set(p, set);
        if (rng_uniform(rng) < p->epsilon) {
            c.arm = (int)rng_below(rng, (uint32_t)p->narms);
            c.explored = 1;
        } else {
            c.arm = set[rng_below(rng, (uint32_t)n)];
            c.explored = 0;
        }
        return c;
    }
    struct gauss_prior g = gauss_prior(p);
    c.arm = thompson_draw(p, rng, g, policy_is_bernoulli(p));
    c.explored = c.arm != best_mean_arm(p, g);
    return c;
}

/* The policy's own probabilities, before the floor. */
static void raw_probabilities(const struct policy *p, rng_t *rng, int draws, double *probs) {
    int k = p->narms;
    if (p->kind == POLICY_UCB1) {
        int set[SCOUT_MAX_VARIANTS];
        int n = ucb_set(p, set);
        for (int i = 0; i < k; i++) probs[i] = 0;
        for (int j = 0; j < n; j++) probs[set[j]] = 1.0 / n;
        return;
    }
    if (p->kind == POLICY_EGREEDY) {
        int set[SCOUT_MAX_VARIANTS];
        int n = greedy_set(p, set);
        for (int i = 0; i < k; i++) probs[i] = p->epsilon / k;
        for (int j = 0; j < n; j++) probs[set[j]] += (1.0 - p->epsilon) / n;
        return;
    }
    struct gauss_prior g = gauss_prior(p);
    int bern = policy_is_bernoulli(p);
    if (draws < 1) draws = 1;
    for (int i = 0; i < k; i++) probs[i] = 0;
    for (int d = 0; d < draws; d++) probs[thompson_draw(p, rng, g, bern)] += 1.0;
    /* Add-half smoothing: an arm that lost every simulated draw still has a real, small chance. */
    for (int i = 0; i < k; i++) probs[i] = (probs[i] + 0.5) / (draws + 0.5 * k);
}

void policy_probabilities(const struct policy *p, rng_t *rng, const json_t *ctx, int warmup,
                          int draws, double *probs) {
    int k = p->narms;
    (void)ctx;
    if (warmup || k == 1) {
        for (int i = 0; i < k; i++) probs[i] = 1.0 / k;
        return;
    }
    raw_probabilities(p, rng, draws, probs);
    if (floor_applies(p))
        for (int i = 0; i < k; i++) probs[i] = p->floor + (1.0 - p->floor * k) * probs[i];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void policy_summarize(const struct policy *p, rng_t *rng, int draws, struct arm_summary *out) {
    int k = p->narms, bern = policy_is_bernoulli(p);
    struct gauss_prior g = gauss_prior(p);
    double *samples;
    /* Bounded work: at most ~256k samples whatever the number of arms. */
    if (draws * k > 262144) draws = 262144 / k;
    if (draws < 16) draws = 16;
    samples = malloc(sizeof *samples * (size_t)draws * (size_t)k);
    for (int i = 0; i < k; i++) {
        out[i].mean = arm_mean(p, i, g);
        out[i].prob_best = 0;
        out[i].ci_low = out[i].ci_high = out[i].mean;
    }
    if (!samples) return;
    for (int d = 0; d < draws; d++) {
        int best = 0;
        for (int i = 0; i < k; i++) {
            double v = sample_arm_mean(&p->arms[i], rng, g, bern);
            samples[(size_t)i * draws + d] = v;
            if (v > samples[(size_t)best * draws + d]) best = i;
        }
        out[best].prob_best += 1.0 / draws;
    }
    for (int i = 0; i < k; i++) {
        double *s = samples + (size_t)i * draws;
        qsort(s, (size_t)draws, sizeof *s, cmp_double);
        out[i].ci_low = s[(int)(0.025 * (draws - 1))];
        out[i].ci_high = s[(int)(0.975 * (draws - 1))];
    }
    free(samples);
}
