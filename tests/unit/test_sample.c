/* test_sample.c — statistical and contract tests for bandit/rng and bandit/sample.
 *
 * Every stochastic test uses a fixed seed, so results are reproducible, and
 * compares moments against theory with a tolerance of 6 standard errors
 * (derived from the distribution's own kurtosis): loose enough never to flake,
 * tight enough that a wrong formula or a biased sampler fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "bandit/rng.h"
#include "bandit/sample.h"

#define K_SE 6.0

static void expect_near(const char *what, double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("%s: got %.12g, want %.12g +- %.3g\n", what, got, want, tol);
        fail();
    }
}

typedef double (*draw_fn)(rng_t *r, const double *p);

/* Checks sample mean and variance against theory. kurt is the (non-excess)
 * kurtosis mu4/sigma^4, which sets the standard error of the variance. */
static void check_moments(const char *what, draw_fn draw, const double *p, uint64_t seed,
                          long n, double mean, double var, double kurt)
{
    rng_t r;
    rng_seed(&r, seed);
    double m = 0.0, m2 = 0.0; /* Welford: stable for means near 1 with tiny variance */
    for (long i = 1; i <= n; i++) {
        double x = draw(&r, p);
        double d = x - m;
        m += d / (double)i;
        m2 += d * (x - m);
    }
    double v = m2 / (double)(n - 1);
    char label[128];
    snprintf(label, sizeof label, "%s mean", what);
    expect_near(label, m, mean, K_SE * sqrt(var / (double)n));
    snprintf(label, sizeof label, "%s variance", what);
    expect_near(label, v, var, K_SE * var * sqrt((kurt - 1.0) / (double)n));
}

static double draw_uniform(rng_t *r, const double *p) { (void)p; return rng_uniform(r); }
static double draw_normal(rng_t *r, const double *p) { (void)p; return sample_normal(r); }
static double draw_gamma(rng_t *r, const double *p) { return sample_gamma(r, p[0]); }
static double draw_beta(rng_t *r, const double *p) { return sample_beta(r, p[0], p[1]); }
static double draw_t(rng_t *r, const double *p) { return sample_student_t(r, p[0]); }

static void test_seed_expansion_is_splitmix64(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 0);
    /* Published splitmix64 outputs for seed 0: seeds stay portable across
     * releases, so a stored seed replays the same assignment sequence. */
    assert_int_equal(r.s[0], 0xE220A8397B1DCDAFULL);
    assert_int_equal(r.s[1], 0x6E789E6AA1B965F4ULL);
    assert_int_equal(r.s[2], 0x06C45D188009454FULL);
}

static void test_next_matches_xoshiro256ss_reference_vector(void **state)
{
    (void)state;
    /* Reference outputs for state {1,2,3,4} (Blackman & Vigna's xoshiro256**). */
    static const uint64_t want[] = {
        11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL, 1216172134540287360ULL,
        607988272756665600ULL, 16172922978634559625ULL, 8476171486693032832ULL,
        10595114339597558777ULL, 2904607092377533576ULL,
    };
    rng_t r = {{1, 2, 3, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(rng_next(&r), want[i]);
}

static void test_same_seed_gives_same_sequence(void **state)
{
    (void)state;
    rng_t a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int differs = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a);
        assert_int_equal(x, rng_next(&b));
        differs |= x != rng_next(&c);
    }
    assert_true(differs);
}

static void test_os_seeding_gives_distinct_nonzero_states(void **state)
{
    (void)state;
    rng_t a, b;
    rng_seed_os(&a);
    rng_seed_os(&b);
    assert_true((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0);
    assert_true(memcmp(&a, &b, sizeof a) != 0);
}

static void test_uniform_is_in_unit_interval(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 7);
    for (int i = 0; i < 1000000; i++) {
        double u = rng_uniform(&r), v = rng_uniform_pos(&r);
        assert_true(u >= 0.0 && u < 1.0);
        assert_true(v > 0.0 && v < 1.0);
    }
    check_moments("uniform", draw_uniform, NULL, 8, 200000, 0.5, 1.0 / 12.0, 1.8);
}

/* A state whose next xoshiro256** output is `out`: invert *9, rotl 7, *5. */
static rng_t state_with_next_output(uint64_t out)
{
    const uint64_t inv9 = 0x8E38E38E38E38E39ULL, inv5 = 0xCCCCCCCCCCCCCCCDULL;
    uint64_t y = out * inv9;
    y = (y >> 7) | (y << 57);
    rng_t r = {{1, y * inv5, 2, 3}};
    rng_t probe = r;
    assert_int_equal(rng_next(&probe), out);
    return r;
}

static void test_uniform_endpoints_follow_the_contract(void **state)
{
    (void)state;
    rng_t lo = state_with_next_output(0), hi = state_with_next_output(UINT64_MAX);
    rng_t lo2 = lo, hi2 = hi;
    assert_true(rng_uniform(&lo) == 0.0);
    assert_true(rng_uniform(&hi) < 1.0);
    assert_true(rng_uniform_pos(&lo2) > 0.0);
    assert_true(rng_uniform_pos(&hi2) < 1.0);
}

