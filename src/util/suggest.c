/*
 * "Did you mean ...": optimal string alignment distance between a typed
 * word and the known ones.
 */
#include <string.h>

#include "util/suggest.h"

#define SUGGEST_MAX_LEN 64
#define SUGGEST_FAR ((size_t)1000)

static size_t
min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;

    return m < c ? m : c;
}

size_t
suggest_distance(const char *a, const char *b)
{
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    size_t la = strlen(a), lb = strlen(b), i, j, cost;

    if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
        return SUGGEST_FAR;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    }
    return d[la][lb];
}

void
suggest_init(struct suggest *s, const char *typed)
{
    s->typed = typed;
    s->best = NULL;
    s->dist = SUGGEST_FAR;
}

void
suggest_add(struct suggest *s, const char *word)
{
    size_t d;

    if (word == NULL)
        return;
    d = suggest_distance(s->typed, word);
    if (d < s->dist) {
        s->dist = d;
        s->best = word;
    }
}

const char *
suggest_best(const struct suggest *s)
{
    size_t len;

    if (s->best == NULL || s->dist == 0)
        return NULL;
    len = strlen(s->best);
    /* "lisen" for "listen", "delivery" for "deliveries"; not "db" for "cp". */
    if (s->dist * 3 > len + 2)
        return NULL;
    return s->best;
}
