/* GraphQL SDL → mocks on POST /graphql: one per Query and Mutation field, chosen by the first
 * field the request's query selects, answering {"data": {field: generated value}}. */
#include "importer/importer_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GQL_DEPTH 4 /* object nesting generated in an answer */

typedef struct lex {
    const char *s, *end;
    char tok[256]; /* the current token: a name, or one punctuation character */
    size_t line;
    bool held; /* next() gives the current token again */
} lex_t;

/* Advances to the next token; false at the end. Skips whitespace, commas, comments and strings
 * (descriptions). */
static bool next(lex_t *l)
{
    if (l->held) {
        l->held = false;
        return l->tok[0] != 0;
    }
    for (;;) {
        while (l->s < l->end && (isspace((unsigned char)*l->s) || *l->s == ',')) {
            l->line += *l->s == '\n';
            l->s++;
        }
        if (l->s >= l->end) {
            l->tok[0] = 0;
            return false;
        }
        if (*l->s == '#') {
            while (l->s < l->end && *l->s != '\n')
                l->s++;
        } else if (*l->s == '"') {
            bool block = l->end - l->s >= 3 && strncmp(l->s, "\"\"\"", 3) == 0;
            l->s += block ? 3 : 1;
            while (l->s < l->end) {
                if (block && l->end - l->s >= 3 && strncmp(l->s, "\"\"\"", 3) == 0) {
                    l->s += 3;
                    break;
                }
                if (!block && *l->s == '"') {
                    l->s++;
                    break;
                }
                if (*l->s == '\\' && l->s + 1 < l->end)
                    l->s++;
                l->line += *l->s == '\n';
                l->s++;
            }
        } else {
            break;
        }
    }
    size_t n = 0;
    if (isalnum((unsigned char)*l->s) || *l->s == '_') {
        while (l->s < l->end && (isalnum((unsigned char)*l->s) || *l->s == '_')) {
            if (n + 1 < sizeof l->tok)
                l->tok[n++] = *l->s;
            l->s++;
        }
    } else {
        l->tok[n++] = *l->s++;
    }
    l->tok[n] = 0;
    return true;
}

static bool is(lex_t *l, const char *t)
{
    return strcmp(l->tok, t) == 0;
}

static bool is_name(lex_t *l)
{
    return isalpha((unsigned char)l->tok[0]) || l->tok[0] == '_';
}

/* Skips a balanced (...) group; the current token is "(", and ")" is current after. */
static void skip_group(lex_t *l)
{
    int depth = 0;
    do {
        if (is(l, "("))
            depth++;
        else if (is(l, ")"))
            depth--;
    } while (depth > 0 && next(l));
}

/* Skips @directive(args) sequences from the current token; the first other token is current. */
static void skip_directives(lex_t *l)
{
    while (is(l, "@") && next(l) && next(l))
        if (is(l, "(")) {
            skip_group(l);
            next(l);
        }
}

/* A type reference ("[Pet!]!") from the current token into out; the token after is current. */
static bool type_ref(lex_t *l, char *out, size_t cap)
{
    size_t j = 0;
    int open = 0;
    for (;;) {
        if (is(l, "["))
            open++;
        else if (is(l, "]"))
            open--;
        else if (!is(l, "!") && !is_name(l))
            return false;
        size_t n = strlen(l->tok);
        if (open < 0 || j + n + 1 >= cap)
            return false;
        memcpy(out + j, l->tok, n + 1);
        j += n;
        if (!next(l))
            return open == 0;
        if (open == 0 && !is(l, "!"))
            return j > 0;
    }
}

static int fail(lex_t *l, mk_err_t *err, const char *what)
{
    return mk_err_set(err, MK_EINVAL, "spec: line %zu: %s, found '%s'", l->line, what, l->tok);
}

/* Reads one SDL document into types: name → {"kind", "fields": {name: ref}, "values": [...]}
 * (enum values, union members) and roots: {"query": "Query", ...}. */
