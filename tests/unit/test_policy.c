/* test_policy.c — unit tests for bandit/policy: the learned state and the decisions made from it.
 *
 * What must hold:
 *   - policy_update folds count, sum, sum of squares and min/max exactly, and replaying the
 *     same events in the same order rebuilds a bitwise-identical state (how restart works);
 *   - with a fixed seed, decisions are reproducible;
 *   - Thompson sampling (Beta–Bernoulli for rewards in [0,1], Gaussian otherwise) prefers the
 *     clearly better arm; warm-up draws uniformly; ε-greedy explores at rate ε;
 *   - policy_probabilities and policy_summarize agree with what policy_choose does.
 *
 * Every stochastic test uses a fixed seed and a tolerance of at least 5 standard errors, so
 * the suite is deterministic and never flakes, yet a wrong formula fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bandit/policy.h"
#include "bandit/rng.h"
#include "bandit/sample.h"
#include "util/common.h"

#define K_SE 6.0   /* tolerance in standard errors */

static void expect_near(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) {
        print_error("%s: got %.12g, want %.12g +- %.3g\n", what, got, want, tol);
        fail();
    }
}

/* Binomial tolerance for a count out of n trials with success probability p. */
static double binom_tol(long n, double p) {
    return K_SE * sqrt((double)n * p * (1.0 - p));
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Gives `arm` `succ` rewards of 1 and `fail` rewards of 0. */
static void add_bernoulli(struct policy *p, int arm, int succ, int failures) {
    for (int i = 0; i < succ; i++) policy_update(p, arm, 1.0, NULL);
    for (int i = 0; i < failures; i++) policy_update(p, arm, 0.0, NULL);
}

/* ---- the fold ---------------------------------------------------------------------------- */

static void test_update_folds_count_sum_sumsq_and_range_exactly(void **state) {
    (void)state;
    struct policy p;
    const double r0[] = {0.5, -3.25, 7.0, 1e-3};
    const double r1[] = {2.5, 0.1};
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 3, 0.1, 1.0), SCOUT_OK);

    for (size_t i = 0; i < 4; i++) policy_update(&p, 0, r0[i], NULL);
    for (size_t i = 0; i < 2; i++) policy_update(&p, 1, r1[i], NULL);

    double sum0 = 0, ss0 = 0, sum1 = 0, ss1 = 0;
    for (size_t i = 0; i < 4; i++) sum0 += r0[i], ss0 += r0[i] * r0[i];
    for (size_t i = 0; i < 2; i++) sum1 += r1[i], ss1 += r1[i] * r1[i];
    assert_int_equal(p.arms[0].n, 4);
    assert_true(same_bits(p.arms[0].sum, sum0));
    assert_true(same_bits(p.arms[0].sumsq, ss0));
    assert_int_equal(p.arms[1].n, 2);
    assert_true(same_bits(p.arms[1].sum, sum1));
    assert_true(same_bits(p.arms[1].sumsq, ss1));
    assert_int_equal(p.arms[2].n, 0);
    assert_true(p.arms[2].sum == 0.0 && p.arms[2].sumsq == 0.0);
    assert_int_equal(p.updates, 6);
    assert_int_equal(p.version, 6);
    assert_true(p.rmin == -3.25);
    assert_true(p.rmax == 7.0);
    policy_free(&p);
}

static void test_first_update_sets_min_and_max_even_when_positive(void **state) {
    (void)state;
    struct policy p;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    policy_update(&p, 1, 42.0, NULL);   /* rmin must not stay at the zero of the fresh state */
    assert_true(p.rmin == 42.0);
    assert_true(p.rmax == 42.0);
    policy_update(&p, 0, 50.0, NULL);
    assert_true(p.rmin == 42.0);
    assert_true(p.rmax == 50.0);
    policy_free(&p);
}

static void test_update_ignores_nonfinite_rewards_and_unknown_arms(void **state) {
    (void)state;
    struct policy p;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    policy_update(&p, 0, NAN, NULL);
    policy_update(&p, 0, INFINITY, NULL);
    policy_update(&p, 0, -INFINITY, NULL);
    policy_update(&p, -1, 1.0, NULL);
    policy_update(&p, 2, 1.0, NULL);
    assert_int_equal(p.updates, 0);
    assert_int_equal(p.version, 0);
    assert_int_equal(p.arms[0].n + p.arms[1].n, 0);
    assert_true(policy_is_bernoulli(&p));
    policy_free(&p);
}

