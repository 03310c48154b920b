/* regret.c — the in-process regret benchmark: seeded simulations run against the server's own
 * decision code (experiment_decide / experiment_apply_reward, guardrails included), printing
 * cumulative expected regret per policy at several horizons, averaged over seeds with a 95%
 * interval. The HTTP twin is http_regret.py; both simulate the same four scenarios:
 *   a  Bernoulli arms 0.04 / 0.05 / 0.06, no context (plus the Lai–Robbins bound);
 *   b  the original Scout's simulation: color red|blue, variant a pays 0.6 for red and 0.4 for
 *      blue, variant b the reverse;
 *   c  linear contextual: 4 variants, 5 numeric and 2 categorical features;
 *   d  drift: arms 0.3 / 0.5 / 0.7, reversed halfway through each run.
 * Expected regret per round is max_a μ_a(x) − μ_chosen(x), so reward noise does not blur the
 * comparison. Every (scenario, policy, seed) job reseeds the thread's generator, so a run is
 * reproducible whatever the thread scheduling. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

#include "bandit/rng.h"
#include "bandit/sample.h"
#include "experiment.h"
#include "util/util.h"

#define MAX_HORIZONS 8
#define MAX_SEEDS 1000
#define MIN_UPDATES 10        /* the server's default warm-up (min_update_requests) */
#define NUM_FEATURES 5

struct policy_spec {
    const char *name;         /* column name */
    const char *definition;   /* extra fields of create_model; NULL: a client-side baseline */
    int context;              /* the client sends context */
};

static const struct policy_spec policies[] = {
    {"auto (default)", "\"policy\": \"auto\"", 1},
    {"thompson", "\"policy\": \"thompson\"", 0},
    {"ucb1", "\"policy\": \"ucb1\"", 0},
    {"egreedy", "\"policy\": \"egreedy\", \"epsilon\": 0.1", 0},
    {"lints", "\"policy\": \"lints\"", 1},
    {"linucb", "\"policy\": \"linucb\"", 1},
    {"thompson+discount", "\"policy\": \"thompson\", \"discount\": %s", 0},
    {"uniform (A/B split)", NULL, 0},
    {"original (ε-greedy 0.1, no context)", "\"policy\": \"egreedy\", \"epsilon\": 0.1, \"probability_floor\": 0", 0},
};
#define NPOLICIES ((int)(sizeof policies / sizeof policies[0]))

struct scenario {
    char key;
    const char *name;
    int narms;
    int contextual;
    int drift;                /* each horizon is its own run, reversed halfway */
    const char *discount;     /* discount of the thompson+discount column */
};

static const struct scenario scenarios[] = {
    {'a', "Bernoulli arms 0.04 / 0.05 / 0.06", 3, 0, 0, "0.999"},
    {'b', "original sim: color red|blue, a pays 0.6|0.4, b the reverse", 2, 1, 0, "0.999"},
    {'c', "linear contextual: 4 variants, 5 numeric + 2 categorical features", 4, 1, 0, "0.999"},
    {'d', "drift: arms 0.3 / 0.5 / 0.7 reversed halfway", 3, 0, 1, "0.995"},
};
#define NSCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))

static const char *c1_values[] = {"a", "b", "c"};
static const char *c2_values[] = {"p", "q", "r", "s"};

/* The environment of one seed: what each arm pays in each context. */
struct world {
    const struct scenario *sc;
    rng_t rng;
    double base[4], w[4][NUM_FEATURES], u[4][3], v[4][4];
};

/* One round's context: its JSON form and the arms' expected rewards. */
struct round {
    json_t *ctx;
    double mu[4];
};

static double uniform_in(rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * rng_uniform(r);
}

static void world_init(struct world *w, const struct scenario *sc, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->sc = sc;
    rng_seed(&w->rng, seed * 7919 + (uint64_t)sc->key);
    if (sc->key != 'c') return;
    for (int a = 0; a < 4; a++) {
        w->base[a] = uniform_in(&w->rng, -0.05, 0.05);
        for (int j = 0; j < NUM_FEATURES; j++) w->w[a][j] = uniform_in(&w->rng, -0.06, 0.06);
        for (int j = 0; j < 3; j++) w->u[a][j] = uniform_in(&w->rng, -0.1, 0.1);
        for (int j = 0; j < 4; j++) w->v[a][j] = uniform_in(&w->rng, -0.1, 0.1);
    }
}