static int parse(const char *sdl, size_t len, json_t *types, json_t *roots, mk_err_t *err)
{
    lex_t l = {.s = sdl, .end = sdl + len, .line = 1};
    while (next(&l)) {
        if (is(&l, "extend"))
            next(&l);
        char kind[16];
        snprintf(kind, sizeof kind, "%.15s", l.tok);
        if (is(&l, "schema")) {
            next(&l);
            skip_directives(&l);
            if (!is(&l, "{"))
                return fail(&l, err, "expected '{' after schema");
            while (next(&l) && !is(&l, "}")) {
                char op[16];
                snprintf(op, sizeof op, "%.15s", l.tok);
                if (!next(&l) || !is(&l, ":") || !next(&l) || !is_name(&l))
                    return fail(&l, err, "expected 'operation: Type' in schema");
                json_object_set_new(roots, op, json_string(l.tok));
            }
            continue;
        }
        if (is(&l, "directive")) { /* directive @x(args) [repeatable] on A | B */
            next(&l);
            next(&l);
            next(&l);
            if (is(&l, "(")) {
                skip_group(&l);
                next(&l);
            }
            if (is(&l, "repeatable"))
                next(&l);
            if (!is(&l, "on"))
                return fail(&l, err, "expected 'on' in a directive definition");
            while (next(&l) && (is(&l, "|") || is_name(&l)))
                if (is_name(&l) && !is(&l, "|")) {
                    if (!next(&l))
                        break;
                    if (!is(&l, "|")) {
                        l.held = true;
                        break;
                    }
                }
            continue;
        }
        bool known = is(&l, "type") || is(&l, "interface") || is(&l, "input") || is(&l, "enum") ||
                     is(&l, "scalar") || is(&l, "union");
        if (!known)
            return fail(&l, err,
                        "expected a type, interface, input, enum, scalar, union, schema "
                        "or directive definition");
        if (!next(&l) || !is_name(&l))
            return fail(&l, err, "expected a type name");
        char name[256];
        snprintf(name, sizeof name, "%s", l.tok);
        json_t *t = json_object_get(types, name);
        if (t == NULL) {
            t = json_pack("{s:s, s:{}, s:[]}", "kind", kind, "fields", "values");
            json_object_set_new(types, name, t);
        }
        json_t *fields = json_object_get(t, "fields"), *values = json_object_get(t, "values");
        next(&l);
        if (is(&l, "implements"))
            while (next(&l) && (is(&l, "&") || is_name(&l)))
                ;
        skip_directives(&l);
        if (is(&l, "=")) { /* union A = B | C */
            next(&l);
            if (is(&l, "|"))
                next(&l);
            while (is_name(&l)) {
                json_array_append_new(values, json_string(l.tok));
                if (!next(&l) || !is(&l, "|") || !next(&l))
                    break;
            }
            l.held = l.tok[0] != 0;
            continue;
        }
        if (!is(&l, "{")) { /* scalar X, or a type without fields */
            l.held = l.tok[0] != 0;
            continue;
        }
        while (next(&l) && !is(&l, "}")) {
            if (!is_name(&l))
                return fail(&l, err, "expected a field name");
            char field[256];
            snprintf(field, sizeof field, "%s", l.tok);
            next(&l);
            if (strcmp(kind, "enum") == 0) {
                json_array_append_new(values, json_string(field));
                skip_directives(&l);
                l.held = true;
                continue;
            }
            if (is(&l, "(")) {
                skip_group(&l);
                next(&l);
            }
            if (!is(&l, ":") || !next(&l))
                return fail(&l, err, "expected ':' after a field name");
            char ref[256];
            if (!type_ref(&l, ref, sizeof ref))
                return fail(&l, err, "expected a type");
            if (is(&l, "=")) /* an input field's default value (a scalar) */
                next(&l), next(&l);
            skip_directives(&l);
            json_object_set_new(fields, field, json_string(ref));
            l.held = true;
        }
        if (!is(&l, "}"))
            return fail(&l, err, "unterminated '{'");
    }
    return 0;
}

