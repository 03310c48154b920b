/* test_snapshot.c — unit tests for bandit/snapshot, the codec of a test's learned state.
 *
 * What must hold:
 *   - for every policy kind, with and without discount, a decoded snapshot equals the encoded
 *     state bit for bit: per-arm statistics, counters, range, version and the whole linear
 *     model (matrices in their cap×cap layout, features, values with the overflow slot, the
 *     reward statistics), and last_update_at;
 *   - folding further events (new features that grow the allocated dimension included) into
 *     the decoded state gives exactly what folding them into the original gives, and both
 *     decide alike (same probabilities, same picks with the same seed);
 *   - the largest models (dimension full with dropped values; 256 arms) round-trip;
 *   - refused, with p untouched: every truncation, every single changed byte, a snapshot of
 *     another shape (kind, number of variants, discount), a wrong magic, a newer format,
 *     trailing bytes and impossible model fields even under a valid checksum.
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
#include "bandit/policy.h"
#include "bandit/rng.h"
#include "bandit/snapshot.h"
#include "util/common.h"

#define ARMS 3
#define WHEN 1723456789.125      /* a last_update_at */

static const enum policy_kind all_kinds[] = {POLICY_THOMPSON, POLICY_EGREEDY, POLICY_UCB1,
                                             POLICY_AUTO,     POLICY_LINUCB,  POLICY_LINTS};
#define NKINDS (int)(sizeof all_kinds / sizeof all_kinds[0])
static const double discounts[] = {1.0, 0.9};

static const char *colors[] = {"red", "green", "blue", "amber", "violet"};

/* ---- events ------------------------------------------------------------------------------- */

/* A context with a number, a boolean, a 5-valued string, a 40-valued string (more than
 * LIN_MAX_VALUES: the overflow slot) and a string feature that sometimes gets a number; one in
 * ten is NULL. `extra` adds a 30-valued string and a number that the first events never had,
 * which grows the dimension past the allocated one. */
static json_t *event_ctx(rng_t *r, int extra) {
    json_t *c;
    char buf[32];
    if (rng_below(r, 10) == 0) return NULL;
    c = json_object();
    json_object_set_new(c, "age", json_real(18.0 + 60.0 * rng_uniform(r)));
    json_object_set_new(c, "mobile", json_boolean(rng_below(r, 2)));
    json_object_set_new(c, "color", json_string(colors[rng_below(r, 5)]));
    snprintf(buf, sizeof buf, "city%u", (unsigned)rng_below(r, 40));
    json_object_set_new(c, "city", json_string(buf));
    if (rng_below(r, 3) == 0) json_object_set_new(c, "zip", json_integer(10000 + (json_int_t)rng_below(r, 3)));
    else json_object_set_new(c, "zip", json_string("none"));
    if (extra) {
        snprintf(buf, sizeof buf, "dev%u", (unsigned)rng_below(r, 30));
        json_object_set_new(c, "device", json_string(buf));
        json_object_set_new(c, "score", json_integer((json_int_t)rng_below(r, 1000)));
    }
    return c;
}

/* n reward events from seed: Bernoulli rewards, or with `amounts` one in four an amount
 * outside [0,1] (the Gaussian model). */
static void feed(struct policy *p, uint64_t seed, int n, int amounts, int extra) {
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        json_t *ctx = event_ctx(&r, extra);
        int arm = (int)rng_below(&r, (uint32_t)p->narms);
        double reward = rng_uniform(&r) < 0.3 + 0.2 * arm ? 1.0 : 0.0;
        if (amounts && rng_below(&r, 4) == 0) reward = 40.0 * rng_uniform(&r) - 5.0;
        policy_update(p, arm, reward, ctx);
        json_decref(ctx);
    }
}

/* ---- comparing states --------------------------------------------------------------------- */

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

