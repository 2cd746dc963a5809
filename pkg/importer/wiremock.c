/* WireMock stub mappings → mocks. Matchers become conditions; what has no counterpart (negated
 * regexes, XML, scenario states beyond the first) skips that mapping with the reason. */
#include "importer/importer_internal.h"

#include "jsonpath/jsonpath.h"
#include "regex/regex.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct wm {
    const mk_import_opts_t *o;
    mk_import_result_t *r;
    char item[200];
    char why[500];    /* set: the mapping is skipped (or, with bad, refused) for this reason */
    bool bad;         /* the reason is an input error (an invalid regex), not a limit of ours */
    json_t *requests; /* request JSON text → mappings seen with it (ids of id-less mappings) */
} wm_t;

static const char *str_or(const char *s, const char *def)
{
    return s ? s : def;
}

static void wm_fail(wm_t *w, bool bad, const char *fmt, const char *a, const char *b)
{
    if (w->why[0])
        return;
    snprintf(w->why, sizeof w->why, fmt, a, b);
    w->bad = bad;
}

static bool regex_ok(wm_t *w, const char *field, const char *re)
{
    mk_regex_t *rx;
    mk_err_t err;
    if (mk_regex_compile(re, &rx, &err) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "%.280s", err.msg);
        wm_fail(w, true, "%s: invalid regular expression: %s", field, msg);
        return false;
    }
    mk_regex_free(rx);
    return true;
}

/* PCRE-quotes s into a new heap string. */
static char *quote(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 1);
    size_t j = 0;
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}/", *s))
            out[j++] = '\\';
        out[j++] = *s;
    }
    out[j] = 0;
    return out;
}

/* One string matcher ({"equalTo": "x"}, {"matches": "re"}, ...) as a condition on http[list]. */
static void matcher(wm_t *w, json_t *mock, const char *list, const char *name, json_t *m,
                    const char *field)
{
    json_t *v;
    if (json_is_string(m)) { /* shorthand some tools write */
        mk_imp_cond(mock, list, name, "equals", json_incref(m));
    } else if ((v = json_object_get(m, "equalTo")) != NULL) {
        if (json_is_true(json_object_get(m, "caseInsensitive")) && json_is_string(v)) {
            char *q = quote(json_string_value(v));
            char re[1024];
            snprintf(re, sizeof re, "(?i)^%s$", q);
            free(q);
            mk_imp_cond(mock, list, name, "matches", json_string(re));
        } else {
            mk_imp_cond(mock, list, name, "equals", json_incref(v));
        }
    } else if ((v = json_object_get(m, "contains")) != NULL) {
        mk_imp_cond(mock, list, name, "contains", json_incref(v));
    } else if ((v = json_object_get(m, "doesNotContain")) != NULL) {
        mk_imp_cond(mock, list, name, "not_contains", json_incref(v));
    } else if (json_is_string(v = json_object_get(m, "matches"))) {
        char re[2048];
        snprintf(re, sizeof re, "^(?:%s)$", json_string_value(v));
        if (regex_ok(w, field, json_string_value(v)))
            mk_imp_cond(mock, list, name, "matches", json_string(re));
    } else if ((v = json_object_get(m, "absent")) != NULL) {
        mk_imp_cond(mock, list, name, json_is_true(v) ? "empty" : "any", NULL);
    } else if (json_object_get(m, "doesNotMatch")) {
        if (regex_ok(w, field, str_or(json_string_value(json_object_get(m, "doesNotMatch")), "")))
            wm_fail(w, false, "%s: doesNotMatch has no counterpart among our conditions%s", field,
                    "");
    } else {
        const char *k = json_object_iter_key(json_object_iter(m));
        wm_fail(w, false, "%s: matcher '%s' is not supported", field, k ? k : "(none)");
    }
}

static void matchers(wm_t *w, json_t *mock, json_t *obj, const char *list, const char *field)
{
    const char *name;
    json_t *m;
    json_object_foreach(obj, name, m)
    {
        char f[300];
        snprintf(f, sizeof f, "request.%s.%s", field, name);
        matcher(w, mock, list, name, m, f);
    }
}

static bool simple_key(const char *k)
{
    if (!isalpha((unsigned char)*k) && *k != '_')
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_')
            return false;
    return true;
}

