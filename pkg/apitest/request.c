/* From a Postman request to bytes on the wire: variables ({{name}} and the dynamic {{$...}}), URL
 * objects and path variables, auth (bearer, basic, apikey, oauth2 tokens) and bodies (raw,
 * urlencoded, form-data, graphql). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apitest/internal.h"

void mk_apitest_uuid(char buf[37])
{
    unsigned char b[16];
    arc4random_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ---- dynamic variables: a table, one row per name ---- */

static void dyn_guid(char *out, size_t n)
{
    char u[37];
    mk_apitest_uuid(u);
    snprintf(out, n, "%s", u);
}

static void dyn_timestamp(char *out, size_t n)
{
    snprintf(out, n, "%lld", (long long)time(NULL));
}

static void dyn_iso(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%.20s.%03dZ", d, (int)(ts.tv_nsec / 1000000) % 1000);
}

static void dyn_int(char *out, size_t n)
{
    snprintf(out, n, "%u", arc4random_uniform(1001));
}

static void dyn_alnum(char *out, size_t n)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    snprintf(out, n, "%c", set[arc4random_uniform(sizeof set - 1)]);
}

static void dyn_bool(char *out, size_t n)
{
    snprintf(out, n, "%s", arc4random_uniform(2) ? "true" : "false");
}

static void dyn_email(char *out, size_t n)
{
    snprintf(out, n, "user%u@example.com", arc4random_uniform(100000));
}

static const struct {
    const char *name;
    void (*fn)(char *out, size_t n);
} dynamic[] = {
    {"$guid", dyn_guid},          {"$randomUUID", dyn_guid},   {"$timestamp", dyn_timestamp},
    {"$isoTimestamp", dyn_iso},   {"$randomInt", dyn_int},     {"$randomAlphaNumeric", dyn_alnum},
    {"$randomBoolean", dyn_bool}, {"$randomEmail", dyn_email}, {"$randomExampleEmail", dyn_email},
};

/* The value of name as text into buf, or NULL when no scope has it. */
static const char *lookup(const mk_apitest_vars_t *v, const char *name, char *buf, size_t n)
{
    const json_t *scopes[] = {v->local, v->data, v->environment, v->collection, v->globals};
    for (size_t i = 0; i < sizeof scopes / sizeof *scopes; i++) {
        const json_t *val = json_object_get(scopes[i], name);
        if (!val)
            continue;
        if (json_is_string(val))
            return json_string_value(val);
        char *s = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(buf, n, "%s", s ? s : "");
        free(s);
        return buf;
    }
    for (size_t i = 0; i < sizeof dynamic / sizeof *dynamic; i++) {
        if (strcmp(dynamic[i].name, name) == 0) {
            dynamic[i].fn(buf, n);
            return buf;
        }
    }
    return NULL;
}

char *mk_apitest_resolve(const mk_apitest_vars_t *v, const char *s)
{
    char *cur = strdup(s ? s : "");
    /* A value may itself hold {{...}}; resolving again stops at 10 levels (cycles). */
    for (int pass = 0; cur && pass < 10 && strstr(cur, "{{"); pass++) {
        mk_buf_t b;
        mk_buf_init(&b, 64 << 20);
        int changed = 0;
        const char *p = cur;
        while (*p) {
            const char *open = strstr(p, "{{");
            const char *close = open ? strstr(open + 2, "}}") : NULL;
            if (!open || !close) {
                mk_buf_append_str(&b, p);
                break;
            }
            mk_buf_append(&b, p, (size_t)(open - p));
            size_t nlen = (size_t)(close - open - 2);
            char name[256], val[1024];
            const char *r = NULL;
            if (nlen < sizeof name && !memchr(open + 2, '{', nlen)) {
                memcpy(name, open + 2, nlen);
                name[nlen] = '\0';
                r = lookup(v, name, val, sizeof val);
            }
            if (r) {
                mk_buf_append_str(&b, r);
                changed = 1;
                p = close + 2;
            } else {
                mk_buf_append(&b, open, 2);
                p = open + 2;
            }
        }
        free(cur);
        cur = b.data ? mk_buf_take(&b) : strdup("");
        if (!changed)
            break;
    }
    return cur;
}

