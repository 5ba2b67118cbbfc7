/* Secrets in memory: clearing before freeing. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/secret.h"

void
secret_free(char *s)
{
    if (s == NULL)
        return;
    /* OPENSSL_cleanse, unlike memset, is not optimized away before free(). */
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void
secret_heap_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}
