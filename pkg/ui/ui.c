/* Serving the embedded web UI: one table of files, exact paths only (no file system), ETags
 * and precompressed gzip. */
#include "ui/ui.h"

#include "ui/ui_assets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mk_ui {
    char prefix[256];
};

/* Script and style only from the UI's own files (no inline code, no eval), data only from the
 * API on the same origin, never framed. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                          "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
                          "frame-ancestors 'none'";

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof content_types / sizeof *content_types; i++)
        if (strcmp(dot, content_types[i].ext) == 0)
            return content_types[i].type;
    return "application/octet-stream";
}

mk_ui_t *mk_ui_new(const char *prefix)
{
    if (prefix == NULL || prefix[0] == '\0')
        prefix = MK_UI_DEFAULT_PREFIX;
    if (strcmp(prefix, "off") == 0 || prefix[0] != '/')
        return NULL;
    size_t len = strlen(prefix);
    while (len > 1 && prefix[len - 1] == '/')
        len--;
    if (len >= sizeof((mk_ui_t *)0)->prefix || (len == 1 && prefix[0] == '/'))
        return NULL; /* "/" would take every mock path */
    mk_ui_t *ui = calloc(1, sizeof *ui);
    if (ui == NULL)
        return NULL;
    memcpy(ui->prefix, prefix, len);
    return ui;
}

void mk_ui_free(mk_ui_t *ui)
{
    free(ui);
}

const char *mk_ui_prefix(const mk_ui_t *ui)
{
    return ui ? ui->prefix : "";
}

static const mk_ui_asset_t *find_asset(mk_str_t rel)
{
    for (size_t i = 0; i < mk_ui_asset_count; i++)
        if (mk_str_eq_cstr(rel, mk_ui_assets[i].path))
            return &mk_ui_assets[i];
    return NULL;
}

static mk_str_t trim(mk_str_t s)
{
    while (s.len > 0 && (s.base[0] == ' ' || s.base[0] == '\t'))
        s.base++, s.len--;
    while (s.len > 0 && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Whether an Accept-Encoding value takes gzip: a "gzip" or "*" coding without q=0. */
static bool accepts_gzip(mk_str_t v)
{
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *semi = memchr(p, ';', (size_t)(stop - p));
        mk_str_t coding = trim((mk_str_t){p, (size_t)((semi ? semi : stop) - p)});
        bool zero = false;
        if (semi != NULL) {
            mk_str_t param = trim((mk_str_t){semi + 1, (size_t)(stop - semi - 1)});
            /* q=0, q=0.0, q=0.000 refuse the coding */
            if (param.len >= 3 && (param.base[0] == 'q' || param.base[0] == 'Q') &&
                param.base[1] == '=' && param.base[2] == '0') {
                zero = true;
                for (size_t i = 3; i < param.len; i++)
                    if (param.base[i] != '.' && param.base[i] != '0')
                        zero = false;
            }
        }
        if (!zero && (mk_str_caseeq(coding, MK_STR_LIT("gzip")) ||
                      mk_str_caseeq(coding, MK_STR_LIT("x-gzip")) || mk_str_eq_cstr(coding, "*")))
            return true;
        p = stop + 1;
    }
    return false;
}

/* Whether an If-None-Match value names etag (either representation's) or is "*". */
static bool etag_matches(mk_str_t v, const char *etag)
{
    const char *p = v.base, *end = v.base + v.len;
    size_t elen = strlen(etag);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        mk_str_t t = trim((mk_str_t){p, (size_t)(stop - p)});
        if (t.len >= 2 && t.base[0] == 'W' && t.base[1] == '/')
            t.base += 2, t.len -= 2; /* weak comparison, as RFC 9110 asks for If-None-Match */
        if (mk_str_eq_cstr(t, "*"))
            return true;
        if (t.len >= elen + 2 && t.base[0] == '"' && memcmp(t.base + 1, etag, elen) == 0 &&
            (t.base[elen + 1] == '"' ||
             mk_str_eq_cstr((mk_str_t){t.base + elen + 1, t.len - elen - 1}, "-gz\"")))
            return true;
        p = stop + 1;
    }
    return false;
}

