/*
 * The address rules of CONTRACT §3: which resolved addresses a delivery may
 * connect to, and the --allow-networks exemptions.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "util/err.h"
#include "util/strlist.h"

/* The network bytes of an IPv6 prefix, written as its eight 16-bit groups. */
#define G(x) (unsigned char)((x) >> 8), (unsigned char)((x)&0xff)
#define V6(a, b, c, d, e, f, g, h) G(a), G(b), G(c), G(d), G(e), G(f), G(g), G(h)

/*
 * The IANA IPv4 and IPv6 Special-Purpose Address Registries, plus multicast
 * and the deprecated site-local prefix, which those registries leave out.
 * The longest matching prefix decides, so the globally reachable exceptions
 * inside 192.0.0.0/24 and 2001::/23 are listed as entries of their own.
 * docs/internals/dispatch.md says why 6to4 and Teredo are blocked outright.
 */
static const struct addr_range ranges[] = {
    /* IPv4 */
    {AF_INET, {0, 0, 0, 0}, 8, 0, 0, "unspecified network"}, /* "this network" */
    {AF_INET, {0, 0, 0, 0}, 32, 0, 0, "unspecified address"},
    {AF_INET, {10, 0, 0, 0}, 8, 0, 0, "private network"},
    {AF_INET, {100, 64, 0, 0}, 10, 0, 0, "carrier-grade NAT"}, /* shared address space */
    {AF_INET, {127, 0, 0, 0}, 8, 0, 0, "loopback"},
    {AF_INET, {169, 254, 0, 0}, 16, 0, 0, "link-local"},
    {AF_INET, {172, 16, 0, 0}, 12, 0, 0, "private network"},
    {AF_INET, {192, 0, 0, 0}, 24, 0, 0, "IETF protocol assignments"},
    {AF_INET, {192, 0, 0, 0}, 29, 0, 0, "IPv4 service continuity"},
    {AF_INET, {192, 0, 0, 8}, 32, 0, 0, "IPv4 dummy address"},
    {AF_INET, {192, 0, 0, 9}, 32, 1, 0, "port control protocol anycast"},
    {AF_INET, {192, 0, 0, 10}, 32, 1, 0, "TURN anycast"},
    {AF_INET, {192, 0, 0, 170}, 32, 0, 0, "NAT64/DNS64 discovery"},
    {AF_INET, {192, 0, 0, 171}, 32, 0, 0, "NAT64/DNS64 discovery"},
    {AF_INET, {192, 0, 2, 0}, 24, 0, 0, "documentation"}, /* TEST-NET-1 */
    {AF_INET, {192, 31, 196, 0}, 24, 1, 0, "AS112"},
    {AF_INET, {192, 52, 193, 0}, 24, 1, 0, "AMT"},
    {AF_INET, {192, 88, 99, 0}, 24, 0, 0, "6to4 relay anycast"}, /* deprecated */
    {AF_INET, {192, 168, 0, 0}, 16, 0, 0, "private network"},
    {AF_INET, {192, 175, 48, 0}, 24, 1, 0, "AS112 direct delegation"},
    {AF_INET, {198, 18, 0, 0}, 15, 0, 0, "benchmarking"},
    {AF_INET, {198, 51, 100, 0}, 24, 0, 0, "documentation"}, /* TEST-NET-2 */
    {AF_INET, {203, 0, 113, 0}, 24, 0, 0, "documentation"},  /* TEST-NET-3 */
    {AF_INET, {224, 0, 0, 0}, 4, 0, 0, "multicast"},         /* not in the registry */
    {AF_INET, {240, 0, 0, 0}, 4, 0, 0, "reserved"},
    {AF_INET, {255, 255, 255, 255}, 32, 0, 0, "broadcast"},
    /* IPv6 */
    {AF_INET6, {V6(0, 0, 0, 0, 0, 0, 0, 0)}, 128, 0, 0, "unspecified address"},
    {AF_INET6, {V6(0, 0, 0, 0, 0, 0, 0, 1)}, 128, 0, 0, "loopback"},
    {AF_INET6, {V6(0, 0, 0, 0, 0, 0, 0, 0)}, 96, 0, 1, "IPv4-compatible"}, /* deprecated */
    {AF_INET6, {V6(0, 0, 0, 0, 0, 0xffff, 0, 0)}, 96, 0, 1, "IPv4-mapped"},
    {AF_INET6, {V6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)}, 96, 1, 1, "NAT64"},
    {AF_INET6, {V6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0)}, 48, 0, 0, "NAT64 local-use"},
    {AF_INET6, {V6(0x100, 0, 0, 0, 0, 0, 0, 0)}, 64, 0, 0, "discard-only"},
    {AF_INET6, {V6(0x100, 0, 0, 1, 0, 0, 0, 0)}, 64, 0, 0, "dummy prefix"},
    {AF_INET6, {V6(0x2001, 0, 0, 0, 0, 0, 0, 0)}, 23, 0, 0, "IETF protocol assignments"},
    {AF_INET6, {V6(0x2001, 0, 0, 0, 0, 0, 0, 0)}, 32, 0, 0, "Teredo"},
    {AF_INET6, {V6(0x2001, 1, 0, 0, 0, 0, 0, 1)}, 128, 1, 0, "port control protocol anycast"},
    {AF_INET6, {V6(0x2001, 1, 0, 0, 0, 0, 0, 2)}, 128, 1, 0, "TURN anycast"},
    {AF_INET6, {V6(0x2001, 2, 0, 0, 0, 0, 0, 0)}, 48, 0, 0, "benchmarking"},
    {AF_INET6, {V6(0x2001, 3, 0, 0, 0, 0, 0, 0)}, 32, 1, 0, "AMT"},
    {AF_INET6, {V6(0x2001, 4, 0x112, 0, 0, 0, 0, 0)}, 48, 1, 0, "AS112"},
    {AF_INET6, {V6(0x2001, 0x10, 0, 0, 0, 0, 0, 0)}, 28, 0, 0, "ORCHID"}, /* deprecated */
    {AF_INET6, {V6(0x2001, 0x20, 0, 0, 0, 0, 0, 0)}, 28, 1, 0, "ORCHIDv2"},
    {AF_INET6, {V6(0x2001, 0x30, 0, 0, 0, 0, 0, 0)}, 28, 1, 0, "drone remote ID"},
    {AF_INET6, {V6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)}, 32, 0, 0, "documentation"},
    {AF_INET6, {V6(0x2002, 0, 0, 0, 0, 0, 0, 0)}, 16, 0, 0, "6to4"},
    {AF_INET6, {V6(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0)}, 48, 1, 0, "AS112 direct delegation"},
    {AF_INET6, {V6(0x3fff, 0, 0, 0, 0, 0, 0, 0)}, 20, 0, 0, "documentation"},
    {AF_INET6, {V6(0x5f00, 0, 0, 0, 0, 0, 0, 0)}, 16, 0, 0, "SRv6 SIDs"},
    {AF_INET6, {V6(0xfc00, 0, 0, 0, 0, 0, 0, 0)}, 7, 0, 0, "private network"}, /* unique-local */
    {AF_INET6, {V6(0xfe80, 0, 0, 0, 0, 0, 0, 0)}, 10, 0, 0, "link-local"},
    {AF_INET6, {V6(0xfec0, 0, 0, 0, 0, 0, 0, 0)}, 10, 0, 0, "private network"}, /* site-local */
    {AF_INET6, {V6(0xff00, 0, 0, 0, 0, 0, 0, 0)}, 8, 0, 0, "multicast"}, /* not in the registry */
};