static json_t *value_of(json_t *types, const char *ref, int depth)
{
    while (*ref == '!')
        ref++;
    if (*ref == '[') {
        char inner[256];
        size_t n = strlen(ref);
        while (n > 1 && ref[n - 1] == '!')
            n--;
        snprintf(inner, sizeof inner, "%.*s", (int)(n > 2 ? n - 2 : 0), ref + 1);
        json_t *v = value_of(types, inner, depth);
        return v ? json_pack("[o]", v) : json_array();
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(ref, "!"), ref);
    static const struct {
        const char *scalar, *value;
    } scalars[] = {
        {"Int", "$.fake.IntBetween(1,1000)"},
        {"Float", "$.fake.FloatRange(0,1000)"},
        {"Boolean", "$.fake.Bool"},
        {"ID", "$.fake.UUID"},
        {"String", "string"},
        {NULL, NULL},
    };
    for (size_t i = 0; scalars[i].scalar; i++)
        if (strcmp(name, scalars[i].scalar) == 0)
            return json_string(scalars[i].value);
    json_t *t = json_object_get(types, name);
    const char *kind = json_string_value(json_object_get(t, "kind"));
    if (kind == NULL || strcmp(kind, "scalar") == 0)
        return json_string("string");
    if (strcmp(kind, "enum") == 0)
        return json_incref(json_array_get(json_object_get(t, "values"), 0));
    if (strcmp(kind, "union") == 0) {
        const char *m = json_string_value(json_array_get(json_object_get(t, "values"), 0));
        return m && depth < GQL_DEPTH ? value_of(types, m, depth + 1) : json_null();
    }
    if (depth >= GQL_DEPTH)
        return json_null();
    json_t *out = json_object();
    const char *f;
    json_t *fr;
    json_object_foreach(json_object_get(t, "fields"), f, fr)
    {
        json_object_set_new(out, f, value_of(types, json_string_value(fr), depth + 1));
    }
    return out;
}

/* An introspection type reference ({"kind": "NON_NULL", "ofType": {...}}) as SDL text. */
static bool ref_text(json_t *t, char *out, size_t cap, int depth)
{
    const char *kind = json_string_value(json_object_get(t, "kind"));
    if (kind == NULL || depth > 16)
        return false;
    char inner[256];
    if (strcmp(kind, "NON_NULL") == 0 || strcmp(kind, "LIST") == 0) {
        if (!ref_text(json_object_get(t, "ofType"), inner, sizeof inner, depth + 1))
            return false;
        snprintf(out, cap, kind[0] == 'N' ? "%s!" : "[%s]", inner);
        return true;
    }
    const char *name = json_string_value(json_object_get(t, "name"));
    if (name == NULL)
        return false;
    snprintf(out, cap, "%s", name);
    return true;
}

/* The result of an introspection query ({"data": {"__schema": ...}} or {"__schema": ...}) read
 * into the same types and roots as an SDL. */