/* ---- the working request ---- */

static void append_joined(mk_buf_t *b, const json_t *parts, const char *sep)
{
    if (json_is_string(parts)) {
        mk_buf_append_str(b, json_string_value(parts));
        return;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *s = json_is_string(p) ? json_string_value(p)
                                          : json_string_value(json_object_get(p, "value"));
        mk_buf_appendf(b, "%s%s", i ? sep : "", s ? s : "");
    }
}

/* A URL object's text: its parts when it has them (what Postman sends), else raw. */
static char *url_text(const json_t *url)
{
    if (json_is_string(url))
        return strdup(json_string_value(url));
    const json_t *host = json_object_get(url, "host");
    const char *raw = json_string_value(json_object_get(url, "raw"));
    if (!host)
        return strdup(raw ? raw : "");
    mk_buf_t b;
    mk_buf_init(&b, 0);
    const char *proto = json_string_value(json_object_get(url, "protocol"));
    if (proto)
        mk_buf_appendf(&b, "%s://", proto);
    append_joined(&b, host, ".");
    const json_t *port = json_object_get(url, "port");
    if (json_is_string(port))
        mk_buf_appendf(&b, ":%s", json_string_value(port));
    const json_t *path = json_object_get(url, "path");
    if (json_is_string(path)) {
        const char *ps = json_string_value(path);
        mk_buf_appendf(&b, "%s%s", ps[0] == '/' ? "" : "/", ps);
    } else if (json_array_size(path)) {
        mk_buf_append_str(&b, "/");
        append_joined(&b, path, "/");
    }
    const json_t *query = json_object_get(url, "query");
    size_t i, n = 0;
    const json_t *q;
    json_array_foreach(query, i, q)
    {
        if (json_is_true(json_object_get(q, "disabled")))
            continue;
        const char *k = json_string_value(json_object_get(q, "key"));
        const json_t *val = json_object_get(q, "value");
        mk_buf_appendf(&b, "%s%s", n++ ? "&" : "?", k ? k : "");
        if (json_is_string(val))
            mk_buf_appendf(&b, "=%s", json_string_value(val));
    }
    const char *hash = json_string_value(json_object_get(url, "hash"));
    if (hash)
        mk_buf_appendf(&b, "#%s", hash);
    return b.data ? mk_buf_take(&b) : strdup("");
}

/* Path variables: each "/:name" segment takes url.variable's value for name. */
static char *path_variables(char *text, const json_t *url)
{
    const json_t *vars = json_object_get(url, "variable");
    if (!json_array_size(vars))
        return text;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    const char *p = text;
    const char *stop = p + strcspn(p, "?#");
    while (*p) {
        const char *colon = p < stop ? strstr(p, "/:") : NULL;
        if (!colon || colon >= stop) {
            mk_buf_append_str(&b, p);
            break;
        }
        mk_buf_append(&b, p, (size_t)(colon - p + 1));
        const char *name = colon + 2;
        size_t nlen = strcspn(name, "/?#");
        const char *val = NULL;
        size_t i;
        const json_t *v;
        json_array_foreach(vars, i, v)
        {
            const char *k = json_string_value(json_object_get(v, "key"));
            if (k && strlen(k) == nlen && strncmp(k, name, nlen) == 0)
                val = json_string_value(json_object_get(v, "value"));
        }
        if (val)
            mk_buf_append_str(&b, val);
        else
            mk_buf_append(&b, name - 1, nlen + 1);
        p = name + nlen;
    }
    free(text);
    return b.data ? mk_buf_take(&b) : strdup("");
}

