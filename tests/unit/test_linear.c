/* test_linear.c — unit tests for bandit/linear (the context encoder and the per-arm ridge
 * regressions behind LinUCB and linear Thompson sampling) and for the contextual half of
 * bandit/policy that decides from it.
 *
 * What must hold (each checked against an independent computation in this file, never against
 * the code under test):
 *   - without discount, each arm's A⁻¹ (kept by Sherman–Morrison) equals the inverse, found
 *     here by Gauss–Jordan elimination, of A = λI + Σ x xᵀ over the encoded contexts of that
 *     arm's rewards, and θ = A⁻¹b with b = Σ r x; predictions are θ·x and σ̂·√(xᵀA⁻¹x);
 *   - with a discount γ, A = λI + Σ γ^(n−i) x_i x_iᵀ and b = Σ γ^(n−i) r_i x_i per arm (the
 *     closed form of A ← γA + (1−γ)λI + xxᵀ, b ← γb + rx);
 *   - the encoder: slot 0 is the intercept, booleans are 0/1, a string feature has one slot per
 *     value up to LIN_MAX_VALUES and then one shared overflow slot ("(other)"), which unseen
 *     values also use at decision time; unknown features are ignored; decisions never grow
 *     the encoder; the dimension never exceeds LIN_MAX_DIM and `dropped` counts every value
 *     that found no slot (the dimension also stops where arms × d² reaches LIN_MAX_CELLS);
 *     numbers are standardised with their running mean and deviation and clipped at ±5;
 *   - lin_max_probabilities: P(arm is largest) for independent normals — the closed form
 *     Φ((μ1−μ2)/√(s1²+s2²)) for two arms, a Monte Carlo reference for four, symmetry for
 *     identical arms, and the Monte Carlo path above 16 arms;
 *   - the policies: probabilities sum to 1 and honour the floor; LinUCB puts the non-floor
 *     mass on the highest μ+sd; linear Thompson sampling learns a per-context preference and
 *     picks arms as often as its probabilities say; `auto` is contextual only with a context;
 *   - the closed forms of the non-contextual posteriors: Beta–Bernoulli mean and interval,
 *     and the discounted sums w = Σ γ^(n−i), ws = Σ γ^(n−i) r_i;
 *   - reproducibility: a seeded run of decisions and rewards through experiment.c repeats
 *     exactly, and lin_clone predicts bit for bit like its original (and is a deep copy).
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
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "bandit/linear.h"
#include "bandit/policy.h"
#include "bandit/rng.h"
#include "bandit/sample.h"
#include "experiment.h"
#include "util/common.h"

#define K_SE 6.0                 /* tolerance in standard errors */
#define D LIN_MAX_DIM            /* stride of every matrix kept by this file */
#define LAMBDA 1.0               /* the ridge prior linear.c documents (A starts as λI) */
#define INV_TOL 1e-9             /* relative (norm-wise) tolerance for A⁻¹, θ and b */

static void expect_near(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) {
        print_error("%s: got %.15g, want %.15g +- %.3g\n", what, got, want, tol);
        fail();
    }
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static double phi_cdf(double z) {
    return 0.5 * erfc(-z / M_SQRT2);
}


/* ---- an independent reference: dense A and b per arm, inverted by Gauss–Jordan ----------- */

struct ref {
    int narms;
    double *a;   /* narms blocks of D×D, row-major; every slot starts at λ on the diagonal */
    double *b;   /* narms blocks of D */
};

static struct ref ref_new(int narms) {
    struct ref r = {narms, calloc((size_t)narms * D * D, sizeof(double)), calloc((size_t)narms * D, sizeof(double))};
    assert_non_null(r.a);
    assert_non_null(r.b);
    for (int k = 0; k < narms; k++)
        for (int i = 0; i < D; i++) r.a[(size_t)k * D * D + (size_t)i * D + i] = LAMBDA;
    return r;
}

static void ref_free(struct ref *r) {
    free(r->a);
    free(r->b);
}

/* A += w·x xᵀ, b += w·r·x for one arm (x has D entries, zero beyond the model's dimension). */
static void ref_add(struct ref *r, int arm, double w, const double *x, double reward) {
    double *a = r->a + (size_t)arm * D * D, *b = r->b + (size_t)arm * D;
    for (int i = 0; i < D; i++) {
        if (x[i] == 0.0) continue;
        for (int j = 0; j < D; j++) a[(size_t)i * D + j] += w * x[i] * x[j];
        b[i] += w * reward * x[i];
    }
}

/* out = inverse of the d×d matrix a (both with stride D), Gauss–Jordan with partial pivoting. */
static void gauss_jordan_inverse(const double *a, double *out, int d) {
    double *m = malloc(sizeof *m * (size_t)d * (size_t)(2 * d));
    assert_non_null(m);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < 2 * d; j++) m[(size_t)i * 2 * d + j] = j < d ? a[(size_t)i * D + j] : (j - d == i);
    for (int c = 0; c < d; c++) {
        int p = c;
        for (int i = c + 1; i < d; i++)
            if (fabs(m[(size_t)i * 2 * d + c]) > fabs(m[(size_t)p * 2 * d + c])) p = i;
        assert_true(fabs(m[(size_t)p * 2 * d + c]) > 1e-300);
        if (p != c)
            for (int j = 0; j < 2 * d; j++) {
                double t = m[(size_t)c * 2 * d + j];
                m[(size_t)c * 2 * d + j] = m[(size_t)p * 2 * d + j];
                m[(size_t)p * 2 * d + j] = t;
            }
        double piv = m[(size_t)c * 2 * d + c];
        for (int j = 0; j < 2 * d; j++) m[(size_t)c * 2 * d + j] /= piv;
        for (int i = 0; i < d; i++) {
            double f = m[(size_t)i * 2 * d + c];
            if (i == c || f == 0.0) continue;
            for (int j = 0; j < 2 * d; j++) m[(size_t)i * 2 * d + j] -= f * m[(size_t)c * 2 * d + j];
        }
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) out[(size_t)i * D + j] = m[(size_t)i * 2 * d + d + j];
    free(m);
}

/* Norm-wise relative comparison of n values: max|got − want| ≤ tol · max(1e-300, max|want|). */
static void expect_close_vec(const char *what, int arm, const double *got, size_t gstride, const double *want,
                             size_t wstride, int rows, int cols, double tol) {
    double worst = 0, scale = 1e-300;
    int wi = 0, wj = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double g = got[(size_t)i * gstride + j], w = want[(size_t)i * wstride + j];
            if (fabs(w) > scale) scale = fabs(w);
            if (!(fabs(g - w) <= worst)) {
                worst = isnan(g - w) ? INFINITY : fabs(g - w);
                wi = i;
                wj = j;
            }
        }
    if (!(worst <= tol * scale)) {
        print_error("%s (arm %d): worst entry [%d][%d] got %.15g want %.15g; max|diff| %.3g > %.3g x max|want| %.3g\n",
                    what, arm, wi, wj, got[(size_t)wi * gstride + wj], want[(size_t)wi * wstride + wj], worst, tol,
                    scale);
        fail();
    }
}

