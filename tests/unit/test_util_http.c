/* test_util_http.c — unit tests for the small helpers in util/util.c and the request-body and
 * error helpers in http.c (those that need no libmicrohttpd connection).
 *
 * What must hold:
 *   - util_parse_index accepts exactly the canonical decimals 0..max;
 *   - util_iso8601 prints the UTC time with its whole milliseconds;
 *   - util_uuid4 gives well-formed, distinct version-4 UUIDs; util_uuid4_timed too, with the
 *     time in its first 48 bits, so ids made later sort later;
 *   - util_random's bytes are distinct across calls and threads and evenly spread;
 *   - a deferred answer is finished exactly once, whether its work ends before or after the
 *     server parks it, and http_deferred_wait returns the finished response;
 *   - http_parse_body accepts any JSON value, and refuses empty, malformed or duplicate-key
 *     bodies with 400 and a {"detail": ...} body; http_error always yields a JSON detail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util/common.h"
#include "util/util.h"

/* ---- util_parse_index ------------------------------------------------------------------- */

static void test_parse_index_accepts_canonical_decimals(void **state) {
    (void)state;
    long v = -1;
    assert_true(util_parse_index("0", 10, &v));
    assert_int_equal(v, 0);
    assert_true(util_parse_index("17", 100, &v));
    assert_int_equal(v, 17);
    assert_true(util_parse_index("1000000000", SCOUT_MAX_VARIANT_ID, &v));
    assert_int_equal(v, 1000000000);
    assert_true(util_parse_index("10", 10, &v));   /* max is inclusive */
}

static void test_parse_index_rejects_everything_else(void **state) {
    (void)state;
    static const char *bad[] = {"", "-1", "+1", "01", "00", "1.5", "1e3", "a", " 1", "1 ", "0x1", "11", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long v = 12345;
        if (util_parse_index(bad[i], 10, &v)) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
        assert_int_equal(v, 12345);   /* untouched on failure */
    }
    long v;
    assert_false(util_parse_index(NULL, 10, &v));
    assert_false(util_parse_index("1000000001", SCOUT_MAX_VARIANT_ID, &v));
}

/* ---- util_iso8601 ------------------------------------------------------------------------ */

static void test_iso8601_formats_utc_with_milliseconds(void **state) {
    (void)state;
    char buf[40];
    util_iso8601(0.0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    util_iso8601(951782400.5, buf, sizeof buf);   /* a leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00.500Z");
    /* just below a whole second: either truncated or carried into the next second, but
     * never a 4-digit "1000" millisecond field */
    util_iso8601(1764020081.9999999, buf, sizeof buf);
    assert_int_equal(strlen(buf), 24);
    assert_true(!strcmp(buf, "2025-11-24T21:34:41.999Z") || !strcmp(buf, "2025-11-24T21:34:42.000Z"));
}

/* Times reach the formatter as whole milliseconds over 1000 (the decision counters keep
 * milliseconds: last_prediction_ms / 1000.0). Those must print as the same milliseconds. */
static void test_iso8601_prints_whole_milliseconds_exactly(void **state) {
    (void)state;
    char buf[40], want[16];
    int wrong = 0, first = -1;
    for (int ms = 0; ms < 1000; ms++) {
        double t = (double)(1764020081000LL + ms) / 1000.0;
        util_iso8601(t, buf, sizeof buf);
        snprintf(want, sizeof want, ".%03dZ", ms);
        if (strcmp(buf + 19, want) != 0) {
            if (first < 0) first = ms;
            wrong++;
        }
    }
    if (wrong) {
        double t = (double)(1764020081000LL + first) / 1000.0;
        util_iso8601(t, buf, sizeof buf);
        print_error("%d of 1000 millisecond values print wrong, e.g. %lld ms -> %s\n", wrong,
                    1764020081000LL + first, buf);
        fail();
    }
    util_iso8601(1764020081.123, buf, sizeof buf);
    assert_string_equal(buf, "2025-11-24T21:34:41.123Z");
}

/* ---- util_uuid4 ------------------------------------------------------------------------- */

static void test_uuid4_is_well_formed_and_distinct(void **state) {
    (void)state;
    char a[SCOUT_ID_LEN + 1], b[SCOUT_ID_LEN + 1];
    for (int n = 0; n < 1000; n++) {
        util_uuid4(a);
        assert_int_equal(strlen(a), SCOUT_ID_LEN);
        for (int i = 0; i < SCOUT_ID_LEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) assert_int_equal(a[i], '-');
            else assert_non_null(strchr("0123456789abcdef", a[i]));
        }
        assert_int_equal(a[14], '4');                    /* version 4 */
        assert_non_null(strchr("89ab", a[19]));          /* RFC 4122 variant */
        util_uuid4(b);
        assert_string_not_equal(a, b);
    }
}