static void test_rng_below_is_unbiased_and_in_range(void **state)
{
    (void)state;
    enum { BINS = 1000, N = 1000000 };
    static long count[BINS];
    rng_t r;
    rng_seed(&r, 11);
    memset(count, 0, sizeof count);
    for (int i = 0; i < N; i++) {
        uint32_t x = rng_below(&r, BINS);
        assert_true(x < BINS);
        count[x]++;
    }
    double expected = (double)N / BINS, chi2 = 0.0;
    for (int i = 0; i < BINS; i++)
        chi2 += (count[i] - expected) * (count[i] - expected) / expected;
    /* chi-square with 999 dof: mean 999, sd sqrt(1998) ~ 44.7 */
    expect_near("chi-square", chi2, BINS - 1, K_SE * sqrt(2.0 * (BINS - 1)));

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rng_below(&r, 1), 0);
        assert_true(rng_below(&r, UINT32_MAX) < UINT32_MAX);
    }
    assert_int_equal(rng_below(&r, 0), 0);
}

static void test_rng_below_rejects_bias_for_large_n(void **state)
{
    (void)state;
    /* n = 3*2^30: plain modulo would put half the mass below 2^30, and
     * multiply-without-rejection would make multiples of 3 twice as likely.
     * Unbiased sampling gives 1/3 for both. */
    const uint32_t n = 3u << 30;
    const long N = 300000;
    rng_t r;
    rng_seed(&r, 12);
    long low = 0, mult3 = 0;
    for (long i = 0; i < N; i++) {
        uint32_t x = rng_below(&r, n);
        assert_true(x < n);
        low += x < (1u << 30);
        mult3 += x % 3 == 0;
    }
    double se = sqrt((1.0 / 3.0) * (2.0 / 3.0) / (double)N);
    expect_near("P(x < n/3)", (double)low / N, 1.0 / 3.0, K_SE * se);
    expect_near("P(x % 3 == 0)", (double)mult3 / N, 1.0 / 3.0, K_SE * se);
}

static void test_normal_has_zero_mean_unit_variance(void **state)
{
    (void)state;
    check_moments("normal", draw_normal, NULL, 21, 400000, 0.0, 1.0, 3.0);
}

static void test_gamma_mean_and_variance_match_shape(void **state)
{
    (void)state;
    const double shapes[] = {0.3, 1.0, 2.5, 100.0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "gamma(%g)", shapes[i]);
        check_moments(what, draw_gamma, &shapes[i], 30 + i, 300000, shapes[i], shapes[i],
                      3.0 + 6.0 / shapes[i]);
    }
}

static void test_gamma_invalid_shape_acts_as_exponential(void **state)
{
    (void)state;
    const double bad[] = {0.0, -2.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_moments("gamma(invalid)", draw_gamma, &bad[i], 40 + i, 100000, 1.0, 1.0, 9.0);

    rng_t r;
    rng_seed(&r, 45);
    for (int i = 0; i < 10000; i++) {
        double x = sample_gamma(&r, 1e-300);
        assert_true(x >= 0.0 && !isnan(x));
    }
}

static double beta_var(double a, double b) { return a * b / ((a + b) * (a + b) * (a + b + 1.0)); }

static double beta_kurt(double a, double b)
{
    double s = a + b;
    return 3.0 + 6.0 * ((a - b) * (a - b) * (s + 1.0) - a * b * (s + 2.0)) /
                     (a * b * (s + 2.0) * (s + 3.0));
}

static void test_beta_mean_matches_a_over_a_plus_b(void **state)
{
    (void)state;
    const double ab[][2] = {{1e6, 1e6}, {0.5, 0.5}, {1, 1}, {2, 5}, {1e6, 3}, {0.01, 0.01}};
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
        double a = ab[i][0], b = ab[i][1];
        char what[64];
        snprintf(what, sizeof what, "beta(%g,%g)", a, b);
        check_moments(what, draw_beta, ab[i], 50 + i, 200000, a / (a + b), beta_var(a, b),
                      beta_kurt(a, b));
    }
}

static void test_beta_never_returns_nan_or_out_of_range(void **state)
{
    (void)state;
    const double ab[][2] = {
        {1e-300, 1e-300}, {1e-5, 1e5}, {1e5, 1e-5}, {1e300, 1e-300}, {1e308, 1e308},
        {0, 0}, {-1, 2}, {NAN, NAN}, {INFINITY, 1}, {1, -INFINITY}, {5e-324, 1e308},
    };
    rng_t r;
    rng_seed(&r, 60);
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
        for (int j = 0; j < 10000; j++) {
            double x = sample_beta(&r, ab[i][0], ab[i][1]);
            if (!(x >= 0.0 && x <= 1.0)) {
                print_error("beta(%g,%g) returned %g\n", ab[i][0], ab[i][1], x);
                fail();
            }
        }
    }
}

