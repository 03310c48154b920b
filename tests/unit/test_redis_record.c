/* test_redis_record.c — unit tests for the Redis store's decision record (store/redis_record.c).
 * What must hold: a record written is read back with every field (the times to the
 * microsecond); the context, whatever it holds (spaces, newlines, JSON), comes back byte for
 * byte and an empty one as none; times are written without losing a microsecond and sort as
 * numbers; and a value that is not a record of this format (a field missing, one too many,
 * junk, a flag out of range, a number running past the line) is refused; a record is known by
 * its creation time as written, and by nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_record.h"

static struct redis_record sample(void) {
    struct redis_record r = {3, 0.1, 1, 1764524400.123456, 1764610800.123456, 1764528000.5, 2, 1, -0.25,
                             184467440737ULL, 4, 0.30000000000000004, 1, "{\"device\": \"mobile\"}"};
    return r;
}

static struct redis_record round_trip(const struct redis_record *in, char **text) {
    size_t len;
    struct redis_record out;
    *text = redis_record_value(in, &len);
    assert_non_null(*text);
    assert_int_equal(strlen(*text), len);
    assert_int_equal(redis_record_parse(*text, len, &out), 0);
    return out;
}

static void test_a_record_is_read_back_with_every_field(void **state) {
    (void)state;
    struct redis_record in = sample();
    char *text;
    struct redis_record out = round_trip(&in, &text);
    assert_int_equal(out.variant, 3);
    assert_true(out.propensity == 0.1);
    assert_int_equal(out.explored, 1);
    assert_true(fabs(out.created - in.created) < 1e-6);
    assert_true(fabs(out.expires - in.expires) < 1e-6);
    assert_true(out.settle_at == 1764528000.5);
    assert_int_equal(out.aggregate, 2);
    assert_int_equal(out.has_default, 1);
    assert_true(out.default_reward == -0.25);
    assert_true(out.model_version == 184467440737ULL);
    assert_int_equal(out.rewards, 4);
    assert_true(out.sum == 0.30000000000000004);   /* sums keep every bit */
    assert_int_equal(out.settled, 1);
    assert_string_equal(out.context, "{\"device\": \"mobile\"}");
    free(text);
}

static void test_no_default_no_window_and_no_context_are_read_back_as_none(void **state) {
    (void)state;
    struct redis_record in = sample();
    in.has_default = 0;
    in.default_reward = 7;
    in.settle_at = 0;
    in.context = NULL;
    in.settled = 0;
    char *text;
    struct redis_record out = round_trip(&in, &text);
    assert_int_equal(out.has_default, 0);
    assert_true(out.settle_at == 0);
    assert_null(out.context);
    assert_int_equal(out.settled, 0);
    assert_non_null(strstr(text, " - "));   /* the documented "no default" */
    free(text);
}

static void test_a_context_comes_back_byte_for_byte(void **state) {
    (void)state;
    const char *contexts[] = {"{\"a\": \"x y\\nz\"}", "line one\nline two\n", " 1 2 3 ", "\n", "-"};
    for (size_t i = 0; i < sizeof contexts / sizeof *contexts; i++) {
        struct redis_record in = sample();
        in.context = contexts[i];
        char *text;
        struct redis_record out = round_trip(&in, &text);
        assert_string_equal(out.context, contexts[i]);
        assert_int_equal(out.variant, 3);
        free(text);
    }
}

static void test_times_keep_the_microsecond_and_sort_as_numbers(void **state) {
    (void)state;
    char a[REDIS_RECORD_TIME_MAX], b[REDIS_RECORD_TIME_MAX];
    assert_int_equal(redis_record_time(a, 1764524400.000001), strlen("1764524400.000001"));
    assert_string_equal(a, "1764524400.000001");
    redis_record_time(a, 1764524400.9999996);   /* rounds up into the next second */
    assert_string_equal(a, "1764524401.000000");
    redis_record_time(a, 12.5);
    assert_string_equal(a, "12.500000");
    redis_record_time(a, 0);
    assert_string_equal(a, "0");
    redis_record_time(a, -3.25);
    assert_true(strtod(a, NULL) == -3.25);
    for (double t = 1764524400.0; t < 1764524400.01; t += 0.0007) {
        redis_record_time(a, t);
        redis_record_time(b, t + 1e-6);
        assert_true(fabs(strtod(a, NULL) - t) <= 5e-7);
        assert_true(strtod(a, NULL) < strtod(b, NULL));
    }
}

/* A time read back and written again gives the same text, up to the last time written with six
 * decimals and past it: the record's creation time names it in the stream of request ids.
 * (Near 9e9 s, where doubles are 1.9 µs apart, the text used to drift by a microsecond.) */