/* equalToJson with placeholders or ignoreExtraElements: one condition per leaf. */
static void json_leaves(wm_t *w, json_t *mock, const char *path, json_t *v, bool sort, int depth)
{
    if (depth > 64) {
        wm_fail(w, false, "bodyPatterns: equalToJson nested deeper than %s levels%s", "64", "");
        return;
    }
    if (json_is_object(v) && json_object_size(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            char p[1024];
            if (simple_key(k))
                snprintf(p, sizeof p, "%s.%s", path, k);
            else if (!strchr(k, '\''))
                snprintf(p, sizeof p, "%s['%s']", path, k);
            else {
                wm_fail(w, false, "bodyPatterns: key %s cannot be written as a path%s", k, "");
                return;
            }
            json_leaves(w, mock, p, c, sort, depth + 1);
        }
        return;
    }
    const char *s = json_string_value(v);
    if (s && strcmp(s, "${json-unit.ignore}") == 0)
        return;
    if (s && strncmp(s, "${json-unit.any-", 16) == 0) {
        mk_imp_cond(mock, "conditions", path, "any", NULL);
        return;
    }
    json_t *c = mk_imp_cond(mock, "conditions", path, "equals", json_incref(v));
    if (sort && json_is_array(v))
        json_object_set_new(c, "sortArray", json_true());
}

static bool has_placeholder(json_t *v)
{
    if (json_is_string(v))
        return strncmp(json_string_value(v), "${json-unit.", 12) == 0;
    const char *k;
    size_t i;
    json_t *c;
    json_object_foreach(v, k, c)
    {
        if (has_placeholder(c))
            return true;
    }
    json_array_foreach(v, i, c)
    {
        if (has_placeholder(c))
            return true;
    }
    return false;
}

static void body_pattern(wm_t *w, json_t *mock, json_t *p, size_t i)
{
    char field[64];
    snprintf(field, sizeof field, "request.bodyPatterns[%zu]", i);
    json_t *v;
    if ((v = json_object_get(p, "equalToJson")) != NULL) {
        json_t *doc = json_is_string(v) ? json_loads(json_string_value(v), JSON_DECODE_ANY, NULL)
                                        : json_incref(v);
        if (doc == NULL) {
            wm_fail(w, true, "%s.equalToJson: not valid JSON%s", field, "");
            return;
        }
        bool sort = json_is_true(json_object_get(p, "ignoreArrayOrder"));
        if (json_is_true(json_object_get(p, "ignoreExtraElements")) || has_placeholder(doc))
            json_leaves(w, mock, "$", doc, sort, 0);
        else {
            json_t *c = mk_imp_cond(mock, "conditions", "$", "equals", json_incref(doc));
            if (sort)
                json_object_set_new(c, "sortArray", json_true());
        }
        json_decref(doc);
    } else if ((v = json_object_get(p, "matchesJsonPath")) != NULL) {
        const char *expr = json_is_string(v) ? json_string_value(v)
                                             : json_string_value(json_object_get(v, "expression"));
        mk_jsonpath_t *jp;
        mk_err_t err;
        if (expr == NULL) {
            wm_fail(w, true, "%s.matchesJsonPath: expected a string or {\"expression\": ...}%s",
                    field, "");
            return;
        }
        if (mk_jsonpath_compile(expr, &jp, &err) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "'%.120s' is outside our JSONPath subset (%.120s)", expr,
                     err.msg);
            wm_fail(w, false, "%s.matchesJsonPath: %s", field, msg);
            return;
        }
        mk_jsonpath_free(jp);
        if (json_is_string(v)) {
            mk_imp_cond(mock, "conditions", expr, "any", NULL);
        } else {
            json_t *m = json_deep_copy(v);
            json_object_del(m, "expression");
            matcher(w, mock, "conditions", expr, m, field);
            json_decref(m);
        }
    } else if (json_is_string(v = json_object_get(p, "equalTo"))) {
        json_t *doc = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        if (doc && (json_is_object(doc) || json_is_array(doc)))
            mk_imp_cond(mock, "conditions", "$", "equals", doc);
        else {
            json_decref(doc);
            wm_fail(w, false, "%s.equalTo: a text body matcher; conditions read JSON bodies%s",
                    field, "");
        }
    } else {
        const char *k = json_object_iter_key(json_object_iter(p));
        if (k && strcmp(k, "matches") == 0)
            regex_ok(w, field, str_or(json_string_value(json_object_get(p, k)), ""));
        wm_fail(w, false, "%s: body matcher '%s' is not supported (conditions read JSON bodies)",
                field, k ? k : "(none)");
    }
}