/* An arbitrary sequence of (arm, real reward) events: signs, magnitudes and fractions mixed. */
#define NEVENTS 5000
static void make_events(int *arms, double *rewards, int narms, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 0; i < NEVENTS; i++) {
        arms[i] = (int)rng_below(&r, (uint32_t)narms);
        switch (rng_below(&r, 4)) {
        case 0: rewards[i] = rng_uniform(&r); break;                                  /* a rate */
        case 1: rewards[i] = (double)rng_below(&r, 2); break;                           /* a click */
        case 2: rewards[i] = (rng_uniform(&r) - 0.5) * 1e6; break;                      /* an amount */
        default: rewards[i] = sample_normal(&r) * pow(10.0, (double)rng_below(&r, 20) - 10); break;
        }
    }
}

static void test_replaying_events_in_order_gives_identical_state(void **state) {
    (void)state;
    static int arms[NEVENTS];
    static double rewards[NEVENTS];
    struct policy live, replayed;
    make_events(arms, rewards, 5, 2024);

    assert_int_equal(policy_init(&live, POLICY_THOMPSON, 5, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < NEVENTS; i++) policy_update(&live, arms[i], rewards[i], NULL);
    assert_int_equal(policy_init(&replayed, POLICY_THOMPSON, 5, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < NEVENTS; i++) policy_update(&replayed, arms[i], rewards[i], NULL);

    assert_int_equal(live.updates, replayed.updates);
    assert_int_equal(live.version, replayed.version);
    assert_true(same_bits(live.rmin, replayed.rmin));
    assert_true(same_bits(live.rmax, replayed.rmax));
    for (int a = 0; a < 5; a++) {
        assert_int_equal(live.arms[a].n, replayed.arms[a].n);
        assert_true(same_bits(live.arms[a].sum, replayed.arms[a].sum));
        assert_true(same_bits(live.arms[a].sumsq, replayed.arms[a].sumsq));
    }
    /* Same state and same seed: the same decisions follow. */
    rng_t r1, r2;
    rng_seed(&r1, 9);
    rng_seed(&r2, 9);
    for (int i = 0; i < 500; i++)
        assert_int_equal(policy_choose(&live, &r1, NULL, 0).arm, policy_choose(&replayed, &r2, NULL, 0).arm);
    policy_free(&live);
    policy_free(&replayed);
}

/* ---- reproducibility ----------------------------------------------------------------------- */

static void check_seeded_picks_repeat(enum policy_kind kind, int warmup) {
    struct policy p;
    rng_t a, b, c;
    int differs = 0;
    assert_int_equal(policy_init(&p, kind, 4, 0.3, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 5, 5);     /* close arms: picks vary from draw to draw */
    add_bernoulli(&p, 1, 6, 4);
    add_bernoulli(&p, 2, 4, 6);
    add_bernoulli(&p, 3, 5, 5);
    rng_seed(&a, 1234);
    rng_seed(&b, 1234);
    rng_seed(&c, 1235);
    for (int i = 0; i < 2000; i++) {
        struct choice x = policy_choose(&p, &a, NULL, warmup), y = policy_choose(&p, &b, NULL, warmup);
        assert_int_equal(x.arm, y.arm);
        assert_int_equal(x.explored, y.explored);
        differs |= x.arm != policy_choose(&p, &c, NULL, warmup).arm;
    }
    assert_true(differs);   /* and the seed matters */
    policy_free(&p);
}

static void test_same_seed_gives_same_thompson_picks(void **state) {
    (void)state;
    check_seeded_picks_repeat(POLICY_THOMPSON, 0);
}

static void test_same_seed_gives_same_egreedy_picks(void **state) {
    (void)state;
    check_seeded_picks_repeat(POLICY_EGREEDY, 0);
}

static void test_same_seed_gives_same_warmup_picks(void **state) {
    (void)state;
    check_seeded_picks_repeat(POLICY_THOMPSON, 1);
}

/* ---- Thompson sampling ------------------------------------------------------------------- */

static void test_thompson_bernoulli_prefers_clearly_better_arm(void **state) {
    (void)state;
    struct policy p;
    rng_t r;
    int best = 0, explored_when_best = 0;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 10, 90);
    add_bernoulli(&p, 1, 60, 40);
    assert_true(policy_is_bernoulli(&p));
    rng_seed(&r, 77);
    for (int i = 0; i < 2000; i++) {
        struct choice c = policy_choose(&p, &r, NULL, 0);
        assert_true(c.arm == 0 || c.arm == 1);
        if (c.arm == 1) {
            best++;
            explored_when_best += c.explored;
        }
    }
    assert_true(best > 1900);                 /* > 95% */
    assert_int_equal(explored_when_best, 0);  /* picking the best-mean arm is not exploring */
    policy_free(&p);
}

static void test_fractional_rewards_in_unit_interval_keep_bernoulli_model(void **state) {
    (void)state;
    struct policy p;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    assert_true(policy_is_bernoulli(&p));     /* no data yet */
    policy_update(&p, 0, 0.0, NULL);
    policy_update(&p, 1, 1.0, NULL);
    policy_update(&p, 1, 0.37, NULL);
    assert_true(policy_is_bernoulli(&p));
    policy_free(&p);
}

static void test_rewards_outside_unit_interval_switch_to_gaussian(void **state) {
    (void)state;
    struct policy p;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    policy_update(&p, 0, 0.5, NULL);
    assert_true(policy_is_bernoulli(&p));
    policy_update(&p, 1, 1.5, NULL);
    assert_false(policy_is_bernoulli(&p));
    policy_update(&p, 1, 0.5, NULL);          /* the range seen only widens */
    assert_false(policy_is_bernoulli(&p));
    policy_free(&p);

    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    policy_update(&p, 0, -0.01, NULL);
    assert_false(policy_is_bernoulli(&p));
    policy_free(&p);
}

static void test_thompson_gaussian_prefers_higher_mean(void **state) {
    (void)state;
    struct policy p;
    rng_t noise, r;
    int best = 0;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    rng_seed(&noise, 5);
    for (int i = 0; i < 30; i++) {
        policy_update(&p, 0, 5.0 + 3.0 * sample_normal(&noise), NULL);
        policy_update(&p, 1, 20.0 + 3.0 * sample_normal(&noise), NULL);
    }
    assert_false(policy_is_bernoulli(&p));
    rng_seed(&r, 6);
    for (int i = 0; i < 2000; i++) best += policy_choose(&p, &r, NULL, 0).arm == 1;
    assert_true(best > 1900);
    policy_free(&p);
}

static void test_thompson_gaussian_with_one_reward_per_arm_still_decides(void **state) {
    (void)state;
    struct policy p;
    rng_t r;
    long count[3] = {0, 0, 0};
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 3, 0.1, 1.0), SCOUT_OK);
    policy_update(&p, 0, 10.0, NULL);
    policy_update(&p, 1, 30.0, NULL);   /* arm 2 never rewarded: it must still be tried */
    rng_seed(&r, 8);
    for (int i = 0; i < 3000; i++) {
        int arm = policy_choose(&p, &r, NULL, 0).arm;
        assert_true(arm >= 0 && arm < 3);
        count[arm]++;
    }
    assert_true(count[1] > count[0]);
    assert_true(count[2] > 0);
    policy_free(&p);
}