static void security_headers(mk_httpd_req_t *req)
{
    mk_httpd_add_header(req, MK_STR_LIT("Content-Security-Policy"), MK_STR_LIT(csp));
    mk_httpd_add_header(req, MK_STR_LIT("X-Content-Type-Options"), MK_STR_LIT("nosniff"));
    mk_httpd_add_header(req, MK_STR_LIT("X-Frame-Options"), MK_STR_LIT("DENY"));
    mk_httpd_add_header(req, MK_STR_LIT("Referrer-Policy"), MK_STR_LIT("same-origin"));
}

static int redirect(mk_httpd_req_t *req, const char *to)
{
    security_headers(req);
    mk_httpd_add_header(req, MK_STR_LIT("Location"), mk_str_of(to));
    mk_httpd_add_header(req, MK_STR_LIT("Cache-Control"), MK_STR_LIT("no-store"));
    mk_httpd_respond(req, 302, MK_STR_LIT(""));
    return 302;
}

int mk_ui_redirect(mk_ui_t *ui, mk_httpd_req_t *req)
{
    char to[sizeof ui->prefix + 1];
    snprintf(to, sizeof to, "%s/", ui->prefix);
    return redirect(req, to);
}

static int plain(mk_httpd_req_t *req, int status, mk_str_t body)
{
    security_headers(req);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/plain; charset=utf-8"));
    mk_httpd_respond(req, status, body);
    return status;
}

static int send_asset(mk_httpd_req_t *req, const mk_request_t *view, const mk_ui_asset_t *a)
{
    mk_str_t v;
    bool gz = mk_request_header(view, MK_STR_LIT("Accept-Encoding"), &v) && accepts_gzip(v) &&
              a->gz_size < a->size;
    char etag[96];
    snprintf(etag, sizeof etag, "\"%s%s\"", a->etag, gz ? "-gz" : "");
    security_headers(req);
    mk_httpd_add_header(req, MK_STR_LIT("ETag"), mk_str_of(etag));
    mk_httpd_add_header(req, MK_STR_LIT("Vary"), MK_STR_LIT("Accept-Encoding"));
    /* Revalidate every time: a new build must show at once, and a 304 costs one round trip. */
    mk_httpd_add_header(req, MK_STR_LIT("Cache-Control"), MK_STR_LIT("no-cache"));
    if (mk_request_header(view, MK_STR_LIT("If-None-Match"), &v) && etag_matches(v, a->etag)) {
        mk_httpd_respond(req, 304, MK_STR_LIT(""));
        return 304;
    }
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), mk_str_of(content_type(a->path)));
    if (gz)
        mk_httpd_add_header(req, MK_STR_LIT("Content-Encoding"), MK_STR_LIT("gzip"));
    mk_str_t body = gz ? (mk_str_t){(const char *)a->gz, a->gz_size}
                       : (mk_str_t){(const char *)a->data, a->size};
    mk_httpd_respond(req, 200, body);
    return 200;
}

int mk_ui_handle(mk_ui_t *ui, mk_httpd_req_t *req, const mk_request_t *view)
{
    if (ui == NULL)
        return 0;
    size_t plen = strlen(ui->prefix);
    mk_str_t path = view->path;
    if (path.len < plen || memcmp(path.base, ui->prefix, plen) != 0 ||
        (path.len > plen && path.base[plen] != '/'))
        return 0;
    if (!mk_str_eq_cstr(view->method, "GET") && !mk_str_eq_cstr(view->method, "HEAD")) {
        mk_httpd_add_header(req, MK_STR_LIT("Allow"), MK_STR_LIT("GET, HEAD"));
        return plain(req, 405, MK_STR_LIT("method not allowed\n"));
    }
    if (path.len == plen)
        return mk_ui_redirect(ui, req); /* relative asset URLs need the slash */
    mk_str_t rel = {path.base + plen + 1, path.len - plen - 1};
    if (rel.len == 0)
        rel = MK_STR_LIT("index.html");
    const mk_ui_asset_t *a = find_asset(rel);
    if (a == NULL)
        return plain(req, 404, MK_STR_LIT("no such file in the UI\n"));
    return send_asset(req, view, a);
}