/* True for a regex segment we can read as plain text (escapes of punctuation only). */
static bool literal_segment(const char *s, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && !isalnum((unsigned char)s[i + 1]))
            c = s[++i];
        else if (strchr(".[]()*+?{}|^$\\", c))
            return false;
        if (j + 1 >= cap)
            return false;
        out[j++] = c;
    }
    out[j] = 0;
    return true;
}

/* A path regex → route: literal segments stay, regex segments become parameters, a regex tail
 * spanning segments becomes `*`. NULL (with w->why) when the shape cannot be expressed. */
static char *pattern_route(wm_t *w, const char *re, const char *field)
{
    if (!regex_ok(w, field, re))
        return NULL;
    size_t len = strlen(re);
    const char *s = re;
    if (*s == '^')
        s++, len--;
    if (len && s[len - 1] == '$' && (len < 2 || s[len - 2] != '\\'))
        len--;
    const char *q = strstr(s, "\\?");
    if (q && (size_t)(q - s) < len) {
        mk_imp_note(w->r->warnings, w->item, "%s: the query part of the pattern is not matched",
                    field);
        len = (size_t)(q - s);
    }
    char *out = malloc(len * 2 + 16);
    size_t j = 0;
    int params = 0;
    bool loose = false;
    size_t i = 0;
    if (len == 0 || s[0] != '/') {
        free(out);
        wm_fail(w, false, "%s: the pattern does not start with a literal '/'%s", field, "");
        return NULL;
    }
    while (i < len) {
        i++; /* the '/' */
        size_t k = i;
        int depth = 0;
        while (k < len && (depth > 0 || s[k] != '/')) {
            if (s[k] == '\\' && k + 1 < len)
                k++;
            else if (s[k] == '(' || s[k] == '[')
                depth++;
            else if ((s[k] == ')' || s[k] == ']') && depth > 0)
                depth--;
            k++;
        }
        char lit[512];
        bool spans = memchr(s + i, '/', k - i) != NULL;
        out[j++] = '/';
        if (literal_segment(s + i, k - i, lit, sizeof lit)) {
            memcpy(out + j, lit, strlen(lit));
            j += strlen(lit);
        } else if (k == len &&
                   (spans || strncmp(s + i, ".*", 2) == 0 || strncmp(s + i, ".+", 2) == 0)) {
            out[j++] = '*';
            loose = true;
        } else if (spans) {
            free(out);
            wm_fail(w, false,
                    "%s: a group spanning several path segments before the end of the "
                    "pattern cannot be a route%s",
                    field, "");
            return NULL;
        } else if (params < MK_IMP_MAX_PARAMS) {
            j += (size_t)sprintf(out + j, ":p%d", ++params);
            loose = true;
        } else {
            free(out);
            wm_fail(w, false, "%s: more than 16 regex segments%s", field, "");
            return NULL;
        }
        i = k;
    }
    out[j] = 0;
    if (loose)
        mk_imp_note(w->r->warnings, w->item,
                    "%s: regex segments became route parameters or a trailing '*' (%s), which "
                    "match any segment",
                    field, out);
    return out;
}

static char *url_route(wm_t *w, json_t *req, json_t *mock_query)
{
    const char *v;
    if ((v = json_string_value(json_object_get(req, "url"))) != NULL) {
        const char *query;
        char *path = mk_imp_url_path(v, &query);
        while (query && *query) {
            size_t n = strcspn(query, "&");
            const char *eq = memchr(query, '=', n);
            if (eq && eq != query) {
                json_t *name = mk_imp_query_text(query, (size_t)(eq - query));
                json_object_set_new(mock_query, json_string_value(name),
                                    mk_imp_query_text(eq + 1, n - (size_t)(eq - query) - 1));
                json_decref(name);
            }
            query += n + (query[n] == '&');
        }
        return path;
    }
    if ((v = json_string_value(json_object_get(req, "urlPath"))) != NULL)
        return mk_imp_url_path(v, NULL);
    if ((v = json_string_value(json_object_get(req, "urlPathTemplate"))) != NULL) {
        bool loose;
        return mk_imp_route_template(v, &loose);
    }
    if ((v = json_string_value(json_object_get(req, "urlPathPattern"))) != NULL)
        return pattern_route(w, v, "request.urlPathPattern");
    if ((v = json_string_value(json_object_get(req, "urlPattern"))) != NULL)
        return pattern_route(w, v, "request.urlPattern");
    return strdup("/*"); /* no URL matcher: WireMock matches every URL */
}