#define SAME(what, cond)                                      \
    do {                                                      \
        if (!(cond)) {                                        \
            print_error("states differ: %s\n", (what));      \
            fail();                                           \
        }                                                     \
    } while (0)

static void expect_same_model(const struct lin_model *x, const struct lin_model *y) {
    size_t k, c;
    SAME("model presence", (x == NULL) == (y == NULL));
    if (!x) return;
    k = (size_t)x->narms;
    c = (size_t)x->cap;
    SAME("model narms", x->narms == y->narms);
    SAME("model d", x->d == y->d);
    SAME("model cap", x->cap == y->cap);
    SAME("lambda", same_bits(x->lambda, y->lambda));
    SAME("model discount", same_bits(x->discount, y->discount));
    SAME("A inverse", !memcmp(x->ainv, y->ainv, sizeof *x->ainv * k * c * c));
    SAME("A presence", (x->a == NULL) == (y->a == NULL));
    if (x->a) SAME("A", !memcmp(x->a, y->a, sizeof *x->a * k * c * c));
    SAME("b", !memcmp(x->b, y->b, sizeof *x->b * k * c));
    SAME("theta", !memcmp(x->theta, y->theta, sizeof *x->theta * k * c));
    SAME("arm_updates", !memcmp(x->arm_updates, y->arm_updates, sizeof *x->arm_updates * k));
    SAME("nfeat", x->nfeat == y->nfeat);
    for (int i = 0; i < x->nfeat; i++) {
        const struct lin_feature *f = &x->feat[i], *g = &y->feat[i];
        SAME("feature name", !strcmp(f->name, g->name));
        SAME("feature type", f->type == g->type);
        SAME("feature slot", f->slot == g->slot);
        SAME("feature n", same_bits(f->n, g->n));
        SAME("feature mean", same_bits(f->mean, g->mean));
        SAME("feature m2", same_bits(f->m2, g->m2));
        SAME("nvalues", f->nvalues == g->nvalues);
        for (int v = 0; v < f->nvalues; v++) {
            SAME("value text", !strcmp(f->values[v].text, g->values[v].text));
            SAME("value slot", f->values[v].slot == g->values[v].slot);
            SAME("value overflow", f->values[v].overflow == g->values[v].overflow);
            SAME("value stats", !memcmp(f->values[v].arms, g->values[v].arms, sizeof *f->values[v].arms * k));
        }
    }
    SAME("dropped", x->dropped == y->dropped);
    SAME("rn", same_bits(x->rn, y->rn));
    SAME("rmean", same_bits(x->rmean, y->rmean));
    SAME("rm2", same_bits(x->rm2, y->rm2));
}

