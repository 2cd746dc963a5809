/* Postman collections: validation with the JSON path of each fault, normalisation to v2.1 (the
 * form export gives back), and the flat run order of requests with their folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apitest/internal.h"

#define SCHEMA_V21 "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

typedef struct walk {
    mk_apitest_collection_t *c;
    const json_t *chain[MK_APITEST_MAX_DEPTH + 1]; /* folders from the root down */
    char path[512];                                /* JSON path, for messages */
    mk_err_t *err;
} walk_t;

static int fault(walk_t *w, const char *what)
{
    return mk_err_set(w->err, MK_EINVAL, "%s: %s", w->path[0] ? w->path : "collection", what);
}

static int check_string_or_absent(walk_t *w, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_string(v) && !json_is_null(v)) {
        size_t len = strlen(w->path);
        snprintf(w->path + len, sizeof w->path - len, ".%s", key);
        int rc = fault(w, "expected a string");
        w->path[len] = '\0';
        return rc;
    }
    return 0;
}

/* v2.0 wrote auth parameters as an object ({"bearer": {"token": "x"}}); v2.1 as a list of
 * {key, value, type}. Rewrite the former in place. */
static int normalise_auth(walk_t *w, json_t *auth)
{
    if (!auth || json_is_null(auth))
        return 0;
    if (!json_is_object(auth))
        return fault(w, "auth: expected an object");
    const json_t *type = json_object_get(auth, "type");
    if (!json_is_string(type))
        return fault(w, "auth.type: expected a string (bearer, basic, apikey, noauth, ...)");
    const char *t = json_string_value(type);
    json_t *params = json_object_get(auth, t);
    if (json_is_object(params)) {
        json_t *list = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(params, k, v)
        {
            json_array_append_new(
                list, json_pack("{s:s, s:O, s:s}", "key", k, "value", v, "type", "string"));
        }
        json_object_set_new(auth, t, list);
    } else if (params && !json_is_array(params)) {
        return fault(w, "auth parameters: expected a list of {key, value}");
    }
    return 0;
}

static int check_events(walk_t *w, const json_t *owner)
{
    const json_t *events = json_object_get(owner, "event");
    if (!events || json_is_null(events))
        return 0;
    if (!json_is_array(events))
        return fault(w, "event: expected a list");
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
    {
        const json_t *script = json_object_get(ev, "script");
        const json_t *exec = json_object_get(script, "exec");
        if (!json_is_object(ev) || !json_is_string(json_object_get(ev, "listen")))
            return mk_err_set(w->err, MK_EINVAL, "%s.event[%zu]: expected {listen, script}",
                              w->path[0] ? w->path : "collection", i);
        if (exec && !json_is_string(exec) && !json_is_array(exec))
            return mk_err_set(w->err, MK_EINVAL,
                              "%s.event[%zu].script.exec: expected a string or a list of lines",
                              w->path[0] ? w->path : "collection", i);
        size_t j;
        const json_t *line;
        json_array_foreach(exec, j, line)
        {
            if (!json_is_string(line))
                return mk_err_set(w->err, MK_EINVAL,
                                  "%s.event[%zu].script.exec[%zu]: expected a string",
                                  w->path[0] ? w->path : "collection", i, j);
        }
    }
    return 0;
}

static int check_kv_list(walk_t *w, const json_t *list, const char *what)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(w->err, MK_EINVAL, "%s.%s: expected a list", w->path, what);
    size_t i;
    const json_t *kv;
    json_array_foreach(list, i, kv)
    {
        if (!json_is_object(kv))
            return mk_err_set(w->err, MK_EINVAL, "%s.%s[%zu]: expected {key, value}", w->path, what,
                              i);
        const json_t *k = json_object_get(kv, "key");
        if (k && !json_is_string(k))
            return mk_err_set(w->err, MK_EINVAL, "%s.%s[%zu].key: expected a string", w->path, what,
                              i);
    }
    return 0;
}

