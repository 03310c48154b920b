/* policy.c — Thompson sampling, ε-greedy and UCB1 over additive per-arm statistics.
 * Thompson sampling uses a Beta–Bernoulli posterior while every reward lies in [0,1] (clicks,
 * conversions, fractional scores) and switches to a Gaussian posterior for the mean once any
 * reward falls outside it (purchase amounts). The Gaussian model shrinks each arm's variance
 * toward the pooled variance of all arms with one pseudo-observation, so an arm with one or two
 * rewards neither freezes nor explodes. Probabilities of Thompson choices have no closed form
 * for more than two arms and are estimated by Monte Carlo; callers cache them. UCB1's
 * exploration bonus is scaled by the range of rewards seen, so it works for amounts as well as
 * clicks. A probability floor mixes in a uniform draw with probability k·floor, which keeps the
 * probabilities exact: p' = floor + (1 − k·floor)·p. All of these read the discounted sums
 * (w, ws, wss), which equal the plain ones when the test has no discount. LinUCB and linear
 * Thompson sampling score arms with the per-arm linear models of linear.c. */
#include "bandit/policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bandit/sample.h"
#include "util/common.h"

#define UCB_ALPHA 1.0   /* LinUCB: width of the upper bound in predictive deviations */

static const struct {
    const char *name;
    enum policy_kind kind;
} kinds[] = {
    {"auto", POLICY_AUTO},       {"thompson", POLICY_THOMPSON}, {"egreedy", POLICY_EGREEDY},
    {"epsilon_greedy", POLICY_EGREEDY}, {"ucb1", POLICY_UCB1}, {"ucb", POLICY_UCB1},
    {"linucb", POLICY_LINUCB},   {"lints", POLICY_LINTS},       {"linear_thompson", POLICY_LINTS},
};

int policy_parse_kind(const char *name, enum policy_kind *out) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name)) {
            *out = kinds[i].kind;
            return 1;
        }
    return 0;
}

const char *policy_kind_name(enum policy_kind kind) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == kind) return kinds[i].name;
    return "thompson";
}

static int is_contextual_kind(enum policy_kind kind) {
    return kind == POLICY_AUTO || kind == POLICY_LINUCB || kind == POLICY_LINTS;
}

int policy_init(struct policy *p, enum policy_kind kind, int narms, double epsilon, double discount) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->narms = narms;
    p->epsilon = epsilon;
    p->discount = discount > 0 && discount < 1 ? discount : 1.0;
    p->arms = calloc((size_t)narms, sizeof *p->arms);
    if (p->arms && is_contextual_kind(kind)) p->lin = lin_new(narms, p->discount);
    if (!p->arms || (is_contextual_kind(kind) && !p->lin)) {
        policy_free(p);
        return SCOUT_ENOMEM;
    }
    return SCOUT_OK;
}

void policy_free(struct policy *p) {
    free(p->arms);
    lin_free(p->lin);
    p->arms = NULL;
    p->lin = NULL;
}

int policy_copy(struct policy *dst, const struct policy *src) {
    *dst = *src;
    dst->arms = malloc(sizeof *dst->arms * (size_t)src->narms);
    dst->lin = src->lin ? lin_clone(src->lin) : NULL;
    if (!dst->arms || (src->lin && !dst->lin)) {
        policy_free(dst);
        return SCOUT_ENOMEM;
    }
    memcpy(dst->arms, src->arms, sizeof *dst->arms * (size_t)src->narms);
    return SCOUT_OK;
}

int policy_uses_context(const struct policy *p, const json_t *ctx) {
    if (p->kind == POLICY_LINUCB || p->kind == POLICY_LINTS) return 1;
    return p->kind == POLICY_AUTO && json_is_object(ctx) && json_object_size(ctx) > 0;
}

void policy_update(struct policy *p, int arm, double reward, const json_t *ctx) {
    struct arm_stats *a;
    if (arm < 0 || arm >= p->narms || !isfinite(reward)) return;
    if (p->discount < 1.0)
        for (int i = 0; i < p->narms; i++) {
            p->arms[i].w *= p->discount;
            p->arms[i].ws *= p->discount;
            p->arms[i].wss *= p->discount;
        }
    a = &p->arms[arm];
    a->n++;
    a->sum += reward;
    a->sumsq += reward * reward;
    a->w += 1;
    a->ws += reward;
    a->wss += reward * reward;
    if (p->lin) lin_update(p->lin, arm, reward, ctx);
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
    double total = 0;
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        sum += a->ws;
        total += a->w;
        if (a->w >= 2) {
            double dev = a->wss - a->ws * a->ws / a->w;
            ss += dev > 0 ? dev : 0;
            dof += a->w - 1;
        }
    }
    if (total > 0) g.mean = sum / total;
    if (dof > 0 && ss > 0) g.var = ss / dof;
    else if (p->updates > 0 && p->rmax > p->rmin) g.var = (p->rmax - p->rmin) * (p->rmax - p->rmin) / 4;
    else g.var = fmax(1.0, g.mean * g.mean);
    return g;
}

