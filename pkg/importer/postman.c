/* Postman Collection v2.0/v2.1 → mocks from the saved example responses. As with Postman's own
 * mock servers, the first example of a request answers by default and the others are chosen with
 * the x-mock-response-name header. */
#include "importer/importer_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 32 /* folder nesting */

typedef struct pm {
    const mk_import_opts_t *o;
    mk_import_result_t *r;
    json_t *routes; /* "METHOD route" → examples seen */
} pm_t;

/* One path segment: ":id" stays a parameter, "{{id}}" becomes one. */
static void segment(const char *s, size_t n, char *out, size_t cap, size_t *j)
{
    if (n > 4 && strncmp(s, "{{", 2) == 0 && strncmp(s + n - 2, "}}", 2) == 0) {
        char name[64];
        mk_imp_param_name(s + 2, n - 4, name, sizeof name);
        *j += (size_t)snprintf(out + *j, cap - *j, "/:%s", name);
    } else if (*j + n + 2 < cap) {
        out[(*j)++] = '/';
        memcpy(out + *j, s, n);
        *j += n;
        out[*j] = 0;
    }
}

/* The route of a request's url (a string, or {raw, path: [...]}) into out. */
static void route_of(json_t *url, char *out, size_t cap)
{
    size_t j = 0;
    out[0] = 0;
    json_t *path = json_object_get(url, "path");
    if (json_is_array(path)) {
        size_t i;
        json_t *seg;
        json_array_foreach(path, i, seg)
        {
            const char *s = json_is_string(seg) ? json_string_value(seg)
                                                : json_string_value(json_object_get(seg, "value"));
            if (s && *s)
                segment(s, strlen(s), out, cap, &j);
        }
    } else {
        const char *raw = json_is_string(url) ? json_string_value(url)
                                              : json_string_value(json_object_get(url, "raw"));
        if (raw == NULL)
            raw = "/";
        /* Drop the host: "{{baseUrl}}/x", "https://h/x" or "h.example.com/x". */
        const char *p = strstr(raw, "://");
        p = p ? p + 3 : raw;
        if (*p != '/')
            p += strcspn(p, "/?#");
        size_t end = strcspn(p, "?#");
        for (size_t i = 0; i < end;) {
            while (i < end && p[i] == '/')
                i++;
            size_t n = strcspn(p + i, "/?#");
            if (n > end - i)
                n = end - i;
            if (n)
                segment(p + i, n, out, cap, &j);
            i += n;
        }
    }
    if (j == 0)
        snprintf(out, cap, "/");
}

static void add_query(json_t *mock, json_t *url)
{
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(url, "query"), i, q)
    {
        const char *k = json_string_value(json_object_get(q, "key"));
        const char *v = json_string_value(json_object_get(q, "value"));
        if (k == NULL || *k == 0 || json_is_true(json_object_get(q, "disabled")))
            continue;
        if (v == NULL || strstr(v, "{{"))
            mk_imp_cond(mock, "queryParams", k, "any", NULL);
        else
            mk_imp_cond(mock, "queryParams", k, "equals", mk_imp_query_text(v, strlen(v)));
    }
}