static int normalise_request(walk_t *w, json_t *item)
{
    json_t *req = json_object_get(item, "request");
    if (json_is_string(req)) {
        json_object_set_new(item, "request", json_pack("{s:s, s:O}", "method", "GET", "url", req));
        return 0;
    }
    if (!json_is_object(req))
        return fault(w, "request: expected an object or a URL string");
    size_t len = strlen(w->path);
    snprintf(w->path + len, sizeof w->path - len, ".request");
    int rc = check_string_or_absent(w, req, "method");
    if (rc < 0)
        goto out;
    const json_t *url = json_object_get(req, "url");
    if (url && !json_is_string(url) && !json_is_object(url)) {
        rc = fault(w, "url: expected a string or an object");
        goto out;
    }
    if (json_is_object(url)) {
        const json_t *raw = json_object_get(url, "raw"), *host = json_object_get(url, "host"),
                     *path = json_object_get(url, "path");
        if ((raw && !json_is_string(raw)) ||
            (host && !json_is_string(host) && !json_is_array(host)) ||
            (path && !json_is_string(path) && !json_is_array(path))) {
            rc = fault(w, "url: raw must be a string, host and path strings or lists");
            goto out;
        }
        if ((rc = check_kv_list(w, json_object_get(url, "query"), "url.query")) < 0 ||
            (rc = check_kv_list(w, json_object_get(url, "variable"), "url.variable")) < 0)
            goto out;
    }
    const json_t *header = json_object_get(req, "header");
    if (json_is_string(header)) {
        /* v2.1 allows the headers as one "Name: value\n..." string */
        json_t *list = json_array();
        const char *s = json_string_value(header);
        while (*s) {
            const char *nl = strchr(s, '\n'), *end = nl ? nl : s + strlen(s);
            const char *colon = memchr(s, ':', (size_t)(end - s));
            if (colon) {
                const char *v = colon + 1;
                while (v < end && *v == ' ')
                    v++;
                json_array_append_new(list, json_pack("{s:s%, s:s%}", "key", s, (size_t)(colon - s),
                                                      "value", v, (size_t)(end - v)));
            }
            s = nl ? nl + 1 : end;
        }
        json_object_set_new(req, "header", list);
    } else if ((rc = check_kv_list(w, header, "header")) < 0) {
        goto out;
    }
    const json_t *body = json_object_get(req, "body");
    if (body && !json_is_null(body)) {
        if (!json_is_object(body)) {
            rc = fault(w, "body: expected an object");
            goto out;
        }
        if ((rc = check_string_or_absent(w, body, "mode")) < 0 ||
            (rc = check_kv_list(w, json_object_get(body, "urlencoded"), "body.urlencoded")) < 0 ||
            (rc = check_kv_list(w, json_object_get(body, "formdata"), "body.formdata")) < 0)
            goto out;
        const json_t *raw = json_object_get(body, "raw");
        if (raw && !json_is_string(raw)) {
            rc = fault(w, "body.raw: expected a string");
            goto out;
        }
    }
    rc = normalise_auth(w, json_object_get(req, "auth"));
out:
    w->path[len] = '\0';
    return rc;
}

static int add_request(walk_t *w, const json_t *item, size_t depth)
{
    mk_apitest_collection_t *c = w->c;
    if (c->n == MK_APITEST_MAX_REQUESTS)
        return mk_err_set(w->err, MK_ETOOBIG, "collection: more than %d requests",
                          MK_APITEST_MAX_REQUESTS);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        mk_apitest_entry_t *e = realloc(c->entries, cap * sizeof *e);
        if (!e)
            return mk_err_set(w->err, MK_ENOMEM, "collection: out of memory");
        c->entries = e;
        c->cap = cap;
    }
    mk_apitest_entry_t *e = &c->entries[c->n];
    memset(e, 0, sizeof *e);
    e->item = item;
    e->depth = depth;
    memcpy(e->chain, w->chain, depth * sizeof *e->chain);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    for (size_t i = 0; i < depth; i++) {
        const char *n = json_string_value(json_object_get(w->chain[i], "name"));
        mk_buf_appendf(&b, "%s%s", i ? "/" : "", n ? n : "");
    }
    e->folder = b.data ? mk_buf_take(&b) : strdup("");
    if (!e->folder)
        return mk_err_set(w->err, MK_ENOMEM, "collection: out of memory");
    c->n++;
    return 0;
}

