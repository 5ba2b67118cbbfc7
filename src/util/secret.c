/* Secrets in memory: clearing before freeing. */
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
