/* test_experiment.c — unit tests for a test's definition and live state (experiment.c), the
 * context validation every request goes through (bandit/context.c) and the registry of live
 * tests (registry.c).
 *
 * What must hold:
 *   - experiment_from_definition accepts a valid definition (variants sorted by id, labels kept
 *     as sent) and its normalised `definition` parses back to the same test; every invalid
 *     definition is refused with 422 (wrong shape) or 400 (invalid value);
 *   - experiment_find_variant resolves ids and labels in the documented order;
 *   - a global rollout overrides the policy;
 *   - contexts respect the caps in common.h;
 *   - registry references keep a removed test alive until released (ASan checks the misuse).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "bandit/context.h"
#include "experiment.h"
#include "registry.h"
#include "util/common.h"

#define TEST_ID "00000000-0000-4000-8000-000000000001"


/* Builds a test from JSON text; asserts success. */
static struct experiment *make(const char *def_text, const char *id, double created) {
    json_t *def = J(def_text);
    struct experiment *e = NULL;
    char err[256] = "";
    int status = 0;
    if (experiment_from_definition(def, id, created, &e, &status, err, sizeof err) != SCOUT_OK) {
        print_error("definition refused (%d: %s): %s\n", status, err, def_text);
        fail();
    }
    assert_int_equal(status, 200);
    json_decref(def);
    return e;
}

/* Asserts that the definition is refused with `want` and a non-empty sentence. */
static void expect_refused(json_t *def, int want, const char *what) {
    struct experiment *e = NULL;
    char err[256] = "";
    int status = 0;
    int rc = experiment_from_definition(def, TEST_ID, 1.0, &e, &status, err, sizeof err);
    if (rc != SCOUT_EINVAL || status != want) {
        print_error("%s: got rc %d status %d (%s), want status %d\n", what, rc, status, err, want);
        if (rc == SCOUT_OK) experiment_unref(e);
        fail();
    }
    assert_null(e);
    assert_true(err[0] != '\0');
    json_decref(def);
}

static void expect_refused_text(const char *def_text, int want) {
    expect_refused(J(def_text), want, def_text);
}

/* A definition {"name": name, "variants": variants} built from objects (steals both). */
static json_t *def_of(json_t *name, json_t *variants) {
    json_t *d = json_object();
    json_object_set_new(d, "name", name);
    json_object_set_new(d, "variants", variants);
    return d;
}

static char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- experiment_from_definition: valid ----------------------------------------------------- */

static void test_valid_definition_sorts_variants_by_id_and_keeps_labels(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"checkout\", \"variants\": {\"10\": \"blue\", \"2\": 7, \"0\": \"red\"}}",
                                TEST_ID, 123.5);
    assert_string_equal(e->id, TEST_ID);
    assert_string_equal(e->name, "checkout");
    assert_true(e->created_at == 123.5);
    assert_int_equal(e->nvariants, 3);
    assert_int_equal(e->variants[0].id, 0);
    assert_int_equal(e->variants[1].id, 2);
    assert_int_equal(e->variants[2].id, 10);
    assert_true(json_is_string(e->variants[0].label));
    assert_string_equal(json_string_value(e->variants[0].label), "red");
    assert_true(json_is_integer(e->variants[1].label));   /* an integer label stays an integer */
    assert_int_equal(json_integer_value(e->variants[1].label), 7);
    assert_string_equal(e->variants[1].key, "7");
    assert_string_equal(e->variants[2].key, "blue");
    assert_int_equal(e->kind, POLICY_AUTO);   /* the default */
    assert_int_equal(e->min_updates, -1);
    assert_null(e->features);
    assert_int_equal(atomic_load(&e->rollout), -1);
    assert_int_equal(atomic_load(&e->refs), 1);
    assert_int_equal(e->policy.narms, 3);
    assert_int_equal(experiment_index_of_id(e, 10), 2);
    assert_int_equal(experiment_index_of_id(e, 1), -1);
    experiment_unref(e);
}

