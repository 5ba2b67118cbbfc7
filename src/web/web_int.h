/*
 * Shared inside src/web: the table of embedded files that the generated
 * assets.c defines (see tools/embed_assets.py).
 */
#ifndef FLUXHOOK_WEB_WEB_INT_H
#define FLUXHOOK_WEB_WEB_INT_H

#include <stddef.h>

struct web_file {
    const char *path;         /* "/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
};

extern const struct web_file web_files[];
extern const size_t web_files_count;

#endif
