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

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"
#include "util/err.h"

/* A blocked IPv4 range. */
struct v4_rule {
    uint32_t net;
    int prefix;
    const char *why;
};

/* Most specific first: the first match names the reason. */
static const struct v4_rule v4_rules[] = {
    {0x00000000u, 32, "unspecified address"},
    {0xffffffffu, 32, "broadcast"},
    {0x00000000u, 8, "unspecified network"},
    {0x7f000000u, 8, "loopback"},
    {0x0a000000u, 8, "private network"},
    {0xac100000u, 12, "private network"},
    {0xc0a80000u, 16, "private network"},
    {0xa9fe0000u, 16, "link-local"},
    {0x64400000u, 10, "carrier-grade NAT"},
    {0xe0000000u, 4, "multicast"},
    {0xf0000000u, 4, "reserved"},
};

static int
v4_in(uint32_t a, uint32_t net, int prefix)
{
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);

    return (a & mask) == (net & mask);
}

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

static const char *
check_v4(const unsigned char *b, const struct addr_list *allow)
{
    uint32_t a = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    size_t i;

    if (allowed(allow, AF_INET, b))
        return NULL;
    for (i = 0; i < sizeof(v4_rules) / sizeof(v4_rules[0]); i++) {
        if (v4_in(a, v4_rules[i].net, v4_rules[i].prefix))
            return v4_rules[i].why;
    }
    return NULL;
}

static const char *
check_v6(const unsigned char *b, const struct addr_list *allow)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zero[16] = {0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    const char *why;

    if (allowed(allow, AF_INET6, b))
        return NULL;
    if (memcmp(b, zero, 16) == 0)
        return "unspecified address";
    if (memcmp(b, zero, 15) == 0 && b[15] == 1)
        return "loopback";
    /*
     * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64
     * (64:ff9b::a.b.c.d) forms reach the embedded IPv4 address: judge that.
     */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0 || memcmp(b, nat64, 12) == 0) {
        why = check_v4(b + 12, allow);
        return why;
    }
    if ((b[0] & 0xfe) == 0xfc)
        return "private network";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return "private network"; /* site-local, deprecated */
    if (b[0] == 0xff)
        return "multicast";
    return NULL;
}

const char *
addr_check(const struct sockaddr *sa, const struct addr_list *allow)
{
    const struct sockaddr_in *s4;
    const struct sockaddr_in6 *s6;

    if (sa->sa_family == AF_INET) {
        s4 = (const struct sockaddr_in *)(const void *)sa;
        return check_v4((const unsigned char *)&s4->sin_addr, allow);
    }
    if (sa->sa_family == AF_INET6) {
        s6 = (const struct sockaddr_in6 *)(const void *)sa;
        return check_v6(s6->sin6_addr.s6_addr, allow);
    }
    return "not an internet address";
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
    const char *end;
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
    for (;;) {
        index++;
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        len = (size_t)(end - p);
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
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
        memcpy(item, p, len);
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
        if (*end == '\0')
            break;
        p = end + 1;
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
