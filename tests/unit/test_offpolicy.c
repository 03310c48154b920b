/* test_offpolicy.c — unit tests for off-policy evaluation (bandit/offpolicy.c).
 *
 * What must hold:
 *   - IPS, SNIPS, DR, the logged mean, their 95% intervals and the effective sample size equal
 *     the values worked out by hand on a small log;
 *   - logging uniformly and evaluating the uniform policy gives back the logged mean (every
 *     weight is 1);
 *   - a deterministic target policy evaluated on a simulated contextual log recovers its true
 *     value within the interval of each estimator (seeded, so the run is reproducible);
 *   - with a perfect reward model, DR's interval is narrower than IPS's;
 *   - empty logs, single rows, targets that never agree with the log and rows out of range get
 *     undefined estimates or SCOUT_EINVAL, never a number made up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "bandit/offpolicy.h"
#include "bandit/rng.h"
#include "util/common.h"

#define Z95 1.959963984540054
#define EPS 1e-12

static void assert_close(double got, double want, double tol) {
    if (fabs(got - want) > tol) {
        print_error("got %.17g, want %.17g (tolerance %g)\n", got, want, tol);
        fail();
    }
}

static void assert_covers(const struct ope_estimate *e, double truth) {
    assert_true(e->defined && e->has_ci);
    if (!(e->ci_low <= truth && truth <= e->ci_high)) {
        print_error("interval [%g, %g] (estimate %g) misses the true value %g\n", e->ci_low, e->ci_high, e->estimate,
                    truth);
        fail();
    }
}

/* The log of the hand computation: target = always arm 0, π = (1, 0). */
static const struct ope_row HAND[] = {
    {0, 0.5, 1.0, 1.0, 0},    /* w = 2 */
    {1, 0.5, 0.0, 0.0, 0},    /* w = 0 */
    {0, 0.25, 0.0, 1.0, 0},   /* w = 4 */
    {1, 0.8, 1.0, 0.0, 0},    /* w = 0 */
};

static void test_estimates_match_hand_computation(void **state) {
    struct ope_row rows[4];
    double sum[2] = {0}, count[2] = {0}, model[2], target[2] = {1, 0};
    struct ope_result r;
    (void)state;
    for (int i = 0; i < 4; i++) {
        rows[i] = HAND[i];
        sum[rows[i].arm] += rows[i].reward;
        count[rows[i].arm] += 1;
    }
    ope_reward_model(sum, count, 2, model);
    assert_close(model[0], 0.5, EPS);
    assert_close(model[1], 0.5, EPS);
    for (int i = 0; i < 4; i++) rows[i].direct = ope_direct(target, model, 2);   /* 0.5 */
    assert_int_equal(ope_evaluate(rows, 4, model, 2, &r), SCOUT_OK);
    assert_int_equal(r.n, 4);

    /* Logged: rewards 1, 0, 0, 1 — mean 0.5, squared deviations 4 · 0.25 = 1. */
    assert_close(r.logged.estimate, 0.5, EPS);
    assert_close(r.logged.ci_high - 0.5, Z95 * sqrt(1.0 / 3 / 4), EPS);
    /* IPS: terms w·r = 2, 0, 0, 0 — mean 0.5, squared deviations 2.25 + 3 · 0.25 = 3. */
    assert_close(r.ips.estimate, 0.5, EPS);
    assert_close(r.ips.ci_low, 0.5 - Z95 * sqrt(3.0 / 3 / 4), EPS);
    assert_close(r.ips.ci_high, 0.5 + Z95 * sqrt(3.0 / 3 / 4), EPS);
    /* SNIPS: Σwr / Σw = 2 / 6. Terms w·(r − 1/3) = 4/3, 0, −4/3, 0: squared sum 32/9, sample
     * variance 32/27; mean weight 1.5, so Var = (32/27) / (4 · 1.5²) = 32/243. */
    assert_close(r.snips.estimate, 1.0 / 3, EPS);
    assert_close(r.snips.ci_high - 1.0 / 3, Z95 * sqrt(32.0 / 243), EPS);
    assert_close(1.0 / 3 - r.snips.ci_low, Z95 * sqrt(32.0 / 243), EPS);
    /* DR: ĝ = (0.5, 0.5); terms 0.5 + w·(r − 0.5) = 1.5, 0.5, −1.5, 0.5 — mean 0.25, squared
     * deviations 1.5625 + 0.0625 + 3.0625 + 0.0625 = 4.75. */
    assert_close(r.dr.estimate, 0.25, EPS);
    assert_close(r.dr.ci_high - 0.25, Z95 * sqrt(4.75 / 3 / 4), EPS);
    /* ESS: (Σw)² / Σw² = 36 / 20. */
    assert_close(r.ess, 1.8, EPS);
}