static int example(pm_t *p, json_t *item, json_t *ex, const char *where, mk_err_t *err)
{
    json_t *req = json_object_get(ex, "originalRequest");
    if (!json_is_object(req))
        req = json_object_get(item, "request");
    const char *method =
        json_is_string(req) ? "GET" : json_string_value(json_object_get(req, "method"));
    char um[16];
    size_t k;
    for (k = 0; method && method[k] && k + 1 < sizeof um; k++)
        um[k] = (char)toupper((unsigned char)method[k]);
    um[k] = 0;
    json_t *url = json_is_string(req) ? req : json_object_get(req, "url");
    char route[1024];
    route_of(url, route, sizeof route);
    const char *name = json_string_value(json_object_get(ex, "name"));
    char key[1200];
    snprintf(key, sizeof key, "%s %s", k ? um : "GET", route);
    json_t *n = json_object_get(p->routes, key);
    json_int_t seen = n ? json_integer_value(n) : 0;
    json_object_set_new(p->routes, key, json_integer(seen + 1));
    char idkey[1400];
    snprintf(idkey, sizeof idkey, "%s %s #%lld", key, name ? name : "", (long long)seen);
    json_t *mock = mk_imp_mock_new(p->o, "pm", idkey, k ? um : "GET", route);
    add_query(mock, url);
    json_t *code = json_object_get(ex, "code");
    json_t *resp =
        json_pack("{s:I}", "statusCode", json_is_integer(code) ? json_integer_value(code) : 200);
    const char *ct = NULL;
    json_t *headers = json_object();
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(ex, "header"), i, h)
    {
        const char *hk = json_string_value(json_object_get(h, "key"));
        const char *hv = json_string_value(json_object_get(h, "value"));
        if (hk == NULL || hv == NULL || *hk == 0 || mk_imp_drop_header(hk))
            continue;
        if (strcasecmp(hk, "Content-Type") == 0)
            ct = hv;
        json_object_set_new(headers, hk, json_string(hv));
    }
    if (json_object_size(headers))
        json_object_set(resp, "headers", headers);
    const char *lang = json_string_value(json_object_get(ex, "_postman_previewlanguage"));
    if (ct == NULL && lang && strcmp(lang, "json") == 0)
        ct = "application/json";
    json_t *body = json_object_get(ex, "body");
    if (json_is_string(body) && json_string_length(body))
        json_object_set_new(resp, "payload",
                            mk_imp_payload(json_string_value(body), json_string_length(body), ct));
    json_decref(headers);
    json_object_set_new(mock, "response", resp);
    if (seen > 0) {
        if (name && *name)
            mk_imp_cond(mock, "header", "x-mock-response-name", "equals", json_string(name));
        else
            mk_imp_note(p->r->warnings, where,
                        "an unnamed example beside others for %s: it cannot be selected", key);
        json_object_set_new(mock, "priority", json_integer(1));
    }
    return mk_imp_push(p->r, mock, err);
}

static int walk(pm_t *p, json_t *items, const char *parent, int depth, mk_err_t *err)
{
    if (depth > MAX_DEPTH) {
        mk_imp_note(p->r->errors, parent, "folders nested deeper than %d", MAX_DEPTH);
        return 0;
    }
    size_t i;
    json_t *it;
    int rc = 0;
    json_array_foreach(items, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        char where[512];
        snprintf(where, sizeof where, "%s/%s", parent, name ? name : "?");
        if (json_is_array(json_object_get(it, "item"))) {
            rc = walk(p, json_object_get(it, "item"), where, depth + 1, err);
        } else if (json_object_get(it, "request") == NULL) {
            mk_imp_note(p->r->errors, where, "neither a request nor a folder");
        } else if (json_array_size(json_object_get(it, "response")) == 0) {
            mk_imp_note(p->r->skipped, where, "no saved example response");
        } else {
            size_t k;
            json_t *ex;
            json_array_foreach(json_object_get(it, "response"), k, ex)
            {
                if (rc == 0)
                    rc = example(p, it, ex, where, err);
            }
        }
        if (rc)
            break;
    }
    return rc;
}

int mk_import_postman(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err)
{
    json_t *items = json_object_get(doc, "item");
    const char *schema = json_string_value(json_object_get(json_object_get(doc, "info"), "schema"));
    if (!json_is_array(items) || (schema && strstr(schema, "collection") == NULL))
        return mk_err_set(err, MK_EINVAL,
                          "spec: not a Postman collection (expected info and an item array)");
    if (schema && strstr(schema, "v1.") != NULL)
        return mk_err_set(err, MK_EINVAL,
                          "spec: Postman collection v1 is not supported (v2.0 and "
                          "v2.1 are); export it again from Postman");
    pm_t p = {.o = o, .r = r, .routes = json_object()};
    int rc = walk(&p, items, "", 0, err);
    json_decref(p.routes);
    return rc;
}