static void expect_same_policy(const struct policy *x, const struct policy *y) {
    SAME("kind", x->kind == y->kind);
    SAME("narms", x->narms == y->narms);
    SAME("epsilon", same_bits(x->epsilon, y->epsilon));
    SAME("discount", same_bits(x->discount, y->discount));
    SAME("arms", !memcmp(x->arms, y->arms, sizeof *x->arms * (size_t)x->narms));
    SAME("updates", x->updates == y->updates);
    SAME("rmin", same_bits(x->rmin, y->rmin));
    SAME("rmax", same_bits(x->rmax, y->rmax));
    SAME("version", x->version == y->version);
    expect_same_model(x->lin, y->lin);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void encode(const struct policy *p, unsigned char **buf, size_t *len) {
    assert_int_equal(snapshot_encode(p, WHEN, buf, len), SCOUT_OK);
    assert_non_null(*buf);
}

/* Encodes src and decodes it into dst, a fresh policy of the same shape. */
static void round_trip(const struct policy *src, struct policy *dst) {
    unsigned char *buf;
    size_t len;
    double when = 0;
    char err[256] = "";
    encode(src, &buf, &len);
    assert_int_equal(policy_init(dst, src->kind, src->narms, src->epsilon, src->discount), SCOUT_OK);
    if (snapshot_decode(buf, len, dst, &when, err, sizeof err) != SCOUT_OK) {
        print_error("decode refused its own snapshot: %s\n", err);
        fail();
    }
    assert_true(same_bits(when, WHEN));
    free(buf);
}

static const struct lin_feature *feature(const struct lin_model *m, const char *name) {
    for (int i = 0; i < m->nfeat; i++)
        if (!strcmp(m->feat[i].name, name)) return &m->feat[i];
    return NULL;
}

static int has_overflow(const struct lin_feature *f) {
    for (int v = 0; f && v < f->nvalues; v++)
        if (f->values[v].overflow) return 1;
    return 0;
}

/* Writes the checksum of buf[0..len-8) into its last 8 bytes (a snapshot edited on purpose). */
static void reseal(unsigned char *buf, size_t len) {
    uint64_t h = snapshot_checksum(buf, len - 8);
    for (int i = 0; i < 8; i++) buf[len - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void put_u32_at(unsigned char *buf, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++) buf[off + i] = (unsigned char)(v >> (8 * i));
}

/* Decoding must fail with SCOUT_EINVAL, leave p as `before` and say something in err. */
static void expect_refused(const unsigned char *buf, size_t len, struct policy *p, const struct policy *before,
                           const char *says) {
    char err[256] = "";
    double when = -1;
    int rc = snapshot_decode(buf, len, p, &when, err, sizeof err);
    if (rc != SCOUT_EINVAL) {
        print_error("decode of %zu bytes returned %d, want SCOUT_EINVAL\n", len, rc);
        fail();
    }
    assert_true(err[0] != '\0');
    if (says && !strstr(err, says)) {
        print_error("error \"%s\" does not say \"%s\"\n", err, says);
        fail();
    }
    assert_true(same_bits(when, -1));
    expect_same_policy(p, before);
}

/* A small contextual snapshot (d 8, with A: discounted) for the exhaustive corruption tests. */
static void small_contextual(struct policy *p) {
    assert_int_equal(policy_init(p, POLICY_LINTS, ARMS, 0, 0.9), SCOUT_OK);
    for (int i = 0; i < 40; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"age\": %d, \"mobile\": %s, \"color\": \"%s\"}", 20 + i,
                 i % 2 ? "true" : "false", colors[i % 5]);
        json_t *ctx = J(text);
        policy_update(p, i % ARMS, (i % 3) ? 1.0 : 0.0, ctx);
        json_decref(ctx);
    }
    assert_int_equal(p->lin->d, 8);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_decoded_state_equals_original(void **state) {
    (void)state;
    for (int k = 0; k < NKINDS; k++)
        for (int g = 0; g < 2; g++) {
            struct policy p, q;
            assert_int_equal(policy_init(&p, all_kinds[k], ARMS, 0.1, discounts[g]), SCOUT_OK);
            feed(&p, 7 + (uint64_t)k, 400, k % 2, 0);
            if (p.lin) {   /* every part of the model is exercised */
                assert_true(has_overflow(feature(p.lin, "city")));
                assert_non_null(feature(p.lin, "mobile"));
                assert_non_null(feature(p.lin, "age"));
                assert_int_equal(!!p.lin->a, discounts[g] < 1.0);
            }
            round_trip(&p, &q);
            expect_same_policy(&q, &p);
            policy_free(&p);
            policy_free(&q);
        }
}

static void test_policy_without_rewards_round_trips(void **state) {
    (void)state;
    for (int k = 0; k < NKINDS; k++)
        for (int g = 0; g < 2; g++) {
            struct policy p, q;
            assert_int_equal(policy_init(&p, all_kinds[k], ARMS, 0.1, discounts[g]), SCOUT_OK);
            round_trip(&p, &q);
            expect_same_policy(&q, &p);
            policy_free(&p);
            policy_free(&q);
        }
}

static void test_decoding_replaces_the_policys_own_state(void **state) {
    (void)state;
    struct policy p, q;
    unsigned char *buf;
    size_t len;
    double when = 0;
    char err[256];
    assert_int_equal(policy_init(&p, POLICY_AUTO, ARMS, 0, 1.0), SCOUT_OK);
    assert_int_equal(policy_init(&q, POLICY_AUTO, ARMS, 0, 1.0), SCOUT_OK);
    feed(&p, 1, 200, 0, 0);
    feed(&q, 2, 300, 1, 1);   /* q learned something else, with features p never saw */
    encode(&p, &buf, &len);
    assert_int_equal(snapshot_decode(buf, len, &q, &when, err, sizeof err), SCOUT_OK);
    expect_same_policy(&q, &p);
    free(buf);
    policy_free(&p);
    policy_free(&q);
}

static void test_learning_after_decode_matches_learning_without_it(void **state) {
    (void)state;
    for (int k = 0; k < NKINDS; k++)
        for (int g = 0; g < 2; g++) {
            struct policy p, q;
            assert_int_equal(policy_init(&p, all_kinds[k], ARMS, 0.1, discounts[g]), SCOUT_OK);
            feed(&p, 11 + (uint64_t)k, 300, k % 2, 0);
            round_trip(&p, &q);
            int cap = p.lin ? p.lin->cap : 0;
            /* The same tail of events, with new features: the dimension grows past cap. */
            feed(&p, 99, 200, 1, 1);
            feed(&q, 99, 200, 1, 1);
            if (p.lin) assert_true(p.lin->cap > cap);
            expect_same_policy(&q, &p);
            policy_free(&p);
            policy_free(&q);
        }
}

static void test_decoded_policy_decides_like_the_original(void **state) {
    (void)state;
    json_t *ctxs[] = {NULL, J("{\"age\": 33, \"mobile\": true, \"color\": \"blue\", \"city\": \"city3\"}"),
                      J("{\"color\": \"unseen\", \"city\": \"nowhere\", \"zip\": 10001}")};
    for (int k = 0; k < NKINDS; k++)
        for (int g = 0; g < 2; g++) {
            struct policy p, q;
            assert_int_equal(policy_init(&p, all_kinds[k], ARMS, 0.2, discounts[g]), SCOUT_OK);
            feed(&p, 21 + (uint64_t)k, 300, k % 2, 0);
            round_trip(&p, &q);
            for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) {
                double pp[ARMS], pq[ARMS];
                rng_t rp, rq;
                rng_seed(&rp, 5);
                rng_seed(&rq, 5);
                policy_probabilities(&p, &rp, ctxs[c], 0, 500, pp);
                policy_probabilities(&q, &rq, ctxs[c], 0, 500, pq);
                assert_memory_equal(pp, pq, sizeof pp);
                for (int i = 0; i < 200; i++) {
                    struct choice a = policy_choose(&p, &rp, ctxs[c], 0), b = policy_choose(&q, &rq, ctxs[c], 0);
                    assert_int_equal(a.arm, b.arm);
                    assert_int_equal(a.explored, b.explored);
                }
            }
            policy_free(&p);
            policy_free(&q);
        }
    for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) json_decref(ctxs[c]);
}

