/*
 * Endpoint URLs: the syntax an endpoint's url must have before it is stored.
 * (Whether its address may be reached is decided at connect time, by the
 * dispatcher.)
 */
#ifndef FLUXHOOK_UTIL_URL_H
#define FLUXHOOK_UTIL_URL_H

#include <stddef.h>

#define URL_MAX_LEN 2048

/*
 * Checks that url is an absolute https:// URL (or http:// when allow_http)
 * with a host, without user name, password or fragment, at most URL_MAX_LEN
 * characters, with a port from 1 to 65535 when one is given. Returns 0, or
 * ERR_INVAL with err (errlen bytes) saying in plain words what is wrong,
 * starting with "url: ".
 */
int url_check(const char *url, int allow_http, char *err, size_t errlen);

#endif