static void test_normalised_definition_round_trips(void **state) {
    (void)state;
    struct experiment *e1 = make("{\"name\": \"pricing\", \"variants\": {\"3\": \"c\", \"1\": 42, \"0\": \"a\"},"
                                 " \"policy\": \"egreedy\", \"epsilon\": 0.25, \"min_updates\": 7,"
                                 " \"features\": [\"country\", \"device\"]}",
                                 TEST_ID, 1.0);
    /* What the store keeps is the JSON text of the definition. */
    char *text = json_dumps(e1->definition, JSON_COMPACT);
    assert_non_null(text);
    struct experiment *e2 = make(text, TEST_ID, 1.0);

    assert_string_equal(e2->name, e1->name);
    assert_int_equal(e2->nvariants, e1->nvariants);
    for (int i = 0; i < e1->nvariants; i++) {
        assert_int_equal(e2->variants[i].id, e1->variants[i].id);
        assert_true(json_equal(e2->variants[i].label, e1->variants[i].label));
        assert_string_equal(e2->variants[i].key, e1->variants[i].key);
    }
    assert_int_equal(e2->kind, POLICY_EGREEDY);
    assert_true(e2->policy.epsilon == 0.25);
    assert_int_equal(e2->min_updates, 7);
    assert_true(json_equal(e2->features, e1->features));
    assert_true(json_equal(e2->definition, e1->definition));   /* a fixed point */
    free(text);
    experiment_unref(e1);
    experiment_unref(e2);
}

static void test_auto_policy_is_kept_as_auto(void **state) {
    (void)state;
    /* auto decides per request (contextual with a context), so it must survive a reload. */
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"policy\": \"auto\"}", TEST_ID, 1.0);
    assert_int_equal(e->kind, POLICY_AUTO);
    assert_string_equal(json_string_value(json_object_get(e->definition, "policy")), "auto");
    assert_non_null(e->policy.lin);
    experiment_unref(e);
}

static void test_limits_are_inclusive(void **state) {
    (void)state;
    /* 256 variants, a 256-byte name and a 256-byte label are all allowed. */
    char *name = repeat('n', SCOUT_MAX_NAME), *label = repeat('l', SCOUT_MAX_LABEL);
    json_t *variants = json_object();
    char key[16];
    for (int i = 0; i < SCOUT_MAX_VARIANTS; i++) {
        snprintf(key, sizeof key, "%d", i);
        json_object_set_new(variants, key, i == 0 ? json_string(label) : json_integer(i));
    }
    json_t *def = def_of(json_string(name), variants);
    struct experiment *e = NULL;
    char err[256];
    int status;
    assert_int_equal(experiment_from_definition(def, TEST_ID, 1.0, &e, &status, err, sizeof err), SCOUT_OK);
    assert_int_equal(e->nvariants, SCOUT_MAX_VARIANTS);
    assert_int_equal(e->variants[SCOUT_MAX_VARIANTS - 1].id, SCOUT_MAX_VARIANTS - 1);
    experiment_unref(e);
    json_decref(def);
    free(name);
    free(label);
}

/* ---- experiment_from_definition: refused ---------------------------------------------------- */

static void test_wrong_shapes_are_refused_with_422(void **state) {
    (void)state;
    expect_refused_text("[1, 2]", 422);                                        /* not an object */
    expect_refused_text("\"a test\"", 422);
    expect_refused_text("{\"variants\": {\"0\": \"a\"}}", 422);                 /* missing name */
    expect_refused_text("{\"name\": 5, \"variants\": {\"0\": \"a\"}}", 422);     /* name not a string */
    expect_refused_text("{\"name\": null, \"variants\": {\"0\": \"a\"}}", 422);
    expect_refused_text("{\"name\": \"n\"}", 422);                              /* missing variants */
    expect_refused_text("{\"name\": \"n\", \"variants\": [\"a\", \"b\"]}", 422); /* variants not an object */
    expect_refused_text("{\"name\": \"n\", \"variants\": \"a\"}", 422);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"policy\": 3}", 422);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"epsilon\": \"0.1\"}", 422);
}