static void test_largest_models_round_trip(void **state) {
    (void)state;
    struct policy p, q;
    rng_t r;
    char text[64];

    /* Two arms, the dimension full (LIN_MAX_DIM) with values dropped. */
    assert_int_equal(policy_init(&p, POLICY_LINTS, 2, 0, 1.0), SCOUT_OK);
    for (int v = 0; v < 40; v++)
        for (int f = 0; f < 6; f++) {
            snprintf(text, sizeof text, "{\"f%d\": \"v%d\"}", f, v);
            json_t *ctx = J(text);
            policy_update(&p, (f + v) % 2, (double)(v % 3), ctx);
            json_decref(ctx);
        }
    assert_int_equal(p.lin->d, LIN_MAX_DIM);
    assert_true(p.lin->dropped > 0);
    round_trip(&p, &q);
    expect_same_policy(&q, &p);
    policy_free(&p);
    policy_free(&q);

    /* SCOUT_MAX_VARIANTS arms, the dimension stopped by LIN_MAX_CELLS, discounted. */
    assert_int_equal(policy_init(&p, POLICY_LINUCB, SCOUT_MAX_VARIANTS, 0, 0.99), SCOUT_OK);
    rng_seed(&r, 3);
    for (int i = 0; i < 600; i++) {
        snprintf(text, sizeof text, "{\"j\": \"a%u\", \"k\": \"b%u\"}", (unsigned)rng_below(&r, 40),
                 (unsigned)rng_below(&r, 40));
        json_t *ctx = J(text);
        policy_update(&p, (int)rng_below(&r, SCOUT_MAX_VARIANTS), rng_uniform(&r), ctx);
        json_decref(ctx);
    }
    assert_true((size_t)SCOUT_MAX_VARIANTS * (size_t)(p.lin->d + 1) * (size_t)(p.lin->d + 1) > LIN_MAX_CELLS);
    round_trip(&p, &q);
    expect_same_policy(&q, &p);
    policy_free(&p);
    policy_free(&q);
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void test_every_truncation_is_refused(void **state) {
    (void)state;
    struct policy src[2], target, before;
    small_contextual(&src[0]);
    assert_int_equal(policy_init(&src[1], POLICY_THOMPSON, ARMS, 0, 1.0), SCOUT_OK);
    feed(&src[1], 4, 50, 1, 0);
    for (int s = 0; s < 2; s++) {
        unsigned char *buf;
        size_t len;
        encode(&src[s], &buf, &len);
        assert_int_equal(policy_init(&target, src[s].kind, ARMS, 0, src[s].discount), SCOUT_OK);
        feed(&target, 5, 30, 0, 0);
        assert_int_equal(policy_copy(&before, &target), SCOUT_OK);
        for (size_t n = 0; n < len; n++) {
            unsigned char *cut = malloc(n ? n : 1);   /* exactly n bytes: ASan sees any overread */
            assert_non_null(cut);
            memcpy(cut, buf, n);
            expect_refused(cut, n, &target, &before, NULL);
            free(cut);
        }
        policy_free(&before);
        policy_free(&target);
        policy_free(&src[s]);
        free(buf);
    }
}

static void test_every_single_byte_change_is_refused(void **state) {
    (void)state;
    struct policy src, target, before;
    unsigned char *buf;
    size_t len;
    small_contextual(&src);
    encode(&src, &buf, &len);
    assert_int_equal(policy_init(&target, POLICY_LINTS, ARMS, 0, 0.9), SCOUT_OK);
    assert_int_equal(policy_copy(&before, &target), SCOUT_OK);
    for (size_t i = 0; i < len; i++)
        for (unsigned flip = 0x01; flip <= 0x80; flip <<= 7) {   /* the lowest and highest bit */
            buf[i] ^= (unsigned char)flip;
            expect_refused(buf, len, &target, &before, NULL);
            buf[i] ^= (unsigned char)flip;
        }
    free(buf);
    policy_free(&before);
    policy_free(&target);
    policy_free(&src);
}

static void test_snapshot_of_another_shape_is_refused_and_leaves_policy_unchanged(void **state) {
    (void)state;
    static const struct {
        enum policy_kind kind;
        int narms;
        double discount;
        const char *says;
    } others[] = {
        {POLICY_LINTS, ARMS + 1, 1.0, "variants"},  {POLICY_LINTS, 1, 1.0, "variants"},
        {POLICY_LINUCB, ARMS, 1.0, "policy"},       {POLICY_THOMPSON, ARMS, 1.0, "policy"},
        {POLICY_LINTS, ARMS, 0.9, "discount"},      {POLICY_LINTS, ARMS, 0.95, "discount"},
    };
    struct policy src;
    unsigned char *buf;
    size_t len;
    assert_int_equal(policy_init(&src, POLICY_LINTS, ARMS, 0, 1.0), SCOUT_OK);
    feed(&src, 8, 100, 0, 0);
    encode(&src, &buf, &len);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        struct policy target, before;
        assert_int_equal(policy_init(&target, others[i].kind, others[i].narms, 0, others[i].discount), SCOUT_OK);
        feed(&target, 9, 50, 0, 0);
        assert_int_equal(policy_copy(&before, &target), SCOUT_OK);
        expect_refused(buf, len, &target, &before, others[i].says);
        policy_free(&before);
        policy_free(&target);
    }
    free(buf);
    policy_free(&src);
}

