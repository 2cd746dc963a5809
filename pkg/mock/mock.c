/* Parsing, validation and compilation of mock definitions. */
#include "mock/mock.h"
#include "mock/mock_graphql.h"
#include "mock/mock_internal.h"
#include "mock/mock_sse.h"
#include "mock/mock_proxy.h"
#include "mock/mock_socket.h"
#include "mock/mock_soap.h"
#include "route/route.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

int64_t mk_mock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mk_mock_new_id(char *buf)
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = (uint64_t)mk_mock_now_ms() ^ (uint64_t)(uintptr_t)buf;
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)rand();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static bool valid_name(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr(extra, c))
            return false;
    }
    return true;
}

int mk_mock_validate_namespace(const char *name, mk_err_t *err)
{
    if (!valid_name(name, 64, "_.-"))
        return mk_err_set(err, MK_EINVAL,
                          "namespace: '%.80s' is not a valid name (1-64 of A-Z a-z 0-9 _ . -)",
                          name);
    return 0;
}

mk_mock_t *mk_mock_ref(mk_mock_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

static void headers_clear(mk_header_t *headers, size_t n, mk_template_t **tpls)
{
    if (tpls != NULL)
        for (size_t i = 0; i < n; i++)
            mk_template_free(tpls[i]);
    free(tpls);
    free(headers);
}

static void response_clear(mk_mock_response_t *r)
{
    headers_clear(r->headers, r->nheaders, r->header_tpls);
    free(r->body);
    mk_template_free(r->body_tpl);
    free(r->template_path);
    free(r->grpc_message);
    json_decref(r->grpc_details);
}

static void webhook_clear(mk_mock_webhook_t *w)
{
    free(w->url);
    mk_template_free(w->url_tpl);
    headers_clear(w->headers, w->nheaders, w->header_tpls);
    free(w->body);
    mk_template_free(w->body_tpl);
}

static void mock_destroy(mk_mock_t *m)
{
    free(m->id);
    if (!m->names_packed_) {
        free(m->namespace_);
        free(m->route);
    }
    free(m->chain_id);
    free(m->folder_id);
    free(m->server_name);
    /* m->method points into the static methods table. */
    for (size_t i = 0; i < m->ntags; i++)
        free(m->tags[i]);
    free(m->tags);
    for (size_t i = 0; i < m->nconds; i++)
        mk_cond_free(m->conds[i]);
    free(m->conds);
    for (size_t i = 0; i < m->nresponses; i++)
        response_clear(&m->responses[i]);
    free(m->responses);
    for (size_t i = 0; i < m->nextracts; i++) {
        free(m->extracts[i].key);
        mk_template_free(m->extracts[i].value);
    }
    free(m->extracts);
    for (size_t i = 0; i < m->nwebhooks; i++)
        webhook_clear(&m->webhooks[i]);
    free(m->webhooks);
    json_decref(m->mstore);
    mk_mock_graphql_free(m->graphql);
    mk_mock_sse_free(m->sse);
    mk_mock_proxy_free(m->proxy);
    mk_mock_socket_free(m->socket);
    mk_mock_soap_free(m->soap);
    free(m->def_text_);
    free(m);
}

void mk_mock_unref(mk_mock_t *m)
{
    if (m == NULL)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        mock_destroy(m);
}

/* --- field helpers: each names the field on failure --- */

int mk_mock_get_string(const json_t *obj, const char *key, const char *field, bool required,
                       const char **out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return mk_err_set(err, MK_EINVAL, "%s: required", field);
        return 0;
    }
    if (!json_is_string(v))
        return mk_err_set(err, MK_EINVAL, "%s: must be a string", field);
    *out = json_string_value(v);
    return 0;
}

static int get_int(const json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                   int64_t def, int64_t *out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Out of int64 range the cast below is undefined (found by fuzz_mock). */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return mk_err_set(err, MK_EINVAL, "%s: must be between %lld and %lld", field,
                              (long long)min, (long long)max);
        if (d != (double)(int64_t)d)
            return mk_err_set(err, MK_EINVAL, "%s: must be an integer", field);
        *out = (int64_t)d;
    } else if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else {
        return mk_err_set(err, MK_EINVAL, "%s: must be an integer", field);
    }
    if (*out < min || *out > max)
        return mk_err_set(err, MK_EINVAL, "%s: must be between %lld and %lld", field,
                          (long long)min, (long long)max);
    return 0;
}

/* --- responses --- */

/* A compiled header list: literal bytes plus a template per value that holds placeholders. */
typedef struct header_list {
    mk_header_t *headers;
    size_t nheaders;
    mk_template_t **tpls; /* NULL when no value has placeholders */
} header_list_t;

static bool has_header(const header_list_t *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (mk_str_caseeq(h->headers[i].name, mk_str_of(name)))
            return true;
    return false;
}

/* Checks one header value and counts its bytes. */
static int header_value_ok(const json_t *v, const char *field, const char *name, long idx,
                           mk_err_t *err)
{
    char where[200];
    if (idx < 0)
        snprintf(where, sizeof where, "%s.headers.%.64s", field, name);
    else
        snprintf(where, sizeof where, "%s.headers.%.64s[%ld]", field, name, idx);
    if (!json_is_string(v))
        return mk_err_set(err, MK_EINVAL, "%s: must be a string", where);
    if (strpbrk(json_string_value(v), "\r\n"))
        return mk_err_set(err, MK_EINVAL, "%s: contains a line break", where);
    return 0;
}

/* Headers and their bytes share one allocation, so a list frees in two calls. Values are strings
 * or, unless strings_only (a map[string]string in Mockarty's DTO), arrays of strings. When
 * content_type is not NULL and no Content-Type is given, it is added. */
static int compile_headers(const json_t *hdrs, const char *field, bool strings_only,
                           const char *content_type, header_list_t *h, mk_err_t *err)
{
    size_t count = 1, bytes = 0;
    const char *name;
    json_t *vals;
    int rc;
    if (hdrs && !json_is_null(hdrs) && !json_is_object(hdrs))
        return mk_err_set(err, MK_EINVAL, "%s.headers: must be an object of %s", field,
                          strings_only ? "strings" : "string arrays");
    json_object_foreach((json_t *)hdrs, name, vals)
    {
        if (name[0] == '\0' || strpbrk(name, " :\r\n\t"))
            return mk_err_set(err, MK_EINVAL, "%s.headers: invalid header name '%.64s'", field,
                              name);
        if (json_is_string(vals) || strings_only) {
            if ((rc = header_value_ok(vals, field, name, -1, err)) != 0)
                return rc;
            count++;
            bytes += strlen(name) + json_string_length(vals) + 2;
            continue;
        }
        if (!json_is_array(vals))
            return mk_err_set(err, MK_EINVAL, "%s.headers.%s: must be an array of strings", field,
                              name);
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            if ((rc = header_value_ok(v, field, name, (long)i, err)) != 0)
                return rc;
            count++;
            bytes += strlen(name) + json_string_length(v) + 2;
        }
    }
    if (content_type)
        bytes += strlen("Content-Type") + strlen(content_type) + 2;
    char *block = malloc(count * sizeof(mk_header_t) + bytes);
    if (block == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_header_t *out = (mk_header_t *)block;
    char *p = block + count * sizeof(mk_header_t);
    size_t n = 0;
#define PUT(dst, s, l)                                                                             \
    do {                                                                                           \
        memcpy(p, (s), (l));                                                                       \
        p[(l)] = '\0';                                                                             \
        (dst) = (mk_str_t){p, (l)};                                                                \
        p += (l) + 1;                                                                              \
    } while (0)
    json_object_foreach((json_t *)hdrs, name, vals)
    {
        size_t i;
        json_t *v;
        if (json_is_string(vals)) {
            PUT(out[n].name, name, strlen(name));
            PUT(out[n].value, json_string_value(vals), json_string_length(vals));
            n++;
            continue;
        }
        json_array_foreach(vals, i, v)
        {
            PUT(out[n].name, name, strlen(name));
            PUT(out[n].value, json_string_value(v), json_string_length(v));
            n++;
        }
    }
    h->headers = out;
    h->nheaders = n;
    if (content_type && !has_header(h, "Content-Type")) {
        PUT(out[n].name, "Content-Type", strlen("Content-Type"));
        PUT(out[n].value, content_type, strlen(content_type));
        h->nheaders = n + 1;
    }
#undef PUT
    return 0;
}

