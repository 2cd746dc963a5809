/* The web UI's files, embedded at build time by cmake/mk_web_embed.cmake (generated source in the
 * build tree). Each file comes as its bytes and their gzip, with an ETag from its SHA-256. */
#ifndef MK_UI_ASSETS_H
#define MK_UI_ASSETS_H

#include <stddef.h>

typedef struct mk_ui_asset {
    const char *path; /* relative to web/, e.g. "views/mocks.js" */
    const char *etag; /* hex digits of the content's SHA-256 (without quotes) */
    const unsigned char *data;
    size_t size;
    const unsigned char *gz;
    size_t gz_size;
} mk_ui_asset_t;

extern const mk_ui_asset_t mk_ui_assets[];
extern const size_t mk_ui_asset_count;

#endif