static void test_wrong_magic_is_refused_with_a_clear_message(void **state) {
    (void)state;
    struct policy p, before;
    unsigned char *buf;
    size_t len;
    assert_int_equal(policy_init(&p, POLICY_THOMPSON, ARMS, 0, 1.0), SCOUT_OK);
    feed(&p, 3, 20, 0, 0);
    assert_int_equal(policy_copy(&before, &p), SCOUT_OK);
    encode(&p, &buf, &len);
    buf[0] = 'X';
    reseal(buf, len);
    expect_refused(buf, len, &p, &before, "not a Scout snapshot");
    expect_refused((const unsigned char *)"{\"arms\": []}", 12, &p, &before, "not a Scout snapshot");
    expect_refused((const unsigned char *)"SCOUT", 5, &p, &before, "not a Scout snapshot");
    free(buf);
    policy_free(&before);
    policy_free(&p);
}

static void test_newer_format_is_refused_with_a_clear_message(void **state) {
    (void)state;
    struct policy p, before;
    unsigned char *buf;
    size_t len;
    assert_int_equal(policy_init(&p, POLICY_UCB1, ARMS, 0, 1.0), SCOUT_OK);
    assert_int_equal(policy_copy(&before, &p), SCOUT_OK);
    encode(&p, &buf, &len);
    put_u32_at(buf, 8, SNAPSHOT_FORMAT + 1);
    expect_refused(buf, len, &p, &before, "newer");
    reseal(buf, len);
    expect_refused(buf, len, &p, &before, "newer");
    put_u32_at(buf, 8, 0);
    reseal(buf, len);
    expect_refused(buf, len, &p, &before, "not supported");
    free(buf);
    policy_free(&before);
    policy_free(&p);
}