static void test_empty_and_too_many_variants_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"n\", \"variants\": {}}", 400);
    json_t *variants = json_object();
    char key[16];
    for (int i = 0; i <= SCOUT_MAX_VARIANTS; i++) {
        snprintf(key, sizeof key, "%d", i);
        json_object_set_new(variants, key, json_integer(i));
    }
    expect_refused(def_of(json_string("n"), variants), 400, "257 variants");
}

static void test_non_integer_variant_ids_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"a\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"1.5\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"-1\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"01\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\" 1\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"x\", \"1000000001\": \"y\"}}", 400);
}

static void test_duplicate_labels_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"x\", \"1\": \"x\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": 5, \"1\": 5}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": 5, \"1\": \"5\"}}", 400);   /* same text */
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"5\", \"1\": 5}}", 400);
}

static void test_invalid_labels_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"\"}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": 1.5}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": null}}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": [\"a\"]}}", 400);
    char *label = repeat('l', SCOUT_MAX_LABEL + 1);
    json_t *variants = json_object();
    json_object_set_new(variants, "0", json_string("ok"));
    json_object_set_new(variants, "1", json_string(label));
    expect_refused(def_of(json_string("n"), variants), 400, "label of 257 bytes");
    free(label);
}

static void test_invalid_names_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"\", \"variants\": {\"0\": \"a\"}}", 400);
    char *name = repeat('n', SCOUT_MAX_NAME + 1);
    expect_refused(def_of(json_string(name), J("{\"0\": \"a\"}")), 400, "name of 257 bytes");
    free(name);
}

static void test_invalid_policy_settings_are_refused_with_400(void **state) {
    (void)state;
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"policy\": \"nope\"}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"epsilon\": -0.01}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"epsilon\": 1.01}", 400);
    expect_refused_text("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"min_updates\": -1}", 400);
    /* the bounds themselves are fine */
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"epsilon\": 0}", TEST_ID, 1.0);
    experiment_unref(e);
    e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}, \"epsilon\": 1}", TEST_ID, 1.0);
    assert_true(e->policy.epsilon == 1.0);
    experiment_unref(e);
}

/* An error sentence may quote client input cut to a byte budget ("%.32s"). It is sent as a JSON
 * string, so it must stay valid UTF-8: a cut inside a multi-byte character makes jansson refuse
 * the string and the client gets a generic message instead of the reason. */
static void expect_valid_utf8(const char *what, const char *s) {
    json_t *j = json_string(s);
    if (!j) {
        char shown[256];
        size_t i = 0;
        for (; s[i] && i + 1 < sizeof shown; i++) shown[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
        shown[i] = '\0';
        print_error("%s is not valid UTF-8 (non-ASCII bytes shown as '?'): %s\n", what, shown);
        fail();
    }
    json_decref(j);
}

static void test_definition_error_stays_valid_utf8_when_it_quotes_client_input(void **state) {
    (void)state;
    /* 31 ASCII bytes then "\u00e9" (2 bytes in UTF-8): a cut at 32 bytes ("%.32s") splits it. */
    json_t *def = J("{\"name\": \"n\", \"variants\": {\"0\": \"a\"},"
                    " \"policy\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\u00e9\"}");
    struct experiment *e = NULL;
    char err[256] = "";
    int status = 0;
    assert_int_equal(experiment_from_definition(def, TEST_ID, 1.0, &e, &status, err, sizeof err), SCOUT_EINVAL);
    assert_int_equal(status, 400);
    json_decref(def);
    expect_valid_utf8("experiment_from_definition's error", err);
}

static void test_context_error_stays_valid_utf8_when_it_quotes_client_input(void **state) {
    (void)state;
    /* A context key of 63 ASCII bytes then "\u00e9", quoted with "%.64s". */
    json_t *ctx = NULL;
    json_t *src = J("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\u00e9\": [1]}");
    char err[256] = "";
    assert_int_equal(context_normalize(src, &ctx, err, sizeof err), SCOUT_EINVAL);
    json_decref(src);
    expect_valid_utf8("context_normalize's error", err);
}

/* ---- experiment_find_variant ------------------------------------------------------------ */

static void test_find_variant_by_integer_tries_id_then_integer_label(void **state) {
    (void)state;
    /* ids 0, 1, 5; labels 1, "x", 0 */
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": 1, \"1\": \"x\", \"5\": 0}}", TEST_ID, 1.0);
    json_t *ref;
    ref = json_integer(1);   /* id 1 wins over the label 1 of id 0 */
    assert_int_equal(experiment_find_variant(e, ref), 1);
    json_decref(ref);
    ref = json_integer(5);   /* id 5 */
    assert_int_equal(experiment_find_variant(e, ref), 2);
    json_decref(ref);
    ref = json_integer(0);   /* id 0 wins over the label 0 of id 5 */
    assert_int_equal(experiment_find_variant(e, ref), 0);
    json_decref(ref);
    ref = json_real(5.0);    /* a whole real counts as an integer */
    assert_int_equal(experiment_find_variant(e, ref), 2);
    json_decref(ref);
    ref = json_integer(7);
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    ref = json_integer(-1);
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    ref = json_real(1.5);
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    experiment_unref(e);

    /* an integer that is no id falls back to an integer label */
    e = make("{\"name\": \"n\", \"variants\": {\"0\": 40, \"1\": 41}}", TEST_ID, 1.0);
    ref = json_integer(41);
    assert_int_equal(experiment_find_variant(e, ref), 1);
    json_decref(ref);
    experiment_unref(e);
}