static int
bytes_in(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8;
    int rest = prefix % 8;
    unsigned char mask;

    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static void
mask_bytes(unsigned char *net, int nbytes, int prefix)
{
    int i;

    for (i = 0; i < nbytes; i++) {
        if (prefix >= (i + 1) * 8)
            continue;
        if (prefix <= i * 8)
            net[i] = 0;
        else
            net[i] &= (unsigned char)(0xff << (8 - (prefix - i * 8)));
    }
}

static int
allowed(const struct addr_list *allow, int family, const unsigned char *a)
{
    size_t i;

    if (allow == NULL)
        return 0;
    for (i = 0; i < allow->n; i++) {
        if (allow->nets[i].family == family &&
            bytes_in(a, allow->nets[i].net, allow->nets[i].prefix))
            return 1;
    }
    return 0;
}

const struct addr_range *
addr_range_get(size_t i)
{
    return i < sizeof(ranges) / sizeof(ranges[0]) ? &ranges[i] : NULL;
}

const struct addr_range *
addr_range_find(int family, const unsigned char *a)
{
    const struct addr_range *best = NULL;
    size_t i;

    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (ranges[i].family != family || !bytes_in(a, ranges[i].net, ranges[i].prefix))
            continue;
        if (best == NULL || ranges[i].prefix > best->prefix)
            best = &ranges[i];
    }
    return best;
}

