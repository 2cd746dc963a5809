/* Compiles a mock's `proxy` section (see mock_proxy.h). Mockarty defines only `proxy.target`; the
 * other fields are ours (documented in docs/mock-format.md). */
#include "mock/mock_proxy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void mk_mock_proxy_free(mk_mock_proxy_t *p)
{
    if (p == NULL)
        return;
    free(p->target);
    free(p->strip_prefix);
    for (size_t i = 0; i < p->nadd; i++)
        free(p->add_lines[i]);
    free(p->add_lines);
    for (size_t i = 0; i < p->nremove; i++)
        free(p->remove[i]);
    free(p->remove);
    for (size_t i = 0; i < p->nheaders; i++) {
        free(p->headers[i].name);
        free(p->headers[i].value);
    }
    free(p->headers);
    json_decref(p->merge);
    free(p->record);
    free(p);
}

void mk_mock_proxy_merge(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        json_t *d = json_object_get(dst, key);
        if (json_is_object(d) && json_is_object(v))
            mk_mock_proxy_merge(d, v);
        else
            json_object_set(dst, key, v);
    }
}

/* scheme://authority[/path], no query, fragment or blanks: the request path is appended. */
static int check_target(const char *t, mk_err_t *err)
{
    size_t skip = strncasecmp(t, "http://", 7) == 0    ? 7
                  : strncasecmp(t, "https://", 8) == 0 ? 8
                                                       : 0;
    if (skip == 0)
        return mk_err_set(err, MK_EINVAL, "proxy.target: must start with http:// or https://");
    if (t[skip] == '\0' || t[skip] == '/')
        return mk_err_set(err, MK_EINVAL, "proxy.target: has no host");
    if (strpbrk(t, " \t\r\n?#"))
        return mk_err_set(err, MK_EINVAL,
                          "proxy.target: no blanks, query or fragment (the request's are sent)");
    if (strlen(t) > 2048)
        return mk_err_set(err, MK_EINVAL, "proxy.target: longer than 2048 bytes");
    return 0;
}

static bool token_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool value_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static int get_ms(const json_t *obj, const char *key, uint32_t *out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > MK_MOCK_PROXY_MAX_TIMEOUT_MS)
        return mk_err_set(err, MK_EINVAL, "proxy.%s: must be 0..%d (ms)", key,
                          MK_MOCK_PROXY_MAX_TIMEOUT_MS);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* proxy.headers: {"Name": "value"} lines added to the upstream request. */