static void test_find_variant_by_string_tries_label_then_decimal_id(void **state) {
    (void)state;
    /* ids 0, 1, 2; labels "1", "x", 9 */
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"1\", \"1\": \"x\", \"2\": 9}}", TEST_ID, 1.0);
    json_t *ref;
    ref = json_string("1");   /* label "1" of id 0 wins over id 1 */
    assert_int_equal(experiment_find_variant(e, ref), 0);
    json_decref(ref);
    ref = json_string("x");
    assert_int_equal(experiment_find_variant(e, ref), 1);
    json_decref(ref);
    ref = json_string("9");   /* the text of an integer label */
    assert_int_equal(experiment_find_variant(e, ref), 2);
    json_decref(ref);
    ref = json_string("2");   /* no such label: decimal id 2 */
    assert_int_equal(experiment_find_variant(e, ref), 2);
    json_decref(ref);
    ref = json_string("02");  /* not a canonical decimal id */
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    ref = json_string("nope");
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    ref = json_true();
    assert_int_equal(experiment_find_variant(e, ref), -1);
    json_decref(ref);
    assert_int_equal(experiment_find_variant(e, NULL), -1);
    experiment_unref(e);
}

/* ---- decisions and live state ---------------------------------------------------------- */

static void test_global_rollout_always_decides_that_arm(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}}", TEST_ID, 1.0);
    double probs[3];
    for (int i = 0; i < 50; i++) experiment_apply_reward(e, 0, 1.0, NULL, 10.0);   /* arm 0 looks best */
    atomic_store(&e->rollout, 2);
    for (int i = 0; i < 200; i++) {
        struct decision d = experiment_decide(e, NULL, 0, NULL);
        assert_int_equal(d.arm, 2);
        assert_int_equal(d.rollout, 1);
        assert_true(d.propensity == 1.0);
        assert_int_equal(d.explored, 0);
    }
    experiment_probabilities(e, NULL, 0, probs);
    assert_true(probs[0] == 0.0 && probs[1] == 0.0 && probs[2] == 1.0);

    atomic_store(&e->rollout, -1);   /* cleared: the policy decides again */
    struct decision d = experiment_decide(e, NULL, 0, NULL);
    assert_int_equal(d.rollout, 0);
    assert_true(d.arm >= 0 && d.arm < 3);
    experiment_unref(e);
}

