/*
 * Ids: a type prefix ("evt_", "dlv_", "ep_", "acct_", "key_") followed by 26
 * Crockford base32 characters holding 48 bits of creation time in
 * milliseconds and 80 random bits. Ids from any process on any host are
 * unique, and within one prefix they sort by creation time, so they serve as
 * pagination cursors. Within one process they are strictly increasing.
 */
#ifndef FLUXHOOK_UTIL_ID_H
#define FLUXHOOK_UTIL_ID_H

#include <stdint.h>

#define ID_MAX 40 /* longest id with its NUL */

/* Writes a new id with the given prefix ("evt_") to out. Returns 0 or ERR_INVAL. */
int id_new(const char *prefix, char out[ID_MAX]);

/* Like id_new() for a given creation time, without the in-process ordering. */
int id_new_at(const char *prefix, int64_t ms, char out[ID_MAX]);

/*
 * The smallest id with that prefix created at ms: every id created at ms or
 * later sorts at or after it, every earlier one before it. For time ranges
 * over ids. Returns 0 or ERR_INVAL.
 */
int id_floor(const char *prefix, int64_t ms, char out[ID_MAX]);

/*
 * The newest id id_new() made in this process so far, with that prefix (the
 * smallest possible one when none was made): every id made before sorts at or
 * before it, every one made later after it. Needs no randomness. Returns 0 or
 * ERR_INVAL.
 */
int id_last(const char *prefix, char out[ID_MAX]);

/*
 * Makes every id id_new() makes from now on sort after id (any prefix: the
 * comparison is of the part after it), whatever the clock says: for ids
 * another process made, say before a restart.
 */
void id_after(const char *id);

/* 1 when s is a well-formed id with that prefix, else 0. */
int id_valid(const char *prefix, const char *s);

/* The creation time of a well-formed id in ms, or -1. */
int64_t id_time_ms(const char *s);

#endif
