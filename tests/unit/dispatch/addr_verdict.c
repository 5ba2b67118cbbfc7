/*
 * A test helper, not a test: prints addr_check()'s verdict for each address
 * read on stdin, one line each ("ok", "blocked <why>" or "bad" for text that
 * is no address), so tests/e2e/test_addr_differential.py can compare it with
 * Python's ipaddress. With --ranges it prints the table instead, one entry a
 * line: "<prefix>/<len> <global> <embeds_v4> <name>".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"

/* Prints every entry of the table. Returns 0, or 1 on a write error. */
static int
ranges_print(void)
{
    const struct addr_range *r;
    char text[INET6_ADDRSTRLEN];
    size_t i;

    for (i = 0; (r = addr_range_get(i)) != NULL; i++) {
        inet_ntop(r->family, r->net, text, sizeof(text));
        printf("%s/%d %d %d %s\n", text, r->prefix, r->global, r->embeds_v4, r->name);
    }
    return fflush(stdout) != 0;
}

/* Prints the verdict for one address (line without its newline). */
static void
verdict_print(const char *line)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    const struct sockaddr *sa = NULL;
    const char *why;

    memset(&s4, 0, sizeof(s4));
    memset(&s6, 0, sizeof(s6));
    if (inet_pton(AF_INET, line, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        sa = (const struct sockaddr *)&s4;
    } else if (inet_pton(AF_INET6, line, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        sa = (const struct sockaddr *)&s6;
    }
    if (sa == NULL) {
        printf("bad\n");
        return;
    }
    why = addr_check(sa, NULL);
    if (why == NULL)
        printf("ok\n");
    else
        printf("blocked %s\n", why);
}

int
main(int argc, char **argv)
{
    char line[128];
    size_t len;
    int rc = 0;

    if (argc > 1 && strcmp(argv[1], "--ranges") == 0) {
        rc = ranges_print();
        goto out;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        len = strcspn(line, "\r\n");
        line[len] = '\0';
        verdict_print(line);
    }
    rc = fflush(stdout) != 0;
out:
    return rc;
}