static void test_reward_model_gives_unlogged_arms_the_overall_mean(void **state) {
    double sum[3] = {3, 0, 1}, count[3] = {4, 0, 4}, model[3], zero[3] = {0}, empty[3];
    (void)state;
    ope_reward_model(sum, count, 3, model);
    assert_close(model[0], 0.75, EPS);
    assert_close(model[1], 0.5, EPS);
    assert_close(model[2], 0.25, EPS);
    ope_reward_model(zero, zero, 3, empty);
    for (int a = 0; a < 3; a++) assert_close(empty[a], 0, 0);
}

static void test_uniform_target_on_uniform_log_gives_the_logged_mean(void **state) {
    enum { N = 1000, K = 3 };
    static struct ope_row rows[N];
    rng_t rng;
    struct ope_result r;
    (void)state;
    rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        int arm = (int)rng_below(&rng, K);
        rows[i] = (struct ope_row){arm, 1.0 / K, rng_uniform(&rng) < 0.3 + 0.2 * arm, 1.0 / K, 0};
    }
    assert_int_equal(ope_evaluate(rows, N, NULL, K, &r), SCOUT_OK);
    assert_close(r.ips.estimate, r.logged.estimate, EPS);
    assert_close(r.ips.ci_low, r.logged.ci_low, EPS);
    assert_close(r.ips.ci_high, r.logged.ci_high, EPS);
    assert_close(r.snips.estimate, r.logged.estimate, EPS);
    assert_close(r.ess, N, 1e-9);
    assert_false(r.dr.defined);   /* no reward model given */
}

/* A contextual log: context x ∈ {0, 1}, arm means depend on x, the logging policy too; the
 * target picks arm 2 for x = 0 and arm 0 for x = 1. Its true value is the mean of those two. */
static void test_deterministic_target_recovers_its_true_value_within_the_interval(void **state) {
    enum { N = 20000, K = 3 };
    static const double mean[2][K] = {{0.2, 0.5, 0.7}, {0.6, 0.3, 0.1}};
    static const double logging[2][K] = {{0.5, 0.3, 0.2}, {0.1, 0.3, 0.6}};
    static const int best[2] = {2, 0};
    static struct ope_row rows[N];
    double truth = 0.5 * mean[0][2] + 0.5 * mean[1][0];
    double sum[K] = {0}, count[K] = {0}, model[K];
    static int ctx[N];
    rng_t rng;
    struct ope_result r;
    (void)state;
    rng_seed(&rng, 20240131);
    for (int i = 0; i < N; i++) {
        int x = (int)rng_below(&rng, 2), arm = 0;
        double u = rng_uniform(&rng), acc = logging[x][0];
        while (arm < K - 1 && u >= acc) acc += logging[x][++arm];
        ctx[i] = x;
        rows[i] = (struct ope_row){arm, logging[x][arm], rng_uniform(&rng) < mean[x][arm], arm == best[x], 0};
        sum[arm] += rows[i].reward;
        count[arm] += 1;
    }
    ope_reward_model(sum, count, K, model);
    for (int i = 0; i < N; i++) {
        double target[K] = {0};
        target[best[ctx[i]]] = 1;
        rows[i].direct = ope_direct(target, model, K);
    }
    assert_int_equal(ope_evaluate(rows, N, model, K, &r), SCOUT_OK);
    assert_covers(&r.ips, truth);
    assert_covers(&r.snips, truth);
    assert_covers(&r.dr, truth);
    /* The logging policy earns less than the target: its own mean is well below. */
    assert_true(r.logged.ci_high < truth);
    /* Only rows that agree with the target carry weight: ESS is far below N. */
    assert_true(r.ess > 0 && r.ess < N / 2.0);
}

