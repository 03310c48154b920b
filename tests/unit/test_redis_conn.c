/* test_redis_conn.c — unit tests for connecting to Redis (store/redis_conn.c), against a real
 * redis-server with requirepass and an ACL user.
 * What must hold: the right password (or ACL user and password) connects; a wrong one, a
 * missing one, or one given to a Redis without a password is refused with SCOUT_EINVAL and a
 * sentence that says which, never containing the password; an unreachable Redis is SCOUT_ESTORE;
 * the database is selected; a link survives a Redis restart: commands fail fast while it is
 * down (no stall beyond the backoff), and work again once it is back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "redis_server.h"
#include "store/redis_conn.h"
#include "util/common.h"
#include "util/util.h"

#define PASSWORD "s3cret-Pa55word"

static struct redis_server server;

static int setup(void **state) {
    static const char *const args[] = {"--requirepass", PASSWORD, NULL};
    (void)state;
    if (redis_server_start(&server, 0, args) != 0) {
        print_error("redis-server did not start (is the redis-server package installed?)\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    redis_server_stop(&server);
    return 0;
}

static struct redis_config config(const char *user, const char *password) {
    return (struct redis_config){"127.0.0.1", server.port, user, password, 0, 2.0};
}

static void test_the_right_password_connects_and_selects_the_database(void **state) {
    (void)state;
    struct redis_config cfg = config(NULL, PASSWORD);
    redisContext *c;
    char err[200] = "";
    cfg.db = 3;
    assert_int_equal(redis_open(&cfg, &c, err, sizeof err), SCOUT_OK);
    redisReply *r = redisCommand(c, "SET scout:unit:k v");
    freeReplyObject(r);
    r = redisCommand(c, "CLIENT INFO");
    assert_non_null(r);
    assert_non_null(strstr(r->str, " db=3 "));
    freeReplyObject(r);
    redisFree(c);
}

static void expect_refused(struct redis_config cfg, const char *needle) {
    redisContext *c = (redisContext *)1;
    char err[200] = "";
    assert_int_equal(redis_open(&cfg, &c, err, sizeof err), SCOUT_EINVAL);
    assert_null(c);
    if (!strstr(err, needle)) fail_msg("error '%s' does not say '%s'", err, needle);
    if (cfg.password && strstr(err, cfg.password)) fail_msg("the error shows the password: %s", err);
}

static void test_wrong_or_missing_credentials_are_refused_clearly(void **state) {
    (void)state;
    expect_refused(config(NULL, "not-the-password"), "wrong password");
    expect_refused(config(NULL, NULL), "requires a password");
    expect_refused(config("nobody", PASSWORD), "wrong password or user");
}

static void test_an_acl_user_connects_with_its_own_password(void **state) {
    (void)state;
    struct redis_config admin = config(NULL, PASSWORD), app = config("scout", "app-pw-123");
    redisContext *c;
    char err[200];
    assert_int_equal(redis_open(&admin, &c, err, sizeof err), SCOUT_OK);
    freeReplyObject(redisCommand(c, "ACL SETUSER scout on >app-pw-123 ~scout:* +@all"));
    redisFree(c);
    assert_int_equal(redis_open(&app, &c, err, sizeof err), SCOUT_OK);
    redisFree(c);
    expect_refused(config("scout", "Xq-not-it-77"), "wrong password or user");
}

static void test_a_password_given_to_an_open_redis_is_refused(void **state) {
    (void)state;
    struct redis_server open_redis;
    assert_int_equal(redis_server_start(&open_redis, 0, NULL), 0);
    struct redis_config cfg = {"127.0.0.1", open_redis.port, NULL, "pw", 0, 2.0};
    redisContext *c;
    char err[200] = "";
    int rc = redis_open(&cfg, &c, err, sizeof err);
    redis_server_stop(&open_redis);
    assert_int_equal(rc, SCOUT_EINVAL);
    assert_non_null(strstr(err, "no password set"));
}

static void test_an_unreachable_redis_is_a_store_error(void **state) {
    (void)state;
    struct redis_config cfg = {"127.0.0.1", redis_free_port(), NULL, PASSWORD, 0, 1.0};
    redisContext *c;
    char err[200] = "";
    assert_int_equal(redis_open(&cfg, &c, err, sizeof err), SCOUT_ESTORE);
    assert_non_null(strstr(err, "cannot reach Redis"));
}

static void test_a_link_fails_fast_while_redis_is_down_and_recovers(void **state) {
    (void)state;
    static const char *const args[] = {"--requirepass", PASSWORD, NULL};
    struct redis_server rs;
    struct redis_link l;
    redisReply *r;
    assert_int_equal(redis_server_start(&rs, 0, args), 0);
    struct redis_config cfg = {"127.0.0.1", rs.port, NULL, PASSWORD, 0, 1.0};
    redis_link_init(&l, &cfg);
    assert_non_null(r = redis_link_command(&l, "PING"));
    freeReplyObject(r);
    redis_server_stop(&rs);
    /* The broken connection shows on the next command; then the backoff answers at once. */
    assert_null(redis_link_command(&l, "PING"));
    double t0 = util_monotonic();
    for (int i = 0; i < 1000; i++) assert_null(redis_link_command(&l, "PING"));
    assert_true(util_monotonic() - t0 < 1.0);
    assert_true(l.last_error[0] != '\0');
    assert_int_equal(redis_server_start(&rs, rs.port, args), 0);
    /* Back within the backoff (at most 5 s; here a few hundred ms). */
    double t1 = util_monotonic();
    while (!(r = redis_link_command(&l, "PING")) && util_monotonic() - t1 < 10.0) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    assert_int_equal(l.connects, 2);
    redis_link_close(&l);
    redis_server_stop(&rs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_right_password_connects_and_selects_the_database),
        cmocka_unit_test(test_wrong_or_missing_credentials_are_refused_clearly),
        cmocka_unit_test(test_an_acl_user_connects_with_its_own_password),
        cmocka_unit_test(test_a_password_given_to_an_open_redis_is_refused),
        cmocka_unit_test(test_an_unreachable_redis_is_a_store_error),
        cmocka_unit_test(test_a_link_fails_fast_while_redis_is_down_and_recovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