static int compile_add(mk_mock_proxy_t *p, const json_t *h, mk_err_t *err)
{
    if (h == NULL || json_is_null(h))
        return 0;
    if (!json_is_object(h) || json_object_size(h) > MK_MOCK_PROXY_MAX_HEADERS)
        return mk_err_set(err, MK_EINVAL, "proxy.headers: must be an object of at most %d strings",
                          MK_MOCK_PROXY_MAX_HEADERS);
    p->add_lines = calloc(json_object_size(h) + 1, sizeof *p->add_lines);
    if (p->add_lines == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v)
    {
        if (!token_ok(k) || !json_is_string(v) || !value_ok(json_string_value(v)))
            return mk_err_set(err, MK_EINVAL,
                              "proxy.headers.%.64s: a header name with a one-line string value", k);
        size_t len = strlen(k) + strlen(json_string_value(v)) + 3;
        char *line = malloc(len);
        if (line == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        snprintf(line, len, "%s: %s", k, json_string_value(v));
        p->add_lines[p->nadd++] = line;
    }
    return 0;
}

static int compile_remove(mk_mock_proxy_t *p, const json_t *r, mk_err_t *err)
{
    if (r == NULL || json_is_null(r))
        return 0;
    if (!json_is_array(r) || json_array_size(r) > MK_MOCK_PROXY_MAX_HEADERS)
        return mk_err_set(err, MK_EINVAL,
                          "proxy.removeHeaders: must be an array of at most %d header names",
                          MK_MOCK_PROXY_MAX_HEADERS);
    p->remove = calloc(json_array_size(r) + 1, sizeof *p->remove);
    if (p->remove == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v)
    {
        if (!json_is_string(v) || !token_ok(json_string_value(v)))
            return mk_err_set(err, MK_EINVAL, "proxy.removeHeaders[%zu]: must be a header name", i);
        if ((p->remove[p->nremove++] = strdup(json_string_value(v))) == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    return 0;
}

/* proxy.override: {"statusCode", "headers": {...}, "payload": {...}}. */
static int compile_override(mk_mock_proxy_t *p, const json_t *o, mk_err_t *err)
{
    if (o == NULL || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return mk_err_set(err, MK_EINVAL, "proxy.override: must be an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "statusCode") && strcmp(k, "headers") && strcmp(k, "payload"))
            return mk_err_set(err, MK_EINVAL,
                              "proxy.override.%.64s: unknown (statusCode, headers, payload)", k);
    }
    json_t *st = json_object_get(o, "statusCode");
    if (st != NULL && !json_is_null(st)) {
        if (!json_is_integer(st) || json_integer_value(st) < 100 || json_integer_value(st) > 599)
            return mk_err_set(err, MK_EINVAL, "proxy.override.statusCode: must be 100..599");
        p->status = (int)json_integer_value(st);
    }
    json_t *h = json_object_get(o, "headers");
    if (h != NULL && !json_is_null(h)) {
        if (!json_is_object(h) || json_object_size(h) > MK_MOCK_PROXY_MAX_HEADERS)
            return mk_err_set(err, MK_EINVAL,
                              "proxy.override.headers: must be an object of at most %d strings",
                              MK_MOCK_PROXY_MAX_HEADERS);
        p->headers = calloc(json_object_size(h) + 1, sizeof *p->headers);
        if (p->headers == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        json_object_foreach(h, k, v)
        {
            if (!token_ok(k) || !json_is_string(v) || !value_ok(json_string_value(v)))
                return mk_err_set(err, MK_EINVAL,
                                  "proxy.override.headers.%.64s: a header name with a one-line "
                                  "string value",
                                  k);
            mk_mock_proxy_header_t *e = &p->headers[p->nheaders++];
            e->name = strdup(k);
            e->value = strdup(json_string_value(v));
            if (e->name == NULL || e->value == NULL)
                return mk_err_set(err, MK_ENOMEM, "out of memory");
        }
    }
    json_t *pl = json_object_get(o, "payload");
    if (pl != NULL && !json_is_null(pl)) {
        if (!json_is_object(pl))
            return mk_err_set(err, MK_EINVAL,
                              "proxy.override.payload: must be an object (merged into a JSON "
                              "object answer)");
        p->merge = json_deep_copy(pl);
        if (p->merge == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    return 0;
}

static const char *const known_fields[] = {
    "target",        "insecure",    "timeout",  "connectTimeout", "headers",
    "removeHeaders", "stripPrefix", "override", "record",
};

int mk_mock_proxy_parse(const json_t *def, mk_mock_proxy_t **out, mk_err_t *err)
{
    *out = NULL;
    json_t *pd = json_object_get(def, "proxy");
    if (pd == NULL || json_is_null(pd))
        return 0;
    if (!json_is_object(pd))
        return mk_err_set(err, MK_EINVAL, "proxy: must be an object");
    /* Mockarty's SDKs send "proxy": {} for "no proxy" (omitempty on a struct). */
    json_t *target = json_object_get(pd, "target");
    if (json_object_size(pd) == 0 ||
        (json_is_string(target) && json_string_value(target)[0] == '\0' &&
         json_object_size(pd) == 1))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(pd, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields; i++)
            known = known || strcmp(k, known_fields[i]) == 0;
        if (!known)
            return mk_err_set(err, MK_EINVAL,
                              "proxy.%.64s: unknown field (target, insecure, timeout, "
                              "connectTimeout, headers, removeHeaders, stripPrefix, override)",
                              k);
    }
    if (!json_is_string(target))
        return mk_err_set(err, MK_EINVAL, "proxy.target: required, a URL string");
    int rc = check_target(json_string_value(target), err);
    if (rc)
        return rc;
    mk_mock_proxy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    p->target = strdup(json_string_value(target));
    if (p->target == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    p->target_len = strlen(p->target);
    while (p->target_len > 0 && p->target[p->target_len - 1] == '/')
        p->target[--p->target_len] = '\0';
    json_t *ins = json_object_get(pd, "insecure");
    if (ins != NULL && !json_is_null(ins) && !json_is_boolean(ins)) {
        rc = mk_err_set(err, MK_EINVAL, "proxy.insecure: must be true or false");
        goto out;
    }
    p->insecure = json_is_true(ins);
    json_t *sp = json_object_get(pd, "stripPrefix");
    if (sp != NULL && !json_is_null(sp)) {
        if (!json_is_string(sp) || json_string_value(sp)[0] != '/') {
            rc = mk_err_set(err, MK_EINVAL, "proxy.stripPrefix: must be a path starting with '/'");
            goto out;
        }
        if ((p->strip_prefix = strdup(json_string_value(sp))) == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
    }
    json_t *rec = json_object_get(pd, "record");
    if (rec != NULL && !json_is_null(rec)) {
        if (!json_is_string(rec) || json_string_length(rec) == 0 || json_string_length(rec) > 64) {
            rc = mk_err_set(err, MK_EINVAL, "proxy.record: must be a recorder session id");
            goto out;
        }
        if ((p->record = strdup(json_string_value(rec))) == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
    }
    rc = get_ms(pd, "timeout", &p->timeout_ms, err);
    if (rc == 0)
        rc = get_ms(pd, "connectTimeout", &p->connect_timeout_ms, err);
    if (rc == 0)
        rc = compile_add(p, json_object_get(pd, "headers"), err);
    if (rc == 0)
        rc = compile_remove(p, json_object_get(pd, "removeHeaders"), err);
    if (rc == 0)
        rc = compile_override(p, json_object_get(pd, "override"), err);
out:
    if (rc) {
        mk_mock_proxy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