static void world_round(struct world *w, long t, long horizon, struct round *r) {
    static const double bern[3] = {0.04, 0.05, 0.06}, drift[3] = {0.3, 0.5, 0.7};
    r->ctx = NULL;
    switch (w->sc->key) {
    case 'a':
        memcpy(r->mu, bern, sizeof bern);
        break;
    case 'b': {
        int red = rng_uniform(&w->rng) < 0.5;
        r->mu[0] = red ? 0.6 : 0.4;
        r->mu[1] = 1.0 - r->mu[0];
        r->ctx = json_pack("{s:s}", "color", red ? "red" : "blue");
        break;
    }
    case 'c': {
        double x[NUM_FEATURES];
        int c1 = (int)rng_below(&w->rng, 3), c2 = (int)rng_below(&w->rng, 4);
        char key[4];
        r->ctx = json_object();
        for (int j = 0; j < NUM_FEATURES; j++) {
            x[j] = round(sample_normal(&w->rng) * 1e4) / 1e4;
            snprintf(key, sizeof key, "x%d", j + 1);
            json_object_set_new(r->ctx, key, json_real(x[j]));
        }
        json_object_set_new(r->ctx, "c1", json_string(c1_values[c1]));
        json_object_set_new(r->ctx, "c2", json_string(c2_values[c2]));
        for (int a = 0; a < 4; a++) {
            double m = 0.3 + w->base[a] + w->u[a][c1] + w->v[a][c2];
            for (int j = 0; j < NUM_FEATURES; j++) m += w->w[a][j] * x[j];
            r->mu[a] = m < 0.01 ? 0.01 : m > 0.99 ? 0.99 : m;
        }
        break;
    }
    case 'd':
        for (int a = 0; a < 3; a++) r->mu[a] = t < horizon / 2 ? drift[a] : drift[2 - a];
        break;
    }
}

/* A job: one policy on one scenario with one seed; regret[h] at each horizon. */
struct job {
    const struct scenario *sc;
    const struct policy_spec *pol;
    uint64_t seed;
    int nh;
    const long *horizons;
    double regret[MAX_HORIZONS];
    int failed;
};

static struct experiment *make_test(const struct job *j) {
    char def[512], extra[160];
    struct experiment *e = NULL;
    int status;
    char err[256];
    snprintf(extra, sizeof extra, j->pol->definition, j->sc->discount);
    snprintf(def, sizeof def, "{\"name\": \"regret\", \"variants\": {%s}, %s}",
             j->sc->narms == 2 ? "\"0\": \"a\", \"1\": \"b\""
             : j->sc->narms == 3 ? "\"0\": \"a\", \"1\": \"b\", \"2\": \"c\""
                                 : "\"0\": \"a\", \"1\": \"b\", \"2\": \"c\", \"3\": \"d\"",
             extra);
    json_t *doc = json_loads(def, 0, NULL);
    if (!doc || experiment_from_definition(doc, "00000000-0000-4000-8000-000000000000", 0, &e, &status, err,
                                           sizeof err) != SCOUT_OK)
        fprintf(stderr, "regret: %s: %s\n", def, err);
    json_decref(doc);
    return e;
}

/* Runs `horizon` rounds, adding the cumulative regret at each checkpoint (from h0 on). */
static void simulate(struct job *j, long horizon, int h0) {
    struct world w;
    struct experiment *e = NULL;
    double cum = 0;
    int h = h0;
    world_init(&w, j->sc, j->seed);
    rng_seed(rng_thread(), j->seed * 104729 + (uint64_t)(j->pol - policies) * 31 + (uint64_t)horizon);
    if (j->pol->definition && !(e = make_test(j))) {
        j->failed = 1;
        return;
    }
    for (long t = 0; t < horizon && h < j->nh; t++) {
        struct round r;
        int arm;
        double best = 0;
        world_round(&w, t, horizon, &r);
        if (e) {
            const json_t *ctx = j->pol->context ? r.ctx : NULL;
            arm = experiment_decide(e, ctx, MIN_UPDATES, NULL).arm;
            experiment_apply_reward(e, arm, rng_uniform(&w.rng) < r.mu[arm] ? 1.0 : 0.0, ctx, (double)t);
        } else {
            arm = (int)rng_below(rng_thread(), (uint32_t)j->sc->narms);
        }
        for (int a = 0; a < j->sc->narms; a++)
            if (r.mu[a] > best) best = r.mu[a];
        cum += best - r.mu[arm];
        json_decref(r.ctx);
        while (h < j->nh && t + 1 == j->horizons[h]) j->regret[h++] += cum;
    }
    experiment_unref(e);
}

static void run_job(struct job *j) {
    if (j->sc->drift)
        for (int h = 0; h < j->nh && !j->failed; h++) simulate(j, j->horizons[h], h);   /* one run per horizon */
    else
        simulate(j, j->horizons[j->nh - 1], 0);
}

static struct job *jobs;
static int njobs;
static atomic_int next_job;

static void *worker(void *arg) {
    int i;
    (void)arg;
    while ((i = atomic_fetch_add(&next_job, 1)) < njobs) run_job(&jobs[i]);
    return NULL;
}

/* Two-sided 95% quantile of Student's t with df degrees of freedom. */
static double t95(int df) {
    static const double q[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < 1) return NAN;
    return df <= 30 ? q[df] : 1.96 + 2.4 / df;
}

static double kl_bernoulli(double p, double q) {
    return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q));
}

