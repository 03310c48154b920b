/* test_util_http.c — unit tests for the small helpers in util/util.c and the request-body and
 * error helpers in http.c (those that need no libmicrohttpd connection).
 *
 * What must hold:
 *   - util_parse_index accepts exactly the canonical decimals 0..max;
 *   - util_iso8601 prints the UTC time with its whole milliseconds;
 *   - util_uuid4 gives well-formed, distinct version-4 UUIDs;
 *   - http_parse_body accepts any JSON value, and refuses empty, malformed or duplicate-key
 *     bodies with 400 and a {"detail": ...} body; http_error always yields a JSON detail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
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
        cmocka_unit_test(test_parse_body_accepts_any_json_value),
        cmocka_unit_test(test_parse_body_refuses_empty_malformed_and_duplicate_keys),
        cmocka_unit_test(test_parse_body_reads_only_body_len_bytes),
        cmocka_unit_test(test_error_sets_status_and_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