/* Every placeholder starts with '$': a value without one is constant, and most are, so the
 * template compiler (and its allocations) is skipped for them. A JSON value nested deeper than the
 * template limit still goes to the compiler, which refuses it. */
static bool plainly_static(const json_t *v, int depth)
{
    if (depth > MK_TEMPLATE_MAX_DEPTH)
        return false;
    if (json_is_string(v))
        return memchr(json_string_value(v), '$', json_string_length(v)) == NULL;
    const char *key;
    json_t *child;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
        {
            if (!plainly_static(child, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            if (!plainly_static(child, depth + 1))
                return false;
        }
    }
    return true;
}

/* Header values holding placeholders get a compiled text template beside the literal. */
static int compile_header_templates(header_list_t *h, const char *field, bool *uses_store,
                                    mk_err_t *err)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (memchr(h->headers[i].value.base, '$', h->headers[i].value.len) == NULL)
            continue;
        char where[200];
        snprintf(where, sizeof where, "%s.headers.%.*s", field, (int)h->headers[i].name.len,
                 h->headers[i].name.base);
        mk_template_t *t = NULL;
        int rc = mk_template_compile_text(h->headers[i].value, where, &t, err);
        if (rc != 0)
            return rc;
        if (mk_template_is_static(t)) {
            mk_template_free(t);
            continue;
        }
        if (h->tpls == NULL) {
            h->tpls = calloc(h->nheaders, sizeof *h->tpls);
            if (h->tpls == NULL) {
                mk_template_free(t);
                return mk_err_set(err, MK_ENOMEM, "out of memory");
            }
        }
        *uses_store = *uses_store || mk_template_uses_store(t);
        h->tpls[i] = t;
    }
    return 0;
}

/* def's headers (see compile_headers) and their templates, stored in a response's or webhook's
 * fields on failure too: its clear function frees what was built. */
static int compile_header_fields(const json_t *def, const char *field, bool strings_only,
                                 const char *content_type, bool *uses_store, mk_header_t **headers,
                                 size_t *nheaders, mk_template_t ***tpls, mk_err_t *err)
{
    header_list_t h = {0};
    int rc = compile_headers(json_object_get(def, "headers"), field, strings_only, content_type, &h,
                             err);
    if (rc == 0)
        rc = compile_header_templates(&h, field, uses_store, err);
    *headers = h.headers;
    *nheaders = h.nheaders;
    *tpls = h.tpls;
    return rc;
}

/* A compiled body: the literal bytes, plus a template when it holds placeholders. */
typedef struct body {
    char *text;
    size_t len;
    mk_template_t *tpl;
    const char *content_type;
} body_t;