/* Lai–Robbins: Σ over suboptimal arms of Δ / KL(μ_i, μ*) · ln T. */
static double lai_robbins(long horizon) {
    static const double mu[3] = {0.04, 0.05, 0.06};
    double c = 0;
    for (int i = 0; i < 2; i++) c += (mu[2] - mu[i]) / kl_bernoulli(mu[i], mu[2]);
    return c * log((double)horizon);
}

static void mean_hw(const double *v, int n, double *mean, double *hw) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *hw = n > 1 ? t95(n - 1) * sqrt(ss / (n - 1)) / sqrt((double)n) : NAN;
}

static void print_tables(const char *which, int nseeds, const long *horizons, int nh, int argc, char **argv) {
    double v[MAX_SEEDS];
    printf("# Regret benchmark (in-process)\n\nCommand: `");
    for (int i = 0; i < argc; i++) printf("%s%s", i ? " " : "", argv[i]);
    printf("`  \nCumulative expected regret (mean ± 95%% interval half-width over %d seeds); lower is better.\n", nseeds);
    for (int s = 0; s < NSCENARIOS; s++) {
        const struct scenario *sc = &scenarios[s];
        if (!strchr(which, sc->key)) continue;
        printf("\n## (%c) %s\n\n| policy |", sc->key, sc->name);
        for (int h = 0; h < nh; h++) printf(" %ld rounds |", horizons[h]);
        printf("\n|---|");
        for (int h = 0; h < nh; h++) printf("---:|");
        printf("\n");
        for (int p = 0; p < NPOLICIES; p++) {
            int failed = 0;
            printf("| %s%s |", policies[p].name,
                   p == 6 ? (sc->key == 'd' ? " (γ=0.995)" : " (γ=0.999)") : "");
            for (int h = 0; h < nh; h++) {
                double m, hw;
                int n = 0;
                for (int j = 0; j < njobs; j++)
                    if (jobs[j].sc == sc && jobs[j].pol == &policies[p]) {
                        failed |= jobs[j].failed;
                        v[n++] = jobs[j].regret[h];
                    }
                mean_hw(v, n, &m, &hw);
                if (failed) printf(" failed |");
                else printf(" %.1f ± %.1f |", m, hw);
            }
            printf("\n");
        }
        if (sc->key == 'a') {
            printf("| Lai–Robbins bound (asymptotic) |");
            for (int h = 0; h < nh; h++) printf(" %.1f |", lai_robbins(horizons[h]));
            printf("\n| thompson ÷ bound |");
            for (int h = 0; h < nh; h++) {
                double m, hw;
                int n = 0;
                for (int j = 0; j < njobs; j++)
                    if (jobs[j].sc == sc && jobs[j].pol == &policies[1]) v[n++] = jobs[j].regret[h];
                mean_hw(v, n, &m, &hw);
                printf(" %.2f |", m / lai_robbins(horizons[h]));
            }
            printf("\n");
        }
    }
}

static int parse_horizons(const char *s, long *out) {
    int n = 0;
    char *end;
    while (*s && n < MAX_HORIZONS) {
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || (n && v <= out[n - 1])) return 0;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return n;
}

int main(int argc, char **argv) {
    long horizons[MAX_HORIZONS];
    int nh = parse_horizons("1000,3000,10000,100000", horizons), nseeds = 20, nthreads = 2, opt;
    const char *which = "abcd";
    pthread_t th[64];
    static const struct option longopts[] = {{"seeds", required_argument, 0, 's'},
                                             {"rounds", required_argument, 0, 'r'},
                                             {"scenarios", required_argument, 0, 'c'},
                                             {"threads", required_argument, 0, 't'},
                                             {0, 0, 0, 0}};
    while ((opt = getopt_long(argc, argv, "s:r:c:t:", longopts, NULL)) != -1) {
        if (opt == 's') nseeds = atoi(optarg);
        else if (opt == 'r') nh = parse_horizons(optarg, horizons);
        else if (opt == 'c') which = optarg;
        else if (opt == 't') nthreads = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [--seeds N] [--rounds 1000,3000,10000,100000] [--scenarios abcd] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    if (nseeds < 2 || nseeds > MAX_SEEDS || nh < 1 || nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "regret: need 2..%d seeds, increasing positive horizons, 1..64 threads\n", MAX_SEEDS);
        return 2;
    }
    jobs = calloc((size_t)NSCENARIOS * NPOLICIES * (size_t)nseeds, sizeof *jobs);
    if (!jobs) return 1;
    for (int s = 0; s < NSCENARIOS; s++) {
        if (!strchr(which, scenarios[s].key)) continue;
        for (int p = 0; p < NPOLICIES; p++)
            for (int k = 0; k < nseeds; k++)
                jobs[njobs++] = (struct job){&scenarios[s], &policies[p], (uint64_t)k + 1, nh, horizons, {0}, 0};
    }
    double t0 = util_monotonic();
    for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    print_tables(which, nseeds, horizons, nh, argc, argv);
    printf("\n(%d simulations in %.0f s on %d threads)\n", njobs, util_monotonic() - t0, nthreads);
    free(jobs);
    return 0;
}
