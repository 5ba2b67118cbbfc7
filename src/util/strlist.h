/*
 * Comma lists ("0ms, 1m,5m", "127.0.0.0/8,::1", "user.message, agent.updated"):
 * one way to walk their items, so every list option and column splits alike.
 */
#ifndef FLUXHOOK_UTIL_STRLIST_H
#define FLUXHOOK_UTIL_STRLIST_H

#include <stddef.h>

/*
 * Takes the next item of a comma list. *p walks the list: start it at the
 * list itself; it becomes NULL after the last item. Sets *item to the item's
 * first byte and *len to its length, white space around it left out (an
 * empty item has len 0: "a,,b" and "a," have one). Returns 1 when an item was
 * taken, 0 once *p is NULL. Nothing is copied; the list is borrowed.
 */
int strlist_next(const char **p, const char **item, size_t *len);

/*
 * Takes the next word of a list separated by spaces, tabs or commas (OAuth
 * scopes, CSP sources): *p walks the list from its start. Sets *item and
 * *len to the word. Returns 1 when a word was taken, 0 at the end. Nothing
 * is copied; the list is borrowed.
 */
int strlist_next_word(const char **p, const char **item, size_t *len);

#endif