static void test_warmup_follows_own_min_updates_else_global_default(void **state) {
    (void)state;
    struct experiment *own = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}, \"min_updates\": 2}",
                                  TEST_ID, 1.0);
    struct experiment *dflt = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", TEST_ID, 1.0);
    assert_true(experiment_in_warmup(own, 100));
    assert_true(experiment_in_warmup(dflt, 3));
    experiment_apply_reward(own, 0, 1.0, NULL, 1.0);
    experiment_apply_reward(own, 1, 0.0, NULL, 2.0);
    experiment_apply_reward(dflt, 0, 1.0, NULL, 1.0);
    experiment_apply_reward(dflt, 1, 0.0, NULL, 2.0);
    assert_false(experiment_in_warmup(own, 100));   /* its own 2 wins over the global 100 */
    assert_true(experiment_in_warmup(dflt, 3));
    assert_false(experiment_in_warmup(dflt, 2));
    assert_false(experiment_in_warmup(dflt, 0));

    /* In warm-up every arm has propensity 1/k. */
    for (int i = 0; i < 100; i++) {
        struct decision d = experiment_decide(dflt, NULL, 1000, NULL);
        assert_true(d.arm == 0 || d.arm == 1);
        assert_true(d.propensity == 0.5);
        assert_int_equal(d.rollout, 0);
    }
    experiment_unref(own);
    experiment_unref(dflt);
}

static void test_decision_propensity_is_the_chosen_arm_probability(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"},"
                                " \"policy\": \"egreedy\", \"epsilon\": 0.2, \"probability_floor\": 0}", TEST_ID, 1.0);
    for (int i = 0; i < 10; i++) {
        experiment_apply_reward(e, 0, 0.2, NULL, 1.0);
        experiment_apply_reward(e, 1, 0.8, NULL, 1.0);
    }
    for (int i = 0; i < 200; i++) {
        struct decision d = experiment_decide(e, NULL, 0, NULL);
        double want = d.arm == 1 ? 0.2 / 2 + 0.8 : 0.2 / 2;
        assert_true(fabs(d.propensity - want) < 1e-12);
    }
    experiment_unref(e);
}

static void test_default_probability_floor_mixes_into_the_propensity(void **state) {
    (void)state;
    /* The default floor is 1%: p' = 0.01 + (1 - 2 * 0.01) * p for two variants. */
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"},"
                                " \"policy\": \"egreedy\", \"epsilon\": 0.2}", TEST_ID, 1.0);
    assert_true(e->policy.floor == 0.01);
    for (int i = 0; i < 10; i++) {
        experiment_apply_reward(e, 0, 0.2, NULL, 1.0);
        experiment_apply_reward(e, 1, 0.8, NULL, 1.0);
    }
    for (int i = 0; i < 200; i++) {
        struct decision d = experiment_decide(e, NULL, 0, NULL);
        double raw = d.arm == 1 ? 0.2 / 2 + 0.8 : 0.2 / 2;
        assert_true(fabs(d.propensity - (0.01 + 0.98 * raw)) < 1e-12);
    }
    experiment_unref(e);
}

static void test_probability_floor_above_one_over_k_is_refused(void **state) {
    (void)state;
    struct experiment *e = NULL;
    char err[256];
    int status = 0;
    json_t *def = json_loads("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"},"
                             " \"probability_floor\": 0.34}", 0, NULL);
    assert_int_equal(experiment_from_definition(def, TEST_ID, 1.0, &e, &status, err, sizeof err), SCOUT_EINVAL);
    assert_int_equal(status, 400);
    json_decref(def);
}

static void test_snapshot_copies_state_and_last_update(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", TEST_ID, 1.0);
    struct policy snap;
    double last = -1;
    experiment_apply_reward(e, 1, 3.5, NULL, 50.0);
    experiment_apply_reward(e, 1, 1.5, NULL, 40.0);   /* an older timestamp does not move it back */
    assert_int_equal(experiment_snapshot(e, &snap, &last), SCOUT_OK);
    assert_true(last == 50.0);
    assert_int_equal(snap.updates, 2);
    assert_int_equal(snap.arms[1].n, 2);
    assert_true(snap.arms[1].sum == 5.0);
    assert_true(snap.arms != e->policy.arms);   /* a copy, not an alias */
    experiment_apply_reward(e, 0, 1.0, NULL, 60.0);
    assert_int_equal(snap.arms[0].n, 0);
    policy_free(&snap);
    experiment_unref(e);
}