/* The model's A⁻¹, b and θ (and A when discounted) against the reference's. */
static void check_against_ref(const struct lin_model *m, const struct ref *r) {
    int d = m->d, c = m->cap;
    double *inv = malloc(sizeof *inv * D * D), theta[D];
    assert_non_null(inv);
    assert_true(d <= c && c <= LIN_MAX_DIM);
    for (int arm = 0; arm < m->narms; arm++) {
        const double *ra = r->a + (size_t)arm * D * D, *rb = r->b + (size_t)arm * D;
        const double *mainv = m->ainv + (size_t)arm * c * c;
        gauss_jordan_inverse(ra, inv, d);
        for (int i = 0; i < d; i++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += inv[(size_t)i * D + j] * rb[j];
            theta[i] = s;
        }
        expect_close_vec("A^-1 vs Gauss-Jordan inverse", arm, mainv, (size_t)c, inv, D, d, d, INV_TOL);
        expect_close_vec("b vs sum of r x", arm, m->b + (size_t)arm * c, 0, rb, 0, 1, d, INV_TOL);
        expect_close_vec("theta vs A^-1 b", arm, m->theta + (size_t)arm * c, 0, theta, 0, 1, d, INV_TOL);
        if (m->a) expect_close_vec("A", arm, m->a + (size_t)arm * c * c, (size_t)c, ra, D, d, d, INV_TOL);
    }
    free(inv);
}

/* Encodes ctx into a D-entry vector (zero beyond the model's dimension). */
static int encode_full(const struct lin_model *m, const json_t *ctx, double *x) {
    memset(x, 0, sizeof *x * D);
    return lin_encode(m, ctx, x);
}

static const char *colors[] = {"red", "green", "blue", "amber", "violet"};

/* A context mixing numbers (a real, a wide real, an integer), a string and a boolean; one in
 * ten is NULL (intercept only) and one in five has no colour. */
static json_t *random_ctx(rng_t *r) {
    json_t *c;
    if (rng_below(r, 10) == 0) return NULL;
    c = json_object();
    json_object_set_new(c, "x1", json_real(1.0 + 3.0 * sample_normal(r)));
    json_object_set_new(c, "x2", json_real(100.0 * rng_uniform(r)));
    json_object_set_new(c, "x3", json_integer((json_int_t)rng_below(r, 7)));
    if (rng_below(r, 5)) json_object_set_new(c, "color", json_string(colors[rng_below(r, 5)]));
    json_object_set_new(c, "vip", json_boolean(rng_below(r, 2)));
    return c;
}

/* ---- Sherman–Morrison and the discounted path ------------------------------------------- */

static void test_sherman_morrison_matches_direct_inverse(void **state) {
    (void)state;
    enum { K = 3, N = 400 };
    struct lin_model *m = lin_new(K, 1.0);
    struct ref r = ref_new(K);
    rng_t rng;
    double x[D], rewards[N];
    uint64_t per_arm[K] = {0};
    assert_non_null(m);
    assert_null(m->a);                    /* no discount: A itself is not kept */
    rng_seed(&rng, 2025);
    for (int i = 0; i < N; i++) {
        int arm = (int)rng_below(&rng, K);
        json_t *ctx = random_ctx(&rng);
        double reward = rewards[i] = 0.5 + 0.3 * sample_normal(&rng);
        lin_update(m, arm, reward, ctx);
        /* Statistics were updated before lin_update encoded: encoding now gives its x. */
        encode_full(m, ctx, x);
        ref_add(&r, arm, 1.0, x, reward);
        per_arm[arm]++;
        json_decref(ctx);
    }
    /* intercept + x1 + x2 + x3 + vip + five colours */
    assert_int_equal(m->d, 10);
    assert_int_equal(m->dropped, 0);
    for (int k = 0; k < K; k++) assert_int_equal(m->arm_updates[k], per_arm[k]);
    check_against_ref(m, &r);

    /* Predictions: μ = θ·x and sd = σ̂·√(xᵀA⁻¹x), σ̂ the deviation of all rewards seen. */
    double *inv = malloc(sizeof *inv * D * D), mean = 0, ss = 0, sigma;
    assert_non_null(inv);
    for (int i = 0; i < N; i++) mean += rewards[i] / N;
    for (int i = 0; i < N; i++) ss += (rewards[i] - mean) * (rewards[i] - mean);
    sigma = sqrt(ss / (N - 1));
    for (int t = 0; t < 20; t++) {
        json_t *ctx = random_ctx(&rng);
        double mu[K], sd[K];
        encode_full(m, ctx, x);
        lin_predict(m, x, mu, sd);
        for (int k = 0; k < K; k++) {
            const double *rb = r.b + (size_t)k * D;
            double want_mu = 0, q = 0, scale = 0;
            gauss_jordan_inverse(r.a + (size_t)k * D * D, inv, m->d);
            for (int i = 0; i < m->d; i++) {
                double th = 0, s = 0;
                for (int j = 0; j < m->d; j++) th += inv[(size_t)i * D + j] * rb[j], s += inv[(size_t)i * D + j] * x[j];
                want_mu += th * x[i];
                scale += fabs(th * x[i]);
                q += x[i] * s;
            }
            expect_near("predicted mean", mu[k], want_mu, INV_TOL * scale);
            expect_near("predicted sd", sd[k], sigma * sqrt(q), INV_TOL * sigma * sqrt(q));
        }
        json_decref(ctx);
    }
    free(inv);
    ref_free(&r);
    lin_free(m);
}

static void test_discounted_model_matches_closed_form(void **state) {
    (void)state;
    enum { K = 3, N = 300 };
    const double g = 0.9;
    struct lin_model *m = lin_new(K, g);
    struct ref r = ref_new(K);
    rng_t rng;
    double *xs = calloc((size_t)N * D, sizeof *xs), rewards[N];
    int arms[N], n_arm[K] = {0}, seen[K] = {0};
    assert_non_null(m);
    assert_non_null(xs);
    assert_non_null(m->a);
    assert_true(m->discount == g);
    rng_seed(&rng, 77);
    for (int i = 0; i < N; i++) {
        json_t *ctx = random_ctx(&rng);
        arms[i] = (int)rng_below(&rng, K);
        rewards[i] = 0.5 + 0.3 * sample_normal(&rng);
        lin_update(m, arms[i], rewards[i], ctx);
        encode_full(m, ctx, xs + (size_t)i * D);
        n_arm[arms[i]]++;
        json_decref(ctx);
    }
    /* γ^n·λ + (1−γ)λ·Σγ^j = λ: the prior part stays λI, the data part decays per arm update. */
    for (int i = 0; i < N; i++) {
        int a = arms[i];
        seen[a]++;
        ref_add(&r, a, pow(g, (double)(n_arm[a] - seen[a])), xs + (size_t)i * D, rewards[i]);
    }
    check_against_ref(m, &r);
    ref_free(&r);
    free(xs);
    lin_free(m);

    /* Out-of-range discounts mean "none". */
    m = lin_new(2, 1.5);
    assert_non_null(m);
    assert_true(m->discount == 1.0);
    assert_null(m->a);
    lin_free(m);
}