/* Posterior mean and standard deviation of an arm's mean reward under the Gaussian model. */
static void gauss_posterior(const struct arm_stats *a, struct gauss_prior g, double *mean, double *sd) {
    if (!(a->w > 1e-9)) {
        *mean = g.mean;
        *sd = sqrt(g.var);
        return;
    }
    double n = a->w;
    double dev = a->wss - a->ws * a->ws / n;
    double var = ((dev > 0 ? dev : 0) + g.var) / n;   /* one pseudo-observation of the pooled variance */
    *mean = a->ws / n;
    *sd = sqrt(var / n);
}

static double arm_mean(const struct policy *p, int i, struct gauss_prior g) {
    const struct arm_stats *a = &p->arms[i];
    if (policy_is_bernoulli(p)) return (1.0 + a->ws) / (2.0 + a->w);
    return a->w > 1e-9 ? a->ws / a->w : g.mean;
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
    if (bern) return sample_beta(rng, 1.0 + a->ws, 1.0 + a->w - a->ws);
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
        double m = a->w > 1e-9 ? a->ws / a->w : INFINITY;
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
    double total = 0, logn;
    for (int i = 0; i < p->narms; i++) total += p->arms[i].w;
    logn = log(total > 1 ? total : 1);
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        double u = a->w > 1e-9 ? a->ws / a->w + scale * sqrt(2.0 * logn / a->w) : INFINITY;
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

/* The linear models' predictive mean and deviation of every arm's reward for ctx. */
static void linear_scores(const struct policy *p, const json_t *ctx, double *mu, double *sd) {
    double x[LIN_MAX_DIM];
    lin_encode(p->lin, ctx, x);
    lin_predict(p->lin, x, mu, sd);
}

static int argmax(const double *v, int k) {
    int best = 0;
    for (int i = 1; i < k; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* LinUCB's set of arms with the highest upper bound μ + α·sd; returns its size. */
static int linucb_set(const double *mu, const double *sd, int k, int *set) {
    int n = 0;
    double best = -INFINITY;
    set[0] = 0;
    for (int i = 0; i < k; i++) {
        double u = mu[i] + UCB_ALPHA * sd[i];
        if (u > best) {
            best = u;
            n = 0;
        }
        if (u == best) set[n++] = i;
    }
    return n > 0 ? n : 1;
}

/* A contextual decision: LinUCB's bound or one linear Thompson draw per arm. */
static struct choice linear_choose(const struct policy *p, rng_t *rng, const json_t *ctx) {
    double mu[SCOUT_MAX_VARIANTS], sd[SCOUT_MAX_VARIANTS];
    struct choice c = {0, 0};
    int k = p->narms;
    linear_scores(p, ctx, mu, sd);
    if (p->kind == POLICY_LINUCB) {
        int set[SCOUT_MAX_VARIANTS];
        int n = linucb_set(mu, sd, k, set);
        c.arm = set[rng_below(rng, (uint32_t)n)];
    } else {
        double bv = -INFINITY;
        for (int i = 0; i < k; i++) {
            double v = mu[i] + sd[i] * sample_normal(rng);
            if (v > bv) {
                bv = v;
                c.arm = i;
            }
        }
    }
    c.explored = c.arm != argmax(mu, k);
    return c;
}

struct choice policy_choose(const struct policy *p, rng_t *rng, const json_t *ctx, int warmup) {
    struct choice c = {0, 1};
    if (warmup || p->narms == 1 || (floor_applies(p) && rng_uniform(rng) < p->floor * p->narms)) {
        c.arm = (int)rng_below(rng, (uint32_t)p->narms);
        return c;
    }
    if (policy_uses_context(p, ctx)) return linear_choose(p, rng, ctx);
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
static void raw_probabilities(const struct policy *p, rng_t *rng, const json_t *ctx, int draws, double *probs) {
    int k = p->narms;
    if (policy_uses_context(p, ctx)) {
        double mu[SCOUT_MAX_VARIANTS], sd[SCOUT_MAX_VARIANTS];
        linear_scores(p, ctx, mu, sd);
        if (p->kind == POLICY_LINUCB) {
            int set[SCOUT_MAX_VARIANTS];
            int n = linucb_set(mu, sd, k, set);
            for (int i = 0; i < k; i++) probs[i] = 0;
            for (int j = 0; j < n; j++) probs[set[j]] = 1.0 / n;
        } else {
            lin_max_probabilities(mu, sd, k, rng, probs);
        }
        return;
    }
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
    if (warmup || k == 1) {
        for (int i = 0; i < k; i++) probs[i] = 1.0 / k;
        return;
    }
    raw_probabilities(p, rng, ctx, draws, probs);
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