/* ---- warm-up ------------------------------------------------------------------------------ */

static void test_warmup_draws_uniformly_whatever_the_state(void **state) {
    (void)state;
    enum { K = 3, N = 30000 };
    struct policy p;
    rng_t r;
    long count[K] = {0};
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, K, 0.1, 1.0), SCOUT_OK);
    add_bernoulli(&p, 2, 100, 0);   /* a clear winner that warm-up must ignore */
    add_bernoulli(&p, 0, 0, 100);
    rng_seed(&r, 31);
    for (int i = 0; i < N; i++) {
        struct choice c = policy_choose(&p, &r, NULL, 1);
        assert_true(c.arm >= 0 && c.arm < K);
        count[c.arm]++;
    }
    for (int i = 0; i < K; i++) expect_near("warm-up count", (double)count[i], (double)N / K, binom_tol(N, 1.0 / K));
    policy_free(&p);
}

static void test_warmup_probabilities_are_uniform(void **state) {
    (void)state;
    struct policy p;
    rng_t r;
    double probs[4];
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, 4, 0.2, 1.0), SCOUT_OK);
    add_bernoulli(&p, 1, 10, 0);
    rng_seed(&r, 1);
    policy_probabilities(&p, &r, NULL, 1, 100, probs);
    for (int i = 0; i < 4; i++) assert_true(probs[i] == 0.25);
    policy_free(&p);
}

