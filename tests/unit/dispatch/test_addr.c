/* The address rules and --allow-networks (src/dispatch/addr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "util/err.h"

/* addr_check() of a textual address; fails the test on a malformed one. */
static const char *
check(const char *text, const struct addr_list *allow)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;

    memset(&s4, 0, sizeof(s4));
    memset(&s6, 0, sizeof(s6));
    if (inet_pton(AF_INET, text, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        return addr_check((const struct sockaddr *)&s4, allow);
    }
    if (inet_pton(AF_INET6, text, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        return addr_check((const struct sockaddr *)&s6, allow);
    }
    fail_msg("bad test address '%s'", text);
    return NULL;
}

static void
expect_blocked(const char *text, const char *why, const struct addr_list *allow)
{
    const char *got = check(text, allow);

    if (got == NULL)
        fail_msg("%s: allowed, expected blocked (%s)", text, why);
    if (strcmp(got, why) != 0)
        fail_msg("%s: blocked as '%s', expected '%s'", text, got, why);
}

static void
expect_allowed(const char *text, const struct addr_list *allow)
{
    const char *got = check(text, allow);

    if (got != NULL)
        fail_msg("%s: blocked (%s), expected allowed", text, got);
}

static void
test_v4_ranges(void **state)
{
    (void)state;
    expect_blocked("127.0.0.1", "loopback", NULL);
    expect_blocked("127.255.255.254", "loopback", NULL);
    expect_blocked("10.0.0.0", "private network", NULL);
    expect_blocked("10.1.2.3", "private network", NULL);
    expect_blocked("10.255.255.255", "private network", NULL);
    expect_blocked("172.16.0.1", "private network", NULL);
    expect_blocked("172.31.255.255", "private network", NULL);
    expect_blocked("192.168.0.1", "private network", NULL);
    expect_blocked("192.168.255.255", "private network", NULL);
    expect_blocked("169.254.0.1", "link-local", NULL);
    expect_blocked("169.254.169.254", "link-local", NULL); /* cloud metadata */
    expect_blocked("100.64.0.1", "carrier-grade NAT", NULL);
    expect_blocked("100.127.255.255", "carrier-grade NAT", NULL);
    expect_blocked("224.0.0.1", "multicast", NULL);
    expect_blocked("239.255.255.250", "multicast", NULL);
    expect_blocked("0.0.0.0", "unspecified address", NULL);
    expect_blocked("0.1.2.3", "unspecified network", NULL);
    expect_blocked("255.255.255.255", "broadcast", NULL);
    expect_blocked("240.0.0.1", "reserved", NULL);
}

static void
test_v4_public_and_edges(void **state)
{
    (void)state;
    expect_allowed("8.8.8.8", NULL);
    expect_allowed("1.1.1.1", NULL);
    expect_allowed("93.184.216.34", NULL);
    /* Just outside each blocked range. */
    expect_allowed("9.255.255.255", NULL);
    expect_allowed("11.0.0.0", NULL);
    expect_allowed("172.15.255.255", NULL);
    expect_allowed("172.32.0.0", NULL);
    expect_allowed("192.167.255.255", NULL);
    expect_allowed("192.169.0.0", NULL);
    expect_allowed("169.253.255.255", NULL);
    expect_allowed("169.255.0.0", NULL);
    expect_allowed("100.63.255.255", NULL);
    expect_allowed("100.128.0.0", NULL);
    expect_allowed("126.255.255.255", NULL);
    expect_allowed("128.0.0.0", NULL);
    expect_allowed("223.255.255.255", NULL);
    expect_allowed("1.0.0.0", NULL);
}

static void
test_v6_ranges(void **state)
{
    (void)state;
    expect_blocked("::1", "loopback", NULL);
    expect_blocked("::", "unspecified address", NULL);
    expect_blocked("fc00::1", "private network", NULL);
    expect_blocked("fd12:3456:789a::1", "private network", NULL);
    expect_blocked("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private network", NULL);
    expect_blocked("fe80::1", "link-local", NULL);
    expect_blocked("febf:ffff::1", "link-local", NULL);
    expect_blocked("fec0::1", "private network", NULL);
    expect_blocked("ff02::1", "multicast", NULL);
    expect_blocked("ff05::1:3", "multicast", NULL);
    expect_allowed("2001:4860:4860::8888", NULL);
    expect_allowed("2606:4700:4700::1111", NULL);
    expect_allowed("fbff:ffff::1", NULL);
    expect_allowed("fe00::1", NULL);
}

static void
test_v6_embedded_v4(void **state)
{
    (void)state;
    /* IPv4-mapped. */
    expect_blocked("::ffff:127.0.0.1", "loopback", NULL);
    expect_blocked("::ffff:10.1.2.3", "private network", NULL);
    expect_blocked("::ffff:172.16.5.4", "private network", NULL);
    expect_blocked("::ffff:192.168.1.1", "private network", NULL);
    expect_blocked("::ffff:169.254.169.254", "link-local", NULL);
    expect_blocked("::ffff:100.64.1.1", "carrier-grade NAT", NULL);
    expect_blocked("::ffff:224.0.0.1", "multicast", NULL);
    expect_blocked("::ffff:0.0.0.0", "unspecified address", NULL);
    expect_blocked("::ffff:255.255.255.255", "broadcast", NULL);
    expect_blocked("::ffff:7f00:1", "loopback", NULL);
    expect_allowed("::ffff:8.8.8.8", NULL);
    /* IPv4-compatible (deprecated). */
    expect_blocked("::127.0.0.1", "loopback", NULL);
    expect_blocked("::10.0.0.1", "private network", NULL);
    expect_blocked("::192.168.0.1", "private network", NULL);
    expect_allowed("::8.8.8.8", NULL);
    /* NAT64 well-known prefix. */
    expect_blocked("64:ff9b::10.0.0.1", "private network", NULL);
    expect_blocked("64:ff9b::127.0.0.1", "loopback", NULL);
    expect_allowed("64:ff9b::8.8.8.8", NULL);
}

static void
test_allow_networks(void **state)
{
    struct addr_list l;
    char err[256];

    (void)state;
    assert_int_equal(addr_list_parse("127.0.0.0/8, 10.1.0.0/16,fd00::/8,::1", &l, err, sizeof(err)),
                     0);
    assert_int_equal(l.n, 4);
    expect_allowed("127.0.0.1", &l);
    expect_allowed("127.9.9.9", &l);
    expect_allowed("10.1.2.3", &l);
    expect_blocked("10.2.0.1", "private network", &l);
    expect_blocked("192.168.1.1", "private network", &l);
    expect_allowed("fd00::5", &l);
    expect_blocked("fc00::5", "private network", &l);
    expect_allowed("::1", &l);
    expect_blocked("fe80::1", "link-local", &l);
    /* An allowed IPv4 range covers its mapped forms too. */
    expect_allowed("::ffff:127.0.0.1", &l);
    expect_allowed("::ffff:10.1.9.9", &l);
    expect_blocked("::ffff:10.9.9.9", "private network", &l);
    addr_list_cleanup(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.nets);
}

static void
test_allow_parse_forms(void **state)
{
    struct addr_list l;
    char err[256];

    (void)state;
    /* Host bits are cleared. */
    assert_int_equal(addr_list_parse("10.1.2.3/8", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.nets[0].prefix, 8);
    assert_int_equal(l.nets[0].net[1], 0);
    expect_allowed("10.200.0.1", &l);
    addr_list_cleanup(&l);
    /* A bare address is one host. */
    assert_int_equal(addr_list_parse("192.168.1.10", &l, err, sizeof(err)), 0);
    assert_int_equal(l.nets[0].prefix, 32);
    expect_allowed("192.168.1.10", &l);
    expect_blocked("192.168.1.11", "private network", &l);
    addr_list_cleanup(&l);
    /* /0 allows every address of its family. */
    assert_int_equal(addr_list_parse("0.0.0.0/0", &l, err, sizeof(err)), 0);
    expect_allowed("127.0.0.1", &l);
    expect_allowed("::ffff:10.0.0.1", &l);
    expect_blocked("::1", "loopback", &l);
    addr_list_cleanup(&l);
    /* Nothing: an empty list. */
    assert_int_equal(addr_list_parse(NULL, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(addr_list_parse("  ", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(dispatch_networks_check(NULL, err, sizeof(err)), 0);
    assert_int_equal(dispatch_networks_check("127.0.0.0/8,::1/128", err, sizeof(err)), 0);
}

static void
expect_cidr_error(const char *list, const char *needle)
{
    char err[256] = "";

    assert_int_equal(dispatch_networks_check(list, err, sizeof(err)), ERR_PARSE);
    if (strstr(err, needle) == NULL)
        fail_msg("error for '%s' is '%s', expected it to contain '%s'", list, err, needle);
}

static void
test_cidr_errors(void **state)
{
    (void)state;
    expect_cidr_error("10.0.0.0/33", "'10.0.0.0/33': prefix length must be 0..32");
    expect_cidr_error("fd00::/129", "'fd00::/129': prefix length must be 0..128");
    expect_cidr_error("10.0.0.0/", "'10.0.0.0/'");
    expect_cidr_error("10.0.0.0/8x", "'10.0.0.0/8x'");
    expect_cidr_error("10.0.0.0/-1", "'10.0.0.0/-1'");
    expect_cidr_error("10.0.0.0/0008", "'10.0.0.0/0008'");
    expect_cidr_error("10.0.0/8", "'10.0.0/8': expected a CIDR");
    expect_cidr_error("300.0.0.0/8", "'300.0.0.0/8'");
    expect_cidr_error("localhost", "'localhost'");
    expect_cidr_error("/8", "'/8'");
    expect_cidr_error("127.0.0.0/8,,::1", "item 2 is empty");
    expect_cidr_error("127.0.0.0/8,", "item 2 is empty");
    expect_cidr_error("127.0.0.0/8, nope", "'nope'");
    expect_cidr_error("fe80::1%eth0", "'fe80::1%eth0'");
}

static void
test_format(void **state)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    char out[64];

    (void)state;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    addr_format((const struct sockaddr *)&s4, out, sizeof(out));
    assert_string_equal(out, "10.1.2.3");
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
    addr_format((const struct sockaddr *)&s6, out, sizeof(out));
    assert_string_equal(out, "::ffff:10.1.2.3");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_ranges),      cmocka_unit_test(test_v4_public_and_edges),
        cmocka_unit_test(test_v6_ranges),      cmocka_unit_test(test_v6_embedded_v4),
        cmocka_unit_test(test_allow_networks), cmocka_unit_test(test_allow_parse_forms),
        cmocka_unit_test(test_cidr_errors),    cmocka_unit_test(test_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