json_t *mk_apitest_working_request(const json_t *item)
{
    const json_t *req = json_object_get(item, "request");
    const json_t *url = json_object_get(req, "url");
    char *text = url ? path_variables(url_text(url), url) : strdup("");
    const char *method = json_string_value(json_object_get(req, "method"));
    json_t *headers = json_array();
    size_t i;
    const json_t *h;
    json_array_foreach(json_object_get(req, "header"), i, h)
    {
        const char *k = json_string_value(json_object_get(h, "key"));
        const json_t *val = json_object_get(h, "value");
        json_array_append_new(headers,
                              json_pack("{s:s, s:s, s:b}", "key", k ? k : "", "value",
                                        json_is_string(val) ? json_string_value(val) : "",
                                        "disabled", json_is_true(json_object_get(h, "disabled"))));
    }
    const json_t *body = json_object_get(req, "body");
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *id = json_string_value(json_object_get(item, "id"));
    json_t *w =
        json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id ? id : "", "name", name ? name : "",
                  "method", method ? method : "GET", "url", text ? text : "", "headers", headers);
    free(text);
    if (w && json_is_object(body))
        json_object_set_new(w, "body", json_deep_copy(body));
    return w;
}

/* ---- building the HTTP request ---- */

static int add_header(mk_apitest_http_t *h, const char *name, const char *value)
{
    if (h->n_headers == h->cap_headers) {
        size_t cap = h->cap_headers ? h->cap_headers * 2 : 16;
        char **n = realloc(h->names, cap * sizeof *n);
        if (!n)
            return MK_ENOMEM;
        h->names = n;
        char **v = realloc(h->values, cap * sizeof *v);
        if (!v)
            return MK_ENOMEM;
        h->values = v;
        h->cap_headers = cap;
    }
    h->names[h->n_headers] = strdup(name);
    h->values[h->n_headers] = strdup(value);
    h->n_headers++;
    return h->names[h->n_headers - 1] && h->values[h->n_headers - 1] ? 0 : MK_ENOMEM;
}

static int has_header(const mk_apitest_http_t *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return 1;
    return 0;
}

static void percent_encode(mk_buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-_.~", *p))
            mk_buf_append(b, p, 1);
        else
            mk_buf_appendf(b, "%%%02X", *p);
    }
}

static void base64(mk_buf_t *b, const unsigned char *s, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        char out[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                       i + 2 < n ? t[v & 63] : '='};
        mk_buf_append(b, out, 4);
    }
}

/* An auth parameter's value (v2.1 list form), resolved; "" when absent. Caller frees. */
static char *auth_param(const mk_apitest_vars_t *v, const json_t *auth, const char *type,
                        const char *key)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(auth, type), i, p)
    {
        const char *k = json_string_value(json_object_get(p, "key"));
        if (k && strcmp(k, key) == 0) {
            const json_t *val = json_object_get(p, "value");
            if (json_is_string(val))
                return mk_apitest_resolve(v, json_string_value(val));
            char *s = json_dumps(val, JSON_ENCODE_ANY);
            char *r = mk_apitest_resolve(v, s ? s : "");
            free(s);
            return r;
        }
    }
    return strdup("");
}

static int auth_bearer(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h)
{
    char *tok = auth_param(v, auth, "bearer", "token");
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_appendf(&b, "Bearer %s", tok ? tok : "");
    int rc = has_header(h, "Authorization") ? 0 : add_header(h, "Authorization", b.data);
    mk_buf_free(&b);
    free(tok);
    return rc;
}

static int auth_oauth2(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h)
{
    char *tok = auth_param(v, auth, "oauth2", "accessToken");
    char *prefix = auth_param(v, auth, "oauth2", "headerPrefix");
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_appendf(&b, "%s %s", prefix && prefix[0] ? prefix : "Bearer", tok ? tok : "");
    int rc = has_header(h, "Authorization") ? 0 : add_header(h, "Authorization", b.data);
    mk_buf_free(&b);
    free(tok);
    free(prefix);
    return rc;
}