/* ---- WireMock response templates (Handlebars) → our placeholders ---- */

/* The text of route segment n (0-based) of route into out: "$.pathParam.x" for ":x", the
 * literal otherwise; false when there is no such segment or it is the `*` tail. */
static bool path_segment(const char *route, long n, char *out, size_t cap)
{
    const char *p = route;
    for (long i = 0; *p == '/' && p[1]; i++) {
        p++;
        size_t len = strcspn(p, "/");
        if (i == n) {
            if (len == 1 && *p == '*')
                return false;
            if (*p == ':')
                snprintf(out, cap, "$.pathParam.%.*s", (int)len - 1, p + 1);
            else
                snprintf(out, cap, "%.*s", (int)len, p);
            return true;
        }
        p += len;
    }
    return false;
}

/* A name after "request.query." or "request.headers.": "x", "[x]", "x.[0]", "x.0". */
static bool helper_name(const char *s, char *out, size_t cap)
{
    if (*s == '[') {
        size_t n = strcspn(s + 1, "]");
        if (s[1 + n] != ']' || (s[2 + n] && strcmp(s + 2 + n, ".[0]") && strcmp(s + 2 + n, ".0")))
            return false;
        snprintf(out, cap, "%.*s", (int)n, s + 1);
        return n > 0;
    }
    size_t n = strcspn(s, ".");
    if (s[n] && strcmp(s + n, ".[0]") != 0 && strcmp(s + n, ".0") != 0)
        return false;
    snprintf(out, cap, "%.*s", (int)n, s);
    return n > 0;
}

/* One {{expression}} (trimmed) → a placeholder in out; false when we have no counterpart. */
static bool helper(const char *e, const char *route, char *out, size_t cap)
{
    char name[256];
    const char *rest;
    if (strncmp(e, "request.path.", 13) == 0 || strncmp(e, "request.pathSegments.", 21) == 0) {
        rest = strchr(e + 8, '.') + 1;
        char *end;
        long n = strtol(rest + (*rest == '['), &end, 10);
        if (end == rest + (*rest == '[') || (*rest == '[' ? strcmp(end, "]") : *end != 0))
            return false;
        return path_segment(route, n, out, cap);
    }
    if (strncmp(e, "request.query.", 14) == 0 && helper_name(e + 14, name, sizeof name)) {
        snprintf(out, cap, "$.queryParam.%s", name);
        return true;
    }
    if (strncmp(e, "request.headers.", 16) == 0 && helper_name(e + 16, name, sizeof name)) {
        snprintf(out, cap, "$.reqHeader.%s[0]", name);
        return true;
    }
    if (strcmp(e, "request.body") == 0) {
        snprintf(out, cap, "$.req");
        return true;
    }
    if (strncmp(e, "jsonPath request.body ", 22) == 0) {
        const char *q = e + 22;
        size_t n = strlen(q);
        if (n < 3 || (q[0] != '\'' && q[0] != '"') || q[n - 1] != q[0] || q[1] != '$')
            return false;
        snprintf(out, cap, "$.req%.*s", (int)n - 3, q + 2);
        return true;
    }
    static const struct {
        const char *wm, *ours;
    } fixed[] = {
        {"randomValue type='UUID'", "$.fake.UUID"},
        {"randomValue type=\"UUID\"", "$.fake.UUID"},
        {"now", "$.fake.Timestamp"},
        {"now format='unix'", "$.fake.UnixTime"},
        {"now format=\"unix\"", "$.fake.UnixTime"},
        {NULL, NULL},
    };
    for (size_t i = 0; fixed[i].wm; i++)
        if (strcmp(e, fixed[i].wm) == 0) {
            snprintf(out, cap, "%s", fixed[i].ours);
            return true;
        }
    return false;
}

