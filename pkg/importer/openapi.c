/* OpenAPI 3.0 / 3.1 → mocks: one per operation and response status. Payloads come from examples,
 * or are generated from the schema with faker placeholders, so they vary per call like real data.
 */
#include "importer/importer_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GEN_DEPTH 24 /* schema nesting followed when generating a payload */
#define REF_HOPS  32 /* $ref -> $ref chains */
#define MAX_PROPS 64 /* properties generated per object */

typedef struct oa {
    json_t *doc;
    char err[400];                      /* first problem of the current operation */
    const json_t *stack[GEN_DEPTH + 1]; /* $ref targets being expanded: a repeat is a cycle */
    size_t nstack;
    bool cycle; /* a recursive schema was cut while generating */
} oa_t;

static void oa_fail(oa_t *st, const char *fmt, const char *a, const char *b)
{
    if (st->err[0] == 0)
        snprintf(st->err, sizeof st->err, fmt, a, b);
}

/* Resolves one local JSON pointer ("#/components/schemas/Pet"). Borrowed, or NULL. */
static json_t *pointer(json_t *doc, const char *ref)
{
    json_t *cur = doc;
    const char *p = ref + 1; /* after '#' */
    while (cur && *p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        char tok[256];
        size_t j = 0;
        for (size_t i = 0; i < n && j + 1 < sizeof tok; i++) {
            if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                tok[j++] = p[i + 1] == '0' ? '~' : '/';
                i++;
            } else if (p[i] == '%' && i + 2 < n && strchr("0123456789abcdefABCDEF", p[i + 1]) &&
                       strchr("0123456789abcdefABCDEF", p[i + 2])) {
                char hex[3] = {p[i + 1], p[i + 2], 0};
                tok[j++] = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                tok[j++] = p[i];
            }
        }
        tok[j] = 0;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(tok, &end, 10);
            cur = (*end || idx < 0) ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
        p += n;
    }
    return *p ? NULL : cur;
}

/* Follows v's $ref chain. Borrowed; NULL with st->err set when a $ref leaves the document or
 * points nowhere. */
static json_t *deref(oa_t *st, json_t *v)
{
    for (int hops = 0; json_is_object(v); hops++) {
        const char *ref = json_string_value(json_object_get(v, "$ref"));
        if (ref == NULL)
            return v;
        if (hops == REF_HOPS) {
            oa_fail(st, "$ref '%s': a chain of more than 32 references%s", ref, "");
            return NULL;
        }
        if (ref[0] != '#') {
            oa_fail(st, "$ref '%s' points outside the document%s", ref, "");
            return NULL;
        }
        json_t *t = pointer(st->doc, ref);
        if (t == NULL) {
            oa_fail(st, "$ref '%s' points nowhere%s", ref, "");
            return NULL;
        }
        v = t;
    }
    return v;
}

/* Format (or property name) → faker, for generated strings. */
static const struct {
    const char *key;
    const char *faker;
} string_fakers[] = {
    {"date-time", "DateISO"},
    {"date", "Date"},
    {"email", "Email"},
    {"uuid", "UUID"},
    {"uri", "URL"},
    {"url", "URL"},
    {"hostname", "DomainName"},
    {"ipv4", "IPv4"},
    {"ipv6", "IPv6"},
    {"password", "Password"},
    {"firstName", "FirstName"},
    {"first_name", "FirstName"},
    {"lastName", "LastName"},
    {"last_name", "LastName"},
    {"username", "Username"},
    {"phone", "Phone"},
    {"city", "City"},
    {"country", "Country"},
    {"zip", "ZipCode"},
    {"zipCode", "ZipCode"},
    {"street", "StreetAddress"},
    {"address", "StreetAddress"},
    {"company", "Company"},
    {"name", "Name"},
    {NULL, NULL},
};

static const char *string_faker(const char *key)
{
    for (size_t i = 0; key && string_fakers[i].key; i++)
        if (strcasecmp(key, string_fakers[i].key) == 0)
            return string_fakers[i].faker;
    return NULL;
}