static int auth_basic(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h)
{
    char *user = auth_param(v, auth, "basic", "username");
    char *pass = auth_param(v, auth, "basic", "password");
    mk_buf_t plain, b;
    mk_buf_init(&plain, 0);
    mk_buf_init(&b, 0);
    mk_buf_appendf(&plain, "%s:%s", user ? user : "", pass ? pass : "");
    mk_buf_append_str(&b, "Basic ");
    base64(&b, (const unsigned char *)plain.data, plain.len);
    int rc = has_header(h, "Authorization") ? 0 : add_header(h, "Authorization", b.data);
    mk_buf_free(&plain);
    mk_buf_free(&b);
    free(user);
    free(pass);
    return rc;
}

static int auth_apikey(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h)
{
    char *key = auth_param(v, auth, "apikey", "key");
    char *val = auth_param(v, auth, "apikey", "value");
    char *in = auth_param(v, auth, "apikey", "in");
    int rc = 0;
    if (in && strcmp(in, "query") == 0) {
        mk_buf_t b;
        mk_buf_init(&b, 0);
        mk_buf_appendf(&b, "%s%c", h->url, strchr(h->url, '?') ? '&' : '?');
        percent_encode(&b, key ? key : "");
        mk_buf_append_str(&b, "=");
        percent_encode(&b, val ? val : "");
        free(h->url);
        h->url = mk_buf_take(&b);
    } else if (key && key[0] && !has_header(h, key)) {
        rc = add_header(h, key, val ? val : "");
    }
    free(key);
    free(val);
    free(in);
    return rc;
}

static int auth_none(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h)
{
    (void)v;
    (void)auth;
    (void)h;
    return 0;
}

static const struct {
    const char *type;
    int (*apply)(const mk_apitest_vars_t *v, const json_t *auth, mk_apitest_http_t *h);
} auth_types[] = {
    {"noauth", auth_none},   {"bearer", auth_bearer}, {"basic", auth_basic},
    {"apikey", auth_apikey}, {"oauth2", auth_oauth2},
};

static const struct {
    const char *language;
    const char *type;
} raw_types[] = {
    {"json", "application/json"}, {"xml", "application/xml"},
    {"html", "text/html"},        {"javascript", "application/javascript"},
    {"text", "text/plain"},
};

static int body_raw(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                    mk_err_t *err)
{
    (void)err;
    h->body = mk_apitest_resolve(v, json_string_value(json_object_get(body, "raw")));
    h->body_len = h->body ? strlen(h->body) : 0;
    const char *lang = json_string_value(
        json_object_get(json_object_get(json_object_get(body, "options"), "raw"), "language"));
    const char *type = "text/plain";
    for (size_t i = 0; lang && i < sizeof raw_types / sizeof *raw_types; i++)
        if (strcmp(raw_types[i].language, lang) == 0)
            type = raw_types[i].type;
    if (h->body_len && !has_header(h, "Content-Type"))
        return add_header(h, "Content-Type", type);
    return h->body ? 0 : MK_ENOMEM;
}

static int body_urlencoded(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                           mk_err_t *err)
{
    (void)err;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    size_t i, n = 0;
    const json_t *p;
    json_array_foreach(json_object_get(body, "urlencoded"), i, p)
    {
        if (json_is_true(json_object_get(p, "disabled")))
            continue;
        char *k = mk_apitest_resolve(v, json_string_value(json_object_get(p, "key")));
        char *val = mk_apitest_resolve(v, json_string_value(json_object_get(p, "value")));
        if (n++)
            mk_buf_append_str(&b, "&");
        percent_encode(&b, k ? k : "");
        mk_buf_append_str(&b, "=");
        percent_encode(&b, val ? val : "");
        free(k);
        free(val);
    }
    h->body_len = b.len;
    h->body = b.data ? mk_buf_take(&b) : strdup("");
    if (!has_header(h, "Content-Type"))
        return add_header(h, "Content-Type", "application/x-www-form-urlencoded");
    return 0;
}