static void test_trailing_bytes_are_refused_even_with_a_valid_checksum(void **state) {
    (void)state;
    struct policy p, before;
    unsigned char *buf, *longer;
    size_t len;
    assert_int_equal(policy_init(&p, POLICY_LINUCB, ARMS, 0, 1.0), SCOUT_OK);
    feed(&p, 3, 20, 0, 0);
    assert_int_equal(policy_copy(&before, &p), SCOUT_OK);
    encode(&p, &buf, &len);
    assert_non_null(longer = malloc(len + 1));
    memcpy(longer, buf, len - 8);
    longer[len - 8] = 0;
    reseal(longer, len + 1);
    expect_refused(longer, len + 1, &p, &before, "after its last field");
    free(longer);
    free(buf);
    policy_free(&before);
    policy_free(&p);
}

/* Offsets into small_contextual's snapshot (see the layout in snapshot.h). */
static size_t model_offset(const struct policy *p) {
    return 8 + 4 + 8 + 4 + 4 + 8 + (size_t)p->narms * 48 + 8 + 8 + 8 + 8 + 1;
}

static size_t first_feature_offset(const struct policy *p) {
    const struct lin_model *m = p->lin;
    size_t k = (size_t)m->narms, d = (size_t)m->d;
    return model_offset(p) + 12 + 16 + k * d * d * 8 * (m->a ? 2 : 1) + 2 * k * d * 8 + k * 8 + 4;
}