static int introspection(json_t *doc, json_t *types, json_t *roots, mk_err_t *err)
{
    json_t *schema = json_object_get(json_object_get(doc, "data"), "__schema");
    if (schema == NULL)
        schema = json_object_get(doc, "__schema");
    if (!json_is_object(schema))
        return mk_err_set(err, MK_EINVAL,
                          "spec: JSON that is not a GraphQL introspection result "
                          "(no __schema)");
    static const char *const roots_of[][2] = {{"query", "queryType"}, {"mutation", "mutationType"}};
    for (size_t i = 0; i < 2; i++) {
        const char *n =
            json_string_value(json_object_get(json_object_get(schema, roots_of[i][1]), "name"));
        if (n)
            json_object_set_new(roots, roots_of[i][0], json_string(n));
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(schema, "types"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *kind = json_string_value(json_object_get(t, "kind"));
        if (name == NULL || kind == NULL)
            continue;
        char lower[16];
        size_t k;
        for (k = 0; kind[k] && k + 1 < sizeof lower; k++)
            lower[k] = (char)tolower((unsigned char)kind[k]);
        lower[k] = 0;
        if (strcmp(lower, "object") == 0)
            snprintf(lower, sizeof lower, "type");
        json_t *fields = json_object(), *values = json_array();
        size_t j;
        json_t *f;
        json_array_foreach(json_object_get(t, "fields"), j, f)
        {
            char ref[256];
            const char *fn = json_string_value(json_object_get(f, "name"));
            if (fn && ref_text(json_object_get(f, "type"), ref, sizeof ref, 0))
                json_object_set_new(fields, fn, json_string(ref));
        }
        json_t *list = json_object_get(t, "enumValues");
        if (list == NULL)
            list = json_object_get(t, "possibleTypes");
        json_array_foreach(list, j, f)
        {
            const char *vn = json_string_value(json_object_get(f, "name"));
            if (vn)
                json_array_append_new(values, json_string(vn));
        }
        json_object_set_new(
            types, name,
            json_pack("{s:s, s:o, s:o}", "kind", lower, "fields", fields, "values", values));
    }
    return 0;
}

int mk_import_graphql(const char *sdl, size_t len, const mk_import_opts_t *o, mk_import_result_t *r,
                      mk_err_t *err)
{
    if (len > MK_IMPORT_MAX_BYTES)
        return mk_err_set(err, MK_ETOOBIG, "spec: %zu bytes, over the import limit of %u bytes",
                          len, MK_IMPORT_MAX_BYTES);
    json_t *types = json_object(), *roots = json_object();
    size_t at = 0;
    while (at < len && isspace((unsigned char)sdl[at]))
        at++;
    int rc;
    if (at < len && sdl[at] == '{') { /* an introspection result, not SDL */
        json_error_t jerr;
        json_t *doc = json_loadb(sdl, len, 0, &jerr);
        rc = doc ? introspection(doc, types, roots, err)
                 : mk_err_set(err, MK_EINVAL, "spec: invalid JSON at line %d column %d: %s",
                              jerr.line, jerr.column, jerr.text);
        json_decref(doc);
    } else {
        rc = parse(sdl, len, types, roots, err);
    }
    static const char *const ops[2][3] = {{"query", "Query", "^\\s*(?:query\\b[^{]*)?\\{\\s*"},
                                          {"mutation", "Mutation", "^\\s*mutation\\b[^{]*\\{\\s*"}};
    size_t made = 0;
    for (int k = 0; rc == 0 && k < 2; k++) {
        const char *root = json_string_value(json_object_get(roots, ops[k][0]));
        json_t *t = json_object_get(types, root ? root : ops[k][1]);
        const char *f;
        json_t *fr;
        json_object_foreach(json_object_get(t, "fields"), f, fr)
        {
            char key[300], re[400];
            snprintf(key, sizeof key, "%s.%s", ops[k][1], f);
            /* The first selected field, after an optional alias. */
            snprintf(re, sizeof re, "%s(?:\\w+\\s*:\\s*)?%s\\b", ops[k][2], f);
            json_t *mock = mk_imp_mock_new(o, "gql", key, "POST", "/graphql");
            mk_imp_cond(mock, "conditions", "$.query", "matches", json_string(re));
            json_t *data = json_object();
            json_object_set_new(data, f, value_of(types, json_string_value(fr), 1));
            json_object_set_new(
                mock, "response",
                json_pack("{s:i, s:{s:o}}", "statusCode", 200, "payload", "data", data));
            if ((rc = mk_imp_push(r, mock, err)) != 0)
                break;
            made++;
        }
    }
    if (rc == 0 && made == 0)
        rc = mk_err_set(err, MK_EINVAL, "spec: no Query or Mutation type with fields in the SDL");
    json_decref(types);
    json_decref(roots);
    return rc;
}