static int body_formdata(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                         mk_err_t *err)
{
    char boundary[64], u[37];
    mk_apitest_uuid(u);
    snprintf(boundary, sizeof boundary, "----MockartyFormBoundary%.8s%.4s", u, u + 9);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(body, "formdata"), i, p)
    {
        if (json_is_true(json_object_get(p, "disabled")))
            continue;
        const char *type = json_string_value(json_object_get(p, "type"));
        char *k = mk_apitest_resolve(v, json_string_value(json_object_get(p, "key")));
        if (type && strcmp(type, "file") == 0) {
            int rc = mk_err_set(err, MK_EINVAL,
                                "form-data field '%s' is a file: file uploads are not supported "
                                "by this runner",
                                k ? k : "");
            free(k);
            mk_buf_free(&b);
            return rc;
        }
        char *val = mk_apitest_resolve(v, json_string_value(json_object_get(p, "value")));
        const char *ct = json_string_value(json_object_get(p, "contentType"));
        mk_buf_appendf(&b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n", boundary,
                       k ? k : "");
        if (ct && ct[0])
            mk_buf_appendf(&b, "Content-Type: %s\r\n", ct);
        mk_buf_appendf(&b, "\r\n%s\r\n", val ? val : "");
        free(k);
        free(val);
    }
    mk_buf_appendf(&b, "--%s--\r\n", boundary);
    h->body_len = b.len;
    h->body = mk_buf_take(&b);
    if (!has_header(h, "Content-Type")) {
        char ct[128];
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", boundary);
        return add_header(h, "Content-Type", ct);
    }
    return 0;
}

static int body_graphql(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                        mk_err_t *err)
{
    const json_t *g = json_object_get(body, "graphql");
    char *query = mk_apitest_resolve(v, json_string_value(json_object_get(g, "query")));
    const json_t *vars = json_object_get(g, "variables");
    json_t *parsed = NULL;
    if (json_is_string(vars) && json_string_length(vars)) {
        char *text = mk_apitest_resolve(v, json_string_value(vars));
        parsed = json_loads(text ? text : "", 0, NULL);
        free(text);
        if (!parsed) {
            free(query);
            return mk_err_set(err, MK_EINVAL, "graphql variables are not valid JSON");
        }
    } else if (json_is_object(vars)) {
        parsed = json_incref((json_t *)vars);
    }
    json_t *doc = json_pack("{s:s}", "query", query ? query : "");
    if (parsed)
        json_object_set_new(doc, "variables", parsed);
    free(query);
    h->body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    h->body_len = h->body ? strlen(h->body) : 0;
    if (!has_header(h, "Content-Type"))
        return add_header(h, "Content-Type", "application/json");
    return 0;
}

static int body_none(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                     mk_err_t *err)
{
    (void)v;
    (void)body;
    (void)h;
    (void)err;
    return 0;
}

static const struct {
    const char *mode;
    int (*build)(const mk_apitest_vars_t *v, const json_t *body, mk_apitest_http_t *h,
                 mk_err_t *err);
} body_modes[] = {
    {"raw", body_raw},           {"urlencoded", body_urlencoded},
    {"formdata", body_formdata}, {"graphql", body_graphql},
    {"none", body_none},
};

/* What the URL may hold as is: RFC 3986's unreserved and reserved characters, and '%' (escapes
 * already there stay). Anything else (spaces, quotes, braces, non-ASCII bytes from variables)
 * is percent-encoded, as Postman does before sending. */