/* A string payload is text (text/plain), anything else is JSON; absent means an empty body. */
static int compile_body(const json_t *payload, const char *where, body_t *b, bool *uses_store,
                        mk_err_t *err)
{
    int rc;
    if (payload == NULL) {
        b->text = strdup("");
        b->len = 0;
        b->content_type = "text/plain; charset=utf-8";
        return b->text ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    if (plainly_static(payload, 0))
        rc = 0;
    else if (json_is_string(payload))
        rc = mk_template_compile_text(
            (mk_str_t){json_string_value(payload), json_string_length(payload)}, where, &b->tpl,
            err);
    else
        rc = mk_template_compile_json(payload, where, &b->tpl, err);
    if (rc)
        return rc;
    if (b->tpl && mk_template_is_static(b->tpl)) {
        mk_template_free(b->tpl);
        b->tpl = NULL;
    } else if (b->tpl) {
        *uses_store = *uses_store || mk_template_uses_store(b->tpl);
    }
    if (json_is_string(payload)) {
        b->len = json_string_length(payload);
        b->text = malloc(b->len + 1);
        if (b->text) {
            memcpy(b->text, json_string_value(payload), b->len);
            b->text[b->len] = '\0';
        }
        b->content_type = "text/plain; charset=utf-8";
    } else {
        b->text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        b->len = b->text ? strlen(b->text) : 0;
        b->content_type = "application/json";
    }
    return b->text ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static int get_number(const json_t *obj, const char *key, const char *field, double min, double max,
                      double *out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return mk_err_set(err, MK_EINVAL, "%s.%s: required number", field, key);
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return mk_err_set(err, MK_EINVAL, "%s.%s: must be between %g and %g", field, key, min, max);
    *out = d;
    return 0;
}

static int compile_delay_distribution(const json_t *def, const char *field, mk_mock_response_t *r,
                                      mk_err_t *err)
{
    json_t *dd = json_object_get(def, "delayDistribution");
    if (dd == NULL || json_is_null(dd))
        return 0;
    char sub[200];
    snprintf(sub, sizeof sub, "%s.delayDistribution", field);
    const char *type = json_string_value(json_object_get(dd, "type"));
    if (!json_is_object(dd) || type == NULL)
        return mk_err_set(err, MK_EINVAL, "%s: must be an object with a type", sub);
    const double max = MK_MOCK_MAX_DELAY_MS;
    int rc;
    if (strcmp(type, "fixed") == 0) {
        double ms = 0;
        rc = get_number(dd, "ms", sub, 0, max, &ms, err);
        r->delay_kind = MK_MOCK_DELAY_FIXED;
        r->delay_ms = (uint32_t)ms;
    } else if (strcmp(type, "uniform") == 0) {
        r->delay_kind = MK_MOCK_DELAY_UNIFORM;
        rc = get_number(dd, "lower", sub, 0, max, &r->delay_a, err);
        if (rc == 0)
            rc = get_number(dd, "upper", sub, 0, max, &r->delay_b, err);
        if (rc == 0 && r->delay_b < r->delay_a)
            rc = mk_err_set(err, MK_EINVAL, "%s: upper %g is below lower %g", sub, r->delay_b,
                            r->delay_a);
    } else if (strcmp(type, "lognormal") == 0) {
        r->delay_kind = MK_MOCK_DELAY_LOGNORMAL;
        rc = get_number(dd, "median", sub, 0, max, &r->delay_a, err);
        if (rc == 0)
            rc = get_number(dd, "sigma", sub, 0, 10, &r->delay_b, err);
    } else {
        rc = mk_err_set(err, MK_EINVAL, "%s.type: '%.40s' is not one of fixed, uniform, lognormal",
                        sub, type);
    }
    return rc;
}

static int compile_fault(const json_t *def, const char *field, mk_mock_response_t *r, mk_err_t *err)
{
    static const char *const names[] = {
        [MK_MOCK_FAULT_EMPTY_RESPONSE] = "EMPTY_RESPONSE",
        [MK_MOCK_FAULT_MALFORMED_RESPONSE_CHUNK] = "MALFORMED_RESPONSE_CHUNK",
        [MK_MOCK_FAULT_RANDOM_DATA_THEN_CLOSE] = "RANDOM_DATA_THEN_CLOSE",
        [MK_MOCK_FAULT_CONNECTION_RESET_BY_PEER] = "CONNECTION_RESET_BY_PEER",
    };
    json_t *f = json_object_get(def, "fault");
    if (f == NULL || json_is_null(f))
        return 0;
    for (size_t i = 1; json_is_string(f) && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(json_string_value(f), names[i]) == 0) {
            r->fault = (mk_mock_fault_t)i;
            return 0;
        }
    }
    return mk_err_set(err, MK_EINVAL,
                      "%s.fault: must be one of EMPTY_RESPONSE, MALFORMED_RESPONSE_CHUNK, "
                      "RANDOM_DATA_THEN_CLOSE, CONNECTION_RESET_BY_PEER",
                      field);
}

static int compile_dribble(const json_t *def, const char *field, mk_mock_response_t *r,
                           mk_err_t *err)
{
    json_t *d = json_object_get(def, "chunkedDribbleDelay");
    if (d == NULL || json_is_null(d))
        return 0;
    char sub[200];
    snprintf(sub, sizeof sub, "%s.chunkedDribbleDelay", field);
    if (!json_is_object(d))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", sub);
    double chunks = 0, total = 0;
    int rc = get_number(d, "numberOfChunks", sub, 1, 10000, &chunks, err);
    if (rc == 0)
        rc = get_number(d, "totalDuration", sub, 0, MK_MOCK_MAX_DELAY_MS, &total, err);
    r->dribble_chunks = (uint32_t)chunks;
    r->dribble_ms = (uint32_t)total;
    return rc;
}

/* google.rpc error detail kinds Mockarty's `errorDetails[].type` names. */
static const char *const grpc_detail_types[] = {
    "badRequest",          "help",         "debugInfo",   "errorInfo",    "localizedMessage",
    "preconditionFailure", "quotaFailure", "requestInfo", "resourceInfo", "retryInfo"};

/* The gRPC side of a response: `error` (the status message) and `errorDetails`. */
static int compile_grpc_error(const json_t *def, const char *field, mk_mock_response_t *r,
                              mk_err_t *err)
{
    const char *msg;
    char sub[160];
    snprintf(sub, sizeof sub, "%s.error", field);
    int rc = mk_mock_get_string(def, "error", sub, false, &msg, err);
    if (rc)
        return rc;
    if (msg && msg[0] && (r->grpc_message = strdup(msg)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    json_t *list = json_object_get(def, "errorDetails");
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL, "%s.errorDetails: must be an array", field);
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        const char *type;
        snprintf(sub, sizeof sub, "%s.errorDetails[%zu].type", field, i);
        if (!json_is_object(d))
            return mk_err_set(err, MK_EINVAL, "%s.errorDetails[%zu]: must be an object", field, i);
        rc = mk_mock_get_string(d, "type", sub, true, &type, err);
        if (rc)
            return rc;
        size_t k = 0, n = sizeof grpc_detail_types / sizeof *grpc_detail_types;
        while (k < n && strcmp(type, grpc_detail_types[k]) != 0)
            k++;
        if (k == n)
            return mk_err_set(err, MK_EINVAL,
                              "%s: unknown type '%.40s' (badRequest, help, debugInfo, errorInfo, "
                              "localizedMessage, preconditionFailure, quotaFailure, requestInfo, "
                              "resourceInfo or retryInfo)",
                              sub, type);
        json_t *det = json_object_get(d, "details");
        if (det != NULL && !json_is_null(det) && !json_is_object(det))
            return mk_err_set(err, MK_EINVAL, "%s.errorDetails[%zu].details: must be an object",
                              field, i);
    }
    r->grpc_details = json_deep_copy(list);
    return r->grpc_details ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static int compile_response(const json_t *def, const char *field, mk_mock_response_t *r,
                            bool *uses_store, bool grpc, mk_err_t *err)
{
    int rc;
    int64_t v;
    memset(r, 0, sizeof *r);
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.statusCode", field);
    /* A gRPC mock's statusCode is the gRPC status (0 OK ... 16 UNAUTHENTICATED). */
    rc = grpc ? get_int(def, "statusCode", sub, 0, 16, 0, &v, err)
              : get_int(def, "statusCode", sub, 100, 599, 200, &v, err);
    if (rc == 0 && grpc)
        rc = compile_grpc_error(def, field, r, err);
    if (rc)
        return rc;
    r->status = (int)v;
    snprintf(sub, sizeof sub, "%s.delay", field);
    rc = get_int(def, "delay", sub, 0, MK_MOCK_MAX_DELAY_MS, 0, &v, err);
    if (rc)
        return rc;
    r->delay_ms = (uint32_t)v;
    rc = compile_delay_distribution(def, field, r, err);
    if (rc == 0)
        rc = compile_fault(def, field, r, err);
    if (rc == 0)
        rc = compile_dribble(def, field, r, err);
    if (rc)
        return rc;

    const char *tpath;
    snprintf(sub, sizeof sub, "%s.payloadTemplatePath", field);
    rc = mk_mock_get_string(def, "payloadTemplatePath", sub, false, &tpath, err);
    if (rc)
        return rc;
    if (tpath && tpath[0] && (r->template_path = strdup(tpath)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");

    char where[200];
    snprintf(where, sizeof where, "%s.payload", field);
    body_t b = {0};
    rc = compile_body(json_object_get(def, "payload"), where, &b, uses_store, err);
    r->body = b.text;
    r->body_len = b.len;
    r->body_tpl = b.tpl;
    if (rc)
        return rc;
    return compile_header_fields(def, field, false, b.content_type, uses_store, &r->headers,
                                 &r->nheaders, &r->header_tpls, err);
}

/* Go's encoding/json writes a struct field even when it is the zero value, so Mockarty's Go SDK
 * sends "oneOf": {} and "response": {"decode": {}, "soapFault": {}, ...} for what it does not
 * use: such a value (null, or objects and empty arrays all the way down) means "absent". */
static bool blank(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return true;
    if (json_is_array(v))
        return json_array_size(v) == 0;
    if (!json_is_object(v))
        return false;
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x)
    {
        if (!blank(x))
            return false;
    }
    return true;
}

static int compile_responses(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    json_t *resp = json_object_get(def, "response");
    json_t *oneof = json_object_get(def, "oneOf");
    /* (An explicit empty "responses" list is an error worth naming, not a zero value.) */
    if (blank(oneof) && json_object_get(oneof, "responses") == NULL)
        oneof = NULL;
    if (resp && (json_is_null(resp) || (oneof != NULL && blank(resp))))
        resp = NULL;
    if (resp && oneof)
        return mk_err_set(err, MK_EINVAL, "oneOf: not allowed together with response");
    if (oneof == NULL) {
        m->oneof = MK_MOCK_SINGLE;
        m->responses = calloc(1, sizeof *m->responses);
        if (m->responses == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        m->nresponses = 1;
        json_t *none = NULL;
        if (resp == NULL && m->proxy != NULL)
            resp = none = json_object(); /* a proxy mock's answer is the upstream's */
        if (resp == NULL)
            return mk_err_set(err, MK_EINVAL, "response: required (or oneOf, or proxy)");
        int rc = compile_response(resp, "response", &m->responses[0], &m->uses_store,
                                  m->grpc_kind != MK_MOCK_GRPC_NONE, err);
        json_decref(none);
        return rc;
    }
    if (!json_is_object(oneof))
        return mk_err_set(err, MK_EINVAL, "oneOf: must be an object");
    const char *order;
    int rc = mk_mock_get_string(oneof, "order", "oneOf.order", false, &order, err);
    if (rc)
        return rc;
    if (order == NULL || strcmp(order, "order") == 0)
        m->oneof = MK_MOCK_ONEOF_ORDER;
    else if (strcmp(order, "random") == 0)
        m->oneof = MK_MOCK_ONEOF_RANDOM;
    else
        return mk_err_set(err, MK_EINVAL, "oneOf.order: must be \"order\" or \"random\"");
    json_t *list = json_object_get(oneof, "responses");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return mk_err_set(err, MK_EINVAL, "oneOf.responses: must be a non-empty array");
    size_t n = json_array_size(list);
    m->responses = calloc(n, sizeof *m->responses);
    if (m->responses == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->nresponses = n;
    for (size_t i = 0; i < n; i++) {
        char field[64];
        snprintf(field, sizeof field, "oneOf.responses[%zu]", i);
        rc = compile_response(json_array_get(list, i), field, &m->responses[i], &m->uses_store,
                              m->grpc_kind != MK_MOCK_GRPC_NONE, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- http section --- */

/* A gRPC body condition reads the request message as proto3 JSON, whose names are lowerCamelCase.
 * Mockarty's examples write "$.body.user_id": "$.body" is the message root, and a proto field
 * name (user_id) in a dotted segment is turned into its JSON name (userId). Bracketed parts
 * (['key'], [0], filters) are kept as written. */
static json_t *grpc_cond_def(const json_t *def)
{
    const char *path = json_string_value(json_object_get(def, "path"));
    if (path == NULL || strncmp(path, "$.", 2) != 0)
        return json_incref((json_t *)def);
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return NULL;
    const char *p = path;
    if (strncmp(p, "$.body", 6) == 0 && (p[6] == '.' || p[6] == '[' || p[6] == '\0'))
        p += 6;
    else
        p += 1;
    size_t k = 0;
    buf[k++] = '$';
    int depth = 0;
    bool upper = false;
    for (; *p; p++) {
        depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
        if (depth == 0 && *p == '_' && k > 0 && buf[k - 1] != '.' && isalnum((unsigned char)p[1])) {
            upper = true;
            continue;
        }
        buf[k++] = upper ? (char)toupper((unsigned char)*p) : *p;
        upper = false;
    }
    buf[k] = '\0';
    json_t *copy = strcmp(buf, path) == 0 ? json_incref((json_t *)def) : json_copy((json_t *)def);
    if (copy && strcmp(buf, path) != 0)
        json_object_set_new(copy, "path", json_string(buf));
    free(buf);
    return copy;
}

json_t *mk_mock_cond_unprefix(const json_t *def, const char *const *prefixes, size_t n)
{
    const char *path = json_string_value(json_object_get(def, "path"));
    for (size_t i = 0; path && i < n; i++) {
        size_t len = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], len) != 0 ||
            (path[len] != '\0' && path[len] != '.' && path[len] != '['))
            continue;
        json_t *copy = json_copy((json_t *)def);
        char *rewritten = malloc(strlen(path) + 2);
        if (copy == NULL || rewritten == NULL) {
            json_decref(copy);
            free(rewritten);
            return NULL;
        }
        snprintf(rewritten, strlen(path) + 2, "$%s", path + len);
        json_object_set_new(copy, "path", json_string(rewritten));
        free(rewritten);
        return copy;
    }
    return json_incref((json_t *)def);
}

int mk_mock_compile_conds(mk_mock_t *m, const json_t *obj, const char *section, const char *key,
                          mk_cond_kind_t kind, json_t *(*adapt)(const json_t *def), mk_err_t *err)
{
    json_t *list = json_object_get(obj, key);
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL, "%s.%s: must be an array", section, key);
    size_t n = json_array_size(list);
    mk_cond_t **grown = realloc(m->conds, (m->nconds + n + 1) * sizeof *grown);
    if (grown == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->conds = grown;
    for (size_t i = 0; i < n; i++) {
        char field[64];
        snprintf(field, sizeof field, "%s.%s[%zu]", section, key, i);
        json_t *def = json_array_get(list, i);
        def = adapt ? adapt(def) : json_incref(def);
        if (def == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        int rc = mk_cond_compile(def, kind, field, &m->conds[m->nconds], err);
        json_decref(def);
        if (rc)
            return rc;
        m->nconds++;
    }
    return 0;
}

static const char *const methods[] = {"GET",  "POST",    "PUT",   "PATCH",   "DELETE",
                                      "HEAD", "OPTIONS", "TRACE", "CONNECT", "ANY"};
#define N_METHODS (sizeof methods / sizeof *methods)

/* The methods entry for method (any case), or NULL. allow_any: "ANY" counts. */
static const char *known_method(const char *method, bool allow_any)
{
    char upper[16];
    size_t n = strlen(method);
    if (n >= sizeof upper)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)method[i]);
    for (size_t i = 0; i < N_METHODS - (allow_any ? 0 : 1); i++)
        if (strcmp(upper, methods[i]) == 0)
            return methods[i];
    return NULL;
}

static int compile_http(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    if (mk_mock_sse_is(def)) /* a GET route like this one, plus the chain */
        return mk_mock_sse_compile(m, def, compile_http, err);
    json_t *http = json_object_get(def, "http");
    if (http == NULL || json_is_null(http))
        return mk_err_set(err, MK_EINVAL, "http: required (this server serves HTTP mocks)");
    if (!json_is_object(http))
        return mk_err_set(err, MK_EINVAL, "http: must be an object");
    const char *route, *method, *prefix;
    int rc = mk_mock_get_string(http, "route", "http.route", true, &route, err);
    if (rc == 0)
        rc = mk_mock_get_string(http, "httpMethod", "http.httpMethod", false, &method, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "pathPrefix", "pathPrefix", false, &prefix, err);
    if (rc)
        return rc;
    /* The method points into the static table: no copy per mock. */
    m->method = (char *)methods[N_METHODS - 1];
    if (method && method[0]) {
        const char *known = known_method(method, true);
        if (known == NULL)
            return mk_err_set(err, MK_EINVAL,
                              "http.httpMethod: unknown method '%.32s' (GET, POST, PUT, PATCH, "
                              "DELETE, HEAD, OPTIONS, TRACE, CONNECT or ANY)",
                              method);
        m->method = (char *)known;
    }

    mk_err_t rerr;
    if (prefix && prefix[0]) {
        if (prefix[0] != '/')
            return mk_err_set(err, MK_EINVAL, "pathPrefix: must start with '/'");
        size_t pl = strlen(prefix);
        while (pl > 0 && prefix[pl - 1] == '/')
            pl--;
        size_t rl = strlen(route);
        m->route = malloc(pl + rl + 1);
        if (m->route == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        memcpy(m->route, prefix, pl);
        memcpy(m->route + pl, route, rl + 1);
        if (rc == 0 && route[0] != '/')
            return mk_err_set(err, MK_EINVAL, "http.route: must start with '/'");
    } else {
        m->route = strdup(route);
    }
    if (m->route == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (mk_route_validate(route, &rerr) != 0)
        return mk_err_set(err, MK_EINVAL, "http.route: %s", rerr.msg);
    if (mk_route_validate(m->route, &rerr) != 0)
        return mk_err_set(err, MK_EINVAL, "pathPrefix: %s", rerr.msg);

    rc = mk_mock_compile_conds(m, http, "http", "conditions", MK_COND_BODY, NULL, err);
    if (rc == 0)
        rc = mk_mock_compile_conds(m, http, "http", "queryParams", MK_COND_QUERY, NULL, err);
    if (rc == 0)
        rc = mk_mock_compile_conds(m, http, "http", "header", MK_COND_HEADER, NULL, err);
    return rc;
}

/* methodType spellings: the issue's, the Go SDK's comment's, and gRPC's own names. */
static const struct {
    const char *name;
    mk_mock_grpc_kind_t kind;
} grpc_kinds[] = {
    {"unary", MK_MOCK_GRPC_UNARY},
    {"server_stream", MK_MOCK_GRPC_SERVER_STREAM},
    {"server-stream", MK_MOCK_GRPC_SERVER_STREAM},
    {"server_streaming", MK_MOCK_GRPC_SERVER_STREAM},
    {"client_stream", MK_MOCK_GRPC_CLIENT_STREAM},
    {"client-stream", MK_MOCK_GRPC_CLIENT_STREAM},
    {"client_streaming", MK_MOCK_GRPC_CLIENT_STREAM},
    {"bidi", MK_MOCK_GRPC_BIDI},
    {"bidirectional", MK_MOCK_GRPC_BIDI},
    {"bidi_stream", MK_MOCK_GRPC_BIDI},
    {"bidi-stream", MK_MOCK_GRPC_BIDI},
};

/* A gRPC service or method name: dotted identifiers. */
static bool grpc_name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '.' || strlen(s) > 200)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
            return false;
    return true;
}

static int compile_grpc(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    json_t *g = json_object_get(def, "grpc");
    if (!json_is_object(g))
        return mk_err_set(err, MK_EINVAL, "grpc: must be an object");
    const char *service, *method, *type;
    int rc = mk_mock_get_string(g, "service", "grpc.service", true, &service, err);
    if (rc == 0)
        rc = mk_mock_get_string(g, "method", "grpc.method", true, &method, err);
    if (rc == 0)
        rc = mk_mock_get_string(g, "methodType", "grpc.methodType", false, &type, err);
    if (rc)
        return rc;
    if (!grpc_name_ok(service))
        return mk_err_set(err, MK_EINVAL,
                          "grpc.service: '%.64s' is not a service name (package.Service)", service);
    if (!grpc_name_ok(method) || strchr(method, '.'))
        return mk_err_set(err, MK_EINVAL, "grpc.method: '%.64s' is not a method name", method);
    m->grpc_kind = MK_MOCK_GRPC_ANY;
    if (type && type[0]) {
        size_t i = 0, n = sizeof grpc_kinds / sizeof *grpc_kinds;
        while (i < n && strcasecmp(type, grpc_kinds[i].name) != 0)
            i++;
        if (i == n)
            return mk_err_set(err, MK_EINVAL,
                              "grpc.methodType: unknown '%.32s' (unary, server_stream, "
                              "client_stream or bidi)",
                              type);
        m->grpc_kind = grpc_kinds[i].kind;
    }
    m->method = (char *)MK_MOCK_GRPC_METHOD;
    size_t ls = strlen(service), lm = strlen(method);
    m->route = malloc(ls + lm + 3);
    if (m->route == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    snprintf(m->route, ls + lm + 3, "/%s/%s", service, method);
    rc = mk_mock_compile_conds(m, g, "grpc", "conditions", MK_COND_BODY, grpc_cond_def, err);
    if (rc == 0)
        rc = mk_mock_compile_conds(m, g, "grpc", "meta", MK_COND_HEADER, NULL, err);
    return rc;
}

static int compile_meta(mk_mock_t *m, json_t *def, mk_err_t *err)
{
    const char *id, *ns, *chain, *folder, *server;
    int rc = mk_mock_get_string(def, "id", "id", false, &id, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "namespace", "namespace", false, &ns, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "chainId", "chainId", false, &chain, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "folderId", "folderId", false, &folder, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "serverName", "serverName", false, &server, err);
    if (rc)
        return rc;
    char generated[37];
    if (id == NULL || id[0] == '\0') {
        mk_mock_new_id(generated);
        id = generated;
        json_object_set_new(def, "id", json_string(id));
    } else if (!valid_name(id, 128, "_.:-@~")) {
        return mk_err_set(err, MK_EINVAL,
                          "id: '%.80s' is not a valid id (1-128 of A-Z a-z 0-9 _ . : - @ ~)", id);
    }
    if (ns == NULL || ns[0] == '\0') {
        ns = MK_MOCK_DEFAULT_NAMESPACE;
        json_object_set_new(def, "namespace", json_string(ns));
    }
    rc = mk_mock_validate_namespace(ns, err);
    if (rc)
        return rc;
    m->id = strdup(id);
    m->namespace_ = strdup(json_string_value(json_object_get(def, "namespace")));
    m->chain_id = (chain && chain[0]) ? strdup(chain) : NULL;
    m->folder_id = (folder && folder[0]) ? strdup(folder) : NULL;
    m->server_name = (server && server[0]) ? strdup(server) : NULL;
    if (m->id == NULL || m->namespace_ == NULL || (chain && chain[0] && m->chain_id == NULL) ||
        (folder && folder[0] && m->folder_id == NULL) ||
        (server && server[0] && m->server_name == NULL))
        return mk_err_set(err, MK_ENOMEM, "out of memory");

    json_t *tags = json_object_get(def, "tags");
    if (tags && !json_is_null(tags)) {
        if (!json_is_array(tags))
            return mk_err_set(err, MK_EINVAL, "tags: must be an array of strings");
        m->tags = calloc(json_array_size(tags) + 1, sizeof *m->tags);
        if (m->tags == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t)
        {
            if (!json_is_string(t))
                return mk_err_set(err, MK_EINVAL, "tags[%zu]: must be a string", i);
            m->tags[m->ntags++] = strdup(json_string_value(t));
        }
    }
    rc = get_int(def, "priority", "priority", INT32_MIN, INT32_MAX, 0, &m->priority, err);
    if (rc == 0)
        rc = get_int(def, "ttl", "ttl", 0, INT32_MAX, 0, &m->ttl, err);
    if (rc == 0)
        rc = get_int(def, "useLimiter", "useLimiter", 0, INT64_MAX, 0, &m->use_limiter, err);
    return rc;
}

/* --- stores: extract and mStore --- */

static int compile_extract(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    json_t *seed = json_object_get(def, "mStore");
    if (seed != NULL && !json_is_null(seed)) {
        if (!json_is_object(seed))
            return mk_err_set(err, MK_EINVAL, "mStore: must be an object");
        /* A copy of its own: the definition is kept as text only. */
        m->mstore = json_deep_copy(seed);
        if (m->mstore == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    json_t *ex = json_object_get(def, "extract");
    if (ex == NULL || json_is_null(ex))
        return 0;
    if (!json_is_object(ex))
        return mk_err_set(err, MK_EINVAL, "extract: must be an object with gStore, cStore, mStore");
    static const struct {
        const char *name;
        mk_template_store_t store;
    } kinds[] = {{"gStore", MK_TEMPLATE_GLOBAL},
                 {"cStore", MK_TEMPLATE_CHAIN},
                 {"mStore", MK_TEMPLATE_MOCK}};
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)ex, name, v)
    {
        bool known = false;
        for (size_t k = 0; k < 3; k++)
            known = known || strcmp(name, kinds[k].name) == 0;
        if (!known)
            return mk_err_set(err, MK_EINVAL,
                              "extract.%.40s: unknown store (gStore, cStore, mStore)", name);
        if (!json_is_null(v) && !json_is_object(v))
            return mk_err_set(err, MK_EINVAL, "extract.%s: must be an object", name);
    }
    size_t total = 0;
    for (size_t k = 0; k < 3; k++)
        total += json_object_size(json_object_get(ex, kinds[k].name));
    /* cStore without chainId is accepted, as Mockarty's SDK examples do it: the chain store of
     * a mock without chainId is the one of the empty chainId (see docs/mock-format.md). */
    if (total == 0)
        return 0;
    m->extracts = calloc(total, sizeof *m->extracts);
    if (m->extracts == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t k = 0; k < 3; k++) {
        const char *key;
        json_object_foreach(json_object_get(ex, kinds[k].name), key, v)
        {
            char where[200];
            snprintf(where, sizeof where, "extract.%s.%.80s", kinds[k].name, key);
            if (key[0] == '\0')
                return mk_err_set(err, MK_EINVAL, "%s: empty key", where);
            mk_mock_extract_t *e = &m->extracts[m->nextracts];
            int rc = mk_template_compile_json(v, where, &e->value, err);
            if (rc != 0)
                return rc;
            e->store = kinds[k].store;
            e->key = strdup(key);
            m->nextracts++;
            if (e->key == NULL)
                return mk_err_set(err, MK_ENOMEM, "out of memory");
        }
    }
    m->uses_store = true;
    return 0;
}

/* --- webhooks (Mockarty's Callback DTO) --- */

/* Index of the string at obj.key in names (absent, null or "" gives def). */
static int get_enum(const json_t *obj, const char *key, const char *field, const char *const *names,
                    size_t n, int def, int *out, mk_err_t *err)
{
    const char *v;
    int rc = mk_mock_get_string(obj, key, field, false, &v, err);
    *out = def;
    if (rc || v == NULL || v[0] == '\0')
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    char list[200] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return mk_err_set(err, MK_EINVAL, "%s: '%.40s' is not one of %s", field, v, list);
}

/* The Kafka and RabbitMQ members: only their JSON types are checked (this server sends HTTP
 * webhooks only; the others are kept in the definition). */
static const struct {
    const char *name;
    json_type type;
} webhook_extras[] = {
    {"kafkaBrokers", JSON_STRING},
    {"kafkaTopic", JSON_STRING},
    {"kafkaKey", JSON_STRING},
    {"kafkaUsername", JSON_STRING},
    {"kafkaPassword", JSON_STRING},
    {"kafkaUseSASL", JSON_TRUE},
    {"kafkaUseTLS", JSON_TRUE},
    {"rabbitURL", JSON_STRING},
    {"rabbitExchange", JSON_STRING},
    {"rabbitRoutingKey", JSON_STRING},
    {"rabbitQueue", JSON_STRING},
    {"rabbitMandatory", JSON_TRUE},
    {"async", JSON_TRUE},
};

static int check_extras(const json_t *def, const char *field, mk_err_t *err)
{
    for (size_t i = 0; i < sizeof webhook_extras / sizeof *webhook_extras; i++) {
        json_t *v = json_object_get(def, webhook_extras[i].name);
        if (v == NULL || json_is_null(v))
            continue;
        bool ok = webhook_extras[i].type == JSON_TRUE ? json_is_boolean(v) : json_is_string(v);
        if (!ok)
            return mk_err_set(err, MK_EINVAL, "%s.%s: must be %s", field, webhook_extras[i].name,
                              webhook_extras[i].type == JSON_TRUE ? "true or false" : "a string");
    }
    return 0;
}

static bool is_http_url(const char *u)
{
    size_t skip = strncasecmp(u, "http://", 7) == 0    ? 7
                  : strncasecmp(u, "https://", 8) == 0 ? 8
                                                       : 0;
    return skip && u[skip] != '\0' && u[skip] != '/' && !strpbrk(u, " \r\n\t");
}

static int compile_webhook_url(const json_t *def, const char *field, mk_mock_webhook_t *w,
                               bool *uses_store, mk_err_t *err)
{
    char where[80];
    snprintf(where, sizeof where, "%s.url", field);
    const char *url;
    int rc = mk_mock_get_string(def, "url", where, false, &url, err);
    if (rc)
        return rc;
    if (url == NULL || url[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "%s: required for an http webhook", where);
    rc = mk_template_compile_text(mk_str_of(url), where, &w->url_tpl, err);
    if (rc)
        return rc;
    if (mk_template_is_static(w->url_tpl)) {
        mk_template_free(w->url_tpl);
        w->url_tpl = NULL;
        if (!is_http_url(url))
            return mk_err_set(err, MK_EINVAL,
                              "%s: '%.100s' is not an http:// or https:// URL with a host", where,
                              url);
    } else {
        /* A rendered url is checked by the sender, when it is known. */
        *uses_store = *uses_store || mk_template_uses_store(w->url_tpl);
    }
    w->url = strdup(url);
    return w->url ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static int compile_webhook(const json_t *def, const char *field, mk_mock_webhook_t *w,
                           bool *uses_store, mk_err_t *err)
{
    static const char *const kinds[] = {"http", "kafka", "rabbitmq"};
    static const char *const triggers[] = {"always", "on_success", "on_error", "on_first_use",
                                           "on_last_use"};
    char sub[80];
    int kind, trigger, rc;
    int64_t v;
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
    snprintf(sub, sizeof sub, "%s.type", field);
    rc = get_enum(def, "type", sub, kinds, 3, MK_MOCK_WEBHOOK_HTTP, &kind, err);
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s.trigger", field);
        rc = get_enum(def, "trigger", sub, triggers, 5, MK_MOCK_WEBHOOK_ALWAYS, &trigger, err);
    }
    if (rc == 0)
        rc = check_extras(def, field, err);
    if (rc)
        return rc;
    w->kind = (mk_mock_webhook_kind_t)kind;
    w->trigger = (mk_mock_webhook_trigger_t)trigger;
    w->async = json_is_true(json_object_get(def, "async"));

    snprintf(sub, sizeof sub, "%s.timeout", field);
    rc = get_int(def, "timeout", sub, 0, MK_MOCK_MAX_DELAY_MS, 0, &v, err);
    w->timeout_ms = v ? (uint32_t)v : MK_MOCK_WEBHOOK_DEFAULT_TIMEOUT_MS;
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s.retryCount", field);
        rc = get_int(def, "retryCount", sub, 0, MK_MOCK_WEBHOOK_MAX_RETRIES, 0, &v, err);
        w->retry_count = (uint32_t)v;
    }
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s.retryDelay", field);
        rc = get_int(def, "retryDelay", sub, 0, MK_MOCK_MAX_DELAY_MS, 0, &v, err);
        w->retry_delay_ms = (uint32_t)v;
    }
    const char *method = NULL;
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s.method", field);
        rc = mk_mock_get_string(def, "method", sub, false, &method, err);
    }
    if (rc)
        return rc;
    snprintf(w->method, sizeof w->method, "POST");
    if (method && method[0]) {
        const char *known = known_method(method, false);
        if (known == NULL)
            return mk_err_set(err, MK_EINVAL,
                              "%s: unknown method '%.32s' (GET, POST, PUT, PATCH, DELETE, HEAD, "
                              "OPTIONS, TRACE or CONNECT)",
                              sub, method);
        snprintf(w->method, sizeof w->method, "%s", known);
    }

    /* Body and headers are templates like a response's, for every kind (a Kafka message has
     * them too), so a definition is refused when any of them does not compile. */
    json_t *payload = json_object_get(def, "body");
    if (json_is_null(payload))
        payload = NULL;
    char where[96];
    snprintf(where, sizeof where, "%s.body", field);
    body_t b = {0};
    if (payload) {
        rc = compile_body(payload, where, &b, uses_store, err);
        w->body = b.text;
        w->body_len = b.len;
        w->body_tpl = b.tpl;
        if (rc)
            return rc;
    }
    rc = compile_header_fields(def, field, true, b.content_type, uses_store, &w->headers,
                               &w->nheaders, &w->header_tpls, err);
    if (rc == 0 && w->kind == MK_MOCK_WEBHOOK_HTTP)
        rc = compile_webhook_url(def, field, w, uses_store, err);
    return rc;
}

static int compile_webhooks(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    json_t *list = json_object_get(def, "webhooks");
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL, "webhooks: must be an array");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    if (n > MK_MOCK_WEBHOOK_MAX)
        return mk_err_set(err, MK_EINVAL, "webhooks: at most %d per mock", MK_MOCK_WEBHOOK_MAX);
    m->webhooks = calloc(n, sizeof *m->webhooks);
    if (m->webhooks == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof field, "webhooks[%zu]", i);
        m->nwebhooks++; /* counted first: a half-compiled entry is freed too */
        int rc =
            compile_webhook(json_array_get(list, i), field, &m->webhooks[i], &m->uses_store, err);
        if (rc)
            return rc;
    }
    return 0;
}

static mk_mock_t *mock_alloc(void)
{
    mk_mock_t *m = calloc(1, sizeof *m);
    if (m)
        atomic_init(&m->refs, 1);
    return m;
}

/* id, namespace and route in one allocation (id first, so freeing id frees all three): two
 * allocations less per mock. */
static int pack_names(mk_mock_t *m, mk_err_t *err)
{
    size_t li = strlen(m->id) + 1, ln = strlen(m->namespace_) + 1, lr = strlen(m->route) + 1;
    char *block = malloc(li + ln + lr);
    if (block == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    memcpy(block, m->id, li);
    memcpy(block + li, m->namespace_, ln);
    memcpy(block + li + ln, m->route, lr);
    free(m->id);
    free(m->namespace_);
    free(m->route);
    m->id = block;
    m->namespace_ = block + li;
    m->route = block + li + ln;
    m->names_packed_ = true;
    return 0;
}

static int compile(mk_mock_t *m, json_t *def, mk_err_t *err)
{
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "mock: must be a JSON object");
    int rc = compile_meta(m, def, err);
    json_t *http = json_object_get(def, "http"), *grpc = json_object_get(def, "grpc");
    /* The Go SDK sends "http": {} with a gRPC mock (and "grpc": {} with an HTTP one). */
    bool is_grpc = !blank(grpc) && blank(http);
    if (rc == 0 && !is_grpc && mk_mock_graphql_is(def))
        rc = mk_mock_graphql_compile(m, def, err);
    else if (rc == 0)
        rc = is_grpc                  ? compile_grpc(m, def, err)
             : mk_mock_socket_is(def) ? mk_mock_socket_compile(m, def, err)
             : mk_mock_soap_is(def)   ? mk_mock_soap_compile(m, def, err)
                                      : compile_http(m, def, err);
    if (rc == 0)
        rc = mk_mock_proxy_parse(def, &m->proxy, err);
    if (rc == 0 && m->proxy != NULL && is_grpc)
        rc = mk_err_set(err, MK_EINVAL, "proxy: HTTP mocks only");
    if (rc == 0)
        rc = m->soap ? mk_mock_soap_responses(m, def, compile_responses, err)
                     : compile_responses(m, def, err);
    if (rc == 0)
        rc = compile_extract(m, def, err);
    if (rc == 0)
        rc = compile_webhooks(m, def, err);
    if (rc == 0)
        rc = mk_mock_stores_check(m, err);
    if (rc == 0)
        rc = pack_names(m, err);
    return rc;
}

/* Counters are the server's: whatever a client or an older stored row carries is dropped. */
static const char *const counter_fields[] = {"lastUse", "useCounter", "useCount"};

static void del_fields(json_t *def, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_object_del(def, names[i]);
}

/* The kept text is compact JSON with its most common runs replaced by one byte each: bytes 1-31
 * never occur raw in jansson's compact output (it escapes control characters in strings), so
 * the substitution is exact both ways. A typical mock's text shrinks to about a third. */
#define TOKEN(s)                                                                                   \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
static const struct {
    const char *s;
    size_t len;
} packed_tokens[] = {
    {NULL, 0}, /* 0 ends the text */
    TOKEN("{\"http\":{\"route\":\""),
    TOKEN("\",\"httpMethod\":\""),
    TOKEN("\"queryParams\":[{\"path\":\""),
    TOKEN("\"header\":[{\"path\":\""),
    TOKEN("\"conditions\":[{\"path\":\""),
    TOKEN("\",\"assertAction\":\"equals\",\"value\":"),
    TOKEN("\",\"assertAction\":\""),
    TOKEN("\",\"value\":"),
    TOKEN("\"response\":{\"statusCode\":"),
    TOKEN(",\"payload\":"),
    TOKEN(",\"headers\":{\""),
    TOKEN("\"Content-Type\":[\"application/json\"]"),
    TOKEN("\"priority\":"),
    TOKEN("\"tags\":[\""),
    TOKEN("\"chainId\":\""),
    TOKEN("\"oneOf\":{\""),
    TOKEN("\"responses\":[{\"statusCode\":"),
    TOKEN("\"extract\":{\""),
    TOKEN("\"ttl\":"),
    TOKEN("\"useLimiter\":"),
    TOKEN("\"closedAt\":"),
    TOKEN("\"delay\":"),
    TOKEN("\"pathPrefix\":\""),
    TOKEN("\"webhooks\":[{"),
    TOKEN("\"folderId\":\""),
    TOKEN("\"serverName\":\""),
    TOKEN("},{\"path\":\""),
    TOKEN("\"mStore\":{"),
    TOKEN("\"},\""),
    TOKEN("\"}],"),
    TOKEN("\":\""),
};
#undef TOKEN
#define N_PACKED_TOKENS (sizeof packed_tokens / sizeof *packed_tokens)

/* Replaces the tokens (longest match first) in text; a new exact-size string. */
static char *pack_text(const char *text)
{
    size_t len = strlen(text), n = 0;
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t best = 0, best_len = 0;
        /* Every token starts with one of these: most bytes are passed over at once. */
        bool maybe = text[i] == '"' || text[i] == ',' || text[i] == '{' || text[i] == '}';
        for (size_t t = 1; maybe && t < N_PACKED_TOKENS; t++) {
            size_t tl = packed_tokens[t].len;
            /* Every token is at least 3 bytes: two byte compares reject most before memcmp. */
            if (tl > best_len && tl <= len - i && packed_tokens[t].s[0] == text[i] &&
                packed_tokens[t].s[1] == text[i + 1] &&
                memcmp(text + i, packed_tokens[t].s, tl) == 0) {
                best = t;
                best_len = tl;
            }
        }
        if (best) {
            out[n++] = (char)best;
            i += best_len;
        } else {
            out[n++] = text[i++];
        }
    }
    out[n] = '\0';
    char *sized = realloc(out, n + 1);
    return sized ? sized : out;
}