/* The schema's type: the first of a 3.1 type array that is not "null". */
static const char *schema_type(json_t *s)
{
    json_t *t = json_object_get(s, "type");
    if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), "null") != 0)
                return json_string_value(e);
        }
        return json_array_size(t) ? "null" : NULL;
    }
    if (json_is_string(t))
        return json_string_value(t);
    if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties"))
        return "object";
    if (json_object_get(s, "items"))
        return "array";
    return NULL;
}

static bool bound(json_t *s, const char *key, const char *excl, double *out, double step)
{
    json_t *v = json_object_get(s, key);
    json_t *x = json_object_get(s, excl);
    if (json_is_number(x)) { /* 3.1: exclusiveMinimum is the bound itself */
        *out = json_number_value(x) + step;
        return true;
    }
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v) + (json_is_true(x) ? step : 0);
    return true;
}

static json_t *gen(oa_t *st, json_t *schema, const char *name, int depth);

static json_t *gen_number(json_t *s, bool integer)
{
    double lo = 0, hi = 0;
    bool hlo = bound(s, "minimum", "exclusiveMinimum", &lo, integer ? 1 : 0.01);
    bool hhi = bound(s, "maximum", "exclusiveMaximum", &hi, integer ? -1 : -0.01);
    if (!hlo)
        lo = hhi ? (hi > 1 ? 1 : hi - 1000) : 1;
    if (!hhi)
        hi = lo < 1000 ? 1000 : lo + 1000;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi) || fabs(lo) > 9e15 || fabs(hi) > 9e15)
        return integer ? json_integer(0) : json_real(0);
    char buf[96];
    if (integer) {
        long long a = (long long)ceil(lo), b = (long long)floor(hi);
        if (a > b)
            return json_integer(a);
        snprintf(buf, sizeof buf, "$.fake.IntBetween(%lld,%lld)", a, b);
    } else {
        snprintf(buf, sizeof buf, "$.fake.FloatRange(%.17g,%.17g)", lo, hi);
    }
    return json_string(buf);
}

static json_t *gen_string(json_t *s, const char *name)
{
    const char *f = string_faker(json_string_value(json_object_get(s, "format")));
    if (f == NULL)
        f = string_faker(name);
    if (f) {
        char buf[64];
        snprintf(buf, sizeof buf, "$.fake.%s", f);
        return json_string(buf);
    }
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt && strcmp(fmt, "byte") == 0)
        return json_string("c3RyaW5n");
    json_t *minl = json_object_get(s, "minLength");
    if (json_is_integer(minl) && json_integer_value(minl) > 6 && json_integer_value(minl) <= 256) {
        char buf[260];
        memset(buf, 'x', (size_t)json_integer_value(minl));
        buf[json_integer_value(minl)] = 0;
        return json_string(buf);
    }
    return json_string("string");
}

static json_t *gen_object(oa_t *st, json_t *s, int depth)
{
    json_t *out = json_object();
    json_t *req = json_object_get(s, "required");
    const char *key;
    json_t *prop;
    size_t n = 0;
    json_object_foreach(json_object_get(s, "properties"), key, prop)
    {
        if (n++ == MAX_PROPS)
            break;
        json_t *v = gen(st, prop, key, depth + 1);
        if (st->err[0]) {
            json_decref(out);
            return NULL;
        }
        bool required = false;
        size_t i;
        json_t *r;
        json_array_foreach(req, i, r)
        {
            required |= json_is_string(r) && strcmp(json_string_value(r), key) == 0;
        }
        if (v)
            json_object_set_new(out, key, v);
        else if (required)
            json_object_set_new(out, key, json_null());
    }
    json_t *addl = json_object_get(s, "additionalProperties");
    if (json_object_size(out) == 0 && json_is_object(addl)) {
        json_t *v = gen(st, addl, NULL, depth + 1);
        if (v)
            json_object_set_new(out, "additionalProp1", v);
    }
    return out;
}