/* addr_check() of the address a of family (4 or 16 bytes). */
static const char *
check_bytes(int family, const unsigned char *a, const struct addr_list *allow)
{
    const struct addr_range *r;
    const char *why = NULL;

    if (allowed(allow, family, a))
        goto out;
    r = addr_range_find(family, a);
    if (r == NULL)
        goto out;
    /*
     * The mapped, compatible and NAT64 forms reach the IPv4 address in their
     * last 32 bits: judge that, so an allowed IPv4 range covers them too.
     */
    if (r->embeds_v4)
        why = check_bytes(AF_INET, a + 12, allow);
    else if (!r->global)
        why = r->name;
out:
    return why;
}

const char *
addr_check(const struct sockaddr *sa, const struct addr_list *allow)
{
    const struct sockaddr_in *s4;
    const struct sockaddr_in6 *s6;
    const char *why = "not an internet address";

    if (sa->sa_family == AF_INET) {
        s4 = (const struct sockaddr_in *)(const void *)sa;
        why = check_bytes(AF_INET, (const unsigned char *)&s4->sin_addr, allow);
    } else if (sa->sa_family == AF_INET6) {
        s6 = (const struct sockaddr_in6 *)(const void *)sa;
        why = check_bytes(AF_INET6, s6->sin6_addr.s6_addr, allow);
    }
    return why;
}

void
addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    const void *a = NULL;

    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "?");
}

/* Parses one CIDR item (NUL-terminated) into net. Returns 0 or ERR_PARSE. */
static int
parse_one(const char *item, struct addr_net *net, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(item, '/');
    size_t alen = slash != NULL ? (size_t)(slash - item) : strlen(item);
    const char *p;
    int maxbits;
    long prefix;

    if (alen == 0 || alen >= sizeof(addr))
        goto bad;
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    memset(net, 0, sizeof(*net));
    if (inet_pton(AF_INET, addr, net->net) == 1) {
        net->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, addr, net->net) == 1) {
        net->family = AF_INET6;
        maxbits = 128;
    } else {
        goto bad;
    }
    if (slash == NULL) {
        net->prefix = maxbits;
        return 0;
    }
    p = slash + 1;
    if (*p == '\0' || strlen(p) > 3)
        goto bad_prefix;
    prefix = 0;
    for (; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            goto bad_prefix;
        prefix = prefix * 10 + (*p - '0');
    }
    if (prefix > maxbits)
        goto bad_prefix;
    net->prefix = (int)prefix;
    mask_bytes(net->net, maxbits / 8, net->prefix);
    return 0;
