/* test_netmask.c — unit tests for address ranges (util/netmask.c), as SCOUT_TRUSTED_PROXIES uses
 * them. What must hold: a single address matches only itself; a range matches exactly the
 * addresses under its prefix, at every prefix length, for IPv4 and IPv6; host bits in a range
 * are ignored; IPv4-mapped IPv6 peers match IPv4 ranges; malformed addresses, prefixes out of
 * range and junk never parse and never match. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/netmask.h"

static struct netmask parsed(const char *text) {
    struct netmask m;
    assert_int_equal(netmask_parse(text, strlen(text), &m), 1);
    return m;
}

static int contains(const char *range, const char *addr) {
    struct netmask m = parsed(range);
    return netmask_contains(&m, 1, addr, strlen(addr));
}

static void test_a_single_address_matches_only_itself(void **state) {
    (void)state;
    assert_true(contains("10.1.2.3", "10.1.2.3"));
    assert_false(contains("10.1.2.3", "10.1.2.4"));
    assert_false(contains("10.1.2.3", "10.1.2.30"));
    assert_true(contains("::1", "::1"));
    assert_true(contains("::1", "0:0:0:0:0:0:0:1"));
    assert_false(contains("::1", "::2"));
    assert_false(contains("127.0.0.1", "::1"));
}

static void test_ranges_match_exactly_their_prefix(void **state) {
    (void)state;
    assert_true(contains("10.244.0.0/16", "10.244.0.1"));
    assert_true(contains("10.244.0.0/16", "10.244.255.255"));
    assert_false(contains("10.244.0.0/16", "10.245.0.0"));
    assert_false(contains("10.244.0.0/16", "10.243.255.255"));
    assert_true(contains("0.0.0.0/0", "203.0.113.9"));
    assert_false(contains("0.0.0.0/0", "2001:db8::1"));
    assert_true(contains("fd00::/8", "fd12:3456::1"));
    assert_false(contains("fd00::/8", "fe80::1"));
    /* every IPv4 prefix length: the last address inside and the first outside */
    for (int bits = 1; bits < 32; bits++) {
        char range[32];
        snprintf(range, sizeof range, "192.168.0.0/%d", bits);
        struct netmask m = parsed(range);
        unsigned long base = (192UL << 24) | (168UL << 16), size = 1UL << (32 - bits);
        base &= ~(size - 1);
        unsigned long last = base + size - 1, next = base + size;
        char a[64], b[64];
        snprintf(a, sizeof a, "%lu.%lu.%lu.%lu", last >> 24, (last >> 16) & 255, (last >> 8) & 255, last & 255);
        snprintf(b, sizeof b, "%lu.%lu.%lu.%lu", (next >> 24) & 255, (next >> 16) & 255, (next >> 8) & 255, next & 255);
        assert_true(netmask_contains(&m, 1, a, strlen(a)));
        if (next < (1UL << 32)) assert_false(netmask_contains(&m, 1, b, strlen(b)));
    }
    /* an IPv6 prefix that ends inside a byte */
    assert_true(contains("2001:db8:abcd:ab00::/57", "2001:db8:abcd:ab7f:ffff::1"));
    assert_false(contains("2001:db8:abcd:ab00::/57", "2001:db8:abcd:ab80::1"));
}

static void test_host_bits_are_ignored_and_mapped_ipv4_matches(void **state) {
    (void)state;
    assert_true(contains("10.1.2.3/8", "10.200.0.1"));
    assert_true(contains("10.0.0.0/8", "::ffff:10.9.8.7"));
    assert_false(contains("10.0.0.0/8", "::ffff:11.0.0.1"));
}

static void test_malformed_entries_never_parse_or_match(void **state) {
    static const char *const bad[] = {"", "10.0.0", "10.0.0.256", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1",
                                      "10.0.0.0/8x", "::1/129", "localhost", "10.0.0.0/ 8", "1.2.3.4/08x",
                                      "2001:db8::g", "10.0.0.0/8/8"};
    struct netmask m;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(netmask_parse(bad[i], strlen(bad[i]), &m), 0);
    m = parsed("10.0.0.0/8");
    assert_false(netmask_contains(&m, 1, "", 0));
    assert_false(netmask_contains(&m, 1, "10.0.0", 6));
    assert_false(netmask_contains(&m, 1, "10.0.0.1 ", 9));
    /* the length given is honoured: "10.0.0.1" inside a longer buffer */
    assert_true(netmask_contains(&m, 1, "10.0.0.1,11.0.0.1", 8));
}

static void test_a_list_matches_when_any_entry_does(void **state) {
    struct netmask list[3];
    (void)state;
    assert_int_equal(netmask_parse("127.0.0.1", 9, &list[0]), 1);
    assert_int_equal(netmask_parse("10.244.0.0/16", 13, &list[1]), 1);
    assert_int_equal(netmask_parse("fd00::/8", 8, &list[2]), 1);
    assert_true(netmask_contains(list, 3, "127.0.0.1", 9));
    assert_true(netmask_contains(list, 3, "10.244.3.4", 10));
    assert_true(netmask_contains(list, 3, "fd00::5", 7));
    assert_false(netmask_contains(list, 3, "10.245.3.4", 10));
    assert_false(netmask_contains(list, 0, "127.0.0.1", 9));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_single_address_matches_only_itself),
        cmocka_unit_test(test_ranges_match_exactly_their_prefix),
        cmocka_unit_test(test_host_bits_are_ignored_and_mapped_ipv4_matches),
        cmocka_unit_test(test_malformed_entries_never_parse_or_match),
        cmocka_unit_test(test_a_list_matches_when_any_entry_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