static void test_impossible_model_fields_are_refused_even_with_a_valid_checksum(void **state) {
    (void)state;
    struct policy src, target, before;
    unsigned char *buf, *bad;
    size_t len, mo, fo, name_len;
    small_contextual(&src);
    encode(&src, &buf, &len);
    mo = model_offset(&src);
    fo = first_feature_offset(&src);
    name_len = strlen(src.lin->feat[0].name);
    assert_int_equal(src.lin->feat[0].type, LIN_NUMBER);   /* "age" comes first */
    assert_int_equal(buf[fo], name_len);                   /* the offsets are right */
    assert_int_equal(policy_init(&target, POLICY_LINTS, ARMS, 0, 0.9), SCOUT_OK);
    assert_int_equal(policy_copy(&before, &target), SCOUT_OK);
    assert_non_null(bad = malloc(len));
    const struct {
        size_t off;
        uint32_t value;
        int width;
        const char *says;
    } edits[] = {
        {mo - 1, 2, 1, "model flag"},                 /* the flag is 0 or 1 */
        {mo - 1, 0, 1, "lacks"},                      /* no model for a contextual policy */
        {mo, 2, 4, "arms"},                           /* the model's arms */
        {mo + 4, 0, 4, "dimension"},                  /* d = 0 */
        {mo + 4, LIN_MAX_DIM + 1, 4, "dimension"},    /* d beyond the cap */
        {mo + 4, 9, 4, "dimension"},                  /* d = 9 needs cap 16, not 8 */
        {mo + 8, 16, 4, "dimension"},                 /* cap 16 for d = 8 */
        {mo + 8, 0, 4, "dimension"},
        {fo, 0xffffffffu, 4, "name"},                 /* a name longer than the input */
        {fo, SCOUT_MAX_CONTEXT_KEY + 1, 4, "name"},
        {fo + 4, 0, 1, "NUL"},                        /* a NUL inside the name */
        {fo + 4 + name_len, 7, 1, "type"},            /* an unknown feature type */
        {fo + 5 + name_len, 0, 4, "slot"},            /* slot 0 is the intercept's */
        {fo + 5 + name_len, 8, 4, "slot"},            /* slot d */
        {fo + 5 + name_len, 0xffffffffu, 4, "slot"},  /* a number always has a slot */
        {fo + 33 + name_len, 1, 4, "values"},         /* values for a number feature */
        {fo + 33 + name_len, 0xffffffffu, 4, "values"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(bad, buf, len);
        if (edits[i].width == 4) put_u32_at(bad, edits[i].off, edits[i].value);
        else bad[edits[i].off] = (unsigned char)edits[i].value;
        reseal(bad, len);
        expect_refused(bad, len, &target, &before, edits[i].says);
    }
    free(bad);
    free(buf);
    policy_free(&before);
    policy_free(&target);
    policy_free(&src);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoded_state_equals_original),
        cmocka_unit_test(test_policy_without_rewards_round_trips),
        cmocka_unit_test(test_decoding_replaces_the_policys_own_state),
        cmocka_unit_test(test_learning_after_decode_matches_learning_without_it),
        cmocka_unit_test(test_decoded_policy_decides_like_the_original),
        cmocka_unit_test(test_largest_models_round_trip),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_every_single_byte_change_is_refused),
        cmocka_unit_test(test_snapshot_of_another_shape_is_refused_and_leaves_policy_unchanged),
        cmocka_unit_test(test_wrong_magic_is_refused_with_a_clear_message),
        cmocka_unit_test(test_newer_format_is_refused_with_a_clear_message),
        cmocka_unit_test(test_trailing_bytes_are_refused_even_with_a_valid_checksum),
        cmocka_unit_test(test_impossible_model_fields_are_refused_even_with_a_valid_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