bad_prefix:
    snprintf(err, errlen, "--allow-networks item '%s': prefix length must be 0..%d", item, maxbits);
    return ERR_PARSE;
bad:
    snprintf(err, errlen, "--allow-networks item '%s': expected a CIDR like 10.0.0.0/8 or fd00::/8",
             item);
    return ERR_PARSE;
}

int
addr_list_parse(const char *list, struct addr_list *out, char *err, size_t errlen)
{
    struct addr_net *nets = NULL;
    struct addr_net *grown;
    char item[128];
    const char *p = list;
    const char *start;
    size_t n = 0;
    size_t len;
    int index = 0;
    int rc = 0;

    out->nets = NULL;
    out->n = 0;
    if (list == NULL)
        return 0;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return 0;
    while (strlist_next(&p, &start, &len)) {
        index++;
        if (len == 0) {
            snprintf(err, errlen, "--allow-networks item %d is empty", index);
            rc = ERR_PARSE;
            goto out;
        }
        if (len >= sizeof(item)) {
            snprintf(err, errlen, "--allow-networks item %d is too long", index);
            rc = ERR_PARSE;
            goto out;
        }
        memcpy(item, start, len);
        item[len] = '\0';
        grown = realloc(nets, (n + 1) * sizeof(*nets));
        if (grown == NULL) {
            rc = ERR_NOMEM;
            goto out;
        }
        nets = grown;
        rc = parse_one(item, &nets[n], err, errlen);
        if (rc != 0)
            goto out;
        n++;
    }
    out->nets = nets;
    out->n = n;
    nets = NULL;
out:
    free(nets);
    return rc;
}

void
addr_list_cleanup(struct addr_list *l)
{
    free(l->nets);
    l->nets = NULL;
    l->n = 0;
}

int
dispatch_networks_check(const char *list, char *err, size_t errlen)
{
    struct addr_list l;
    int rc;

    rc = addr_list_parse(list, &l, err, errlen);
    addr_list_cleanup(&l);
    return rc;
}

int
dispatch_url_address_check(const char *url, const char *allow_networks, char *err, size_t errlen)
{
    unsigned char a[16];
    char host[INET6_ADDRSTRLEN + 8];
    struct addr_list allow;
    const char *why = NULL;
    char *h = NULL, *pct;
    size_t len;
    int family = 0, rc = 0;
    CURLU *u;

    memset(&allow, 0, sizeof(allow));
    u = curl_url();
    if (u == NULL)
        return ERR_NOMEM;
    /* A URL curl cannot read has no literal address to judge; url_check() says the rest. */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h == NULL)
        goto out;
    len = strlen(h);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']' && len - 2 < sizeof(host)) {
        snprintf(host, sizeof(host), "%.*s", (int)(len - 2), h + 1);
        pct = strchr(host, '%'); /* a zone id: fe80::1%25eth0 */
        if (pct != NULL)
            *pct = '\0';
        if (inet_pton(AF_INET6, host, a) == 1)
            family = AF_INET6;
    } else if (len < sizeof(host) && inet_pton(AF_INET, h, a) == 1) {
        /* curl has already written 127.1 and 0x7f000001 as 127.0.0.1. */
        snprintf(host, sizeof(host), "%s", h);
        family = AF_INET;
    }
    if (family == 0)
        goto out; /* a name: judged after DNS, at connect time */
    rc = addr_list_parse(allow_networks, &allow, err, errlen);
    if (rc != 0)
        goto out;
    why = check_bytes(family, a, &allow);
    if (why != NULL) {
        snprintf(err, errlen,
                 "url: %s is a literal address in the address rule \"%s\": deliveries may "
                 "not reach it; start serve with --allow-networks and a range that holds it "
                 "(or --dev for loopback)",
                 host, why);
        rc = ERR_INVAL;
    }
out:
    addr_list_cleanup(&allow);
    curl_free(h);
    curl_url_cleanup(u);
    return rc;
}
