/* Blocking HTTP requests over libcurl's easy interface (see fetch.h). */
#include "httpclient/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_BODY ((size_t)64 << 20)

typedef struct collect {
    mk_httpclient_fetch_resp_t *resp;
    size_t cap;  /* of resp->body */
    size_t max;  /* body limit */
    int too_big; /* the body went over max */
    size_t hcap; /* of resp->headers */
    int oom;
} collect_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    collect_t *c = arg;
    mk_httpclient_fetch_resp_t *r = c->resp;
    size_t len = size * n;
    if (r->body_len + len > c->max) {
        c->too_big = 1;
        return 0;
    }
    if (r->body_len + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            c->oom = 1;
            return 0;
        }
        r->body = b;
        c->cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static void drop_headers(mk_httpclient_fetch_resp_t *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->n_headers = 0;
}

static char *dup_trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* A status line starts a new response (redirects, 100 Continue): only the last one's headers
 * are kept. */
static int on_status_line(collect_t *c, const char *line, size_t len)
{
    mk_httpclient_fetch_resp_t *r = c->resp;
    drop_headers(r);
    const char *sp = memchr(line, ' ', len);
    size_t vlen = sp ? (size_t)(sp - line) : len;
    free(r->http_version);
    r->http_version = dup_trimmed(line, vlen);
    const char *reason = "";
    size_t rlen = 0;
    if (sp) {
        const char *sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line));
        if (sp2) {
            reason = sp2 + 1;
            rlen = len - (size_t)(reason - line);
        }
    }
    free(r->reason);
    r->reason = dup_trimmed(reason, rlen);
    return r->http_version && r->reason ? 0 : -1;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    collect_t *c = arg;
    mk_httpclient_fetch_resp_t *r = c->resp;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        if (on_status_line(c, data, len) < 0)
            goto oom;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len; /* the blank line ending the block */
    if (r->n_headers == c->hcap) {
        size_t cap = c->hcap ? c->hcap * 2 : 16;
        mk_httpclient_fetch_header_t *h = realloc(r->headers, cap * sizeof *h);
        if (!h)
            goto oom;
        r->headers = h;
        c->hcap = cap;
    }
    mk_httpclient_fetch_header_t *h = &r->headers[r->n_headers];
    h->name = dup_trimmed(data, (size_t)(colon - data));
    h->value = dup_trimmed(colon + 1, len - (size_t)(colon + 1 - data));
    r->n_headers++;
    if (!h->name || !h->value)
        goto oom;
    return len;
oom:
    c->oom = 1;
    return 0;
}

static int set_headers(const mk_httpclient_fetch_req_t *req, struct curl_slist **list)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const mk_httpclient_fetch_header_t *h = &req->headers[i];
        size_t len = strlen(h->name) + strlen(h->value) + 3;
        char *line = malloc(len);
        if (!line)
            return -1;
        /* "Name;" is curl's way to send a header with an empty value. */
        if (h->value[0])
            snprintf(line, len, "%s: %s", h->name, h->value);
        else
            snprintf(line, len, "%s;", h->name);
        struct curl_slist *n = curl_slist_append(*list, line);
        free(line);
        if (!n)
            return -1;
        *list = n;
    }
    /* curl adds "Expect: 100-continue" to big bodies; an extra round trip nobody asked for. */
    struct curl_slist *n = curl_slist_append(*list, "Expect:");
    if (!n)
        return -1;
    *list = n;
    return 0;
}

int mk_httpclient_fetch(const mk_httpclient_fetch_req_t *req, mk_httpclient_fetch_resp_t *resp,
                        mk_err_t *err)
{
    memset(resp, 0, sizeof *resp);
    if (!req || !req->url || !req->url[0])
        return mk_err_set(err, MK_EINVAL, "httpclient: no URL");
    pthread_once(&curl_once, curl_init_once);

    int rc = 0;
    struct curl_slist *headers = NULL;
    collect_t c = {.resp = resp, .max = req->max_body ? req->max_body : DEFAULT_MAX_BODY};
    CURL *h = curl_easy_init();
    if (!h)
        return mk_err_set(err, MK_ENOMEM, "httpclient: curl_easy_init failed");
    if (set_headers(req, &headers) < 0) {
        rc = mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
        goto out;
    }
    const char *method = req->method && req->method[0] ? req->method : "GET";
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT,
                     req->user_agent ? req->user_agent : "mockarty-httpclient");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (req->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    if (req->follow_redirects) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, req->max_redirects > 0 ? req->max_redirects : 10L);
    }
    if (req->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (c.too_big)
            rc = mk_err_set(err, MK_ETOOBIG, "%s %s: response body over %zu bytes", method,
                            req->url, c.max);
        else if (c.oom)
            rc = mk_err_set(err, MK_ENOMEM, "%s %s: out of memory", method, req->url);
        else
            rc = mk_err_set(err,
                            cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL
                                ? MK_EINVAL
                                : MK_EUNAVAIL,
                            "%s %s: %s", method, req->url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_off_t us = 0;
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
    resp->total_ms = (double)us / 1000.0;
    curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &resp->redirects);
    char *eff = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    resp->effective_url = strdup(eff ? eff : req->url);
    if (!resp->body)
        resp->body = calloc(1, 1);
    if (!resp->reason)
        resp->reason = calloc(1, 1);
    if (!resp->http_version)
        resp->http_version = calloc(1, 1);
    if (!resp->effective_url || !resp->body || !resp->reason || !resp->http_version)
        rc = mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc < 0)
        mk_httpclient_fetch_resp_free(resp);
    return rc;
}

void mk_httpclient_fetch_resp_free(mk_httpclient_fetch_resp_t *resp)
{
    if (!resp)
        return;
    drop_headers(resp);
    free(resp->headers);
    free(resp->reason);
    free(resp->http_version);
    free(resp->body);
    free(resp->effective_url);
    memset(resp, 0, sizeof *resp);
}

const char *mk_httpclient_fetch_resp_header(const mk_httpclient_fetch_resp_t *resp,
                                            const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}