/* The JSON text back from pack_text()'s output; caller frees. */
static char *unpack_text(const char *packed, size_t *len)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)packed; *p; p++)
        n += *p < N_PACKED_TOKENS ? packed_tokens[*p].len : 1;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    char *w = out;
    for (const unsigned char *p = (const unsigned char *)packed; *p; p++) {
        if (*p < N_PACKED_TOKENS) {
            size_t tl = packed_tokens[*p].len;
            memcpy(w, packed_tokens[*p].s, tl);
            w += tl;
        } else {
            *w++ = (char)*p;
        }
    }
    *w = '\0';
    *len = n;
    return out;
}

/* Fields the compiled mock holds itself: left out of the kept text, put back by
 * definition_tree(). */
static const char *const held_fields[] = {"id", "namespace", "createdAt", "updatedAt", "expireAt"};

/* Keeps the definition as compact text without the held fields (def is changed). */
static int keep_text(mk_mock_t *m, json_t *def, mk_err_t *err)
{
    del_fields(def, held_fields, sizeof held_fields / sizeof *held_fields);
    char *text = json_dumps(def, JSON_COMPACT);
    m->def_text_ = text ? pack_text(text) : NULL;
    free(text);
    return m->def_text_ ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

int mk_mock_parse(const json_t *def, const mk_mock_parse_opts_t *opts, mk_mock_t **out,
                  mk_err_t *err)
{
    *out = NULL;
    json_t *work = NULL;
    mk_mock_t *m = mock_alloc();
    if (m == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    int rc;
    if (!json_is_object(def)) {
        rc = mk_err_set(err, MK_EINVAL, "mock: must be a JSON object");
        goto fail;
    }
    /* A shallow copy is enough: compiling changes top-level members only. */
    work = json_copy((json_t *)def);
    if (work == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    /* Timestamps are the server's too. */
    static const char *const server_set[] = {"createdAt", "updatedAt", "expireAt", "closedAt"};
    del_fields(work, server_set, sizeof server_set / sizeof *server_set);
    del_fields(work, counter_fields, sizeof counter_fields / sizeof *counter_fields);
    rc = compile(m, work, err);
    if (rc)
        goto fail;
    m->created_at = opts->created_at ? opts->created_at : opts->now_ms;
    m->updated_at = opts->now_ms;
    m->expire_at = m->ttl > 0 ? opts->now_ms + m->ttl * 1000 : 0;
    rc = keep_text(m, work, err);
    if (rc)
        goto fail;
    json_decref(work);
    *out = m;
    return 0;
fail:
    json_decref(work);
    mock_destroy(m);
    return rc;
}

static int64_t stored_int(const json_t *def, const char *key)
{
    json_t *v = json_object_get(def, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

int mk_mock_load(const json_t *stored, int64_t uses, int64_t last_use, mk_mock_t **out,
                 mk_err_t *err)
{
    *out = NULL;
    json_t *work = NULL;
    mk_mock_t *m = mock_alloc();
    if (m == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    int rc;
    work = json_is_object(stored) ? json_copy((json_t *)stored) : NULL;
    if (work == NULL) {
        rc = mk_err_set(err, MK_EINVAL, "stored mock: not a JSON object");
        goto fail;
    }
    del_fields(work, counter_fields, sizeof counter_fields / sizeof *counter_fields);
    rc = compile(m, work, err);
    if (rc)
        goto fail;
    m->created_at = stored_int(work, "createdAt");
    m->updated_at = stored_int(work, "updatedAt");
    m->expire_at = stored_int(work, "expireAt");
    m->closed_at = stored_int(work, "closedAt");
    rc = keep_text(m, work, err);
    if (rc)
        goto fail;
    json_decref(work);
    atomic_store(&m->uses, uses);
    atomic_store(&m->last_use, last_use);
    m->flushed_uses = uses;
    m->flushed_last_use = last_use;
    *out = m;
    return 0;
fail:
    json_decref(work);
    mock_destroy(m);
    return rc;
}

/* The kept text as a tree with the held fields back in their places (id and namespace first,
 * times last) and closedAt as m->closed_at (a soft delete keeps the text). */
static json_t *definition_tree(const mk_mock_t *m)
{
    size_t len = 0;
    char *text = unpack_text(m->def_text_, &len);
    json_t *rest = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    json_t *j = json_object();
    if (rest == NULL || j == NULL)
        goto fail;
    if (json_object_set_new(j, "id", json_string(m->id)) ||
        json_object_set_new(j, "namespace", json_string(m->namespace_)) ||
        json_object_update(j, rest) ||
        json_object_set_new(j, "createdAt", json_integer(m->created_at)) ||
        json_object_set_new(j, "updatedAt", json_integer(m->updated_at)) ||
        (m->expire_at && json_object_set_new(j, "expireAt", json_integer(m->expire_at))))
        goto fail;
    json_decref(rest);
    if (m->closed_at)
        json_object_set_new(j, "closedAt", json_integer(m->closed_at));
    else
        json_object_del(j, "closedAt");
    return j;
fail:
    json_decref(rest);
    json_decref(j);
    return NULL;
}

json_t *mk_mock_to_json(const mk_mock_t *m)
{
    json_t *j = definition_tree(m);
    if (j == NULL)
        return NULL;
    int64_t last = atomic_load_explicit(&((mk_mock_t *)m)->last_use, memory_order_relaxed);
    int64_t uses = atomic_load_explicit(&((mk_mock_t *)m)->uses, memory_order_relaxed);
    json_object_set_new(j, "lastUse", last ? json_integer(last) : json_null());
    /* Mockarty's name for the count; no caller needs our old "useCount" any more. */
    json_object_set_new(j, "useCounter", json_integer(uses));
    return j;
}

json_t *mk_mock_definition(const mk_mock_t *m)
{
    return definition_tree(m);
}

bool mk_mock_active(const mk_mock_t *m, int64_t now_ms)
{
    if (m->closed_at)
        return false;
    if (m->expire_at && now_ms >= m->expire_at)
        return false;
    if (m->use_limiter &&
        atomic_load_explicit(&((mk_mock_t *)m)->uses, memory_order_relaxed) >= m->use_limiter)
        return false;
    return true;
}

bool mk_mock_claim_use(mk_mock_t *m, int64_t now_ms)
{
    if (m->use_limiter) {
        int_fast64_t cur = atomic_load_explicit(&m->uses, memory_order_relaxed);
        do {
            if (cur >= m->use_limiter)
                return false;
        } while (!atomic_compare_exchange_weak_explicit(
            &m->uses, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
    } else {
        atomic_fetch_add_explicit(&m->uses, 1, memory_order_relaxed);
    }
    /* Skip the store when unchanged: fewer cache-line transfers between cores. */
    if (atomic_load_explicit(&m->last_use, memory_order_relaxed) != now_ms)
        atomic_store_explicit(&m->last_use, now_ms, memory_order_relaxed);
    return true;
}

static uint64_t xorshift(void)
{
    static _Thread_local uint64_t s;
    if (s == 0)
        s = (uint64_t)mk_mock_now_ms() ^ (uint64_t)(uintptr_t)&s;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

const mk_mock_response_t *mk_mock_pick_response(mk_mock_t *m, mk_faker_rng_t *rng)
{
    switch (m->oneof) {
    case MK_MOCK_ONEOF_ORDER: {
        uint64_t i = atomic_fetch_add_explicit(&m->next_response, 1, memory_order_relaxed);
        return &m->responses[i % m->nresponses];
    }
    case MK_MOCK_ONEOF_RANDOM:
        return &m->responses[(rng ? mk_faker_rng_next(rng) : xorshift()) % m->nresponses];
    default:
        return &m->responses[0];
    }
}

uint32_t mk_mock_pick_delay(const mk_mock_response_t *r, mk_faker_rng_t *rng)
{
    double ms;
    switch (r->delay_kind) {
    case MK_MOCK_DELAY_UNIFORM:
        ms = r->delay_a + (r->delay_b - r->delay_a) * mk_faker_rng_double(rng);
        break;
    case MK_MOCK_DELAY_LOGNORMAL: {
        /* Box-Muller: one standard normal draw. */
        double u1 = mk_faker_rng_double(rng), u2 = mk_faker_rng_double(rng);
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
        ms = r->delay_a * exp(r->delay_b * z);
        break;
    }
    default:
        return r->delay_ms;
    }
    if (!(ms >= 0))
        return 0;
    return ms > MK_MOCK_MAX_DELAY_MS ? MK_MOCK_MAX_DELAY_MS : (uint32_t)(ms + 0.5);
}