/* A value for schema (new reference), or NULL when it cannot be given (a cut recursion or an
 * error, which st->err then names). */
static json_t *gen(oa_t *st, json_t *schema, const char *name, int depth)
{
    if (depth > GEN_DEPTH)
        return NULL;
    json_t *s = deref(st, schema);
    if (s == NULL)
        return NULL;
    if (s != schema) {
        for (size_t i = 0; i < st->nstack; i++)
            if (st->stack[i] == s) {
                st->cycle = true;
                return NULL;
            }
    }
    if (!json_is_object(s))
        return json_is_true(s) ? json_object() : NULL;
    json_t *v;
    if ((v = json_object_get(s, "example")) != NULL)
        return json_deep_copy(v);
    if (json_array_size(json_object_get(s, "examples")))
        return json_deep_copy(json_array_get(json_object_get(s, "examples"), 0));
    if ((v = json_object_get(s, "const")) != NULL || (v = json_object_get(s, "default")) != NULL)
        return json_deep_copy(v);
    if (json_array_size(json_object_get(s, "enum")))
        return json_deep_copy(json_array_get(json_object_get(s, "enum"), 0));
    size_t pushed = st->nstack;
    if (st->nstack <= GEN_DEPTH)
        st->stack[st->nstack++] = s;
    json_t *out = NULL;
    json_t *all = json_object_get(s, "allOf");
    json_t *alt = json_object_get(s, "oneOf");
    if (alt == NULL)
        alt = json_object_get(s, "anyOf");
    const char *type = schema_type(s);
    if (json_array_size(all) || json_array_size(alt)) {
        /* allOf merges every part; oneOf/anyOf take the first alternative; own properties too. */
        size_t i;
        json_t *part;
        json_array_foreach(all, i, part)
        {
            json_t *g = gen(st, part, name, depth + 1);
            if (json_is_object(g) && (out == NULL || json_is_object(out))) {
                if (out == NULL)
                    out = json_object();
                json_object_update(out, g);
                json_decref(g);
            } else if (g && out == NULL) {
                out = g;
            } else {
                json_decref(g);
            }
        }
        if (json_array_size(alt) && st->err[0] == 0) {
            json_t *g = gen(st, json_array_get(alt, 0), name, depth + 1);
            if (json_is_object(g) && json_is_object(out)) {
                json_object_update(out, g);
                json_decref(g);
            } else if (out == NULL) {
                out = g;
            } else {
                json_decref(g);
            }
        }
        if (json_is_object(out) && json_object_get(s, "properties") && st->err[0] == 0) {
            json_t *own = gen_object(st, s, depth);
            if (own)
                json_object_update(out, own);
            json_decref(own);
        }
    } else if (type == NULL || strcmp(type, "object") == 0) {
        out = gen_object(st, s, depth);
    } else if (strcmp(type, "array") == 0) {
        json_t *item = gen(st, json_object_get(s, "items"), NULL, depth + 1);
        json_t *min = json_object_get(s, "minItems");
        json_t *max = json_object_get(s, "maxItems");
        json_int_t count = json_is_integer(min) && json_integer_value(min) > 1
                               ? (json_integer_value(min) < 5 ? json_integer_value(min) : 5)
                               : 1;
        if (json_is_integer(max) && json_integer_value(max) < count)
            count = json_integer_value(max) > 0 ? json_integer_value(max) : 0;
        out = json_array();
        for (json_int_t i = 0; item && i < count; i++)
            json_array_append(out, item);
        json_decref(item);
    } else if (strcmp(type, "string") == 0) {
        out = gen_string(s, name);
    } else if (strcmp(type, "integer") == 0) {
        out = gen_number(s, true);
    } else if (strcmp(type, "number") == 0) {
        out = gen_number(s, false);
    } else if (strcmp(type, "boolean") == 0) {
        out = json_string("$.fake.Bool");
    } else {
        out = json_null();
    }
    st->nstack = pushed;
    if (st->err[0]) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static bool json_mime(const char *mime)
{
    return strncasecmp(mime, "application/json", 16) == 0 || strstr(mime, "+json") != NULL ||
           strcmp(mime, "*/*") == 0;
}

/* The response object(s) of one status: a single response, or several when the media type has
 * several named examples. New reference (an array of responses), or NULL with st->err. */
static json_t *responses_of(oa_t *st, json_t *resp, int status)
{
    json_t *content = json_object_get(resp, "content");
    json_t *v2 = NULL; /* Swagger 2.0: schema and examples sit on the response itself */
    if (content == NULL && (json_object_get(resp, "schema") || json_object_get(resp, "examples"))) {
        json_t *ex = json_object_get(resp, "examples");
        const char *m = json_object_iter_key(json_object_iter(ex));
        if (m == NULL)
            m = json_string_value(json_array_get(json_object_get(st->doc, "produces"), 0));
        if (m == NULL)
            m = "application/json";
        v2 = json_object();
        json_t *media = json_object();
        if (json_object_get(resp, "schema"))
            json_object_set(media, "schema", json_object_get(resp, "schema"));
        if (json_object_get(ex, m))
            json_object_set(media, "example", json_object_get(ex, m));
        json_object_set_new(v2, m, media);
        content = v2;
    }
    const char *mime = NULL, *key;
    json_t *media = NULL, *v;
    json_object_foreach(content, key, v)
    {
        if (mime == NULL || (json_mime(key) && !json_mime(mime))) {
            mime = key;
            media = v;
        }
    }
    json_t *base = json_pack("{s:i}", "statusCode", status);
    const char *hname;
    json_t *h;
    json_t *headers = json_object();
    json_object_foreach(json_object_get(resp, "headers"), hname, h)
    {
        json_t *hd = deref(st, h);
        json_t *hs = json_object_get(hd, "schema");
        json_t *val = hd ? gen(st, hs ? hs : hd, hname, 0) : NULL;
        if (json_is_string(val) || json_is_number(val))
            json_object_set_new(headers, hname,
                                json_is_string(val) ? json_string(json_string_value(val))
                                                    : json_string("1"));
        json_decref(val);
    }
    if (mime && strcmp(mime, "*/*") != 0)
        json_object_set_new(headers, "Content-Type", json_string(mime));
    if (json_object_size(headers))
        json_object_set(base, "headers", headers);
    json_decref(headers);
    json_t *out = json_array();
    media = deref(st, media);
    if (st->err[0])
        goto fail;
    if (media == NULL) {
        json_array_append(out, base);
        goto done;
    }
    json_t *payloads = json_array();
    if ((v = json_object_get(media, "example")) != NULL) {
        json_array_append(payloads, v);
    } else {
        json_object_foreach(json_object_get(media, "examples"), key, v)
        {
            json_t *ex = deref(st, v);
            if (ex == NULL)
                break;
            json_t *val = json_object_get(ex, "value");
            if (val)
                json_array_append(payloads, val);
        }
    }
    if (json_array_size(payloads) == 0 && st->err[0] == 0) {
        json_t *g = gen(st, json_object_get(media, "schema"), NULL, 0);
        if (g)
            json_array_append_new(payloads, g);
    }
    if (st->err[0]) {
        json_decref(payloads);
        goto fail;
    }
    size_t i;
    json_array_foreach(payloads, i, v)
    {
        json_t *r = json_deep_copy(base);
        /* A non-JSON media type with a structured example has no text form we could send. */
        if (!json_mime(mime) && !json_is_string(v))
            json_object_set_new(r, "payload", json_string(""));
        else
            json_object_set(r, "payload", v);
        json_array_append_new(out, r);
    }
    if (json_array_size(payloads) == 0)
        json_array_append(out, base);
    json_decref(payloads);
done:
    json_decref(base);
    json_decref(v2);
    return out;
fail:
    json_decref(base);
    json_decref(v2);
    json_decref(out);
    return NULL;
}

/* Status key ("200", "2XX", "default") → code; 0 for default, -1 when invalid. */
static int status_of(const char *key)
{
    if (strcasecmp(key, "default") == 0)
        return 0;
    if (strlen(key) == 3 && key[0] >= '1' && key[0] <= '5' && (key[1] == 'X' || key[1] == 'x'))
        return (key[0] - '0') * 100;
    char *end;
    long v = strtol(key, &end, 10);
    return (*end || v < 100 || v > 599) ? -1 : (int)v;
}

static int literal_segments(const char *route)
{
    int n = 0;
    for (const char *p = route; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/' && p[1] != ':' && !(p[1] == '*' && p[2] == 0))
            n++;
    return n;
}

static const char *const methods[] = {"get",  "put",   "post",  "delete", "options",
                                      "head", "patch", "trace", NULL};

/* Adds required query and header parameters (path item's and operation's) as conditions. */
static void add_params(oa_t *st, json_t *mock, json_t *item_params, json_t *op_params)
{
    json_t *lists[2] = {item_params, op_params};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *p;
        json_array_foreach(lists[l], i, p)
        {
            json_t *pd = deref(st, p);
            if (!json_is_true(json_object_get(pd, "required")))
                continue;
            const char *in = json_string_value(json_object_get(pd, "in"));
            const char *name = json_string_value(json_object_get(pd, "name"));
            if (in == NULL || name == NULL || *name == 0)
                continue;
            if (strcmp(in, "query") == 0)
                mk_imp_cond(mock, "queryParams", name, "any", NULL);
            /* Content-Type and Accept are described by content, not checked as conditions. */
            else if (strcmp(in, "header") == 0 && strcasecmp(name, "Accept") != 0 &&
                     strcasecmp(name, "Content-Type") != 0 &&
                     strcasecmp(name, "Authorization") != 0)
                mk_imp_cond(mock, "header", name, "any", NULL);
        }
    }
}

typedef struct code {
    const char *key;
    int status;
} code_t;

static int by_status(const void *a, const void *b)
{
    const code_t *x = a, *y = b;
    bool x2 = x->status / 100 == 2, y2 = y->status / 100 == 2;
    if (x2 != y2)
        return x2 ? -1 : 1;
    return x->status - y->status;
}

static int operation(oa_t *st, const char *path, const char *method, json_t *item, json_t *op,
                     const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err)
{
    char where[300];
    char upper[8];
    size_t k;
    for (k = 0; method[k] && k + 1 < sizeof upper; k++)
        upper[k] = (char)(method[k] - 'a' + 'A');
    upper[k] = 0;
    snprintf(where, sizeof where, "%s %s", upper, path);
    json_t *responses = json_object_get(op, "responses");
    if (json_object_size(responses) == 0) {
        mk_imp_note(r->skipped, where, "no responses");
        return 0;
    }
    code_t codes[64];
    size_t n = 0;
    bool explicit = false;
    const char *key;
    json_t *v;
    json_object_foreach(responses, key, v)
    {
        int s = status_of(key);
        if (s < 0) {
            mk_imp_note(r->errors, where, "responses.%s: not a status code", key);
            return 0;
        }
        explicit |= s > 0;
        if (n < 64)
            codes[n++] = (code_t){key, s};
    }
    bool loose;
    char *route = mk_imp_route_template(path, &loose);
    if (loose)
        mk_imp_note(r->warnings, where,
                    "a path segment mixes text and a parameter; the route takes the whole segment "
                    "as the parameter (%s)",
                    route);
    for (size_t i = 0; i < n; i++)
        if (codes[i].status == 0)
            codes[i].status = explicit ? -1 : 200;
    qsort(codes, n, sizeof *codes, by_status);
    int rc = 0;
    bool first = true;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char label[340];
        snprintf(label, sizeof label, "%s %s", where, codes[i].key);
        if (codes[i].status < 0) {
            mk_imp_note(r->skipped, label, "a default response beside explicit status codes");
            continue;
        }
        st->err[0] = 0;
        st->cycle = false;
        json_t *resp = deref(st, json_object_get(responses, codes[i].key));
        json_t *list = resp ? responses_of(st, resp, codes[i].status) : NULL;
        if (list == NULL) {
            mk_imp_note(r->errors, label, "%s", st->err);
            continue;
        }
        if (st->cycle)
            mk_imp_note(r->warnings, label,
                        "a recursive schema was cut where it repeats (optional members left out, "
                        "required ones null)");
        char keybuf[400];
        snprintf(keybuf, sizeof keybuf, "%s %d", where, codes[i].status);
        json_t *mock = mk_imp_mock_new(o, "oa", keybuf, upper, route);
        add_params(st, mock, json_object_get(item, "parameters"),
                   json_object_get(op, "parameters"));
        if (!first) {
            /* Another status than the default answer: chosen by the caller, as with Postman's mock
             * servers, by sending x-mock-response-code. */
            char code[8];
            snprintf(code, sizeof code, "%d", codes[i].status);
            mk_imp_cond(mock, "header", "x-mock-response-code", "equals", json_string(code));
        }
        /* OpenAPI: concrete paths match before templated ones, so each literal segment ranks;
         * within an operation, a selected status ranks above the default answer. */
        int prio = 2 * literal_segments(route) + (first ? 0 : 1);
        if (prio)
            json_object_set_new(mock, "priority", json_integer(prio));
        first = false;
        json_t *tags = json_object_get(op, "tags");
        if (json_array_size(tags)) {
            json_t *mt = json_object_get(mock, "tags");
            if (mt == NULL) {
                mt = json_array();
                json_object_set_new(mock, "tags", mt);
            }
            size_t ti;
            json_t *t;
            json_array_foreach(tags, ti, t)
            {
                if (json_is_string(t))
                    json_array_append(mt, t);
            }
        }
        if (json_array_size(list) == 1)
            json_object_set(mock, "response", json_array_get(list, 0));
        else
            json_object_set_new(mock, "oneOf",
                                json_pack("{s:s, s:O}", "order", "order", "responses", list));
        json_decref(list);
        rc = mk_imp_push(r, mock, err);
    }
    free(route);
    return rc;
}