/* ---- ε-greedy --------------------------------------------------------------------------------- */

static void test_egreedy_explores_at_rate_epsilon_and_otherwise_exploits(void **state) {
    (void)state;
    enum { K = 4, N = 40000 };
    const double eps = 0.2;
    struct policy p;
    rng_t r;
    long explored = 0, count[K] = {0};
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, K, eps, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 2, 8);
    add_bernoulli(&p, 1, 3, 7);
    add_bernoulli(&p, 2, 8, 2);     /* the best mean */
    add_bernoulli(&p, 3, 1, 9);
    rng_seed(&r, 99);
    for (int i = 0; i < N; i++) {
        struct choice c = policy_choose(&p, &r, NULL, 0);
        assert_true(c.arm >= 0 && c.arm < K);
        count[c.arm]++;
        if (c.explored) explored++;
        else assert_int_equal(c.arm, 2);   /* exploiting always takes the best mean */
    }
    expect_near("exploration count", (double)explored, eps * N, binom_tol(N, eps));
    double pbest = eps / K + (1.0 - eps);
    expect_near("best arm count", (double)count[2], pbest * N, binom_tol(N, pbest));
    for (int i = 0; i < K; i++)
        if (i != 2) expect_near("other arm count", (double)count[i], eps / K * N, binom_tol(N, eps / K));
    policy_free(&p);
}

static void test_egreedy_tries_arms_never_rewarded(void **state) {
    (void)state;
    struct policy p;
    rng_t r;
    long count[3] = {0};
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, 3, 0.0, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 10, 0);    /* arms 1 and 2 have no rewards: they count as best */
    rng_seed(&r, 3);
    for (int i = 0; i < 1000; i++) count[policy_choose(&p, &r, NULL, 0).arm]++;
    assert_int_equal(count[0], 0);
    assert_true(count[1] > 0 && count[2] > 0);
    policy_free(&p);
}

static void test_egreedy_probabilities_are_exact(void **state) {
    (void)state;
    const double eps = 0.2;
    struct policy p;
    rng_t r;
    double probs[4], sum = 0;
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, 4, eps, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 2, 8);
    add_bernoulli(&p, 1, 3, 7);
    add_bernoulli(&p, 2, 8, 2);
    add_bernoulli(&p, 3, 1, 9);
    rng_seed(&r, 1);
    policy_probabilities(&p, &r, NULL, 0, 1000, probs);
    for (int i = 0; i < 4; i++) {
        expect_near("egreedy probability", probs[i], i == 2 ? eps / 4 + (1 - eps) : eps / 4, 1e-12);
        sum += probs[i];
    }
    expect_near("sum of probabilities", sum, 1.0, 1e-12);
    policy_free(&p);
}

static void test_egreedy_probabilities_split_ties_evenly(void **state) {
    (void)state;
    const double eps = 0.1;
    struct policy p;
    rng_t r;
    double probs[3];
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, 3, eps, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 5, 5);
    add_bernoulli(&p, 1, 1, 9);
    add_bernoulli(&p, 2, 5, 5);
    rng_seed(&r, 1);
    policy_probabilities(&p, &r, NULL, 0, 1000, probs);
    expect_near("tied best 0", probs[0], eps / 3 + (1 - eps) / 2, 1e-12);
    expect_near("loser", probs[1], eps / 3, 1e-12);
    expect_near("tied best 2", probs[2], eps / 3 + (1 - eps) / 2, 1e-12);
    policy_free(&p);
}

/* ---- Thompson probabilities and summaries ------------------------------------------------- */