static void test_dr_with_perfect_reward_model_is_tighter_than_ips(void **state) {
    enum { N = 5000, K = 2 };
    static const double mean[K] = {0.3, 0.6};
    static struct ope_row rows[N];
    double model[K] = {0.3, 0.6}, target[K] = {0.2, 0.8};
    rng_t rng;
    struct ope_result r;
    (void)state;
    rng_seed(&rng, 99);
    for (int i = 0; i < N; i++) {
        int arm = rng_uniform(&rng) < 0.7 ? 0 : 1;
        double p = arm == 0 ? 0.7 : 0.3;
        rows[i] = (struct ope_row){arm, p, rng_uniform(&rng) < mean[arm], target[arm], ope_direct(target, model, K)};
    }
    assert_int_equal(ope_evaluate(rows, N, model, K, &r), SCOUT_OK);
    assert_true(r.dr.ci_high - r.dr.ci_low < r.ips.ci_high - r.ips.ci_low);
    assert_covers(&r.dr, 0.2 * 0.3 + 0.8 * 0.6);
}

static void test_empty_log_has_no_estimates(void **state) {
    struct ope_result r;
    double model[2] = {0, 0};
    (void)state;
    assert_int_equal(ope_evaluate(NULL, 0, model, 2, &r), SCOUT_OK);
    assert_int_equal(r.n, 0);
    assert_false(r.logged.defined || r.ips.defined || r.snips.defined || r.dr.defined);
    assert_close(r.ess, 0, 0);
}

static void test_single_row_has_an_estimate_but_no_interval(void **state) {
    struct ope_row row = {0, 0.5, 1.0, 0.5, 0};
    struct ope_result r;
    (void)state;
    assert_int_equal(ope_evaluate(&row, 1, NULL, 2, &r), SCOUT_OK);
    assert_true(r.ips.defined && r.logged.defined && r.snips.defined);
    assert_false(r.ips.has_ci || r.logged.has_ci || r.snips.has_ci);
    assert_close(r.ips.estimate, 1.0, EPS);
}

static void test_target_that_never_agrees_with_the_log_leaves_snips_undefined(void **state) {
    struct ope_row rows[2] = {{0, 0.5, 1.0, 0.0, 0}, {0, 0.5, 0.0, 0.0, 0}};
    struct ope_result r;
    (void)state;
    assert_int_equal(ope_evaluate(rows, 2, NULL, 2, &r), SCOUT_OK);
    assert_true(r.ips.defined);
    assert_close(r.ips.estimate, 0, 0);
    assert_false(r.snips.defined);
    assert_close(r.ess, 0, 0);
}

static void test_rows_out_of_range_are_refused(void **state) {
    static const struct ope_row bad[] = {
        {2, 0.5, 1, 0.5, 0},          /* arm out of range */
        {-1, 0.5, 1, 0.5, 0},
        {0, 0.0, 1, 0.5, 0},          /* propensity 0: weight unbounded */
        {0, 1.5, 1, 0.5, 0},
        {0, 0.5, 1, 1.5, 0},          /* target probability above 1 */
        {0, 0.5, NAN, 0.5, 0},
        {0, 0.5, 1, 0.5, INFINITY},   /* direct value not finite (DR) */
    };
    double model[2] = {0, 0};
    struct ope_result r;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(ope_evaluate(&bad[i], 1, model, 2, &r), SCOUT_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimates_match_hand_computation),
        cmocka_unit_test(test_reward_model_gives_unlogged_arms_the_overall_mean),
        cmocka_unit_test(test_uniform_target_on_uniform_log_gives_the_logged_mean),
        cmocka_unit_test(test_deterministic_target_recovers_its_true_value_within_the_interval),
        cmocka_unit_test(test_dr_with_perfect_reward_model_is_tighter_than_ips),
        cmocka_unit_test(test_empty_log_has_no_estimates),
        cmocka_unit_test(test_single_row_has_an_estimate_but_no_interval),
        cmocka_unit_test(test_target_that_never_agrees_with_the_log_leaves_snips_undefined),
        cmocka_unit_test(test_rows_out_of_range_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