/* ---- the encoder ------------------------------------------------------------------------- */

static const struct lin_feature *feature(const struct lin_model *m, const char *name) {
    for (int i = 0; i < m->nfeat; i++)
        if (!strcmp(m->feat[i].name, name)) return &m->feat[i];
    return NULL;
}

static const struct lin_value *value(const struct lin_feature *f, const char *text) {
    for (int i = 0; f && i < f->nvalues; i++)
        if (!strcmp(f->values[i].text, text)) return &f->values[i];
    return NULL;
}

/* Encodes a context written as JSON text; returns the number of non-zero slots. */
static int encode_text(const struct lin_model *m, const char *text, double *x) {
    json_t *ctx = J(text);
    int nz = 0;
    encode_full(m, ctx, x);
    json_decref(ctx);
    for (int i = 0; i < m->d; i++) nz += x[i] != 0.0;
    return nz;
}

static void update_text(struct lin_model *m, int arm, double reward, const char *text) {
    json_t *ctx = J(text);
    lin_update(m, arm, reward, ctx);
    json_decref(ctx);
}

static void test_encoder_intercept_booleans_strings_and_unknown_features(void **state) {
    (void)state;
    struct lin_model *m = lin_new(2, 1.0);
    double x[D], y[D];
    assert_non_null(m);

    /* Nothing learned: only the intercept, whatever the context. */
    assert_int_equal(encode_text(m, "{\"vip\": true, \"color\": \"red\"}", x), 1);
    assert_true(x[0] == 1.0);
    assert_int_equal(m->d, 1);
    assert_int_equal(m->nfeat, 0);   /* decisions never grow the encoder */

    update_text(m, 0, 1.0, "{\"vip\": true, \"color\": \"red\"}");
    update_text(m, 1, 0.25, "{\"vip\": false, \"color\": \"blue\"}");
    update_text(m, 0, 0.5, "{\"color\": \"red\"}");
    assert_int_equal(m->d, 4);   /* intercept, vip, red, blue */
    const struct lin_feature *vip = feature(m, "vip"), *color = feature(m, "color");
    assert_non_null(vip);
    assert_non_null(color);
    assert_int_equal(vip->type, LIN_BOOL);
    assert_int_equal(color->type, LIN_STRING);
    assert_int_equal(color->slot, -1);   /* no overflow slot below the cap */
    int red = value(color, "red")->slot, blue = value(color, "blue")->slot;
    assert_true(red > 0 && blue > 0 && red != blue && red != vip->slot && blue != vip->slot);

    assert_int_equal(encode_text(m, "{\"vip\": true, \"color\": \"red\"}", x), 3);
    assert_true(x[0] == 1.0 && x[vip->slot] == 1.0 && x[red] == 1.0 && x[blue] == 0.0);
    assert_int_equal(encode_text(m, "{\"vip\": false, \"color\": \"blue\"}", x), 2);
    assert_true(x[0] == 1.0 && x[vip->slot] == 0.0 && x[blue] == 1.0);
    /* An unseen value of a feature without an overflow slot encodes to nothing. */
    assert_int_equal(encode_text(m, "{\"color\": \"green\"}", x), 1);
    /* Unknown features are ignored, and add nothing to what known ones encode. */
    assert_int_equal(encode_text(m, "{\"size\": 3, \"shape\": \"round\", \"new\": true}", x), 1);
    assert_true(x[0] == 1.0);
    encode_text(m, "{\"color\": \"red\", \"size\": 3, \"vip\": true}", x);
    encode_text(m, "{\"vip\": true, \"color\": \"red\"}", y);
    assert_memory_equal(x, y, sizeof x);
    /* NULL and non-objects: intercept only. */
    assert_int_equal(lin_encode(m, NULL, x), 4);
    assert_true(x[0] == 1.0 && x[1] == 0.0 && x[2] == 0.0 && x[3] == 0.0);
    assert_int_equal(encode_text(m, "[1, 2]", x), 1);
    assert_int_equal(m->d, 4);
    assert_int_equal(m->nfeat, 2);

    /* Per-value reward statistics, per arm. */
    const struct lin_value *vr = value(color, "red"), *vb = value(color, "blue");
    assert_int_equal(vr->arms[0].n, 2);
    assert_true(vr->arms[0].sum == 1.5 && vr->arms[0].sumsq == 1.25);
    assert_int_equal(vr->arms[1].n, 0);
    assert_int_equal(vb->arms[1].n, 1);
    assert_true(vb->arms[1].sum == 0.25);
    assert_int_equal(value(vip, "true")->arms[0].n, 1);
    assert_int_equal(value(vip, "false")->arms[1].n, 1);
    lin_free(m);
}

static void test_encoder_values_beyond_the_cap_share_the_overflow_slot(void **state) {
    (void)state;
    enum { NV = LIN_MAX_VALUES + 8 };
    struct lin_model *m = lin_new(1, 1.0);
    double x[D];
    char buf[64];
    int used[D] = {0};
    assert_non_null(m);
    for (int v = 0; v < NV; v++) {
        snprintf(buf, sizeof buf, "{\"city\": \"c%d\"}", v);
        update_text(m, 0, 1.0, buf);
    }
    const struct lin_feature *f = feature(m, "city");
    assert_non_null(f);
    assert_int_equal(m->d, 1 + LIN_MAX_VALUES + 1);
    assert_int_equal(f->nvalues, LIN_MAX_VALUES + 1);
    assert_true(f->slot > 0);
    const struct lin_value *other = value(f, "(other)");
    assert_non_null(other);
    assert_int_equal(other->slot, f->slot);
    assert_int_equal(other->arms[0].n, NV - LIN_MAX_VALUES);
    assert_int_equal(m->dropped, 0);
    used[0] = 1;
    for (int v = 0; v < NV; v++) {
        snprintf(buf, sizeof buf, "{\"city\": \"c%d\"}", v);
        assert_int_equal(encode_text(m, buf, x), 2);
        int s = -1;
        for (int i = 1; i < m->d; i++)
            if (x[i] != 0.0) s = i;
        assert_true(x[s] == 1.0);
        if (v < LIN_MAX_VALUES) {   /* each of the first values has a slot of its own */
            assert_int_not_equal(s, f->slot);
            assert_int_equal(used[s], 0);
            used[s] = 1;
        } else {                    /* later values share the overflow slot */
            assert_int_equal(s, f->slot);
        }
    }
    /* An unseen value at decision time takes the overflow slot, without growing anything. */
    assert_int_equal(encode_text(m, "{\"city\": \"nowhere\"}", x), 2);
    assert_true(x[f->slot] == 1.0);
    assert_int_equal(f->nvalues, LIN_MAX_VALUES + 1);
    assert_int_equal(m->d, 1 + LIN_MAX_VALUES + 1);
    lin_free(m);
}

/* The slot allocation the header promises, simulated independently: one feature a context. */
struct sim_feature {
    int nvals, overflow;
    unsigned char has[64];   /* values "v0".."v63" that own a slot */
};

/* A client's value that happens to read "(other)" is an ordinary value: it gets its own slot
 * and never becomes the overflow slot unseen values would be encoded into. */
