/*
 * A growable byte buffer with a cap fixed at creation, for anything fed by the
 * network. The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef FLUXHOOK_UTIL_BUF_H
#define FLUXHOOK_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;  /* NULL until the first append */
    size_t len;  /* bytes used, without the trailing NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* most bytes it may ever hold */
    int wipe;    /* cleared before its memory is given back (buf_init_wipe) */
};

/* Prepares an empty buffer that refuses to grow past max bytes. */
void buf_init(struct buf *b, size_t max);

/*
 * The same for bytes that may hold a secret (a request or an answer): every
 * block it lets go of, when growing, stolen and freed, is cleared first.
 */
void buf_init_wipe(struct buf *b, size_t max);

/* Frees the data; the buffer may be used again after buf_init(). */
void buf_cleanup(struct buf *b);

/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/*
 * Makes room for n bytes in all (and the NUL) in one allocation, so that
 * appends up to n bytes allocate nothing. Returns 0, ERR_TOOBIG past max
 * or ERR_NOMEM.
 */
int buf_reserve(struct buf *b, size_t n);

/* Append; each returns 0, ERR_TOOBIG past max (nothing appended) or ERR_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
/* Appends v in decimal. */
int buf_put_u64(struct buf *b, uint64_t v);

#define BUF_DEC_U64 20 /* the most digits of a uint64_t */

/* Writes v in decimal at the end of d, without a NUL; returns its first digit. */
char *buf_dec_u64(char d[BUF_DEC_U64], uint64_t v);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The contents as a string: "" for an empty buffer, never NULL. */
const char *buf_cstr(const struct buf *b);

/* Takes the data out of the buffer (the caller frees it) and empties the buffer. */
char *buf_steal(struct buf *b);

/* free() for what buf_steal() returned: secret_heap_free() if b wipes, else free(). */
void buf_stolen_free(const struct buf *b, void *p);

/*
 * Appends the whole file at path ("-": standard input) to b. Returns 0,
 * ERR_NOTFOUND when it cannot be opened or ERR_IO when it cannot be read
 * (errno says why), ERR_TOOBIG past b's max, or ERR_NOMEM.
 */
int buf_file_read(struct buf *b, const char *path);

#endif