/* Rewrites the {{...}} of a string; NULL (with w->why) when one cannot be translated. */
static json_t *template_string(wm_t *w, const char *s, const char *route, const char *field)
{
    if (strstr(s, "{{") == NULL)
        return json_string(s);
    size_t cap = strlen(s) * 2 + 256, j = 0;
    char *out = malloc(cap);
    while (*s) {
        const char *open = strstr(s, "{{");
        if (open == NULL) {
            j += (size_t)snprintf(out + j, cap - j, "%s", s);
            break;
        }
        bool triple = open[2] == '{';
        const char *body = open + (triple ? 3 : 2);
        const char *close = strstr(body, triple ? "}}}" : "}}");
        memcpy(out + j, s, (size_t)(open - s));
        j += (size_t)(open - s);
        char expr[512];
        if (close == NULL || (size_t)(close - body) >= sizeof expr) {
            free(out);
            wm_fail(w, false, "%s: an unterminated or too long {{ }} expression%s", field, "");
            return NULL;
        }
        size_t n = (size_t)(close - body);
        while (n && isspace((unsigned char)body[n - 1]))
            n--;
        while (n && isspace((unsigned char)*body))
            body++, n--;
        snprintf(expr, sizeof expr, "%.*s", (int)n, body);
        const char *after = close + (triple ? 3 : 2);
        char ph[600];
        if (!helper(expr, route, ph, sizeof ph)) {
            free(out);
            wm_fail(w, false,
                    "%s: template helper '{{%.200s}}' has no counterpart in our templates", field,
                    expr);
            return NULL;
        }
        /* A placeholder name would run on into following name characters. */
        if (strncmp(ph, "$.", 2) == 0 &&
            (isalnum((unsigned char)*after) || strchr("_-.[", *after) != NULL) && *after) {
            free(out);
            wm_fail(w, false, "%s: '{{%.200s}}' is followed by text our placeholder would absorb",
                    field, expr);
            return NULL;
        }
        j += (size_t)snprintf(out + j, cap - j, "%s", ph);
        s = after;
    }
    json_t *v = json_string(out);
    free(out);
    return v;
}