static void test_a_value_named_like_the_overflow_slot_is_an_ordinary_value(void **state) {
    (void)state;
    struct lin_model *m = lin_new(2, 1.0);
    double x[LIN_MAX_DIM];
    assert_non_null(m);
    update_text(m, 0, 1.0, "{\"c\": \"red\"}");
    update_text(m, 1, 0.0, "{\"c\": \"(other)\"}");
    const struct lin_feature *f = feature(m, "c");
    assert_non_null(f);
    assert_int_equal(f->nvalues, 2);
    assert_int_equal(f->slot, -1);   /* no overflow slot yet: the cap was not reached */
    assert_false(value(f, "(other)")->overflow);
    assert_int_equal(encode_text(m, "{\"c\": \"blue\"}", x), 1);   /* intercept only */
    assert_int_equal(encode_text(m, "{\"c\": \"(other)\"}", x), 2);
    lin_free(m);
}

/* Feature names are capped like slots, and names refused for that count as dropped too. */
static void test_features_beyond_the_name_cap_count_as_dropped(void **state) {
    (void)state;
    struct lin_model *m = lin_new(2, 1.0);
    char text[64];
    assert_non_null(m);
    for (int i = 0; i < 200; i++) {   /* 200 one-value string features: 127 get a slot */
        snprintf(text, sizeof text, "{\"f%d\": \"v\"}", i);
        update_text(m, i % 2, 1.0, text);
    }
    assert_int_equal(m->d, LIN_MAX_DIM);
    assert_int_equal(m->dropped, 200 - (LIN_MAX_DIM - 1));
    lin_free(m);
}

static void test_encoder_dimension_is_capped_and_drops_are_counted(void **state) {
    (void)state;
    enum { NF = 64, NV = 40 };
    struct lin_model *m = lin_new(2, 1.0);
    static struct sim_feature sim[NF];
    int used = 1;
    uint64_t dropped = 0;
    double x[D];
    char buf[64];
    assert_non_null(m);
    memset(sim, 0, sizeof sim);
    for (int v = 0; v < NV; v++)
        for (int f = 0; f < NF; f++) {
            struct sim_feature *s = &sim[f];
            snprintf(buf, sizeof buf, "{\"f%d\": \"v%d\"}", f, v);
            update_text(m, (f + v) % 2, 1.0, buf);
            assert_true(m->d <= LIN_MAX_DIM);
            if (s->has[v]) continue;
            if (s->nvals < LIN_MAX_VALUES) {
                if (used < LIN_MAX_DIM) used++, s->has[v] = 1, s->nvals++;
                else dropped++;
            } else if (!s->overflow) {
                if (used < LIN_MAX_DIM) used++, s->overflow = 1;
                else dropped++;
            }
        }
    assert_int_equal(used, LIN_MAX_DIM);
    assert_int_equal(m->d, LIN_MAX_DIM);
    assert_int_equal(m->dropped, dropped);
    assert_true(dropped > 0);
    /* At decision time: a value with a slot encodes; a dropped one (no overflow) does not. */
    assert_int_equal(encode_text(m, "{\"f0\": \"v1\"}", x), 2);
    assert_int_equal(encode_text(m, "{\"f63\": \"v1\"}", x), sim[63].has[1] ? 2 : 1);
    assert_int_equal(encode_text(m, "{\"f0\": \"v7\"}", x), 1);
    lin_free(m);

    /* 64 string features in every context, 40 values each: the dimension stops at the cap and
     * the full-size model still has the exact inverse. */
    struct ref r = ref_new(2);
    rng_t rng;
    m = lin_new(2, 1.0);
    assert_non_null(m);
    rng_seed(&rng, 64);
    for (int i = 0; i < 60; i++) {
        json_t *ctx = json_object();
        int arm = (int)rng_below(&rng, 2);
        double reward = rng_uniform(&rng);
        for (int f = 0; f < NF; f++) {
            char key[16], val[16];
            snprintf(key, sizeof key, "g%d", f);
            snprintf(val, sizeof val, "w%u", rng_below(&rng, NV));
            json_object_set_new(ctx, key, json_string(val));
        }
        lin_update(m, arm, reward, ctx);
        assert_true(m->d <= LIN_MAX_DIM);
        assert_true(encode_full(m, ctx, x) <= LIN_MAX_DIM);
        ref_add(&r, arm, 1.0, x, reward);
        json_decref(ctx);
    }
    assert_int_equal(m->d, LIN_MAX_DIM);
    assert_true(m->dropped > 0);
    check_against_ref(m, &r);
    ref_free(&r);
    lin_free(m);

    /* Many arms: the dimension also stops where arms × d² would pass LIN_MAX_CELLS. */
    enum { KA = SCOUT_MAX_VARIANTS };
    int dmax = LIN_MAX_DIM;
    while ((long)KA * dmax * dmax > (long)LIN_MAX_CELLS) dmax--;
    assert_true(dmax < LIN_MAX_DIM);
    m = lin_new(KA, 1.0);
    assert_non_null(m);
    for (int f = 0; f < 2 * LIN_MAX_DIM / LIN_MAX_VALUES; f++)
        for (int v = 0; v < LIN_MAX_VALUES; v++) {
            snprintf(buf, sizeof buf, "{\"h%d\": \"v%d\"}", f, v);
            update_text(m, (f + v) % KA, 1.0, buf);
            assert_true(m->d <= dmax);
        }
    assert_int_equal(m->d, dmax);
    assert_true(m->dropped > 0);
    lin_free(m);
}

static void test_encoder_standardises_numbers_and_clips(void **state) {
    (void)state;
    enum { N = 20000 };
    struct lin_model *m = lin_new(1, 1.0);
    static double v[N];
    rng_t rng;
    double x[D], mean = 0, ss = 0, sd, z;
    char buf[64];
    assert_non_null(m);
    rng_seed(&rng, 10);
    for (int i = 0; i < N; i++) {
        v[i] = 10.0 + 2.0 * sample_normal(&rng);
        snprintf(buf, sizeof buf, "{\"age\": %.17g}", v[i]);
        update_text(m, 0, 0.0, buf);
        mean += v[i];
    }
    mean /= N;
    for (int i = 0; i < N; i++) ss += (v[i] - mean) * (v[i] - mean);
    sd = sqrt(ss / (N - 1));
    const struct lin_feature *f = feature(m, "age");
    assert_non_null(f);
    assert_int_equal(f->type, LIN_NUMBER);
    assert_int_equal(m->d, 2);

    encode_text(m, "{\"age\": 12.0}", x);
    z = x[f->slot];
    expect_near("standardised 12 vs this file's mean and sd", z, (12.0 - mean) / sd, 1e-9);
    /* The sample mean and sd of N draws: z's standard error is about √(1/N + 1/(2N)) ≈ 0.009. */
    expect_near("standardised 12 from N(10, 2^2)", z, 1.0, K_SE * sqrt(1.5 / N));
    encode_text(m, "{\"age\": 12}", x);   /* an integer encodes like the same real */
    assert_true(x[f->slot] == z);
    encode_text(m, "{\"age\": 7.5}", x);
    expect_near("standardised 7.5", x[f->slot], (7.5 - mean) / sd, 1e-9);
    encode_text(m, "{\"age\": 1000}", x);
    assert_true(x[f->slot] == 5.0);
    encode_text(m, "{\"age\": -1000}", x);
    assert_true(x[f->slot] == -5.0);
    encode_text(m, "{\"age\": \"old\"}", x);   /* not a number: ignored */
    assert_true(x[f->slot] == 0.0 && x[0] == 1.0);
    lin_free(m);
}