static char *encode_url(char *url)
{
    static const char ok[] = "-._~:/?#[]@!$&'()*+,;=%";
    size_t extra = 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (!isalnum(*p) && !strchr(ok, *p))
            extra += 2;
    if (!extra)
        return url;
    char *out = malloc(strlen(url) + extra + 1), *o = out;
    if (!out) {
        free(url);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (isalnum(*p) || strchr(ok, *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    free(url);
    return out;
}

int mk_apitest_http_build(const mk_apitest_vars_t *v, const json_t *req, const json_t *auth,
                          mk_apitest_http_t *out, mk_err_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    out->method = mk_apitest_resolve(v, json_string_value(json_object_get(req, "method")));
    out->url = mk_apitest_resolve(v, json_string_value(json_object_get(req, "url")));
    if (!out->method || !out->url) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    if (!out->method[0]) {
        free(out->method);
        out->method = strdup("GET");
    }
    for (char *m = out->method; *m; m++)
        *m = (char)toupper((unsigned char)*m);
    if (!out->url[0]) {
        rc = mk_err_set(err, MK_EINVAL, "the request has no URL");
        goto out;
    }
    if (!strstr(out->url, "://")) {
        /* Postman assumes http:// for "localhost:8080/x" */
        char *u = malloc(strlen(out->url) + 8);
        if (!u) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
        sprintf(u, "http://%s", out->url);
        free(out->url);
        out->url = u;
    }
    if (!strstr(out->url, "{{") && !(out->url = encode_url(out->url))) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    if (strstr(out->url, "{{")) {
        const char *open = strstr(out->url, "{{");
        const char *close = strstr(open, "}}");
        rc = mk_err_set(err, MK_EINVAL, "the URL %s uses the variable %.*s, which no scope defines",
                        out->url, close ? (int)(close - open + 2) : 2, open);
        goto out;
    }
    size_t i;
    const json_t *hd;
    json_array_foreach(json_object_get(req, "headers"), i, hd)
    {
        if (json_is_true(json_object_get(hd, "disabled")))
            continue;
        char *k = mk_apitest_resolve(v, json_string_value(json_object_get(hd, "key")));
        char *val = mk_apitest_resolve(v, json_string_value(json_object_get(hd, "value")));
        if (k && k[0])
            rc = add_header(out, k, val ? val : "");
        free(k);
        free(val);
        if (rc < 0) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
    }
    const json_t *body = json_object_get(req, "body");
    const char *mode = json_string_value(json_object_get(body, "mode"));
    if (body && !json_is_true(json_object_get(body, "disabled")) && mode) {
        size_t k;
        for (k = 0; k < sizeof body_modes / sizeof *body_modes; k++)
            if (strcmp(body_modes[k].mode, mode) == 0)
                break;
        if (k == sizeof body_modes / sizeof *body_modes) {
            rc = mk_err_set(err, MK_EINVAL,
                            "body mode '%s' is not supported (raw, urlencoded, "
                            "formdata, graphql)",
                            mode);
            goto out;
        }
        if ((rc = body_modes[k].build(v, body, out, err)) < 0) {
            if (!err || !err->msg[0])
                mk_err_set(err, rc, "out of memory");
            goto out;
        }
    }
    const char *type = json_string_value(json_object_get(auth, "type"));
    if (type) {
        size_t k;
        for (k = 0; k < sizeof auth_types / sizeof *auth_types; k++)
            if (strcmp(auth_types[k].type, type) == 0)
                break;
        if (k == sizeof auth_types / sizeof *auth_types) {
            rc = mk_err_set(err, MK_EINVAL,
                            "auth type '%s' is not supported (bearer, basic, "
                            "apikey, oauth2 with a token, noauth)",
                            type);
            goto out;
        }
        if ((rc = auth_types[k].apply(v, auth, out)) < 0) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (!has_header(out, "Accept"))
        rc = add_header(out, "Accept", "*/*");
out:
    if (rc < 0)
        mk_apitest_http_free(out);
    return rc;
}

void mk_apitest_http_free(mk_apitest_http_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_headers; i++) {
        free(h->names[i]);
        free(h->values[i]);
    }
    free(h->names);
    free(h->values);
    free(h->method);
    free(h->url);
    free(h->body);
    memset(h, 0, sizeof *h);
}
