/* Streaming watch: one JSON event per line over a chunked answer, resourceVersion tracking,
 * bookmarks, and 410 Expired (HTTP status or ERROR event) reported so the caller relists. */
#include "kube/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct watch_ctx {
    CURL *h;
    long http;
    kube_buf_t line;  /* the event being received */
    kube_buf_t error; /* a non-200 answer's body */
    char *rv;
    size_t rv_cap;
    mk_kube_watch_fn fn;
    void *ud;
    const volatile int *stop;
    /* Why the write callback ended the transfer. */
    int rc;
    bool stopped;
    mk_err_t *err;
    const char *what;
} watch_ctx_t;

static void track_rv(watch_ctx_t *c, json_t *obj)
{
    const char *rv = mk_kube_resource_version(obj);
    if (rv && rv[0] && strlen(rv) < c->rv_cap)
        snprintf(c->rv, c->rv_cap, "%s", rv);
}

/* Handles one event line; returns nonzero to end the stream. */
static int handle_line(watch_ctx_t *c, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0;
    json_error_t je;
    json_t *ev = json_loadb(p, n, 0, &je);
    if (!ev) {
        c->rc = mk_err_set(c->err, MK_EINTERNAL, "%s: bad watch event: %s", c->what, je.text);
        return 1;
    }
    int stop = 0;
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    mk_kube_event_t t;
    if (!type || !json_is_object(obj)) {
        c->rc = mk_err_set(c->err, MK_EINTERNAL, "%s: watch event without type or object", c->what);
        stop = 1;
        goto out;
    }
    if (strcmp(type, "ERROR") == 0) {
        /* The object is a Status; 410 Expired means the resourceVersion was compacted. */
        long code = (long)json_integer_value(json_object_get(obj, "code"));
        char *body = json_dumps(obj, JSON_COMPACT);
        c->rc = kube_error_from_status(c->err, code ? code : 500, body, body ? strlen(body) : 0,
                                       c->what);
        free(body);
        stop = 1;
        goto out;
    }
    if (strcmp(type, "ADDED") == 0)
        t = MK_KUBE_ADDED;
    else if (strcmp(type, "MODIFIED") == 0)
        t = MK_KUBE_MODIFIED;
    else if (strcmp(type, "DELETED") == 0)
        t = MK_KUBE_DELETED;
    else if (strcmp(type, "BOOKMARK") == 0)
        t = MK_KUBE_BOOKMARK;
    else
        goto out; /* unknown types are skipped, as client-go does */
    track_rv(c, obj);
    if (c->fn(c->ud, t, obj) != 0) {
        c->stopped = true;
        stop = 1;
    }
out:
    json_decref(ev);
    return stop;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    watch_ctx_t *c = ud;
    size_t n = size * nmemb;
    if (c->http == 0)
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->http);
    if (c->http != 200)
        return kube_buf_append(&c->error, p, n) == 0 ? n : 0;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        int stop;
        if (c->line.len > 0) {
            if (kube_buf_append(&c->line, p + start, i - start) != 0) {
                c->rc = mk_err_set(c->err, MK_ETOOBIG, "%s: watch event too large", c->what);
                return 0;
            }
            stop = handle_line(c, c->line.data, c->line.len);
            c->line.len = 0;
        } else {
            stop = handle_line(c, p + start, i - start);
        }
        start = i + 1;
        if (stop)
            return 0;
    }
    if (start < n && kube_buf_append(&c->line, p + start, n - start) != 0) {
        c->rc = mk_err_set(c->err, MK_ETOOBIG, "%s: watch event too large", c->what);
        return 0;
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    watch_ctx_t *c = ud;
    if (c->stop && *c->stop) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

int mk_kube_watch(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                  const mk_kube_watch_opts_t *opts, char *resource_version, size_t rv_cap,
                  mk_kube_watch_fn fn, void *ud, mk_err_t *err)
{
    int rc = 0;
    char query[2048], what[256];
    char *url = NULL;
    struct curl_slist *headers = NULL;
    int timeout = opts && opts->timeout_seconds > 0 ? opts->timeout_seconds : 300;
    watch_ctx_t c = {
        .line = {.max = MK_KUBE_MAX_LINE},
        .error = {.max = 1u << 20},
        .rv = resource_version,
        .rv_cap = rv_cap,
        .fn = fn,
        .ud = ud,
        .stop = opts ? opts->stop : NULL,
        .err = err,
        .what = what,
    };
    snprintf(what, sizeof what, "kube: watch %s%s%s", res->resource, ns ? " in " : "",
             ns ? ns : "");
    int n = snprintf(query, sizeof query, "watch=1&allowWatchBookmarks=true&timeoutSeconds=%d",
                     timeout);
    if (resource_version && resource_version[0])
        n += snprintf(query + n, sizeof query - n, "&resourceVersion=%s", resource_version);
    if (opts && opts->label_selector && opts->label_selector[0]) {
        char *esc = curl_easy_escape(NULL, opts->label_selector, 0);
        if (esc)
            n += snprintf(query + n, sizeof query - n, "&labelSelector=%s", esc);
        curl_free(esc);
    }
    if ((size_t)n >= sizeof query)
        return mk_err_set(err, MK_ETOOBIG, "%s: query too long", what);
    url = kube_url(k, res, res->namespaced ? ns : NULL, NULL, NULL, query);
    if (!url)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    c.h = kube_handle_get(k, url, &headers);
    if (!c.h || !headers) {
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
        goto out;
    }
    curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c.h, CURLOPT_HTTPGET, 1L);
    /* The server ends the stream at timeoutSeconds; a dead connection is cut a little later. */
    curl_easy_setopt(c.h, CURLOPT_TIMEOUT, (long)timeout + 30);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(c.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.h, CURLOPT_XFERINFODATA, &c);
    CURLcode cr = curl_easy_perform(c.h);
    if (c.rc != 0) {
        rc = c.rc;
        goto out;
    }
    if (c.stopped)
        goto out;
    if (cr != CURLE_OK) {
        rc = kube_error_from_curl(err, cr, what);
        goto out;
    }
    if (c.http == 0)
        curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &c.http);
    if (c.http != 200) {
        rc = kube_error_from_status(err, c.http, c.error.data, c.error.len, what);
        goto out;
    }
    if (c.line.len > 0 && handle_line(&c, c.line.data, c.line.len) && c.rc != 0)
        rc = c.rc;
out:
    curl_slist_free_all(headers);
    /* A stream cut midway leaves the connection in an unknown state: never reuse it. */
    if (c.h)
        curl_easy_cleanup(c.h);
    kube_buf_free(&c.line);
    kube_buf_free(&c.error);
    free(url);
    return rc;
}