static void test_count_decision_keeps_totals_and_latest_time(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", TEST_ID, 1.0);
    experiment_count_decision(e, 0, 100.0);
    experiment_count_decision(e, 1, 300.5);
    experiment_count_decision(e, 1, 200.0);
    assert_int_equal(atomic_load(&e->predictions), 3);
    assert_int_equal(atomic_load(&e->arm_predictions[0]), 1);
    assert_int_equal(atomic_load(&e->arm_predictions[1]), 2);
    assert_int_equal(atomic_load(&e->last_prediction_ms), 300500);
    experiment_unref(e);
}

/* ---- contexts -------------------------------------------------------------------------- */

static void expect_context_refused(const char *text) {
    json_t *src = J(text), *out = (json_t *)0x1;
    char err[256] = "";
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_EINVAL);
    assert_true(err[0] != '\0');
    json_decref(src);
}

static void test_context_keeps_scalars_and_drops_nulls(void **state) {
    (void)state;
    json_t *src = J("{\"country\": \"de\", \"age\": 31, \"score\": 0.5, \"member\": true, \"unknown\": null}");
    json_t *out = NULL, *want = J("{\"country\": \"de\", \"age\": 31, \"score\": 0.5, \"member\": true}");
    char err[256];
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    json_decref(src);
}

static void test_context_null_or_empty_normalises_to_null(void **state) {
    (void)state;
    json_t *out = (json_t *)0x1, *src;
    char err[256];
    assert_int_equal(context_normalize(NULL, &out, err, sizeof err), SCOUT_OK);
    assert_null(out);
    src = json_null();
    out = (json_t *)0x1;
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);
    assert_null(out);
    json_decref(src);
    src = J("{\"a\": null}");
    out = (json_t *)0x1;
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);
    assert_null(out);
    json_decref(src);
}

static void test_context_refuses_non_objects_and_nested_values(void **state) {
    (void)state;
    expect_context_refused("[1, 2]");
    expect_context_refused("\"country=de\"");
    expect_context_refused("{\"a\": {\"b\": 1}}");
    expect_context_refused("{\"a\": [1]}");
}

static void test_context_caps_key_count(void **state) {
    (void)state;
    json_t *src = json_object(), *out = NULL;
    char key[16], err[256];
    for (int i = 0; i < SCOUT_MAX_CONTEXT_KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(src, key, json_integer(i));
    }
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);   /* 64 keys */
    assert_int_equal(json_object_size(out), SCOUT_MAX_CONTEXT_KEYS);
    json_decref(out);
    json_object_set_new(src, "k64", json_integer(64));                            /* 65 keys */
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_EINVAL);
    json_object_set_new(src, "k64", json_null());                                 /* a null key is dropped */
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);
    json_decref(out);
    json_decref(src);
}

static void test_context_caps_key_and_string_length(void **state) {
    (void)state;
    char *k128 = repeat('k', SCOUT_MAX_CONTEXT_KEY), *k129 = repeat('k', SCOUT_MAX_CONTEXT_KEY + 1);
    char *s1024 = repeat('s', SCOUT_MAX_CONTEXT_STR), *s1025 = repeat('s', SCOUT_MAX_CONTEXT_STR + 1);
    json_t *src, *out = NULL;
    char err[256];

    src = json_object();
    json_object_set_new(src, k128, json_string(s1024));
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_OK);
    json_decref(out);
    json_decref(src);

    src = json_object();
    json_object_set_new(src, k129, json_integer(1));
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_EINVAL);
    json_decref(src);

    src = json_object();
    json_object_set_new(src, "k", json_string(s1025));
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_EINVAL);
    json_decref(src);

    src = json_object();
    json_object_set_new(src, "", json_integer(1));
    assert_int_equal(context_normalize(src, &out, err, sizeof err), SCOUT_EINVAL);
    json_decref(src);
    free(k128);
    free(k129);
    free(s1024);
    free(s1025);
}