static void test_beta_invalid_parameters_act_as_one(void **state)
{
    (void)state;
    const double uniform[2] = {NAN, -1.0}, one_three[2] = {0.0, 3.0};
    check_moments("beta(NaN,-1)", draw_beta, uniform, 70, 200000, 0.5, beta_var(1, 1),
                  beta_kurt(1, 1));
    check_moments("beta(0,3)", draw_beta, one_three, 71, 200000, 0.25, beta_var(1, 3),
                  beta_kurt(1, 3));
}

static void test_student_t_variance_is_dof_over_dof_minus_2(void **state)
{
    (void)state;
    const double dofs[] = {10.0, 30.0};
    for (size_t i = 0; i < sizeof dofs / sizeof dofs[0]; i++) {
        double v = dofs[i];
        char what[64];
        snprintf(what, sizeof what, "t(%g)", v);
        check_moments(what, draw_t, &dofs[i], 80 + i, 400000, 0.0, v / (v - 2.0),
                      3.0 + 6.0 / (v - 4.0));
    }
    const double inf = INFINITY;
    check_moments("t(inf)", draw_t, &inf, 83, 200000, 0.0, 1.0, 3.0);
}

static void test_student_t_with_one_dof_is_cauchy(void **state)
{
    (void)state;
    /* Cauchy has no moments, but its quartiles are -1 and +1. Invalid dof
     * must behave identically (documented fallback to dof = 1). */
    const double dofs[] = {1.0, 0.0, -3.0, NAN};
    const long N = 200000;
    for (size_t i = 0; i < sizeof dofs / sizeof dofs[0]; i++) {
        rng_t r;
        rng_seed(&r, 90 + i);
        long inside = 0;
        for (long j = 0; j < N; j++) {
            double t = sample_student_t(&r, dofs[i]);
            assert_false(isnan(t));
            inside += fabs(t) < 1.0;
        }
        expect_near("P(|t| < 1)", (double)inside / N, 0.5, K_SE * sqrt(0.25 / N));
    }
    rng_t r;
    rng_seed(&r, 95);
    for (int j = 0; j < 10000; j++)
        assert_false(isnan(sample_student_t(&r, 1e-300)));
}

struct stream { rng_t *gen, *again; uint64_t v[8]; };
static pthread_barrier_t barrier;

static void *draw_stream(void *arg)
{
    struct stream *s = arg;
    s->gen = rng_thread();
    for (int i = 0; i < 8; i++)
        s->v[i] = rng_next(rng_thread());
    s->again = rng_thread();
    /* Keep both workers alive together so their TLS blocks cannot be reused. */
    pthread_barrier_wait(&barrier);
    return NULL;
}

static void test_threads_get_distinct_streams(void **state)
{
    (void)state;
    struct stream s[3];
    memset(s, 0, sizeof s);
    pthread_t t[2];
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, draw_stream, &s[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&barrier);
    s[2].gen = s[2].again = rng_thread();
    for (int i = 0; i < 8; i++)
        s[2].v[i] = rng_next(rng_thread());

    for (int i = 0; i < 3; i++) {
        assert_non_null(s[i].gen);
        assert_ptr_equal(s[i].gen, s[i].again);
        for (int j = i + 1; j < 3; j++)
            assert_memory_not_equal(s[i].v, s[j].v, sizeof s[i].v);
    }
    assert_ptr_not_equal(s[0].gen, s[1].gen);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_expansion_is_splitmix64),
        cmocka_unit_test(test_next_matches_xoshiro256ss_reference_vector),
        cmocka_unit_test(test_same_seed_gives_same_sequence),
        cmocka_unit_test(test_os_seeding_gives_distinct_nonzero_states),
        cmocka_unit_test(test_uniform_is_in_unit_interval),
        cmocka_unit_test(test_uniform_endpoints_follow_the_contract),
        cmocka_unit_test(test_rng_below_is_unbiased_and_in_range),
        cmocka_unit_test(test_rng_below_rejects_bias_for_large_n),
        cmocka_unit_test(test_normal_has_zero_mean_unit_variance),
        cmocka_unit_test(test_gamma_mean_and_variance_match_shape),
        cmocka_unit_test(test_gamma_invalid_shape_acts_as_exponential),
        cmocka_unit_test(test_beta_mean_matches_a_over_a_plus_b),
        cmocka_unit_test(test_beta_never_returns_nan_or_out_of_range),
        cmocka_unit_test(test_beta_invalid_parameters_act_as_one),
        cmocka_unit_test(test_student_t_variance_is_dof_over_dof_minus_2),
        cmocka_unit_test(test_student_t_with_one_dof_is_cauchy),
        cmocka_unit_test(test_threads_get_distinct_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
