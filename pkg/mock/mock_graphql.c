/* The `graphql` context of a mock and its responses' `graphqlErrors`. */
#include "mock/mock_graphql.h"
#include "mock/mock_internal.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const mk_mock_graphql_operations[3] = {"query", "mutation", "subscription"};

bool mk_mock_graphql_is(const json_t *def)
{
    const json_t *g = json_object_get(def, "graphql");
    const json_t *route = json_object_get(json_object_get(def, "http"), "route");
    if (json_is_string(route) && json_string_length(route) > 0)
        return false;
    return json_is_object(g) && json_object_size(g) > 0;
}

void mk_mock_graphql_free(mk_mock_graphql_t *g)
{
    if (g == NULL)
        return;
    free(g->field);
    free(g->endpoint);
    for (size_t i = 0; i < g->nerrors; i++) {
        mk_template_free(g->errors[i]);
        for (size_t k = 0; g->streams && k < g->streams[i].nevents; k++)
            mk_template_free(g->streams[i].events[k].data);
        free(g->streams ? g->streams[i].events : NULL);
    }
    free(g->errors);
    free(g->streams);
    free(g);
}

bool mk_mock_graphql_route(char *buf, size_t size, mk_str_t endpoint, int operation,
                           const char *field)
{
    size_t el = endpoint.len;
    while (el > 0 && endpoint.base[el - 1] == '/')
        el--; /* "/" itself too: the route of endpoint "/" is "/query/<field>" */
    int n = snprintf(buf, size, "%.*s/%s/%s", (int)el, endpoint.base,
                     mk_mock_graphql_operations[operation], field);
    return n > 0 && (size_t)n < size;
}

/* A GraphQL Name: [_A-Za-z][_0-9A-Za-z]*. */
static bool gql_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 128 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/* A condition on the variables: the variables object is the condition's body, so "$.id" reads
 * variables.id; Mockarty's spellings "$.variables.id" and "$.body.variables.id" (the request
 * body as a template reads it) are accepted and read the same. */
static json_t *variables_cond(const json_t *def)
{
    static const char *const prefixes[] = {"$.body.variables", "$.variables"};
    return mk_mock_cond_unprefix(def, prefixes, 2);
}

/* One response's graphqlErrors: an array of {message, locations, path, extensions}, kept as a
 * JSON template (messages and extensions may hold placeholders). */
static int compile_errors(const json_t *list, const char *field, mk_template_t **out, mk_err_t *err)
{
    *out = NULL;
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL, "%s.graphqlErrors: must be an array", field);
    if (json_array_size(list) == 0)
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!json_is_object(e))
            return mk_err_set(err, MK_EINVAL, "%s.graphqlErrors[%zu]: must be an object", field, i);
        json_t *msg = json_object_get(e, "message");
        if (!json_is_string(msg))
            return mk_err_set(err, MK_EINVAL, "%s.graphqlErrors[%zu].message: required string",
                              field, i);
        json_t *locs = json_object_get(e, "locations"), *path = json_object_get(e, "path");
        json_t *ext = json_object_get(e, "extensions");
        if (locs && !json_is_null(locs)) {
            if (!json_is_array(locs))
                return mk_err_set(err, MK_EINVAL,
                                  "%s.graphqlErrors[%zu].locations: must be an array", field, i);
            size_t k;
            json_t *l;
            json_array_foreach(locs, k, l)
            {
                if (!json_is_integer(json_object_get(l, "line")) ||
                    !json_is_integer(json_object_get(l, "column")))
                    return mk_err_set(err, MK_EINVAL,
                                      "%s.graphqlErrors[%zu].locations[%zu]: must be {line, "
                                      "column} integers",
                                      field, i, k);
            }
        }
        if (path && !json_is_null(path) && !json_is_array(path))
            return mk_err_set(err, MK_EINVAL, "%s.graphqlErrors[%zu].path: must be an array", field,
                              i);
        if (ext && !json_is_null(ext) && !json_is_object(ext))
            return mk_err_set(err, MK_EINVAL, "%s.graphqlErrors[%zu].extensions: must be an object",
                              field, i);
    }
    char where[96];
    snprintf(where, sizeof where, "%s.graphqlErrors", field);
    return mk_template_compile_json(list, where, out, err);
}