static void expect_uuid4_shape(const char *a) {
    assert_int_equal(strlen(a), SCOUT_ID_LEN);
    for (int i = 0; i < SCOUT_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) assert_int_equal(a[i], '-');
        else assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

static void test_timed_uuid4_carries_the_time_and_sorts_by_it(void **state) {
    (void)state;
    char a[SCOUT_ID_LEN + 1], b[SCOUT_ID_LEN + 1], prefix[16];
    double t = 1795000000.123;   /* 2026-11-19 */
    util_uuid4_timed(t, a);
    expect_uuid4_shape(a);
    /* 48 bits of milliseconds, hex: 1795000000123 = 0x01a1ee565e7b */
    snprintf(prefix, sizeof prefix, "%08llx-%04llx", (unsigned long long)(1795000000123ULL >> 16),
             (unsigned long long)(1795000000123ULL & 0xffff));
    assert_memory_equal(a, prefix, 13);
    for (int n = 0; n < 1000; n++) {
        util_uuid4_timed(t + n * 0.001, a);
        util_uuid4_timed(t + n * 0.001 + 0.002, b);
        expect_uuid4_shape(b);
        assert_true(strcmp(a, b) < 0);   /* later sorts later */
        util_uuid4_timed(t, b);
        util_uuid4_timed(t, a);
        assert_string_not_equal(a, b);   /* the same millisecond: still distinct */
    }
}

static void *random_block(void *out) {
    util_random(out, 4096);
    return NULL;
}

static void test_random_bytes_differ_between_threads_and_spread_evenly(void **state) {
    (void)state;
    enum { SIZE = 1 << 20 };
    unsigned char *buf = malloc(SIZE), t1[4096], t2[4096];
    long count[256] = {0};
    double chi2 = 0, expect = SIZE / 256.0;
    pthread_t a, b;
    assert_non_null(buf);
    /* Odd sizes cross the generator's refills at every offset. */
    for (size_t off = 0, step = 1; off < SIZE; off += step, step = step % 97 + 1)
        util_random(buf + off, off + step <= SIZE ? step : SIZE - off);
    for (size_t i = 0; i < SIZE; i++) count[buf[i]]++;
    for (int v = 0; v < 256; v++) chi2 += (count[v] - expect) * (count[v] - expect) / expect;
    /* 255 degrees of freedom: p(chi2 > 360) < 1e-4 for uniform bytes; a stuck or repeating
     * stream is far above it. */
    assert_true(chi2 < 360);
    assert_int_equal(pthread_create(&a, NULL, random_block, t1), 0);
    assert_int_equal(pthread_create(&b, NULL, random_block, t2), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_memory_not_equal(t1, t2, sizeof t1);   /* each thread has its own key */
    assert_memory_not_equal(t1, buf, sizeof t1);
    free(buf);
}

/* ---- deferred answers ------------------------------------------------------------------- */

struct work {
    _Atomic int finished;
    int woken;
};

static void finish_work(void *arg, struct http_resp *r) {
    struct work *w = arg;
    atomic_fetch_add(&w->finished, 1);
    http_json(r, 200, json_pack("{s:i}", "finished", atomic_load(&w->finished)));
}

static void wake_count(void *ud) {
    ((struct work *)ud)->woken++;
}

static void test_deferred_answer_done_before_park_needs_no_wake(void **state) {
    (void)state;
    struct work w = {0};
    struct http_resp r = {0};
    struct http_deferred *d = http_defer(&r, finish_work, &w);
    assert_non_null(d);
    assert_ptr_equal(r.deferred, d);
    http_deferred_done(d);
    assert_int_equal(http_deferred_park(d, wake_count, &w), 0);   /* finished already */
    assert_int_equal(w.woken, 0);
    http_deferred_finish(d, &r);
    assert_null(r.deferred);
    assert_int_equal(atomic_load(&w.finished), 1);
    assert_int_equal(r.status, 200);
    json_decref(r.json);
}

static void test_deferred_answer_parked_first_is_woken_once(void **state) {
    (void)state;
    struct work w = {0};
    struct http_resp r = {0};
    struct http_deferred *d = http_defer(&r, finish_work, &w);
    assert_int_equal(http_deferred_park(d, wake_count, &w), 1);
    assert_int_equal(w.woken, 0);
    http_deferred_done(d);
    assert_int_equal(w.woken, 1);
    http_deferred_finish(d, &r);
    assert_int_equal(atomic_load(&w.finished), 1);
    json_decref(r.json);
}

static void *done_later(void *d) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    http_deferred_done(d);
    return NULL;
}

static void test_deferred_wait_returns_the_finished_answer_whichever_comes_first(void **state) {
    (void)state;
    for (int i = 0; i < 200; i++) {
        struct work w = {0};
        struct http_resp r = {0};
        pthread_t th;
        struct http_deferred *d = http_defer(&r, finish_work, &w);
        if (i % 2) {
            assert_int_equal(pthread_create(&th, NULL, done_later, d), 0);
        } else {
            http_deferred_done(d);
        }
        http_deferred_wait(&r);
        if (i % 2) pthread_join(th, NULL);
        assert_null(r.deferred);
        assert_int_equal(atomic_load(&w.finished), 1);
        assert_int_equal(json_integer_value(json_object_get(r.json, "finished")), 1);
        json_decref(r.json);
    }
    {
        struct http_resp r = {0};
        http_deferred_wait(&r);   /* nothing deferred: nothing happens */
        assert_int_equal(r.status, 0);
    }
}

/* ---- http_parse_body / http_error ------------------------------------------------------- */

static struct http_req req_of(const char *body) {
    struct http_req r;
    memset(&r, 0, sizeof r);
    r.method = "POST";
    r.path = "/";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static void expect_detail(struct http_resp *resp, int status) {
    assert_int_equal(resp->status, status);
    assert_non_null(resp->json);
    json_t *d = json_object_get(resp->json, "detail");
    assert_true(json_is_string(d));
    assert_true(json_string_length(d) > 0);
    assert_int_equal(json_object_size(resp->json), 1);
}

static void test_parse_body_accepts_any_json_value(void **state) {
    (void)state;
    static const char *ok[] = {"{\"a\": 1}", "[1, 2]", "5", "\"text\"", "null", "  {}  "};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct http_req req = req_of(ok[i]);
        struct http_resp resp = {0};
        json_t *out = NULL;
        assert_true(http_parse_body(&req, &resp, &out));
        assert_non_null(out);
        assert_null(resp.json);   /* no error response */
        json_decref(out);
    }
}

static void test_parse_body_refuses_empty_malformed_and_duplicate_keys(void **state) {
    (void)state;
    static const char *bad[] = {"", "{", "{\"a\": }", "{\"a\": 1} trailing", "{\"a\": 1, \"a\": 2}", "nul"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct http_req req = req_of(bad[i]);
        struct http_resp resp = {0};
        json_t *out = NULL;
        assert_false(http_parse_body(&req, &resp, &out));
        assert_null(out);
        expect_detail(&resp, 400);
        json_decref(resp.json);
    }
}

static void test_parse_body_reads_only_body_len_bytes(void **state) {
    (void)state;
    const char text[] = "{\"a\": 1}GARBAGE";
    struct http_req req = req_of(text);
    struct http_resp resp = {0};
    json_t *out = NULL;
    req.body_len = 8;
    assert_true(http_parse_body(&req, &resp, &out));
    assert_int_equal(json_integer_value(json_object_get(out, "a")), 1);
    json_decref(out);
}

static void test_error_sets_status_and_detail(void **state) {
    (void)state;
    struct http_resp resp = {0};
    http_error(&resp, 404, "Model %s not found", "x");
    expect_detail(&resp, 404);
    assert_string_equal(json_string_value(json_object_get(resp.json, "detail")), "Model x not found");
    http_error(&resp, 422, "second");   /* replaces the first (no leak: ASan checks) */
    expect_detail(&resp, 422);
    json_decref(resp.json);
    resp.json = NULL;

    /* A message that is not valid UTF-8 still yields a JSON detail. */
    http_error(&resp, 400, "bad \xc3");
    expect_detail(&resp, 400);
    json_decref(resp.json);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_index_accepts_canonical_decimals),
        cmocka_unit_test(test_parse_index_rejects_everything_else),
        cmocka_unit_test(test_iso8601_formats_utc_with_milliseconds),
        cmocka_unit_test(test_iso8601_prints_whole_milliseconds_exactly),
        cmocka_unit_test(test_uuid4_is_well_formed_and_distinct),
        cmocka_unit_test(test_timed_uuid4_carries_the_time_and_sorts_by_it),
        cmocka_unit_test(test_random_bytes_differ_between_threads_and_spread_evenly),
        cmocka_unit_test(test_deferred_answer_done_before_park_needs_no_wake),
        cmocka_unit_test(test_deferred_answer_parked_first_is_woken_once),
        cmocka_unit_test(test_deferred_wait_returns_the_finished_answer_whichever_comes_first),
        cmocka_unit_test(test_parse_body_accepts_any_json_value),
        cmocka_unit_test(test_parse_body_refuses_empty_malformed_and_duplicate_keys),
        cmocka_unit_test(test_parse_body_reads_only_body_len_bytes),
        cmocka_unit_test(test_error_sets_status_and_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