/* ---- the probability of being the largest ------------------------------------------------ */

static double sum_of(const double *p, int k) {
    double s = 0;
    for (int i = 0; i < k; i++) s += p[i];
    return s;
}

static void test_max_probabilities_two_arms_match_closed_form(void **state) {
    (void)state;
    /* Deviations within a factor of two of each other. */
    const double cases[][4] = {
        {0.0, 0.0, 1.0, 1.0},   {0.3, 0.1, 0.2, 0.15}, {1.0, 0.0, 1.0, 2.0},  {-2.0, 1.5, 0.7, 1.1},
        {5.0, 5.3, 0.05, 0.08}, {0.0, 3.0, 1.0, 1.0},  {100.0, 99.0, 1.0, 0.5}, {0.2, 0.2, 0.3, 0.6},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double mu[2] = {cases[c][0], cases[c][1]}, sd[2] = {cases[c][2], cases[c][3]}, p[2];
        double want = phi_cdf((mu[0] - mu[1]) / sqrt(sd[0] * sd[0] + sd[1] * sd[1]));
        lin_max_probabilities(mu, sd, 2, NULL, p);
        expect_near("P(arm 0 largest) vs Phi", p[0], want, 1e-6);
        expect_near("P(arm 1 largest) vs Phi", p[1], 1.0 - want, 1e-6);
        expect_near("sum", sum_of(p, 2), 1.0, 1e-12);
    }
}

/* The common case in a live test: an arm with much evidence (small deviation) next to one with
 * little (large deviation), e.g. 400 rewards against 4 gives a ratio of about 10. */
