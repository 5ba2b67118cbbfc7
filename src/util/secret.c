/* Secrets in memory: clearing before freeing. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "util/secret.h"

void
secret_free(char *s)
{
    /* The whole block: the string may once have been longer than it is now. */
    secret_heap_free(s);
}

void
secret_heap_free(void *p)
{
    if (p == NULL)
        return;
    /* OPENSSL_cleanse, unlike memset, is not optimized away before free(). */
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

void
secret_json_alloc_setup(void)
{
    json_set_alloc_funcs(malloc, secret_heap_free);
}
