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

/*
 * The first and last address of every entry of the table, and the addresses
 * just outside it, with the verdict the IANA registries give them (the
 * longest matching prefix decides; NULL: may be connected to).
 */
static const struct {
    const char *addr;
    const char *why;
} registry_bounds[] = {
    {"0.0.0.0", "unspecified address"},
    {"0.255.255.255", "unspecified network"},
    {"1.0.0.0", NULL},
    {"0.0.0.1", "unspecified network"},
    {"9.255.255.255", NULL},
    {"10.0.0.0", "private network"},
    {"10.255.255.255", "private network"},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.64.0.0", "carrier-grade NAT"},
    {"100.127.255.255", "carrier-grade NAT"},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"127.0.0.0", "loopback"},
    {"127.255.255.255", "loopback"},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.254.0.0", "link-local"},
    {"169.254.255.255", "link-local"},
    {"169.255.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.16.0.0", "private network"},
    {"172.31.255.255", "private network"},
    {"172.32.0.0", NULL},
    {"191.255.255.255", NULL},
    {"192.0.0.0", "IPv4 service continuity"},
    {"192.0.0.255", "IETF protocol assignments"},
    {"192.0.1.0", NULL},
    {"192.0.0.7", "IPv4 service continuity"},
    {"192.0.0.8", "IPv4 dummy address"},
    {"192.0.0.9", NULL},
    {"192.0.0.10", NULL},
    {"192.0.0.11", "IETF protocol assignments"},
    {"192.0.0.169", "IETF protocol assignments"},
    {"192.0.0.170", "NAT64/DNS64 discovery"},
    {"192.0.0.171", "NAT64/DNS64 discovery"},
    {"192.0.0.172", "IETF protocol assignments"},
    {"192.0.1.255", NULL},
    {"192.0.2.0", "documentation"},
    {"192.0.2.255", "documentation"},
    {"192.0.3.0", NULL},
    {"192.31.195.255", NULL},
    {"192.31.196.0", NULL},
    {"192.31.196.255", NULL},
    {"192.31.197.0", NULL},
    {"192.52.192.255", NULL},
    {"192.52.193.0", NULL},
    {"192.52.193.255", NULL},
    {"192.52.194.0", NULL},
    {"192.88.98.255", NULL},
    {"192.88.99.0", "6to4 relay anycast"},
    {"192.88.99.255", "6to4 relay anycast"},
    {"192.88.100.0", NULL},
    {"192.167.255.255", NULL},
    {"192.168.0.0", "private network"},
    {"192.168.255.255", "private network"},
    {"192.169.0.0", NULL},
    {"192.175.47.255", NULL},
    {"192.175.48.0", NULL},
    {"192.175.48.255", NULL},
    {"192.175.49.0", NULL},
    {"198.17.255.255", NULL},
    {"198.18.0.0", "benchmarking"},
    {"198.19.255.255", "benchmarking"},
    {"198.20.0.0", NULL},
    {"198.51.99.255", NULL},
    {"198.51.100.0", "documentation"},
    {"198.51.100.255", "documentation"},
    {"198.51.101.0", NULL},
    {"203.0.112.255", NULL},
    {"203.0.113.0", "documentation"},
    {"203.0.113.255", "documentation"},
    {"203.0.114.0", NULL},
    {"223.255.255.255", NULL},
    {"224.0.0.0", "multicast"},
    {"239.255.255.255", "multicast"},
    {"240.0.0.0", "reserved"},
    {"255.255.255.255", "broadcast"},
    {"255.255.255.254", "reserved"},
    {"::", "unspecified address"},
    {"::1", "loopback"},
    {"::2", "unspecified network"},
    {"::ffff:ffff", "broadcast"},
    {"::1:0:0", NULL},
    {"::fffe:ffff:ffff", NULL},
    {"::ffff:0:0", "unspecified address"},
    {"::ffff:ffff:ffff", "broadcast"},
    {"::1:0:0:0", NULL},
    {"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"64:ff9b::", "unspecified address"},
    {"64:ff9b::ffff:ffff", "broadcast"},
    {"64:ff9b::1:0:0", NULL},
    {"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", NULL},
    {"64:ff9b:1::", "NAT64 local-use"},
    {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "NAT64 local-use"},
    {"64:ff9b:2::", NULL},
    {"ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"100::", "discard-only"},
    {"100::ffff:ffff:ffff:ffff", "discard-only"},
    {"100:0:0:1::", "dummy prefix"},
    {"100::1:ffff:ffff:ffff:ffff", "dummy prefix"},
    {"100:0:0:2::", NULL},
    {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001::", "Teredo"},
    {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"},
    {"2001:200::", NULL},
    {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo"},
    {"2001:1::", "IETF protocol assignments"},
    {"2001:1::1", NULL},
    {"2001:1::2", NULL},
    {"2001:1::3", "IETF protocol assignments"},
    {"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"},
    {"2001:2::", "benchmarking"},
    {"2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking"},
    {"2001:2:1::", "IETF protocol assignments"},
    {"2001:2:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"},
    {"2001:3::", NULL},
    {"2001:3:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:4::", "IETF protocol assignments"},
    {"2001:4:111:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"},
    {"2001:4:112::", NULL},
    {"2001:4:112:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:4:113::", "IETF protocol assignments"},
    {"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"},
    {"2001:10::", "ORCHID"},
    {"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "ORCHID"},
    {"2001:20::", NULL},
    {"2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:30::", NULL},
    {"2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:40::", "IETF protocol assignments"},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:db8::", "documentation"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
    {"2001:db9::", NULL},
    {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2002::", "6to4"},
    {"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"},
    {"2003::", NULL},
    {"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2620:4f:8000::", NULL},
    {"2620:4f:8000:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2620:4f:8001::", NULL},
    {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"3fff::", "documentation"},
    {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
    {"3fff:1000::", NULL},
    {"5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"5f00::", "SRv6 SIDs"},
    {"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "SRv6 SIDs"},
    {"5f01::", NULL},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"fc00::", "private network"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private network"},
    {"fe00::", NULL},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"fe80::", "link-local"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
    {"fec0::", "private network"},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private network"},
    {"ff00::", "multicast"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
};

static void
test_registry_boundaries(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(registry_bounds) / sizeof(registry_bounds[0]); i++) {
        if (registry_bounds[i].why == NULL)
            expect_allowed(registry_bounds[i].addr, NULL);
        else
            expect_blocked(registry_bounds[i].addr, registry_bounds[i].why, NULL);
    }
}

/* Adds delta (+1 or -1) to the big-endian number a of n bytes; 0 on wrap-around. */
static int
bytes_step(unsigned char *a, int n, int delta)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        a[i] = (unsigned char)(a[i] + delta);
        if ((delta > 0 && a[i] != 0) || (delta < 0 && a[i] != 0xff))
            return 1;
    }
    return 0;
}

/* 1 when entry inner lies inside entry outer (or is it). */
static int
range_within(const struct addr_range *inner, const struct addr_range *outer)
{
    int full = outer->prefix / 8;
    int rest = outer->prefix % 8;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));

    if (inner->family != outer->family || inner->prefix < outer->prefix)
        return 0;
    if (memcmp(inner->net, outer->net, (size_t)full) != 0)
        return 0;
    return rest == 0 || (inner->net[full] & mask) == outer->net[full];
}

/*
 * Each entry is a proper prefix, and the lookup finds it (or an entry nested
 * in it) at both of its ends and never just outside them.
 */
static void
test_table_boundaries(void **state)
{
    const struct addr_range *r;
    const struct addr_range *got;
    unsigned char first[16];
    unsigned char last[16];
    int nbytes;
    int bit;
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; (r = addr_range_get(i)) != NULL; i++) {
        nbytes = r->family == AF_INET ? 4 : 16;
        assert_true(r->prefix >= 1 && r->prefix <= nbytes * 8);
        assert_non_null(r->name);
        assert_true(r->global || !r->embeds_v4 || r->family == AF_INET6);
        memcpy(first, r->net, 16);
        memcpy(last, r->net, 16);
        for (bit = r->prefix; bit < nbytes * 8; bit++) {
            if ((first[bit / 8] & (0x80 >> (bit % 8))) != 0)
                fail_msg("entry %zu ('%s') has host bits set", i, r->name);
            last[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
        }
        for (j = 0; j < i; j++) {
            got = addr_range_get(j);
            if (got->family == r->family && got->prefix == r->prefix &&
                memcmp(got->net, r->net, 16) == 0)
                fail_msg("entries %zu and %zu are the same prefix", j, i);
        }
        got = addr_range_find(r->family, first);
        assert_non_null(got);
        assert_true(range_within(got, r));
        got = addr_range_find(r->family, last);
        assert_non_null(got);
        assert_true(range_within(got, r));
        if (bytes_step(first, nbytes, -1))
            assert_false(addr_range_find(r->family, first) == r);
        if (bytes_step(last, nbytes, +1))
            assert_false(addr_range_find(r->family, last) == r);
    }
    assert_true(i > 40);
}

static void
test_tunnels(void **state)
{
    struct addr_list l;
    char err[256];

    (void)state;
    /* 6to4 and Teredo are blocked whatever IPv4 address they embed. */
    expect_blocked("2002:7f00:1::1", "6to4", NULL);                 /* 127.0.0.1 */
    expect_blocked("2002:c0a8:101::1", "6to4", NULL);               /* 192.168.1.1 */
    expect_blocked("2002:808:808::1", "6to4", NULL);                /* 8.8.8.8 */
    expect_blocked("2001:0:7f00:1::1", "Teredo", NULL);             /* server 127.0.0.1 */
    expect_blocked("2001:0:808:808:0:0:80ff:fffe", "Teredo", NULL); /* client 127.0.0.1 */
    expect_blocked("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo", NULL);
    /* NAT64 is judged by the IPv4 address in its last 32 bits. */
    expect_blocked("64:ff9b::7f00:1", "loopback", NULL);
    expect_blocked("64:ff9b::c612:1", "benchmarking", NULL);
    expect_allowed("64:ff9b::808:808", NULL);
    expect_blocked("64:ff9b:1::808:808", "NAT64 local-use", NULL);
    /* Allowing an IPv4 range does not allow the tunnels that embed it... */
    assert_int_equal(addr_list_parse("127.0.0.0/8,198.18.0.0/15", &l, err, sizeof(err)), 0);
    expect_blocked("2002:7f00:1::1", "6to4", &l);
    expect_blocked("2001:0:7f00:1::1", "Teredo", &l);
    expect_allowed("64:ff9b::7f00:1", &l);
    expect_allowed("::ffff:127.0.0.1", &l);
    expect_allowed("198.18.0.1", &l);
    expect_allowed("198.19.255.255", &l);
    expect_blocked("198.18.0.1", "benchmarking", NULL);
    addr_list_cleanup(&l);
    /* ...but listing the tunnel prefix itself does. */
    assert_int_equal(addr_list_parse("2002::/16,2001::/32", &l, err, sizeof(err)), 0);
    expect_allowed("2002:7f00:1::1", &l);
    expect_allowed("2001:0:7f00:1::1", &l);
    expect_blocked("2001:db8::1", "documentation", &l);
    addr_list_cleanup(&l);
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

/* dispatch_url_address_check(): literal hosts judged at create time, names left to DNS. */
static void
test_url_literal(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(dispatch_url_address_check("https://10.1.2.3/hook", NULL, err, sizeof(err)),
                     ERR_INVAL);
    assert_non_null(strstr(err, "url: 10.1.2.3 is a literal address in the address rule "
                                "\"private network\""));
    assert_non_null(strstr(err, "--allow-networks"));
    assert_int_equal(dispatch_url_address_check("https://[::1]:8443/", NULL, err, sizeof(err)),
                     ERR_INVAL);
    assert_non_null(strstr(err, "::1 is a literal address in the address rule \"loopback\""));
    /* curl's short and numeric IPv4 forms are the address they name. */
    assert_int_equal(dispatch_url_address_check("http://127.1/", NULL, err, sizeof(err)),
                     ERR_INVAL);
    assert_non_null(strstr(err, "127.0.0.1 is"));
    assert_int_equal(dispatch_url_address_check("http://2130706433/", NULL, err, sizeof(err)),
                     ERR_INVAL);
    assert_int_equal(
        dispatch_url_address_check("https://[fe80::1%25eth0]/", NULL, err, sizeof(err)), ERR_INVAL);
    assert_non_null(strstr(err, "\"link-local\""));
    assert_int_equal(
        dispatch_url_address_check("https://[::ffff:192.168.1.1]/", NULL, err, sizeof(err)),
        ERR_INVAL);
    /* Allowed ranges, public addresses and names pass. */
    assert_int_equal(
        dispatch_url_address_check("https://10.1.2.3/", "10.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(
        dispatch_url_address_check("https://[::ffff:10.1.2.3]/", "10.0.0.0/8", err, sizeof(err)),
        0);
    assert_int_equal(dispatch_url_address_check("https://8.8.8.8/", NULL, err, sizeof(err)), 0);
    assert_int_equal(dispatch_url_address_check("https://[2606:4700::1]/", NULL, err, sizeof(err)),
                     0);
    assert_int_equal(dispatch_url_address_check("https://localhost/", NULL, err, sizeof(err)), 0);
    assert_int_equal(dispatch_url_address_check("https://10.example.com/", NULL, err, sizeof(err)),
                     0);
    /* What curl cannot read is url_check()'s to refuse. */
    assert_int_equal(dispatch_url_address_check("not a url", NULL, err, sizeof(err)), 0);
    /* 6to4 is blocked even when its embedded IPv4 range is allowed. */
    assert_int_equal(
        dispatch_url_address_check("https://[2002:7f00:1::1]/", "127.0.0.0/8", err, sizeof(err)),
        ERR_INVAL);
    assert_non_null(strstr(err, "\"6to4\""));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_ranges),
        cmocka_unit_test(test_v4_public_and_edges),
        cmocka_unit_test(test_v6_ranges),
        cmocka_unit_test(test_v6_embedded_v4),
        cmocka_unit_test(test_allow_networks),
        cmocka_unit_test(test_allow_parse_forms),
        cmocka_unit_test(test_cidr_errors),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_registry_boundaries),
        cmocka_unit_test(test_table_boundaries),
        cmocka_unit_test(test_tunnels),
        cmocka_unit_test(test_url_literal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