static void test_a_time_written_again_gives_the_same_text(void **state) {
    (void)state;
    const double times[] = {1.0, 1764524400.123456, 4294967295.999999, 4294967295.9999996, 4294967296.0,
                            8821220026.6410007, 8999999999.999999, 9e9 + 0.5, 1e12};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char a[REDIS_RECORD_TIME_MAX], b[REDIS_RECORD_TIME_MAX], c[REDIS_RECORD_TIME_MAX];
        redis_record_time(a, times[i]);
        redis_record_time(b, strtod(a, NULL));
        redis_record_time(c, strtod(b, NULL));
        assert_string_equal(a, b);
        assert_string_equal(b, c);
    }
    for (double t = 4294967200.0; t < 4294967296.0; t += 0.9999991) {   /* the last seconds written so */
        char a[REDIS_RECORD_TIME_MAX], b[REDIS_RECORD_TIME_MAX];
        redis_record_time(a, t);
        redis_record_time(b, strtod(a, NULL));
        assert_string_equal(a, b);
    }
}

static void test_the_longest_numbers_fit_and_read_back(void **state) {
    (void)state;
    struct redis_record in = {LONG_MIN, -1.2345678901234567e-308, 1, -1.2345678901234567e+300,
                              -2.2250738585072014e-308, 9.9999999999999999e+307, 16, 1, -1.7976931348623157e308,
                              UINT64_MAX, LONG_MIN, -4.9406564584124654e-324, 1, NULL};
    char head[REDIS_RECORD_HEAD_MAX];
    size_t len = redis_record_head(head, &in);
    struct redis_record out;
    assert_true(len < REDIS_RECORD_HEAD_MAX);
    assert_int_equal(strlen(head), len);
    assert_int_equal(redis_record_parse(head, len, &out), 0);
    assert_true(out.variant == LONG_MIN && out.rewards == LONG_MIN && out.model_version == UINT64_MAX);
    assert_true(out.propensity == in.propensity && out.created == in.created && out.expires == in.expires);
    assert_true(out.settle_at == in.settle_at && out.default_reward == in.default_reward && out.sum == in.sum);
    in.sum = 3;   /* whole numbers are written as integers */
    in.default_reward = -2;
    in.propensity = 1;
    redis_record_head(head, &in);
    assert_non_null(strstr(head, " 1 1 "));
    assert_non_null(strstr(head, " -2 "));
    assert_non_null(strstr(head, " 3 1\n"));
}

static void test_values_that_are_not_records_are_refused(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        "no newline at all",
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 0",          /* no newline */
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0\n{}",         /* a field missing */
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 0 9\n{}",     /* one too many */
        "3 0.1 2 1764524400 1764610800 0 0 - 17 0 0 0\n",         /* explored is 0 or 1 */
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 2\n",         /* settled is 0 or 1 */
        "3 0.1 1 1764524400 1764610800 0 99 - 17 0 0 0\n",        /* no such aggregation */
        "3 0.1 1 1764524400 1764610800 0 0 - -17 0 0 0\n",        /* a negative model version */
        "x 0.1 1 1764524400 1764610800 0 0 - 17 0 0 0\n",         /* junk for a number */
        "3  0.1 1 1764524400 1764610800 0 0 - 17 0 0 0\n",        /* two spaces */
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 \n5\n",       /* a number running past the line */
        "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 99999999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct redis_record r;
        if (redis_record_parse(bad[i], strlen(bad[i]), &r) != -1) fail_msg("accepted: %s", bad[i]);
    }
    struct redis_record r;
    const char *good = "3 0.1 1 1764524400 1764610800 0 0 - 17 0 0 0\n";
    assert_int_equal(redis_record_parse(good, strlen(good), &r), 0);
    assert_null(r.context);
}

/* dlog's entries name the record they were written with by its creation time, as text: the
 * record written again (same request id, a later decision) no longer matches the old entry. */
static void test_a_record_is_known_by_its_creation_time_as_written(void **state) {
    (void)state;
    struct redis_record in = sample(), later = sample();
    char t[REDIS_RECORD_TIME_MAX], t2[REDIS_RECORD_TIME_MAX], *text;
    size_t len;
    redis_record_time(t, in.created);
    later.created += 1e-6;
    redis_record_time(t2, later.created);
    assert_non_null(text = redis_record_value(&in, &len));
    assert_true(redis_record_created_at(text, len, t));
    assert_false(redis_record_created_at(text, len, t2));
    assert_false(redis_record_created_at(text, len, "1764524400.12345"));     /* a prefix of it */
    assert_false(redis_record_created_at(text, len, "1764524400.1234567"));   /* longer */
    assert_false(redis_record_created_at(text, len, ""));
    free(text);
    const char *short_line = "3 0.1 1", *broken = "3 0.1\n1 1764524400.123456 x";
    assert_false(redis_record_created_at(short_line, strlen(short_line), t));   /* no line end */
    assert_false(redis_record_created_at(broken, strlen(broken), t));           /* past the line */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_record_is_read_back_with_every_field),
        cmocka_unit_test(test_no_default_no_window_and_no_context_are_read_back_as_none),
        cmocka_unit_test(test_a_context_comes_back_byte_for_byte),
        cmocka_unit_test(test_times_keep_the_microsecond_and_sort_as_numbers),
        cmocka_unit_test(test_a_time_written_again_gives_the_same_text),
        cmocka_unit_test(test_the_longest_numbers_fit_and_read_back),
        cmocka_unit_test(test_values_that_are_not_records_are_refused),
        cmocka_unit_test(test_a_record_is_known_by_its_creation_time_as_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