static void test_context_merge_with_prefix_selects_and_strips(void **state) {
    (void)state;
    json_t *body = J("{\"reward\": 1, \"decision\": 0, \"feature_country\": \"de\", \"feature_age\": 30,"
                     " \"feature_gone\": null}");
    json_t *dst = J("{\"device\": \"ios\", \"country\": \"fr\"}");
    json_t *want = J("{\"device\": \"ios\", \"country\": \"de\", \"age\": 30}");
    char err[256];
    assert_int_equal(context_merge(&dst, body, "feature_", err, sizeof err), SCOUT_OK);
    assert_true(json_equal(dst, want));   /* inline features override, others untouched */
    json_decref(dst);
    json_decref(want);

    dst = NULL;   /* created on demand */
    assert_int_equal(context_merge(&dst, body, "feature_", err, sizeof err), SCOUT_OK);
    assert_non_null(dst);
    assert_int_equal(json_object_size(dst), 2);
    json_decref(dst);
    json_decref(body);

    /* the cap counts keys after merging */
    json_t *many = json_object();
    char key[32];
    for (int i = 0; i < SCOUT_MAX_CONTEXT_KEYS; i++) {
        snprintf(key, sizeof key, "feature_k%d", i);
        json_object_set_new(many, key, json_integer(i));
    }
    dst = J("{\"extra\": 1}");
    assert_int_equal(context_merge(&dst, many, "feature_", err, sizeof err), SCOUT_EINVAL);
    json_decref(dst);
    json_decref(many);
}

/* ---- registry ---------------------------------------------------------------------------- */

static void id_of(int i, char out[SCOUT_ID_LEN + 1]) {
    snprintf(out, SCOUT_ID_LEN + 1, "00000000-0000-4000-8000-%012d", i);
}

static void test_registry_add_get_remove_list(void **state) {
    (void)state;
    enum { N = 200 };   /* more than the initial table: exercises growth */
    struct registry *r;
    char id[SCOUT_ID_LEN + 1];
    assert_int_equal(registry_new(&r), SCOUT_OK);
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        /* created times out of insertion order; list must sort them */
        struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\"}}", id, (double)((i * 37) % N));
        assert_int_equal(registry_add(r, e), SCOUT_OK);
        assert_int_equal(atomic_load(&e->refs), 2);
        experiment_unref(e);
    }
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        struct experiment *e = registry_get(r, id);
        assert_non_null(e);
        assert_string_equal(e->id, id);
        experiment_unref(e);
    }
    assert_null(registry_get(r, "no-such-test"));

    struct experiment **list;
    size_t n;
    assert_int_equal(registry_list(r, &list, &n), SCOUT_OK);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) assert_true(list[i]->created_at == (double)i);
    registry_release_list(list, n);

    id_of(5, id);
    assert_int_equal(registry_remove(r, id), SCOUT_OK);
    assert_null(registry_get(r, id));
    assert_int_equal(registry_remove(r, id), SCOUT_ENOTFOUND);
    assert_int_equal(registry_list(r, &list, &n), SCOUT_OK);
    assert_int_equal(n, N - 1);
    registry_release_list(list, n);
    registry_free(r);
}

static void test_removed_test_stays_valid_while_referenced(void **state) {
    (void)state;
    struct registry *r;
    assert_int_equal(registry_new(&r), SCOUT_OK);
    struct experiment *e = make("{\"name\": \"kept\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", TEST_ID, 1.0);
    assert_int_equal(registry_add(r, e), SCOUT_OK);
    experiment_unref(e);                      /* the registry holds the only reference */

    struct experiment *held = registry_get(r, TEST_ID);
    assert_non_null(held);
    struct experiment **list;
    size_t n;
    assert_int_equal(registry_list(r, &list, &n), SCOUT_OK);
    assert_int_equal(registry_remove(r, TEST_ID), SCOUT_OK);
    assert_null(registry_get(r, TEST_ID));

    /* Both references still work after the delete (ASan flags any use after free). */
    assert_string_equal(held->name, "kept");
    assert_string_equal(held->variants[1].key, "b");
    struct decision d = experiment_decide(held, NULL, 0, NULL);
    assert_true(d.arm == 0 || d.arm == 1);
    experiment_apply_reward(held, d.arm, 1.0, NULL, 2.0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->name, "kept");
    registry_release_list(list, n);
    experiment_unref(held);                   /* the last reference frees it */
    registry_free(r);
}

struct reader_arg {
    struct registry *r;
    _Atomic int *stop;
    long seen;
};