static void test_thompson_probabilities_match_pick_frequency(void **state) {
    (void)state;
    enum { K = 3, DRAWS = 20000, N = 20000 };
    struct policy p;
    rng_t r1, r2;
    double probs[K], sum = 0;
    long count[K] = {0};
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, K, 0.1, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 30, 70);   /* close enough that every arm has a real share */
    add_bernoulli(&p, 1, 36, 64);
    add_bernoulli(&p, 2, 25, 75);
    rng_seed(&r1, 100);
    policy_probabilities(&p, &r1, NULL, 0, DRAWS, probs);
    rng_seed(&r2, 200);
    for (int i = 0; i < N; i++) count[policy_choose(&p, &r2, NULL, 0).arm]++;
    for (int i = 0; i < K; i++) {
        double f = (double)count[i] / N;
        assert_true(probs[i] > 0.0 && probs[i] < 1.0);
        /* two independent estimates of the same probability: SE of their difference */
        double se = sqrt(f * (1 - f) * (1.0 / N + 1.0 / DRAWS)) + 1.0 / DRAWS;
        expect_near("Thompson probability vs pick frequency", probs[i], f, K_SE * se);
        sum += probs[i];
    }
    expect_near("sum of probabilities", sum, 1.0, 1e-9);
    assert_true(probs[1] > probs[0] && probs[0] > probs[2]);
    policy_free(&p);
}

static void test_thompson_probabilities_sum_to_one_for_gaussian_model(void **state) {
    (void)state;
    struct policy p;
    rng_t r;
    double probs[5], sum = 0;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 5, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < 5; i++) policy_update(&p, i, 10.0 * i, NULL);
    rng_seed(&r, 4);
    policy_probabilities(&p, &r, NULL, 0, 1000, probs);
    for (int i = 0; i < 5; i++) {
        assert_true(probs[i] > 0.0);    /* smoothing: never exactly zero */
        sum += probs[i];
    }
    expect_near("sum of probabilities", sum, 1.0, 1e-9);
    policy_free(&p);
}

static void check_summary(const struct policy *p, int better) {
    struct arm_summary s[8];
    rng_t r;
    double total = 0;
    assert_true(p->narms <= 8);
    rng_seed(&r, 55);
    policy_summarize(p, &r, 4000, s);
    for (int i = 0; i < p->narms; i++) {
        assert_true(isfinite(s[i].mean));
        assert_true(s[i].ci_low <= s[i].mean);
        assert_true(s[i].mean <= s[i].ci_high);
        assert_true(s[i].prob_best >= 0.0 && s[i].prob_best <= 1.0 + 1e-9);
        total += s[i].prob_best;
    }
    expect_near("sum of prob_best", total, 1.0, 1e-6);
    for (int i = 0; i < p->narms; i++)
        if (i != better) assert_true(s[better].prob_best > s[i].prob_best);
}

static void test_summary_bernoulli_brackets_mean_and_ranks_better_arm(void **state) {
    (void)state;
    struct policy p;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 3, 0.1, 1.0), SCOUT_OK);
    add_bernoulli(&p, 0, 10, 90);
    add_bernoulli(&p, 1, 60, 40);
    add_bernoulli(&p, 2, 30, 70);
    check_summary(&p, 1);

    struct arm_summary s[3];
    rng_t r;
    rng_seed(&r, 56);
    policy_summarize(&p, &r, 4000, s);
    expect_near("posterior mean of arm 1", s[1].mean, 61.0 / 102.0, 1e-12);
    assert_true(s[1].prob_best > 0.99);
    assert_true(s[1].ci_low > s[0].ci_high);   /* well-separated arms: disjoint intervals */
    policy_free(&p);
}

static void test_summary_gaussian_brackets_mean_and_ranks_better_arm(void **state) {
    (void)state;
    struct policy p;
    rng_t noise;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    rng_seed(&noise, 12);
    for (int i = 0; i < 40; i++) {
        policy_update(&p, 0, 5.0 + 2.0 * sample_normal(&noise), NULL);
        policy_update(&p, 1, 20.0 + 2.0 * sample_normal(&noise), NULL);
    }
    check_summary(&p, 1);
    policy_free(&p);
}

