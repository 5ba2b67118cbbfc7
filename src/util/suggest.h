/*
 * "Did you mean ...": the closest of some known words to a word typed
 * wrong, by edit distance, for the messages about unknown commands and
 * options.
 */
#ifndef FLUXHOOK_UTIL_SUGGEST_H
#define FLUXHOOK_UTIL_SUGGEST_H

#include <stddef.h>

/* A search in progress: feed it the known words with suggest_add(). */
struct suggest {
    const char *typed; /* borrowed */
    const char *best;  /* borrowed from the words added, or NULL */
    size_t dist;       /* best's distance */
};

/* Starts a search for the word closest to typed (borrowed). */
void suggest_init(struct suggest *s, const char *typed);

/* Considers word (borrowed; must outlive s). */
void suggest_add(struct suggest *s, const char *word);

/*
 * The closest word added when it is close enough to be what was meant (at
 * most a third of its letters differ, and at least one), else NULL.
 */
const char *suggest_best(const struct suggest *s);

/*
 * Edit distance (insertions, deletions, substitutions, and a swap of two
 * neighbours counted as one) between a and b, or a large number when either
 * is longer than 64 characters.
 */
size_t suggest_distance(const char *a, const char *b);

#endif
