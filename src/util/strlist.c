/*
 * Walking comma lists, and lists of words.
 */
#include <ctype.h>
#include <string.h>

#include "util/strlist.h"

int
strlist_next(const char **p, const char **item, size_t *len)
{
    const char *start = *p, *end, *comma;

    if (start == NULL)
        return 0;
    comma = strchr(start, ',');
    end = comma != NULL ? comma : start + strlen(start);
    *p = comma != NULL ? comma + 1 : NULL;
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *item = start;
    *len = (size_t)(end - start);
    return 1;
}

int
strlist_next_word(const char **p, const char **item, size_t *len)
{
    const char *s = *p;

    while (*s == ' ' || *s == ',' || *s == '\t')
        s++;
    *item = s;
    while (*s != '\0' && *s != ' ' && *s != ',' && *s != '\t')
        s++;
    *len = (size_t)(s - *item);
    *p = s;
    return *len > 0;
}