static void test_summary_of_untouched_arms_is_a_fair_split(void **state) {
    (void)state;
    enum { K = 2, DRAWS = 20000 };
    struct policy p;
    struct arm_summary s[K];
    rng_t r;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, K, 0.1, 1.0), SCOUT_OK);
    rng_seed(&r, 13);
    policy_summarize(&p, &r, DRAWS, s);
    for (int i = 0; i < K; i++) {
        expect_near("prior mean", s[i].mean, 0.5, 1e-12);
        expect_near("prior prob_best", s[i].prob_best, 0.5, K_SE * sqrt(0.25 / DRAWS));
        assert_true(s[i].ci_low < 0.1 && s[i].ci_high > 0.9);
    }
    policy_free(&p);
}

/* ---- names ------------------------------------------------------------------------------ */

static void test_parse_kind_accepts_known_names_and_rejects_others(void **state) {
    (void)state;
    enum policy_kind k = POLICY_EGREEDY;
    assert_true(policy_parse_kind("auto", &k));
    assert_int_equal(k, POLICY_AUTO);
    k = POLICY_EGREEDY;
    assert_true(policy_parse_kind("thompson", &k));
    assert_int_equal(k, POLICY_THOMPSON);
    assert_true(policy_parse_kind("egreedy", &k));
    assert_int_equal(k, POLICY_EGREEDY);
    assert_true(policy_parse_kind("linucb", &k));
    assert_int_equal(k, POLICY_LINUCB);
    assert_true(policy_parse_kind("lints", &k));
    assert_int_equal(k, POLICY_LINTS);
    assert_false(policy_parse_kind("nope", &k));
    assert_false(policy_parse_kind("", &k));
    assert_false(policy_parse_kind("Thompson", &k));
    assert_string_equal(policy_kind_name(POLICY_THOMPSON), "thompson");
    assert_string_equal(policy_kind_name(POLICY_EGREEDY), "egreedy");
    assert_string_equal(policy_kind_name(POLICY_AUTO), "auto");
    assert_string_equal(policy_kind_name(POLICY_LINTS), "lints");
    assert_string_equal(policy_kind_name(POLICY_LINUCB), "linucb");
}

/* ---- UCB1 and the probability floor ------------------------------------------------------ */

static void test_ucb1_tries_every_arm_before_exploiting(void **state) {
    struct policy p;
    rng_t rng;
    int seen[3] = {0, 0, 0};
    (void)state;
    rng_seed(&rng, 7);
    assert_int_equal(policy_init(&p, POLICY_UCB1, 3, 0.0, 1.0), SCOUT_OK);
    policy_update(&p, 0, 1.0, NULL);
    for (int i = 0; i < 100; i++) seen[policy_choose(&p, &rng, NULL, 0).arm]++;
    assert_int_equal(seen[0], 0);   /* arms 1 and 2 have no reward yet: infinite upper bound */
    assert_true(seen[1] > 0 && seen[2] > 0);
    policy_free(&p);
}

static void test_ucb1_prefers_the_clearly_better_arm(void **state) {
    struct policy p;
    rng_t rng;
    int best = 0;
    (void)state;
    rng_seed(&rng, 11);
    assert_int_equal(policy_init(&p, POLICY_UCB1, 2, 0.0, 1.0), SCOUT_OK);
    for (int i = 0; i < 200; i++) {
        policy_update(&p, 0, i % 10 == 0 ? 1.0 : 0.0, NULL);   /* 10% */
        policy_update(&p, 1, i % 10 < 6 ? 1.0 : 0.0, NULL);    /* 60% */
    }
    for (int i = 0; i < 1000; i++) best += policy_choose(&p, &rng, NULL, 0).arm == 1;
    assert_int_equal(best, 1000);   /* deterministic once every arm was tried */
    double probs[2];
    policy_probabilities(&p, &rng, NULL, 0, 100, probs);
    assert_true(probs[1] == 1.0 && probs[0] == 0.0);
    policy_free(&p);
}

