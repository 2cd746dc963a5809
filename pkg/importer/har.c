/* HAR 1.2 (as browsers save it) → mocks: one per distinct request (method, path, query, JSON
 * body); repeated requests with different answers become a oneOf in capture order. */
#include "importer/importer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

/* The query as sorted name=value pairs (part of the dedupe key), and the conditions. */
static void query_of(json_t *req, json_t *mock, char *key, size_t cap)
{
    json_t *qs = json_object_get(req, "queryString");
    size_t n = json_array_size(qs);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(qs, i);
    qsort(items, n, sizeof *items, by_name);
    size_t j = strlen(key);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_object_get(items[i], "name"));
        const char *value = json_string_value(json_object_get(items[i], "value"));
        if (name == NULL || *name == 0)
            continue;
        /* Browsers save the values as sent (Chromium) or decoded (Firefox): decoding both is
         * right unless a decoded value holds '%' or '+'. */
        json_t *dn = mk_imp_query_text(name, strlen(name));
        json_t *dv = mk_imp_query_text(value ? value : "", value ? strlen(value) : 0);
        if (j < cap)
            j += (size_t)snprintf(key + j, cap - j, "&%s=%s", json_string_value(dn),
                                  json_string_value(dv));
        mk_imp_cond(mock, "queryParams", json_string_value(dn), "equals", dv);
        json_decref(dn);
    }
    free(items);
}

/* The answer of one entry, or NULL with *why set. */
static json_t *answer(json_t *res, const char **why)
{
    json_t *st = json_object_get(res, "status");
    if (!json_is_integer(st) || json_integer_value(st) < 100 || json_integer_value(st) > 599) {
        *why = "no response was captured (status 0 or absent)";
        return NULL;
    }
    json_t *out = json_pack("{s:I}", "statusCode", json_integer_value(st));
    json_t *headers = json_object();
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(res, "headers"), i, h)
    {
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *value = json_string_value(json_object_get(h, "value"));
        if (name == NULL || value == NULL || *name == 0 || mk_imp_drop_header(name))
            continue;
        json_t *old = json_object_get(headers, name);
        if (json_is_string(old))
            json_object_set_new(headers, name, json_pack("[O, s]", old, value));
        else if (json_is_array(old))
            json_array_append_new(old, json_string(value));
        else
            json_object_set_new(headers, name, json_string(value));
    }
    if (json_object_size(headers))
        json_object_set(out, "headers", headers);
    json_decref(headers);
    json_t *content = json_object_get(res, "content");
    json_t *text = json_object_get(content, "text");
    const char *mime = json_string_value(json_object_get(content, "mimeType"));
    const char *enc = json_string_value(json_object_get(content, "encoding"));
    if (json_is_string(text) && json_string_length(text) > 0) {
        if (enc && strcasecmp(enc, "base64") == 0) {
            size_t n;
            unsigned char *b = mk_imp_base64(json_string_value(text), json_string_length(text), &n);
            if (b == NULL || !mk_imp_utf8(b, n)) {
                free(b);
                json_decref(out);
                *why = b ? "binary response body (payloads are text or JSON)"
                         : "response content: invalid base64";
                return NULL;
            }
            json_object_set_new(out, "payload", mk_imp_payload((char *)b, n, mime));
            free(b);
        } else {
            json_object_set_new(
                out, "payload",
                mk_imp_payload(json_string_value(text), json_string_length(text), mime));
        }
    }
    return out;
}

int mk_import_har(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err)
{
    json_t *entries = json_object_get(json_object_get(doc, "log"), "entries");
    if (!json_is_array(entries))
        return mk_err_set(err, MK_EINVAL, "spec: not a HAR file (no log.entries array)");
    json_t *groups = json_object(); /* dedupe key → index in r->mocks */
    size_t i;
    json_t *e;
    int rc = 0;
    json_array_foreach(entries, i, e)
    {
        char item[64];
        snprintf(item, sizeof item, "log.entries[%zu]", i);
        json_t *req = json_object_get(e, "request");
        const char *method = json_string_value(json_object_get(req, "method"));
        const char *url = json_string_value(json_object_get(req, "url"));
        if (method == NULL || url == NULL) {
            mk_imp_note(r->errors, item, "request.method and request.url are required");
            continue;
        }
        const char *why = NULL;
        json_t *resp = answer(json_object_get(e, "response"), &why);
        if (resp == NULL) {
            mk_imp_note(r->skipped, item, "%s", why);
            continue;
        }
        char *path = mk_imp_url_path(url, NULL);
        char key[2048];
        snprintf(key, sizeof key, "%s %s?", method, path);
        json_t *mock = mk_imp_mock_new(o, "har", "", method, path);
        query_of(req, mock, key, sizeof key);
        json_t *post = json_object_get(req, "postData");
        const char *pmime = json_string_value(json_object_get(post, "mimeType"));
        json_t *ptext = json_object_get(post, "text");
        json_t *body = json_is_string(ptext) && pmime && strstr(pmime, "json")
                           ? json_loadb(json_string_value(ptext), json_string_length(ptext),
                                        JSON_DECODE_ANY, NULL)
                           : NULL;
        if (body) {
            char *dump = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            size_t j = strlen(key);
            snprintf(key + j, sizeof key - j, " %s", dump ? dump : "");
            free(dump);
            mk_imp_cond(mock, "conditions", "$", "equals", body);
        }
        free(path);
        json_t *seen = json_object_get(groups, key);
        if (seen) {
            /* The same request again: a new answer joins the earlier mock's oneOf. */
            json_t *prev = json_array_get(r->mocks, (size_t)json_integer_value(seen));
            json_t *one = json_object_get(prev, "oneOf");
            json_t *list = one ? json_object_get(one, "responses")
                               : json_pack("[O]", json_object_get(prev, "response"));
            bool dup = false;
            size_t k;
            json_t *x;
            json_array_foreach(list, k, x)
            {
                dup |= json_equal(x, resp);
            }
            if (!dup)
                json_array_append(list, resp);
            if (one == NULL && json_array_size(list) > 1) {
                json_object_del(prev, "response");
                json_object_set_new(prev, "oneOf",
                                    json_pack("{s:s, s:O}", "order", "order", "responses", list));
            }
            if (one == NULL)
                json_decref(list);
            json_decref(resp);
            json_decref(mock);
            continue;
        }
        /* The id follows the dedupe key, so the same capture imports to the same ids. */
        json_t *fresh = mk_imp_mock_new(o, "har", key, method, "/");
        json_object_set(mock, "id", json_object_get(fresh, "id"));
        json_decref(fresh);
        json_object_set_new(mock, "response", resp);
        json_object_set_new(groups, key, json_integer((json_int_t)json_array_size(r->mocks)));
        if ((rc = mk_imp_push(r, mock, err)) != 0)
            break;
    }
    json_decref(groups);
    return rc;
}
