/*
 * libFuzzer target for the dispatcher's parsers of outside input: a
 * receiver's Retry-After value, and the --retry-schedule and
 * --allow-networks lists. The first byte picks the parser. Besides crashes it
 * checks what an accepted input means: delays are never negative, schedules
 * hold 1..DISPATCH_MAX_ATTEMPTS delays, and every parsed network allows its
 * own network address.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_networks(const char *s)
{
    struct addr_list l;
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    char err[256];
    size_t i;

    if (addr_list_parse(s, &l, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
        return;
    }
    for (i = 0; i < l.n; i++) {
        if (l.nets[i].family == AF_INET) {
            if (l.nets[i].prefix < 0 || l.nets[i].prefix > 32)
                abort();
            memset(&s4, 0, sizeof(s4));
            s4.sin_family = AF_INET;
            memcpy(&s4.sin_addr, l.nets[i].net, 4);
            if (addr_check((const struct sockaddr *)&s4, &l) != NULL)
                abort();
        } else if (l.nets[i].family == AF_INET6) {
            if (l.nets[i].prefix < 0 || l.nets[i].prefix > 128)
                abort();
            memset(&s6, 0, sizeof(s6));
            s6.sin6_family = AF_INET6;
            memcpy(&s6.sin6_addr, l.nets[i].net, 16);
            if (addr_check((const struct sockaddr *)&s6, &l) != NULL)
                abort();
        } else {
            abort();
        }
    }
    addr_list_cleanup(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dispatch_config cfg;
    char err[256];
    char *s;
    int64_t delay = -1;
    int k;

    if (size < 1 || size > 4096)
        return 0;
    s = malloc(size);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        if (backoff_retry_after_parse(s, 1700000000000LL, &delay) == 0 && delay < 0)
            abort();
        break;
    case 1:
        dispatch_config_default(&cfg);
        if (dispatch_schedule_parse(&cfg, s, err, sizeof(err)) == 0) {
            if (cfg.nschedule < 1 || cfg.nschedule > DISPATCH_MAX_ATTEMPTS)
                abort();
            for (k = 0; k < cfg.nschedule; k++) {
                if (cfg.schedule[k] < 0 || cfg.schedule[k] > DISPATCH_DELAY_MAX_MS)
                    abort();
                if (backoff_delay(&cfg, k, delay) < cfg.schedule[k])
                    abort();
            }
            if (backoff_delay(&cfg, cfg.nschedule, -1) != -1)
                abort();
        } else if (cfg.nschedule != 5) {
            abort(); /* a refused schedule leaves the config alone */
        }
        break;
    default:
        check_networks(s);
        break;
    }
    free(s);
    return 0;
}