static int walk_items(walk_t *w, json_t *items, size_t depth)
{
    if (!items || json_is_null(items))
        return 0;
    if (!json_is_array(items))
        return fault(w, "item: expected a list");
    if (depth > MK_APITEST_MAX_DEPTH)
        return mk_err_set(w->err, MK_EINVAL, "%s: folders nested deeper than %d", w->path,
                          MK_APITEST_MAX_DEPTH);
    size_t i;
    json_t *item;
    size_t len = strlen(w->path);
    int rc = 0;
    json_array_foreach(items, i, item)
    {
        snprintf(w->path + len, sizeof w->path - len, "%sitem[%zu]", len ? "." : "", i);
        if (!json_is_object(item)) {
            rc = fault(w, "expected an object");
            break;
        }
        if ((rc = check_string_or_absent(w, item, "name")) < 0 ||
            (rc = check_events(w, item)) < 0 ||
            (rc = check_kv_list(w, json_object_get(item, "variable"), "variable")) < 0)
            break;
        json_t *sub = json_object_get(item, "item");
        if (sub) {
            if ((rc = normalise_auth(w, json_object_get(item, "auth"))) < 0)
                break;
            w->chain[depth] = item;
            if ((rc = walk_items(w, sub, depth + 1)) < 0)
                break;
        } else if (json_object_get(item, "request")) {
            if ((rc = normalise_request(w, item)) < 0 || (rc = add_request(w, item, depth)) < 0)
                break;
        } else {
            rc = fault(w, "neither a request (\"request\") nor a folder (\"item\")");
            break;
        }
    }
    w->path[len] = '\0';
    return rc;
}

int mk_apitest_collection_parse(const json_t *doc, mk_apitest_collection_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!json_is_object(doc))
        return mk_err_set(err, MK_EINVAL, "collection: expected a JSON object");
    /* Postman's API wraps exports as {"collection": {...}} */
    const json_t *inner = json_object_get(doc, "collection");
    if (json_is_object(inner) && !json_object_get(doc, "info"))
        doc = inner;
    const json_t *info = json_object_get(doc, "info");
    if (!json_is_object(info)) {
        if (json_object_get(doc, "requests"))
            return mk_err_set(err, MK_EINVAL,
                              "collection: Postman Collection v1 is not supported; export it as "
                              "v2.1 from Postman");
        return mk_err_set(err, MK_EINVAL, "collection.info: expected an object with the name");
    }
    const json_t *schema = json_object_get(info, "schema");
    if (json_is_string(schema) && !strstr(json_string_value(schema), "/v2."))
        return mk_err_set(err, MK_EINVAL, "collection.info.schema: %s is not Postman v2.0 or v2.1",
                          json_string_value(schema));
    mk_apitest_collection_t *c = calloc(1, sizeof *c);
    if (!c)
        return mk_err_set(err, MK_ENOMEM, "collection: out of memory");
    c->doc = json_deep_copy(doc);
    walk_t w = {.c = c, .err = err};
    int rc = 0;
    if (!c->doc) {
        rc = mk_err_set(err, MK_ENOMEM, "collection: out of memory");
        goto out;
    }
    json_t *ninfo = json_object_get(c->doc, "info");
    json_object_set_new(ninfo, "schema", json_string(SCHEMA_V21));
    if ((rc = check_string_or_absent(&w, ninfo, "name")) < 0 ||
        (rc = check_string_or_absent(&w, ninfo, "_postman_id")) < 0 ||
        (rc = check_events(&w, c->doc)) < 0 ||
        (rc = check_kv_list(&w, json_object_get(c->doc, "variable"), "collection.variable")) < 0 ||
        (rc = normalise_auth(&w, json_object_get(c->doc, "auth"))) < 0)
        goto out;
    json_t *items = json_object_get(c->doc, "item");
    if (!items)
        json_object_set_new(c->doc, "item", json_array());
    rc = walk_items(&w, json_object_get(c->doc, "item"), 0);
out:
    if (rc < 0)
        mk_apitest_collection_free(c);
    else
        *out = c;
    return rc;
}

int mk_apitest_collection_load(const char *text, size_t len, mk_apitest_collection_t **out,
                               mk_err_t *err)
{
    json_error_t je;
    *out = NULL;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return mk_err_set(err, MK_EINVAL, "collection: invalid JSON at line %d column %d: %s",
                          je.line, je.column, je.text);
    int rc = mk_apitest_collection_parse(doc, out, err);
    json_decref(doc);
    return rc;
}

void mk_apitest_collection_free(mk_apitest_collection_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->entries[i].folder);
    free(c->entries);
    json_decref(c->doc);
    free(c);
}

static const char *info_string(const mk_apitest_collection_t *c, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(c->doc, "info"), key));
    return s ? s : "";
}

const char *mk_apitest_collection_name(const mk_apitest_collection_t *c)
{
    return info_string(c, "name");
}

const char *mk_apitest_collection_id(const mk_apitest_collection_t *c)
{
    return info_string(c, "_postman_id");
}

size_t mk_apitest_collection_count(const mk_apitest_collection_t *c)
{
    return c->n;
}

json_t *mk_apitest_collection_export(const mk_apitest_collection_t *c)
{
    return json_deep_copy(c->doc);
}