static void test_probability_floor_keeps_every_arm_at_least_at_the_floor(void **state) {
    struct policy p;
    rng_t rng;
    int worst = 0;
    const int n = 200000;
    (void)state;
    rng_seed(&rng, 13);
    assert_int_equal(policy_init(&p, POLICY_UCB1, 4, 0.0, 1.0), SCOUT_OK);
    p.floor = 0.05;
    for (int i = 0; i < 100; i++)
        for (int a = 0; a < 4; a++) policy_update(&p, a, a == 3 ? 1.0 : 0.0, NULL);
    double probs[4], sum = 0;
    policy_probabilities(&p, &rng, NULL, 0, 100, probs);
    for (int a = 0; a < 4; a++) sum += probs[a];
    assert_true(fabs(sum - 1.0) < 1e-12);
    assert_true(fabs(probs[0] - 0.05) < 1e-12 && fabs(probs[3] - (0.05 + 0.8)) < 1e-12);
    for (int i = 0; i < n; i++) worst += policy_choose(&p, &rng, NULL, 0).arm == 0;
    /* Binomial(n, 0.05): sd = sqrt(n * 0.05 * 0.95) ~ 97; allow 6 sd. */
    assert_true(abs(worst - (int)(0.05 * n)) < 6 * 98);
    policy_free(&p);
}

static void test_floor_that_cannot_be_honoured_is_ignored(void **state) {
    struct policy p;
    rng_t rng;
    (void)state;
    rng_seed(&rng, 17);
    assert_int_equal(policy_init(&p, POLICY_EGREEDY, 4, 0.0, 1.0), SCOUT_OK);
    p.floor = 0.3;   /* 4 x 0.3 > 1 */
    policy_update(&p, 2, 1.0, NULL);
    for (int a = 0; a < 4; a++)
        if (a != 2) policy_update(&p, a, 0.0, NULL);
    double probs[4];
    policy_probabilities(&p, &rng, NULL, 0, 100, probs);
    assert_true(probs[2] == 1.0);
    policy_free(&p);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_folds_count_sum_sumsq_and_range_exactly),
        cmocka_unit_test(test_first_update_sets_min_and_max_even_when_positive),
        cmocka_unit_test(test_update_ignores_nonfinite_rewards_and_unknown_arms),
        cmocka_unit_test(test_replaying_events_in_order_gives_identical_state),
        cmocka_unit_test(test_same_seed_gives_same_thompson_picks),
        cmocka_unit_test(test_same_seed_gives_same_egreedy_picks),
        cmocka_unit_test(test_same_seed_gives_same_warmup_picks),
        cmocka_unit_test(test_thompson_bernoulli_prefers_clearly_better_arm),
        cmocka_unit_test(test_fractional_rewards_in_unit_interval_keep_bernoulli_model),
        cmocka_unit_test(test_rewards_outside_unit_interval_switch_to_gaussian),
        cmocka_unit_test(test_thompson_gaussian_prefers_higher_mean),
        cmocka_unit_test(test_thompson_gaussian_with_one_reward_per_arm_still_decides),
        cmocka_unit_test(test_warmup_draws_uniformly_whatever_the_state),
        cmocka_unit_test(test_warmup_probabilities_are_uniform),
        cmocka_unit_test(test_egreedy_explores_at_rate_epsilon_and_otherwise_exploits),
        cmocka_unit_test(test_egreedy_tries_arms_never_rewarded),
        cmocka_unit_test(test_egreedy_probabilities_are_exact),
        cmocka_unit_test(test_egreedy_probabilities_split_ties_evenly),
        cmocka_unit_test(test_thompson_probabilities_match_pick_frequency),
        cmocka_unit_test(test_thompson_probabilities_sum_to_one_for_gaussian_model),
        cmocka_unit_test(test_summary_bernoulli_brackets_mean_and_ranks_better_arm),
        cmocka_unit_test(test_summary_gaussian_brackets_mean_and_ranks_better_arm),
        cmocka_unit_test(test_summary_of_untouched_arms_is_a_fair_split),
        cmocka_unit_test(test_parse_kind_accepts_known_names_and_rejects_others),
        cmocka_unit_test(test_ucb1_tries_every_arm_before_exploiting),
        cmocka_unit_test(test_ucb1_prefers_the_clearly_better_arm),
        cmocka_unit_test(test_probability_floor_keeps_every_arm_at_least_at_the_floor),
        cmocka_unit_test(test_floor_that_cannot_be_honoured_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