static void *reader_main(void *p) {
    struct reader_arg *a = p;
    char id[SCOUT_ID_LEN + 1];
    for (int i = 0; !atomic_load(a->stop) || i < 1000; i++) {
        id_of(i % 8, id);
        struct experiment *e = registry_get(a->r, id);
        if (!e) continue;
        struct decision d = experiment_decide(e, NULL, 0, NULL);
        experiment_apply_reward(e, d.arm, 0.5, NULL, 1.0);
        a->seen++;
        experiment_unref(e);
    }
    return NULL;
}

static void test_concurrent_lookups_survive_removal(void **state) {
    (void)state;
    struct registry *r;
    pthread_t th[4];
    struct reader_arg args[4];
    _Atomic int stop = 0;
    char id[SCOUT_ID_LEN + 1];
    assert_int_equal(registry_new(&r), SCOUT_OK);
    for (int i = 0; i < 8; i++) {
        id_of(i, id);
        struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", id, (double)i);
        registry_add(r, e);
        experiment_unref(e);
    }
    for (int t = 0; t < 4; t++) {
        args[t] = (struct reader_arg){r, &stop, 0};
        assert_int_equal(pthread_create(&th[t], NULL, reader_main, &args[t]), 0);
    }
    for (int round = 0; round < 50; round++) {   /* remove and re-add while readers run */
        id_of(round % 8, id);
        assert_int_equal(registry_remove(r, id), SCOUT_OK);
        struct experiment *e = make("{\"name\": \"n\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}}", id, (double)round);
        registry_add(r, e);
        experiment_unref(e);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    long seen = 0;
    for (int t = 0; t < 4; t++) seen += args[t].seen;
    assert_true(seen > 0);
    registry_free(r);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_definition_sorts_variants_by_id_and_keeps_labels),
        cmocka_unit_test(test_normalised_definition_round_trips),
        cmocka_unit_test(test_auto_policy_is_kept_as_auto),
        cmocka_unit_test(test_limits_are_inclusive),
        cmocka_unit_test(test_wrong_shapes_are_refused_with_422),
        cmocka_unit_test(test_empty_and_too_many_variants_are_refused_with_400),
        cmocka_unit_test(test_non_integer_variant_ids_are_refused_with_400),
        cmocka_unit_test(test_duplicate_labels_are_refused_with_400),
        cmocka_unit_test(test_invalid_labels_are_refused_with_400),
        cmocka_unit_test(test_invalid_names_are_refused_with_400),
        cmocka_unit_test(test_invalid_policy_settings_are_refused_with_400),
        cmocka_unit_test(test_definition_error_stays_valid_utf8_when_it_quotes_client_input),
        cmocka_unit_test(test_context_error_stays_valid_utf8_when_it_quotes_client_input),
        cmocka_unit_test(test_find_variant_by_integer_tries_id_then_integer_label),
        cmocka_unit_test(test_find_variant_by_string_tries_label_then_decimal_id),
        cmocka_unit_test(test_global_rollout_always_decides_that_arm),
        cmocka_unit_test(test_warmup_follows_own_min_updates_else_global_default),
        cmocka_unit_test(test_decision_propensity_is_the_chosen_arm_probability),
        cmocka_unit_test(test_default_probability_floor_mixes_into_the_propensity),
        cmocka_unit_test(test_probability_floor_above_one_over_k_is_refused),
        cmocka_unit_test(test_snapshot_copies_state_and_last_update),
        cmocka_unit_test(test_count_decision_keeps_totals_and_latest_time),
        cmocka_unit_test(test_context_keeps_scalars_and_drops_nulls),
        cmocka_unit_test(test_context_null_or_empty_normalises_to_null),
        cmocka_unit_test(test_context_refuses_non_objects_and_nested_values),
        cmocka_unit_test(test_context_caps_key_count),
        cmocka_unit_test(test_context_caps_key_and_string_length),
        cmocka_unit_test(test_context_merge_with_prefix_selects_and_strips),
        cmocka_unit_test(test_registry_add_get_remove_list),
        cmocka_unit_test(test_removed_test_stays_valid_while_referenced),
        cmocka_unit_test(test_concurrent_lookups_survive_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