/* The same over every string of a JSON value (a new reference; NULL with w->why). */
static json_t *template_json(wm_t *w, json_t *v, const char *route, const char *field)
{
    if (json_is_string(v))
        return template_string(w, json_string_value(v), route, field);
    json_t *out = json_deep_copy(v);
    const char *k;
    json_t *c;
    size_t i;
    /* Each member is replaced by its templated copy; a NULL copy makes the set fail. */
    json_object_foreach(out, k, c)
    {
        if (json_object_set_new(out, k, template_json(w, c, route, field)) != 0)
            goto fail;
    }
    json_array_foreach(out, i, c)
    {
        if (json_array_set_new(out, i, template_json(w, c, route, field)) != 0)
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static json_t *response_of(wm_t *w, json_t *res)
{
    json_t *out = json_object();
    json_t *v = json_object_get(res, "status");
    json_object_set_new(out, "statusCode",
                        json_integer(json_is_integer(v) ? json_integer_value(v) : 200));
    json_t *headers = json_object_get(res, "headers");
    if (json_object_size(headers))
        json_object_set(out, "headers", headers);
    if ((v = json_object_get(res, "jsonBody")) != NULL) {
        json_object_set(out, "payload", v);
    } else if (json_is_string(v = json_object_get(res, "body"))) {
        json_object_set(out, "payload", v);
    } else if (json_is_string(v = json_object_get(res, "base64Body"))) {
        size_t n;
        unsigned char *b = mk_imp_base64(json_string_value(v), json_string_length(v), &n);
        if (b && mk_imp_utf8(b, n))
            json_object_set_new(out, "payload", json_stringn((char *)b, n));
        else
            wm_fail(w, false, "response.base64Body: %s%s",
                    b ? "binary bodies are not supported (payloads are text or JSON)"
                      : "not valid base64",
                    "");
        free(b);
    } else if (json_is_string(v = json_object_get(res, "bodyFileName"))) {
        json_t *f = json_object_get(w->o ? w->o->files : NULL, json_string_value(v));
        if (json_is_string(f)) {
            const char *ct = NULL;
            const char *hk;
            json_t *hv;
            json_object_foreach(headers, hk, hv)
            {
                if (strcasecmp(hk, "Content-Type") == 0)
                    ct = json_string_value(hv);
            }
            json_object_set_new(out, "payload",
                                mk_imp_payload(json_string_value(f), json_string_length(f), ct));
        } else {
            wm_fail(w, false,
                    "response.bodyFileName '%s': not among the files sent with the "
                    "mappings (\"files\": {\"%s\": \"...\"})",
                    json_string_value(v), json_string_value(v));
        }
    }
    if (json_is_integer(v = json_object_get(res, "fixedDelayMilliseconds")))
        json_object_set(out, "delay", v);
    json_t *dd = json_object_get(res, "delayDistribution");
    const char *type = json_string_value(json_object_get(dd, "type"));
    if (type && strcmp(type, "fixed") == 0)
        json_object_set_new(
            out, "delayDistribution",
            json_pack("{s:s, s:I}", "type", "fixed", "ms",
                      (json_int_t)json_number_value(json_object_get(dd, "milliseconds"))));
    else if (type)
        json_object_set(out, "delayDistribution", dd);
    if ((v = json_object_get(res, "fault")) != NULL)
        json_object_set(out, "fault", v);
    if ((v = json_object_get(res, "chunkedDribbleDelay")) != NULL)
        json_object_set(out, "chunkedDribbleDelay", v);
    if (json_object_get(res, "proxyBaseUrl"))
        wm_fail(w, false, "response.proxyBaseUrl: proxy mocks are not supported yet%s%s", "", "");
    return out;
}

static int mapping(wm_t *w, json_t *m, size_t idx, mk_err_t *err)
{
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *id = json_string_value(json_object_get(m, "id"));
    if (id == NULL)
        id = json_string_value(json_object_get(m, "uuid"));
    snprintf(w->item, sizeof w->item, "mappings[%zu]%s%s%s", idx, name || id ? " (" : "",
             name ? name
             : id ? id
                  : "",
             name || id ? ")" : "");
    w->why[0] = 0;
    w->bad = false;
    json_t *req = json_object_get(m, "request");
    json_t *res = json_object_get(m, "response");
    if (!json_is_object(req) || !json_is_object(res)) {
        mk_imp_note(w->r->errors, w->item, "a mapping needs a request and a response object");
        return 0;
    }
    const char *state = json_string_value(json_object_get(m, "requiredScenarioState"));
    if (state && strcmp(state, "Started") != 0) {
        mk_imp_note(w->r->skipped, w->item,
                    "requiredScenarioState '%s': only a scenario's Started state is imported "
                    "(conditions read the request, not a state)",
                    state);
        return 0;
    }
    if (json_object_get(m, "newScenarioState"))
        mk_imp_note(w->r->warnings, w->item,
                    "newScenarioState is not kept: the mock answers as in the Started state");
    const char *method = json_string_value(json_object_get(req, "method"));
    char um[16];
    size_t k;
    for (k = 0; method && method[k] && k + 1 < sizeof um; k++)
        um[k] = (char)toupper((unsigned char)method[k]);
    um[k] = 0;
    json_t *query = json_object();
    char *route = url_route(w, req, query);
    /* The id follows the mapping's id, else its request (and how many identical requests came
     * before): re-importing an edited answer replaces the mock, other mappings keep theirs. */
    char *dump = id ? NULL : json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    json_int_t seen = 0;
    if (dump) {
        seen = json_integer_value(json_object_get(w->requests, dump));
        json_object_set_new(w->requests, dump, json_integer(seen + 1));
    }
    size_t klen = (dump ? strlen(dump) : strlen(id)) + 32;
    char *key = malloc(klen);
    if (id)
        snprintf(key, klen, "id:%s", id);
    else
        snprintf(key, klen, "%s#%lld", dump, (long long)seen);
    free(dump);
    json_t *mock = mk_imp_mock_new(w->o, "wm", key, k ? um : "ANY", route ? route : "/");
    free(key);
    const char *qk;
    json_t *qv;
    json_object_foreach(query, qk, qv)
    {
        mk_imp_cond(mock, "queryParams", qk, "equals", json_incref(qv));
    }
    json_decref(query);
    matchers(w, mock, json_object_get(req, "queryParameters"), "queryParams", "queryParameters");
    matchers(w, mock, json_object_get(req, "headers"), "header", "headers");
    const char *ck;
    json_t *cv;
    json_object_foreach(json_object_get(req, "cookies"), ck, cv)
    {
        json_t *eq = json_object_get(cv, "equalTo");
        char text[600];
        snprintf(text, sizeof text, "%s=%s", ck, str_or(json_string_value(eq), ""));
        if (json_is_string(eq))
            mk_imp_cond(mock, "header", "Cookie", "contains", json_string(text));
        else
            wm_fail(w, false, "request.cookies.%s: only equalTo is supported for cookies%s", ck,
                    "");
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(req, "bodyPatterns"), i, p)
    {
        body_pattern(w, mock, p, i);
    }
    json_t *resp = response_of(w, res);
    /* WireMock's response templates: payload and header values. */
    const char *fields[] = {"payload", "headers"};
    for (int f = 0; f < 2 && w->why[0] == 0; f++) {
        json_t *v = json_object_get(resp, fields[f]);
        json_t *t =
            v ? template_json(w, v, route ? route : "/", f ? "response.headers" : "response.body")
              : NULL;
        if (t)
            json_object_set_new(resp, fields[f], t);
    }
    json_object_set_new(mock, "response", resp);
    json_t *prio = json_object_get(m, "priority");
    /* WireMock: 1 is the highest priority and 5 the default; ours: higher wins. */
    json_object_set_new(mock, "priority",
                        json_integer(json_is_integer(prio) ? -json_integer_value(prio) : -5));
    free(route);
    if (w->why[0]) {
        mk_imp_note(w->bad ? w->r->errors : w->r->skipped, w->item, "%s", w->why);
        json_decref(mock);
        return 0;
    }
    return mk_imp_push(w->r, mock, err);
}

int mk_import_wiremock(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err)
{
    json_t *list = doc;
    json_t *single = NULL;
    if (json_is_object(doc) && json_object_get(doc, "mappings"))
        list = json_object_get(doc, "mappings");
    else if (json_is_object(doc) && json_object_get(doc, "request"))
        list = single = json_pack("[O]", doc);
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL,
                          "spec: expected a mapping, an array of mappings or "
                          "{\"mappings\": [...]}");
    wm_t w = {.o = o, .r = r, .requests = json_object()};
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(list, i, m)
    {
        if (rc == 0)
            rc = mapping(&w, m, i, err);
    }
    json_decref(single);
    json_decref(w.requests);
    return rc;
}

typedef struct folder {
    json_t *mappings, *files;
} folder_t;

static int folder_file(void *ud, const char *name, const unsigned char *bytes, size_t n,
                       mk_err_t *err)
{
    folder_t *f = ud;
    const char *under = strstr(name, "__files/");
    if (under) {
        if (mk_imp_utf8(bytes, n)) /* binary files have no payload form; a mapping naming one
                                      is reported as missing its file */
            json_object_set_new(f->files, under + 8, json_stringn((const char *)bytes, n));
        return 0;
    }
    size_t len = strlen(name);
    if (strstr(name, "mappings/") == NULL || len < 5 || strcmp(name + len - 5, ".json") != 0)
        return 0;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)bytes, n, 0, &jerr);
    if (doc == NULL)
        return mk_err_set(err, MK_EINVAL, "zip: %s: invalid JSON at line %d column %d: %s", name,
                          jerr.line, jerr.column, jerr.text);
    json_t *list = json_object_get(doc, "mappings");
    if (json_is_array(list))
        json_array_extend(f->mappings, list);
    else
        json_array_append(f->mappings, doc);
    json_decref(doc);
    return 0;
}

int mk_import_wiremock_zip(const void *data, size_t len, json_t **doc, json_t **files,
                           mk_err_t *err)
{
    folder_t f = {json_array(), json_object()};
    int rc = mk_import_unzip(data, len, folder_file, &f, err);
    if (rc == 0 && json_array_size(f.mappings) == 0)
        rc = mk_err_set(err, MK_EINVAL, "zip: no mappings/*.json file");
    if (rc) {
        json_decref(f.mappings);
        json_decref(f.files);
        *doc = *files = NULL;
        return rc;
    }
    *doc = json_pack("{s:o}", "mappings", f.mappings);
    *files = f.files;
    return 0;
}