static void test_max_probabilities_two_arms_match_closed_form_when_deviations_differ(void **state) {
    (void)state;
    const double cases[][4] = {
        {0.0, 0.05, 1.0, 0.2},  {0.0, 0.5, 1.0, 0.1},  {0.48, 0.22, 0.025, 0.236},
        {0.0, 2.0, 1.0, 0.05},  {0.0, 0.3, 1.0, 0.01}, {0.0, 1.0, 1.0, 0.0},
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double mu[2] = {cases[c][0], cases[c][1]}, sd[2] = {cases[c][2], cases[c][3]}, p[2];
        double want = phi_cdf((mu[0] - mu[1]) / sqrt(sd[0] * sd[0] + sd[1] * sd[1]));
        lin_max_probabilities(mu, sd, 2, NULL, p);
        if (!(fabs(p[0] - want) <= 1e-6)) {
            print_error("mu (%g, %g) sd (%g, %g): P(arm 0 largest) %.9f, Phi gives %.9f (error %.2e, %.1f%%)\n",
                        mu[0], mu[1], sd[0], sd[1], p[0], want, p[0] - want, 100.0 * (p[0] - want) / want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_max_probabilities_four_arms_match_monte_carlo(void **state) {
    (void)state;
    enum { K = 4, DRAWS = 200000 };
    const double mu[K] = {0.10, 0.30, 0.25, 0.20}, sd[K] = {0.20, 0.15, 0.25, 0.30};
    double p[K];
    long count[K] = {0};
    rng_t rng;
    lin_max_probabilities(mu, sd, K, NULL, p);
    expect_near("sum", sum_of(p, K), 1.0, 1e-12);
    rng_seed(&rng, 4);
    for (int d = 0; d < DRAWS; d++) {
        int best = 0;
        double bv = -INFINITY;
        for (int i = 0; i < K; i++) {
            double v = mu[i] + sd[i] * sample_normal(&rng);
            if (v > bv) bv = v, best = i;
        }
        count[best]++;
    }
    /* 0.005 is at least 5 standard errors of a 200k-draw frequency (≤ 0.0011). */
    for (int i = 0; i < K; i++) expect_near("P(largest) vs Monte Carlo", p[i], (double)count[i] / DRAWS, 0.005);
    for (int i = 0; i < K; i++) assert_true(p[i] > 0.05);   /* every arm has a real share here */
}

static void test_max_probabilities_identical_arms_split_evenly(void **state) {
    (void)state;
    const int ks[] = {2, 3, 5, 16};
    double mu[16], sd[16], p[16];
    for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
        int k = ks[c];
        for (int i = 0; i < k; i++) mu[i] = 0.4, sd[i] = 0.1;
        lin_max_probabilities(mu, sd, k, NULL, p);
        for (int i = 0; i < k; i++) expect_near("identical arms", p[i], 1.0 / k, 1e-9);
        expect_near("sum", sum_of(p, k), 1.0, 1e-12);
    }
    /* Two identical arms and a worse third: the first two still split evenly. */
    mu[0] = mu[1] = 1.0, mu[2] = 0.8;
    sd[0] = sd[1] = sd[2] = 0.2;
    lin_max_probabilities(mu, sd, 3, NULL, p);
    expect_near("tied pair", p[0], p[1], 1e-12);
    assert_true(p[2] < p[0]);
}

static void test_max_probabilities_monte_carlo_path_above_sixteen_arms(void **state) {
    (void)state;
    enum { K = 20, CALLS = 200, PER_CALL = 1000 };   /* PER_CALL: linear.c's Monte Carlo draws */
    double mu[K], sd[K], p[K], avg[K] = {0};
    rng_t rng;
    for (int i = 0; i < K; i++) mu[i] = 1.0, sd[i] = 0.5;
    rng_seed(&rng, 20);
    for (int c = 0; c < CALLS; c++) {
        lin_max_probabilities(mu, sd, K, &rng, p);
        expect_near("sum (Monte Carlo path)", sum_of(p, K), 1.0, 1e-12);
        for (int i = 0; i < K; i++) {
            assert_true(p[i] >= 0.0);
            avg[i] += p[i] / CALLS;
        }
    }
    /* Averaged over CALLS × PER_CALL draws: each within K_SE standard errors of 1/K. */
    for (int i = 0; i < K; i++)
        expect_near("identical arms (Monte Carlo)", avg[i], 1.0 / K,
                    K_SE * sqrt((1.0 / K) * (1.0 - 1.0 / K) / (CALLS * PER_CALL)));
    /* Same generator state, same estimate. */
    rng_t a, b;
    double pa[K], pb[K];
    rng_seed(&a, 5);
    rng_seed(&b, 5);
    mu[7] = 1.2;
    lin_max_probabilities(mu, sd, K, &a, pa);
    lin_max_probabilities(mu, sd, K, &b, pb);
    assert_memory_equal(pa, pb, sizeof pa);
    /* A clearly best arm takes nearly everything, yet no arm's estimate is exactly 0: a logged
     * propensity of 0 for an arm the policy can still pick would break off-policy evaluation. */
    mu[7] = 10.0;
    lin_max_probabilities(mu, sd, K, &a, pa);
    assert_true(pa[7] > 0.98);
    for (int i = 0; i < K; i++) assert_true(pa[i] > 0.0);
}

/* ---- the contextual policies -------------------------------------------------------------- */

/* Trains a 3-arm contextual policy: arm 0 is best for red, arm 1 for blue, arm 2 in between,
 * with a numeric feature that raises every arm's reward a little. */
static void train_colors(struct policy *p, int n, uint64_t seed) {
    static const char *cs[] = {"red", "blue", "green"};
    rng_t rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        const char *c = cs[rng_below(&rng, 3)];
        double x1 = sample_normal(&rng);
        int arm = (int)rng_below(&rng, (uint32_t)p->narms);
        double base = arm == 0 ? (!strcmp(c, "red") ? 0.7 : 0.3) : arm == 1 ? (!strcmp(c, "blue") ? 0.7 : 0.3) : 0.45;
        json_t *ctx = json_pack("{s:s, s:f}", "color", c, "x1", x1);
        policy_update(p, arm, base + 0.05 * x1 + 0.2 * sample_normal(&rng), ctx);
        json_decref(ctx);
    }
}

static const char *probe_ctx[] = {
    "{\"color\": \"red\", \"x1\": 0.0}", "{\"color\": \"blue\", \"x1\": 1.5}", "{\"color\": \"green\", \"x1\": -1}",
    "{\"color\": \"purple\"}",           "{\"x1\": 3}",                        "{}",
};

static void test_linear_probabilities_sum_to_one_and_honour_the_floor(void **state) {
    (void)state;
    const enum policy_kind kinds[] = {POLICY_LINTS, POLICY_LINUCB, POLICY_AUTO};
    for (size_t kk = 0; kk < 3; kk++) {
        struct policy p;
        rng_t rng;
        double probs[3], mu[3], sd[3], raw[3], x[D];
        assert_int_equal(policy_init(&p, kinds[kk], 3, 0.1, 1.0), SCOUT_OK);
        assert_non_null(p.lin);
        p.floor = 0.05;
        train_colors(&p, 300, 100 + kk);
        rng_seed(&rng, 1);
        for (size_t c = 0; c < sizeof probe_ctx / sizeof probe_ctx[0]; c++) {
            json_t *ctx = J(probe_ctx[c]);
            policy_probabilities(&p, &rng, ctx, 0, 1000, probs);
            expect_near("sum of probabilities", sum_of(probs, 3), 1.0, 1e-12);
            for (int i = 0; i < 3; i++) assert_true(probs[i] >= 0.05 - 1e-15);
            if (kinds[kk] != POLICY_LINUCB && policy_uses_context(&p, ctx)) {
                /* Linear Thompson: the floor mixed into the probabilities of the predictions. */
                encode_full(p.lin, ctx, x);
                lin_predict(p.lin, x, mu, sd);
                lin_max_probabilities(mu, sd, 3, NULL, raw);
                for (int i = 0; i < 3; i++) expect_near("floored LinTS probability", probs[i], 0.05 + 0.85 * raw[i], 1e-12);
            }
            json_decref(ctx);
        }
        policy_free(&p);
    }
}

static void test_linucb_puts_all_other_mass_on_the_highest_upper_bound(void **state) {
    (void)state;
    struct policy p;
    rng_t rng;
    double probs[3], mu[3], sd[3], x[D];
    int winners[3] = {0};
    assert_int_equal(policy_init(&p, POLICY_LINUCB, 3, 0.1, 1.0), SCOUT_OK);
    train_colors(&p, 300, 7);
    rng_seed(&rng, 2);
    for (size_t c = 0; c < sizeof probe_ctx / sizeof probe_ctx[0]; c++) {
        json_t *ctx = J(probe_ctx[c]);
        int best = 0;
        encode_full(p.lin, ctx, x);
        lin_predict(p.lin, x, mu, sd);
        for (int i = 1; i < 3; i++)
            if (mu[i] + sd[i] > mu[best] + sd[best]) best = i;
        for (int i = 0; i < 3; i++)
            if (i != best) assert_true(mu[best] + sd[best] > mu[i] + sd[i] + 1e-9);   /* no tie */
        winners[best] = 1;
        p.floor = 0.05;
        policy_probabilities(&p, &rng, ctx, 0, 1000, probs);
        for (int i = 0; i < 3; i++) expect_near("LinUCB probability", probs[i], i == best ? 0.05 + 0.85 : 0.05, 1e-12);
        p.floor = 0;
        policy_probabilities(&p, &rng, ctx, 0, 1000, probs);
        for (int i = 0; i < 3; i++) assert_true(probs[i] == (i == best ? 1.0 : 0.0));
        for (int i = 0; i < 200; i++) assert_int_equal(policy_choose(&p, &rng, ctx, 0).arm, best);
        json_decref(ctx);
    }
    assert_true(winners[0] && winners[1]);   /* the context changes the winner */
    policy_free(&p);

    /* A well-known arm against a barely tried one, where the width of the bound decides:
     * μ + sd favours arm 0, μ + 2·sd would favour arm 1. */
    assert_int_equal(policy_init(&p, POLICY_LINUCB, 2, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < 400; i++) policy_update(&p, 0, i % 2 ? 1.0 : 0.0, NULL);
    policy_update(&p, 1, 0.0, NULL);
    policy_update(&p, 1, 0.0, NULL);
    policy_update(&p, 1, 1.0, NULL);
    lin_encode(p.lin, NULL, x);
    lin_predict(p.lin, x, mu, sd);
    assert_true(mu[0] + sd[0] > mu[1] + sd[1] + 1e-3);
    assert_true(mu[1] + 2 * sd[1] > mu[0] + 2 * sd[0] + 1e-3);
    policy_probabilities(&p, &rng, NULL, 0, 1000, probs);
    assert_true(probs[0] == 1.0 && probs[1] == 0.0);
    policy_free(&p);
}

static void test_lints_learns_which_arm_pays_for_which_context(void **state) {
    (void)state;
    struct policy p;
    rng_t rng;
    json_t *red = J("{\"color\": \"red\"}"), *blue = J("{\"color\": \"blue\"}");
    int red0 = 0, blue1 = 0;
    assert_int_equal(policy_init(&p, POLICY_LINTS, 3, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < 200; i++) {
        policy_update(&p, 0, 1.0, red);
        policy_update(&p, 0, 0.0, blue);
        policy_update(&p, 1, 0.0, red);
        policy_update(&p, 1, 1.0, blue);
        policy_update(&p, 2, 0.0, i % 2 ? red : blue);
    }
    rng_seed(&rng, 3);
    for (int i = 0; i < 1000; i++) {
        red0 += policy_choose(&p, &rng, red, 0).arm == 0;
        blue1 += policy_choose(&p, &rng, blue, 0).arm == 1;
    }
    assert_true(red0 >= 950);
    assert_true(blue1 >= 950);
    json_decref(red);
    json_decref(blue);
    policy_free(&p);
}

static void test_lints_picks_arms_as_often_as_its_probabilities_say(void **state) {
    (void)state;
    enum { K = 3, N = 40000, R = 20 };
    const int ones[K] = {10, 11, 9};   /* out of R rewards each: close arms, every one plausible */
    struct policy p;
    rng_t rng;
    json_t *ctx = J("{\"color\": \"red\", \"vip\": true}");
    double probs[K];
    long count[K] = {0};
    assert_int_equal(policy_init(&p, POLICY_LINTS, K, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < R; i++)   /* as many rewards per arm: deviations of the same order */
        for (int a = 0; a < K; a++) policy_update(&p, a, i < ones[a] ? 1.0 : 0.0, ctx);
    rng_seed(&rng, 9);
    policy_probabilities(&p, &rng, ctx, 0, 1000, probs);
    for (int i = 0; i < N; i++) count[policy_choose(&p, &rng, ctx, 0).arm]++;
    assert_true(probs[1] > probs[0] && probs[0] > probs[2]);
    for (int a = 0; a < K; a++) {
        assert_true(probs[a] > 0.1);
        expect_near("LinTS probability vs pick frequency", (double)count[a] / N, probs[a],
                    K_SE * sqrt(probs[a] * (1 - probs[a]) / N));
    }
    json_decref(ctx);
    policy_free(&p);
}

static void test_policy_uses_context(void **state) {
    (void)state;
    struct policy p;
    json_t *empty = J("{}"), *ctx = J("{\"color\": \"red\"}");
    assert_int_equal(policy_init(&p, POLICY_AUTO, 2, 0.1, 1.0), SCOUT_OK);
    assert_false(policy_uses_context(&p, NULL));
    assert_false(policy_uses_context(&p, empty));
    assert_true(policy_uses_context(&p, ctx));
    policy_free(&p);
    assert_int_equal(policy_init(&p, POLICY_LINTS, 2, 0.1, 1.0), SCOUT_OK);
    assert_true(policy_uses_context(&p, NULL));
    assert_true(policy_uses_context(&p, ctx));
    policy_free(&p);
    assert_int_equal(policy_init(&p, POLICY_LINUCB, 2, 0.1, 1.0), SCOUT_OK);
    assert_true(policy_uses_context(&p, NULL));
    policy_free(&p);
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    assert_null(p.lin);
    assert_false(policy_uses_context(&p, ctx));
    policy_free(&p);
    json_decref(empty);
    json_decref(ctx);
}

/* ---- closed forms of the non-contextual posteriors --------------------------------------- */

/* The Beta(a, b) CDF for integer a, b: I_x(a, b) = P(Binomial(a+b−1, x) ≥ a). */
static double beta_cdf_int(int a, int b, double x) {
    int n = a + b - 1;
    double s = 0;
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    for (int j = a; j <= n; j++)
        s += exp(lgamma(n + 1.0) - lgamma(j + 1.0) - lgamma(n - j + 1.0) + j * log(x) + (n - j) * log1p(-x));
    return s;
}

static void test_thompson_summary_matches_beta_posterior(void **state) {
    (void)state;
    enum { DRAWS = 100000 };
    const int succ[2] = {7, 30}, fails[2] = {13, 10};
    struct policy p;
    struct arm_summary s[2];
    rng_t rng;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < succ[a]; i++) policy_update(&p, a, 1.0, NULL);
        for (int i = 0; i < fails[a]; i++) policy_update(&p, a, 0.0, NULL);
    }
    rng_seed(&rng, 6);
    policy_summarize(&p, &rng, DRAWS, s);
    /* The empirical q-quantile of DRAWS draws has CDF value q ± K_SE·√(q(1−q)/DRAWS), plus the
     * index rounding of at most 1/DRAWS. */
    double tol = K_SE * sqrt(0.025 * 0.975 / DRAWS) + 2.0 / DRAWS;
    for (int a = 0; a < 2; a++) {
        int al = 1 + succ[a], be = 1 + fails[a];
        assert_true(s[a].mean == (1.0 + succ[a]) / (2.0 + succ[a] + fails[a]));
        assert_true(s[a].ci_low < s[a].mean && s[a].mean < s[a].ci_high);
        expect_near("Beta CDF at ci_low", beta_cdf_int(al, be, s[a].ci_low), 0.025, tol);
        expect_near("Beta CDF at ci_high", beta_cdf_int(al, be, s[a].ci_high), 0.975, tol);
    }
    policy_free(&p);
}

static void test_discounted_sums_match_closed_form(void **state) {
    (void)state;
    enum { N = 25 };
    const double g = 0.8;
    struct policy p;
    struct arm_summary s[3];
    rng_t rng;
    double r[N], w = 0, ws = 0, wss = 0, sum = 0;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 3, 0.1, g), SCOUT_OK);
    assert_true(p.discount == g);
    policy_update(&p, 1, 1.0, NULL);   /* arm 1 has weight 1 + γ before arm 0 learns */
    policy_update(&p, 1, 0.0, NULL);
    assert_true(p.arms[1].w == 1.0 + g);
    rng_seed(&rng, 25);
    for (int i = 0; i < N; i++) {
        r[i] = rng_uniform(&rng);
        policy_update(&p, 0, r[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        double f = pow(g, (double)(N - 1 - i));
        w += f;
        ws += f * r[i];
        wss += f * r[i] * r[i];
        sum += r[i];
    }
    expect_near("w", p.arms[0].w, w, 1e-12);
    expect_near("ws", p.arms[0].ws, ws, 1e-12);
    expect_near("wss", p.arms[0].wss, wss, 1e-12);
    expect_near("w of the arm that did not learn", p.arms[1].w, (1.0 + g) * pow(g, N), 1e-12);
    expect_near("ws of the arm that did not learn", p.arms[1].ws, g * pow(g, N), 1e-12);
    assert_true(p.arms[2].w == 0.0 && p.arms[2].ws == 0.0);
    assert_int_equal(p.arms[0].n, N);   /* the plain sums do not decay */
    expect_near("sum", p.arms[0].sum, sum, 1e-12);
    assert_int_equal(p.arms[1].n, 2);
    assert_true(p.arms[1].sum == 1.0);
    /* Summaries read the discounted sums. */
    rng_seed(&rng, 1);
    policy_summarize(&p, &rng, 100, s);
    expect_near("discounted posterior mean", s[0].mean, (1.0 + ws) / (2.0 + w), 1e-12);
    policy_free(&p);

    /* The contextual kinds pass the discount to their linear model. */
    assert_int_equal(policy_init(&p, POLICY_LINTS, 2, 0.1, g), SCOUT_OK);
    assert_true(p.lin->discount == g);
    policy_free(&p);

    /* Without a discount: w and ws are n and the sum, exactly. */
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, 2, 0.1, 1.0), SCOUT_OK);
    for (int i = 0; i < N; i++) policy_update(&p, 0, 3.0 * r[i], NULL);
    assert_true(p.arms[0].w == (double)N);
    assert_true(same_bits(p.arms[0].ws, p.arms[0].sum));
    assert_true(same_bits(p.arms[0].wss, p.arms[0].sumsq));
    policy_free(&p);
}

/* ---- reproducibility -------------------------------------------------------------------- */

enum { ROUNDS = 2000 };

struct run {
    int arm[ROUNDS];
    double propensity[ROUNDS];
};

/* Drives a fresh test through ROUNDS decisions and rewards with the thread generator seeded. */
static void drive(const char *definition, uint64_t seed, struct run *out) {
    static const char *cs[] = {"red", "green", "blue"};
    json_t *def = J(definition);
    struct experiment *e = NULL;
    int status = 0;
    char err[256];
    rng_t world;
    double probs[3];
    if (experiment_from_definition(def, "00000000-0000-4000-8000-00000000000a", 1.0, &e, &status, err, sizeof err) !=
        SCOUT_OK) {
        print_error("definition refused (%d): %s\n", status, err);
        fail();
    }
    rng_seed(rng_thread(), seed);
    rng_seed(&world, 1000);   /* contexts and rewards: the same world for every run */
    for (int i = 0; i < ROUNDS; i++) {
        int c = (int)rng_below(&world, 3);
        double x1 = sample_normal(&world), u = rng_uniform(&world);
        json_t *ctx = i % 10 == 9 ? NULL : json_pack("{s:s, s:f}", "color", cs[c], "x1", x1);
        struct decision d = experiment_decide(e, ctx, 0, probs);
        assert_true(d.arm >= 0 && d.arm < 3);
        assert_true(d.propensity == probs[d.arm]);
        expect_near("sum of probabilities", sum_of(probs, 3), 1.0, 1e-9);
        out->arm[i] = d.arm;
        out->propensity[i] = d.propensity;
        experiment_apply_reward(e, d.arm, u < (d.arm == c ? 0.6 : 0.3) ? 1.0 : 0.0, ctx, 1.0 + i);
        json_decref(ctx);
    }
    experiment_unref(e);
    json_decref(def);
}

static void test_seeded_experiment_runs_repeat_exactly(void **state) {
    (void)state;
    static struct run a, b, c;
    const char *defs[] = {
        "{\"name\": \"t\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}, \"policy\": \"lints\"}",
        "{\"name\": \"t\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}, \"policy\": \"linucb\"}",
        "{\"name\": \"t\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}, \"policy\": \"lints\", "
        "\"discount\": 0.95}",
    };
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
        int counts[3] = {0}, differs = 0;
        drive(defs[k], 42, &a);
        drive(defs[k], 42, &b);
        drive(defs[k], 43, &c);
        for (int i = 0; i < ROUNDS; i++) {
            assert_int_equal(a.arm[i], b.arm[i]);
            assert_true(same_bits(a.propensity[i], b.propensity[i]));
            counts[a.arm[i]]++;
            differs |= a.arm[i] != c.arm[i];
        }
        for (int i = 0; i < 3; i++) assert_true(counts[i] > 0);   /* a run with real choices */
        assert_true(differs);                                      /* and the seed matters */
    }
}

