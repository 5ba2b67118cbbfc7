/*
 * Secrets in memory: the one way a secret's heap copy is given back, cleared
 * first so that freed memory never holds it (STYLE §5).
 */
#ifndef FLUXHOOK_UTIL_SECRET_H
#define FLUXHOOK_UTIL_SECRET_H

/*
 * Clears the heap string s (the whole block it was allocated in) with
 * OPENSSL_cleanse() and frees it (takes ownership). NULL is a no-op.
 */
void secret_free(char *s);

/*
 * Clears the whole heap block p (as much as malloc_usable_size() says it
 * holds) and frees it (takes ownership). NULL is a no-op. For memory that may
 * have held a secret without anyone knowing where: jansson's values, request
 * and answer buffers.
 */
void secret_heap_free(void *p);

/*
 * Sets how jansson allocates and frees its values; once, in main(), before
 * any other thread runs.
 */
void secret_json_alloc_setup(void);

#endif
