/* The web UI served from the admin's port: the files embedded from web/ under a path prefix
 * (UI_PATH_PREFIX, default /ui), with ETags (304 on If-None-Match), gzip when the client accepts
 * it, and a strict Content-Security-Policy. */
#ifndef MK_UI_H
#define MK_UI_H

#include "httpd/httpd.h"
#include "request/request.h"

typedef struct mk_ui mk_ui_t;

#define MK_UI_DEFAULT_PREFIX "/ui"

/* prefix: "/ui", "/admin/ui" (copied; a trailing slash is dropped). NULL or "" gives the default;
 * "off" disables the UI (returns NULL, and every mk_ui_* call accepts NULL). Returns NULL also
 * on a prefix that is not an absolute path or out of memory. Caller frees with mk_ui_free(). */
mk_ui_t *mk_ui_new(const char *prefix);
void mk_ui_free(mk_ui_t *ui);
/* The prefix in use ("/ui"); "" for NULL. */
const char *mk_ui_prefix(const mk_ui_t *ui);

/* Answers view when its path is the prefix or under it and returns the status sent; returns 0,
 * having sent nothing, otherwise (or when ui is NULL). */
int mk_ui_handle(mk_ui_t *ui, mk_httpd_req_t *req, const mk_request_t *view);

/* Answers a redirect (302) to the UI's start page; for "/" when no mock takes it. */
int mk_ui_redirect(mk_ui_t *ui, mk_httpd_req_t *req);

#endif