static void expect_same_predictions(const struct lin_model *x, const struct lin_model *y, int want_same) {
    double v[D], w[D], mx[4], sx[4], my[4], sy[4];
    int same = 1;
    for (size_t c = 0; c < sizeof probe_ctx / sizeof probe_ctx[0]; c++) {
        json_t *ctx = J(probe_ctx[c]);
        same &= encode_full(x, ctx, v) == encode_full(y, ctx, w);
        same &= memcmp(v, w, sizeof v) == 0;
        lin_predict(x, v, mx, sx);
        lin_predict(y, w, my, sy);
        for (int a = 0; a < x->narms; a++) same &= same_bits(mx[a], my[a]) && same_bits(sx[a], sy[a]);
        json_decref(ctx);
    }
    assert_int_equal(same, want_same);
}

static void test_clone_predicts_bit_for_bit_and_is_a_deep_copy(void **state) {
    (void)state;
    const double discounts[] = {1.0, 0.9};
    for (int k = 0; k < 2; k++) {
        struct policy p;
        assert_int_equal(policy_init(&p, POLICY_LINTS, 4, 0.1, discounts[k]), SCOUT_OK);
        train_colors(&p, 200, 11);
        struct lin_model *orig = p.lin, *copy = lin_clone(orig), *again;
        assert_non_null(copy);
        assert_ptr_not_equal(copy->ainv, orig->ainv);
        expect_same_predictions(orig, copy, 1);
        /* More rewards to the copy (new features and values too) leave the original alone. */
        again = lin_clone(orig);
        assert_non_null(again);
        p.lin = copy;
        train_colors(&p, 50, 12);
        update_text(copy, 1, 2.0, "{\"color\": \"purple\", \"size\": 3, \"vip\": true}");
        expect_same_predictions(orig, again, 1);
        expect_same_predictions(orig, copy, 0);
        /* The same rewards to the original make them identical again. */
        p.lin = orig;
        train_colors(&p, 50, 12);
        update_text(orig, 1, 2.0, "{\"color\": \"purple\", \"size\": 3, \"vip\": true}");
        expect_same_predictions(orig, copy, 1);
        assert_int_equal(orig->d, copy->d);
        assert_int_equal(orig->nfeat, copy->nfeat);
        lin_free(copy);
        lin_free(again);
        policy_free(&p);
    }
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sherman_morrison_matches_direct_inverse),
        cmocka_unit_test(test_discounted_model_matches_closed_form),
        cmocka_unit_test(test_encoder_intercept_booleans_strings_and_unknown_features),
        cmocka_unit_test(test_encoder_values_beyond_the_cap_share_the_overflow_slot),
        cmocka_unit_test(test_encoder_dimension_is_capped_and_drops_are_counted),
        cmocka_unit_test(test_encoder_standardises_numbers_and_clips),
        cmocka_unit_test(test_max_probabilities_two_arms_match_closed_form),
        cmocka_unit_test(test_max_probabilities_two_arms_match_closed_form_when_deviations_differ),
        cmocka_unit_test(test_max_probabilities_four_arms_match_monte_carlo),
        cmocka_unit_test(test_max_probabilities_identical_arms_split_evenly),
        cmocka_unit_test(test_max_probabilities_monte_carlo_path_above_sixteen_arms),
        cmocka_unit_test(test_a_value_named_like_the_overflow_slot_is_an_ordinary_value),
        cmocka_unit_test(test_features_beyond_the_name_cap_count_as_dropped),
        cmocka_unit_test(test_linear_probabilities_sum_to_one_and_honour_the_floor),
        cmocka_unit_test(test_linucb_puts_all_other_mass_on_the_highest_upper_bound),
        cmocka_unit_test(test_lints_learns_which_arm_pays_for_which_context),
        cmocka_unit_test(test_lints_picks_arms_as_often_as_its_probabilities_say),
        cmocka_unit_test(test_policy_uses_context),
        cmocka_unit_test(test_thompson_summary_matches_beta_posterior),
        cmocka_unit_test(test_discounted_sums_match_closed_form),
        cmocka_unit_test(test_seeded_experiment_runs_repeat_exactly),
        cmocka_unit_test(test_clone_predicts_bit_for_bit_and_is_a_deep_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