/* One response's sseEventChain.events: {data, delay} each, data a JSON template. */
static int compile_stream(const json_t *resp, const char *field, mk_mock_graphql_stream_t *st,
                          bool *uses_store, mk_err_t *err)
{
    const json_t *chain = json_object_get(resp, "sseEventChain");
    if (chain == NULL || json_is_null(chain))
        return 0;
    if (!json_is_object(chain))
        return mk_err_set(err, MK_EINVAL, "%s.sseEventChain: must be an object", field);
    const json_t *events = json_object_get(chain, "events");
    if (events && !json_is_null(events) && !json_is_array(events))
        return mk_err_set(err, MK_EINVAL, "%s.sseEventChain.events: must be an array", field);
    size_t n = json_array_size(events);
    if (n > MK_MOCK_GRAPHQL_MAX_EVENTS)
        return mk_err_set(err, MK_EINVAL, "%s.sseEventChain.events: at most %d events", field,
                          MK_MOCK_GRAPHQL_MAX_EVENTS);
    if (n > 0 && (st->events = calloc(n, sizeof *st->events)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(events, i);
        char where[128];
        snprintf(where, sizeof where, "%s.sseEventChain.events[%zu]", field, i);
        if (!json_is_object(ev))
            return mk_err_set(err, MK_EINVAL, "%s: must be an object", where);
        const json_t *d = json_object_get(ev, "delay");
        if (d && !json_is_null(d) &&
            (!json_is_integer(d) || json_integer_value(d) < 0 ||
             json_integer_value(d) > MK_MOCK_MAX_DELAY_MS))
            return mk_err_set(err, MK_EINVAL, "%s.delay: must be an integer from 0 to %d", where,
                              MK_MOCK_MAX_DELAY_MS);
        st->nevents = i + 1;
        st->events[i].delay_ms = json_is_integer(d) ? (uint32_t)json_integer_value(d) : 0;
        const json_t *data = json_object_get(ev, "data");
        if (data == NULL || json_is_null(data))
            continue;
        snprintf(where + strlen(where), sizeof where - strlen(where), ".data");
        int rc = mk_template_compile_json(data, where, &st->events[i].data, err);
        if (rc)
            return rc;
        *uses_store = *uses_store || mk_template_uses_store(st->events[i].data);
    }
    return 0;
}

static int compile_all_errors(mk_mock_graphql_t *g, const json_t *def, bool *uses_store,
                              mk_err_t *err)
{
    json_t *resp = json_object_get(def, "response");
    json_t *list = json_object_get(json_object_get(def, "oneOf"), "responses");
    size_t n = json_is_array(list) && json_array_size(list) ? json_array_size(list) : 1;
    g->errors = calloc(n, sizeof *g->errors);
    g->streams = calloc(n, sizeof *g->streams);
    if (g->errors == NULL || g->streams == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    g->nerrors = n;
    for (size_t i = 0; i < n; i++) {
        char field[48];
        const json_t *r = resp;
        snprintf(field, sizeof field, "response");
        if (json_is_array(list) && json_array_size(list)) {
            r = json_array_get(list, i);
            snprintf(field, sizeof field, "oneOf.responses[%zu]", i);
        }
        int rc = compile_errors(json_object_get(r, "graphqlErrors"), field, &g->errors[i], err);
        if (rc == 0)
            rc = compile_stream(r, field, &g->streams[i], uses_store, err);
        if (rc)
            return rc;
        /* Its store reads make the answer wait for Redis like the payload's (serve_graphql.c). */
        *uses_store = *uses_store || (g->errors[i] && mk_template_uses_store(g->errors[i]));
    }
    return 0;
}

int mk_mock_graphql_compile(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    json_t *gj = json_object_get(def, "graphql");
    if (!json_is_object(gj))
        return mk_err_set(err, MK_EINVAL, "graphql: must be an object");
    const char *op, *field, *type, *path, *prefix;
    int rc = mk_mock_get_string(gj, "operation", "graphql.operation", false, &op, err);
    if (rc == 0)
        rc = mk_mock_get_string(gj, "field", "graphql.field", false, &field, err);
    if (rc == 0)
        rc = mk_mock_get_string(gj, "type", "graphql.type", false, &type, err);
    if (rc == 0)
        rc = mk_mock_get_string(gj, "path", "graphql.path", false, &path, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "pathPrefix", "pathPrefix", false, &prefix, err);
    if (rc)
        return rc;
    if (field == NULL || field[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "graphql.field: required (the top-level field answered)");
    if (!gql_name(field))
        return mk_err_set(err, MK_EINVAL, "graphql.field: '%.64s' is not a GraphQL name", field);
    if (type && type[0] && !gql_name(type))
        return mk_err_set(err, MK_EINVAL, "graphql.type: '%.64s' is not a GraphQL name", type);
    int kind = 0;
    if (op && op[0]) {
        while (kind < 3 && strcasecmp(op, mk_mock_graphql_operations[kind]) != 0)
            kind++;
        if (kind == 3)
            return mk_err_set(err, MK_EINVAL,
                              "graphql.operation: unknown '%.32s' (query, mutation or "
                              "subscription)",
                              op);
    }
    if (path == NULL || path[0] == '\0')
        path = MK_MOCK_GRAPHQL_DEFAULT_PATH;
    if (path[0] != '/')
        return mk_err_set(err, MK_EINVAL, "graphql.path: must start with '/'");
    if (prefix && prefix[0] && prefix[0] != '/')
        return mk_err_set(err, MK_EINVAL, "pathPrefix: must start with '/'");
    mk_mock_graphql_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->graphql = g;
    g->operation = kind;
    size_t pl = prefix ? strlen(prefix) : 0;
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    size_t plen = strlen(path);
    while (plen > 1 && path[plen - 1] == '/')
        plen--;
    g->endpoint = malloc(pl + plen + 1);
    g->field = strdup(field);
    if (g->endpoint == NULL || g->field == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (pl)
        memcpy(g->endpoint, prefix, pl);
    memcpy(g->endpoint + pl, path, plen);
    g->endpoint[pl + plen] = '\0';
    mk_err_t rerr;
    if (mk_route_validate(g->endpoint, &rerr) != 0)
        return mk_err_set(err, MK_EINVAL, "graphql.path: %s", rerr.msg);
    size_t rl = strlen(g->endpoint) + strlen(field) + 16;
    m->route = malloc(rl);
    if (m->route == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_mock_graphql_route(m->route, rl, mk_str_of(g->endpoint), kind, field);
    m->method = (char *)MK_MOCK_GRAPHQL_METHOD;
    rc = mk_mock_compile_conds(m, gj, "graphql", "conditions", MK_COND_BODY, variables_cond, err);
    if (rc == 0)
        rc = mk_mock_compile_conds(m, gj, "graphql", "header", MK_COND_HEADER, NULL, err);
    if (rc == 0)
        rc = compile_all_errors(g, def, &m->uses_store, err);
    return rc;
}
