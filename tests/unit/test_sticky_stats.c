/* test_sticky_stats.c — unit tests for the sticky-assignment table (sticky.c) and the χ²
 * survival function of the SRM check (bandit/stats.c), and for both at the test level
 * (experiment_decide_for, experiment_srm).
 * What must hold: a user's first assignment is returned unchanged however many users follow
 * (the table grows without losing entries) until the cap, where new users are refused and old
 * ones still answer; stats_chi2_sf matches known quantiles of the χ² distribution; a sticky
 * user keeps their variant while the policy moves elsewhere; the SRM counters add up to the
 * decisions the policy drew. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit/rng.h"
#include "bandit/stats.h"
#include "experiment.h"
#include "sticky.h"
#include "util/common.h"

static void test_sticky_map_keeps_every_first_assignment_while_growing(void **state) {
    (void)state;
    struct sticky_map m = {0};
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        assert_int_equal(sticky_put(&m, key, i % 7, 1.0 / (1 + i % 5)), SCOUT_OK);
    }
    assert_int_equal(m.n, 20000);
    assert_true(m.n * 2 <= m.cap);   /* at most half full */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        const struct sticky_entry *e = sticky_get(&m, key);
        assert_non_null(e);
        assert_int_equal(e->arm, i % 7);
        assert_true(e->propensity == 1.0 / (1 + i % 5));
    }
    assert_null(sticky_get(&m, "user-20000"));
    assert_null(sticky_get(&m, ""));
    sticky_free(&m);
    assert_null(sticky_get(&m, "user-1"));   /* an empty map answers, never crashes */
}

static void test_sticky_map_refuses_new_users_at_the_cap(void **state) {
    (void)state;
    struct sticky_map m = {0};
    char key[32];
    for (int i = 0; i < STICKY_MAX_USERS; i++) {
        snprintf(key, sizeof key, "%d", i);
        assert_int_equal(sticky_put(&m, key, 1, 0.5), SCOUT_OK);
    }
    assert_int_equal(sticky_put(&m, "one-too-many", 0, 0.5), SCOUT_ECONFLICT);
    assert_null(sticky_get(&m, "one-too-many"));
    assert_int_equal(sticky_put(&m, "17", 0, 0.25), SCOUT_OK);   /* an existing user may be rewritten */
    assert_int_equal(sticky_get(&m, "17")->arm, 0);
    assert_int_equal(sticky_get(&m, "999999")->arm, 1);
    sticky_free(&m);
}

/* Reference values from the closed forms: Q = erfc(√(x/2)) for df 1, erfc(√(x/2)) +
 * √(2x/π)·e^{−x/2} for df 3, e^{−x/2}·Σ_{k<df/2} (x/2)^k/k! for even df. */
static void test_chi2_survival_matches_known_quantiles(void **state) {
    (void)state;
    static const struct {
        double x;
        int df;
        double want;
    } cases[] = {
        {3.841458820694124, 1, 0.05},  {6.634896601021214, 1, 0.01},  {10.827566170662733, 1, 0.001},
        {5.991464547107979, 2, 0.05},  {13.815510557964274, 2, 0.001}, {1.0, 1, 0.31731050786291404},
        {0.5, 3, 0.9188914116546758},  {20.0, 10, 0.029252688076961072}, {300.0, 256, 0.030589935099244563},
        {1e-9, 4, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = stats_chi2_sf(cases[i].x, cases[i].df);
        if (fabs(got - cases[i].want) > 1e-9 * fmax(1.0, cases[i].want) + 1e-11)
            fail_msg("chi2_sf(%g, %d) = %.15g, want %.15g", cases[i].x, cases[i].df, got, cases[i].want);
    }
    assert_true(stats_chi2_sf(0, 3) == 1.0);
    assert_true(stats_chi2_sf(-1, 3) == 1.0);
    assert_true(stats_chi2_sf(INFINITY, 3) == 0.0);
    assert_true(stats_chi2_sf(1e6, 2) < 1e-300 + 1e-300);
}

static struct experiment *make(const char *text) {
    json_t *def = json_loads(text, 0, NULL);
    struct experiment *e = NULL;
    char err[256];
    int status;
    assert_non_null(def);
    assert_int_equal(experiment_from_definition(def, "00000000-0000-4000-8000-000000000001", 1.0, &e, &status, err,
                                                sizeof err),
                     SCOUT_OK);
    json_decref(def);
    return e;
}

static void test_sticky_user_keeps_the_variant_while_the_policy_moves(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"s\", \"variants\": {\"0\": \"a\", \"1\": \"b\"}, \"sticky\": true,"
                                " \"policy\": \"thompson\", \"min_updates\": 0, \"probability_floor\": 0}");
    rng_seed(rng_thread(), 9);
    /* Make the policy choose b almost surely, then find a user who got a. */
    for (int i = 0; i < 300; i++) experiment_apply_reward(e, 1, 1.0, NULL, 1.0);
    for (int i = 0; i < 300; i++) experiment_apply_reward(e, 0, 0.0, NULL, 1.0);
    struct decision first = experiment_decide_for(e, NULL, "early-user", 0, NULL);
    assert_int_equal(first.assigned, 1);
    assert_int_equal(first.sticky, 0);
    /* Now turn the tables: a pays, b does not. The user's variant must not move. */
    for (int i = 0; i < 2000; i++) experiment_apply_reward(e, 1 - first.arm, 1.0, NULL, 2.0);
    for (int i = 0; i < 2000; i++) experiment_apply_reward(e, first.arm, 0.0, NULL, 2.0);
    for (int i = 0; i < 50; i++) {
        struct decision d = experiment_decide_for(e, NULL, "early-user", 0, NULL);
        assert_int_equal(d.arm, first.arm);
        assert_int_equal(d.sticky, 1);
        assert_int_equal(d.assigned, 0);
        assert_true(d.propensity == first.propensity);
    }
    /* A new user follows the policy, which now prefers the other variant. */
    int other = 0;
    char user[16];
    for (int i = 0; i < 50; i++) {
        snprintf(user, sizeof user, "new-%d", i);
        other += experiment_decide_for(e, NULL, user, 0, NULL).arm != first.arm;
    }
    assert_true(other >= 48);
    experiment_unref(e);
}

static void test_srm_counters_add_up_to_the_policy_decisions(void **state) {
    (void)state;
    struct experiment *e = make("{\"name\": \"s\", \"variants\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}, \"sticky\": true}");
    uint64_t obs[3];
    double expct[3], total = 0;
    rng_seed(rng_thread(), 3);
    for (int i = 0; i < 500; i++) experiment_decide(e, NULL, 0, NULL);
    for (int i = 0; i < 100; i++) experiment_decide_for(e, NULL, "same-user", 0, NULL);   /* 1 drawn, 99 sticky */
    experiment_srm(e, obs, expct);
    assert_int_equal(obs[0] + obs[1] + obs[2], 501);
    for (int i = 0; i < 3; i++) total += expct[i];
    assert_true(fabs(total - 501.0) < 1e-6);
    experiment_unref(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sticky_map_keeps_every_first_assignment_while_growing),
        cmocka_unit_test(test_sticky_map_refuses_new_users_at_the_cap),
        cmocka_unit_test(test_chi2_survival_matches_known_quantiles),
        cmocka_unit_test(test_sticky_user_keeps_the_variant_while_the_policy_moves),
        cmocka_unit_test(test_srm_counters_add_up_to_the_policy_decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