int mk_import_openapi(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err)
{
    if (!json_is_object(doc))
        return mk_err_set(err, MK_EINVAL, "spec: not an OpenAPI document (expected an object)");
    const char *ver = json_string_value(json_object_get(doc, "openapi"));
    const char *swagger = json_string_value(json_object_get(doc, "swagger"));
    if (ver == NULL && swagger && strcmp(swagger, "2.0") == 0)
        ver = "3.0"; /* Swagger 2.0 reads the same but for responses (see responses_of) */
    if (ver == NULL)
        return mk_err_set(err, MK_EINVAL,
                          "spec: not an OpenAPI document (no \"openapi\" or \"swagger\": \"2.0\")");
    if (strncmp(ver, "3.0", 3) != 0 && strncmp(ver, "3.1", 3) != 0)
        return mk_err_set(err, MK_EINVAL, "spec: openapi '%s' is not supported (3.0 and 3.1 are)",
                          ver);
    json_t *paths = json_object_get(doc, "paths");
    if (paths != NULL && !json_is_object(paths))
        return mk_err_set(err, MK_EINVAL, "spec: paths: must be an object");
    oa_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    st->doc = doc;
    const char *path;
    json_t *item;
    int rc = 0;
    json_object_foreach(paths, path, item)
    {
        st->err[0] = 0;
        json_t *pi = deref(st, item);
        if (pi == NULL) {
            mk_imp_note(r->errors, path, "%s", st->err);
            continue;
        }
        for (size_t m = 0; rc == 0 && methods[m]; m++) {
            json_t *op = json_object_get(pi, methods[m]);
            if (json_is_object(op))
                rc = operation(st, path, methods[m], pi, op, o, r, err);
        }
        if (rc)
            break;
    }
    free(st);
    return rc;
}
