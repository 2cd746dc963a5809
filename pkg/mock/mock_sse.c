/* SSE mocks: the `sse` context becomes an HTTP route and conditions, `response.sseEventChain` a
 * compiled chain; plus the chain's schedule and the event wire format (see mock_sse.h). */
#include "mock/mock_sse.h"
#include "mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Go SDK sends every context, empty ones as {} (its structs are not omitted): an `http` or
 * `sse` counts only when it says where it is served. */
static bool has_string(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) && json_string_length(v) > 0;
}

bool mk_mock_sse_is(const json_t *def)
{
    const json_t *sse = json_object_get(def, "sse");
    if (!json_is_object(sse) || json_object_size(sse) == 0)
        return false;
    /* A non-empty sse without a path, and no HTTP route: an SSE mock missing its eventPath. */
    return has_string(sse, "eventPath") || !has_string(json_object_get(def, "http"), "route");
}

/* Reads def[key] as an integer in [min, max] (absent: def_v) into *out. */
static int get_uint(const json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                    int64_t def_v, int64_t *out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def_v;
        return 0;
    }
    if (!json_is_integer(v))
        return mk_err_set(err, MK_EINVAL, "%s.%s: must be an integer", field, key);
    int64_t n = json_integer_value(v);
    if (n < min || n > max)
        return mk_err_set(err, MK_EINVAL, "%s.%s: must be between %lld and %lld (got %lld)", field,
                          key, (long long)min, (long long)max, (long long)n);
    *out = n;
    return 0;
}

/* Reads def[key] as an optional string; "" counts as absent. */
static int get_str(const json_t *obj, const char *key, const char *field, char **out, mk_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return mk_err_set(err, MK_EINVAL, "%s.%s: must be a string", field, key);
    if (json_string_length(v) == 0)
        return 0;
    if (json_string_length(v) > 1024)
        return mk_err_set(err, MK_EINVAL, "%s.%s: longer than 1024 bytes", field, key);
    *out = strdup(json_string_value(v));
    return *out ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static void event_clear(mk_mock_sse_event_t *e)
{
    free(e->name);
    free(e->id);
    free(e->data);
    mk_template_free(e->tpl);
}

void mk_mock_sse_free(mk_mock_sse_t *sse)
{
    if (sse == NULL)
        return;
    for (size_t i = 0; i < sse->nevents; i++)
        event_clear(&sse->events[i]);
    free(sse->events);
    free(sse);
}

/* The data as text (a string as is, other JSON compact) and its template when it has
 * placeholders. Templates here see the request and fakers; stores are not offered to streams. */
static int compile_data(const json_t *data, const char *field, mk_mock_sse_event_t *e,
                        mk_err_t *err)
{
    if (data == NULL || json_is_null(data)) {
        e->data = strdup("");
        return e->data ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    char where[160];
    snprintf(where, sizeof where, "%s.data", field);
    int rc;
    if (json_is_string(data)) {
        e->data_len = json_string_length(data);
        e->data = malloc(e->data_len + 1);
        if (e->data == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        memcpy(e->data, json_string_value(data), e->data_len + 1);
        rc = mk_template_compile_text((mk_str_t){e->data, e->data_len}, where, &e->tpl, err);
    } else {
        e->data = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (e->data == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        e->data_len = strlen(e->data);
        rc = mk_template_compile_json(data, where, &e->tpl, err);
    }
    if (rc != 0)
        return rc;
    if (e->data_len > MK_MOCK_SSE_MAX_DATA_BYTES)
        return mk_err_set(err, MK_EINVAL, "%s: longer than %d bytes", where,
                          MK_MOCK_SSE_MAX_DATA_BYTES);
    if (mk_template_is_static(e->tpl)) {
        mk_template_free(e->tpl);
        e->tpl = NULL;
    } else if (mk_template_uses_store(e->tpl)) {
        return mk_err_set(err, MK_EINVAL,
                          "%s: stores ($.gS, $.cS, $.mS, $.increment) are not available in SSE "
                          "event data",
                          where);
    }
    return 0;
}

static int compile_event(const json_t *def, const char *field, const char *default_name,
                         mk_mock_sse_event_t *e, mk_err_t *err)
{
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
    const char *tpath = json_string_value(json_object_get(def, "templatePath"));
    if (tpath && tpath[0])
        return mk_err_set(err, MK_EINVAL,
                          "%s.templatePath: not supported; put the template in data", field);
    int64_t delay = 0, retry = 0;
    int rc = get_str(def, "eventName", field, &e->name, err);
    if (rc == 0)
        rc = get_str(def, "id", field, &e->id, err);
    if (rc == 0)
        rc = get_uint(def, "delay", field, 0, MK_MOCK_MAX_DELAY_MS, 0, &delay, err);
    if (rc == 0)
        rc = get_uint(def, "retry", field, 0, 86400000, 0, &retry, err);
    if (rc == 0)
        rc = compile_data(json_object_get(def, "data"), field, e, err);
    if (rc != 0)
        return rc;
    e->delay_ms = (uint32_t)delay;
    e->retry_ms = (uint32_t)retry;
    if (e->name == NULL && default_name != NULL && (e->name = strdup(default_name)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    return 0;
}

static int compile_chain(const json_t *def, const char *default_name, mk_mock_sse_t *sse,
                         mk_err_t *err)
{
    const char *field = "response.sseEventChain";
    const json_t *resp = json_object_get(def, "response");
    /* Go SDK mocks carry "oneOf": {}; any other oneOf beside the response fails in mock.c */
    if (json_object_get(json_object_get(def, "oneOf"), "responses") != NULL)
        return mk_err_set(err, MK_EINVAL, "oneOf: an SSE mock answers with one response");
    const json_t *chain = json_object_get(resp, "sseEventChain");
    if (chain == NULL || json_is_null(chain))
        return mk_err_set(err, MK_EINVAL, "%s: required for an SSE mock", field);
    if (!json_is_object(chain))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
    const json_t *events = json_object_get(chain, "events");
    if (!json_is_array(events) || json_array_size(events) == 0)
        return mk_err_set(err, MK_EINVAL, "%s.events: must be a non-empty array", field);
    if (json_array_size(events) > MK_MOCK_SSE_MAX_EVENTS)
        return mk_err_set(err, MK_EINVAL, "%s.events: more than %d events", field,
                          MK_MOCK_SSE_MAX_EVENTS);
    int64_t loop_delay = 0, max_loops = 0, max_time = 0, heartbeat = 0;
    const json_t *loop = json_object_get(chain, "loop");
    if (loop && !json_is_boolean(loop) && !json_is_null(loop))
        return mk_err_set(err, MK_EINVAL, "%s.loop: must be a boolean", field);
    sse->loop = json_is_true(loop);
    int rc = get_uint(chain, "loopDelay", field, 0, MK_MOCK_MAX_DELAY_MS, 0, &loop_delay, err);
    if (rc == 0)
        rc = get_uint(chain, "maxLoops", field, 0, UINT32_MAX, MK_MOCK_SSE_DEFAULT_MAX_LOOPS,
                      &max_loops, err);
    if (rc == 0)
        rc = get_uint(chain, "maxTime", field, 0, MK_MOCK_SSE_MAX_TIME, 0, &max_time, err);
    if (rc == 0)
        rc = get_uint(chain, "heartbeat", field, 0, 3600000, 0, &heartbeat, err);
    if (rc == 0) {
        int64_t lb;
        rc = get_uint(chain, "logBatch", field, 0, 100000, 0, &lb, err); /* accepted, unused */
    }
    if (rc != 0)
        return rc;
    sse->loop_delay_ms =
        (uint32_t)(loop_delay < MK_MOCK_SSE_MIN_LOOP_DELAY ? MK_MOCK_SSE_MIN_LOOP_DELAY
                                                           : loop_delay);
    sse->max_loops = (uint32_t)max_loops;
    sse->max_time_ms = (uint32_t)(max_time ? max_time : MK_MOCK_SSE_DEFAULT_MAX_TIME) * 1000u;
    sse->heartbeat_ms =
        (uint32_t)(heartbeat && heartbeat < MK_MOCK_SSE_MIN_HEARTBEAT ? MK_MOCK_SSE_MIN_HEARTBEAT
                                                                      : heartbeat);
    size_t n = json_array_size(events);
    sse->events = calloc(n, sizeof *sse->events);
    if (sse->events == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char ef[96];
        snprintf(ef, sizeof ef, "%s.events[%zu]", field, i);
        sse->nevents = i + 1;
        rc = compile_event(json_array_get(events, i), ef, default_name, &sse->events[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* compile_http's messages name `http` fields; say which `sse` field the user wrote instead. */
static void rename_fields(mk_err_t *err)
{
    static const char *const map[][2] = {{"http.route", "sse.eventPath"},
                                         {"http.conditions", "sse.conditions"},
                                         {"http.header", "sse.headerConditions"}};
    if (err == NULL)
        return;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        size_t n = strlen(map[i][0]);
        if (strncmp(err->msg, map[i][0], n) == 0) {
            char rest[sizeof err->msg];
            snprintf(rest, sizeof rest, "%s", err->msg + n);
            snprintf(err->msg, sizeof err->msg, "%s%s", map[i][1], rest);
            return;
        }
    }
}

int mk_mock_sse_compile(struct mk_mock *m, const json_t *def, mk_mock_sse_http_fn compile_http,
                        mk_err_t *err)
{
    const json_t *ctx = json_object_get(def, "sse");
    if (has_string(json_object_get(def, "http"), "route"))
        return mk_err_set(err, MK_EINVAL, "http and sse: a mock has one of them");
    const json_t *path = json_object_get(ctx, "eventPath");
    if (!json_is_string(path) || json_string_length(path) == 0)
        return mk_err_set(err, MK_EINVAL, "sse.eventPath: required (the stream's path)");
    const char *name = json_string_value(json_object_get(ctx, "eventName"));
    /* The route and conditions are an HTTP GET mock's: compile them as one. */
    json_t *copy = json_copy((json_t *)def);
    json_t *as_http = json_pack("{s:O, s:s}", "route", path, "httpMethod", "GET");
    const json_t *conds = json_object_get(ctx, "conditions");
    const json_t *hconds = json_object_get(ctx, "headerConditions");
    bool ok = copy && as_http;
    if (ok && conds)
        ok = json_object_set(as_http, "conditions", (json_t *)conds) == 0;
    if (ok && hconds)
        ok = json_object_set(as_http, "header", (json_t *)hconds) == 0;
    ok = ok && json_object_del(copy, "sse") == 0 && json_object_set(copy, "http", as_http) == 0;
    int rc = ok ? compile_http(m, copy, err) : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (ok && rc != 0)
        rename_fields(err);
    json_decref(as_http);
    json_decref(copy);
    if (rc != 0)
        return rc;
    mk_mock_sse_t *sse = calloc(1, sizeof *sse);
    if (sse == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    rc = compile_chain(def, name && name[0] ? name : NULL, sse, err);
    if (rc != 0) {
        mk_mock_sse_free(sse);
        return rc;
    }
    m->sse = sse;
    return 0;
}

bool mk_mock_sse_start(const mk_mock_sse_t *sse, mk_str_t last_id, mk_mock_sse_cursor_t *c)
{
    *c = (mk_mock_sse_cursor_t){.next = 0, .pass = 1};
    if (last_id.len == 0)
        return true;
    for (size_t i = 0; i < sse->nevents; i++) {
        const char *id = sse->events[i].id;
        if (id && strlen(id) == last_id.len && memcmp(id, last_id.base, last_id.len) == 0) {
            c->next = i + 1;
            return c->next < sse->nevents || sse->loop;
        }
    }
    return true;
}

const mk_mock_sse_event_t *mk_mock_sse_next(const mk_mock_sse_t *sse, mk_mock_sse_cursor_t *c,
                                            uint32_t *wait_ms)
{
    uint32_t extra = 0;
    if (c->done)
        return NULL;
    if (c->next >= sse->nevents) {
        if (!sse->loop || (sse->max_loops && c->pass >= sse->max_loops)) {
            c->done = true;
            return NULL;
        }
        c->pass++;
        c->next = 0;
        extra = sse->loop_delay_ms;
    }
    const mk_mock_sse_event_t *e = &sse->events[c->next++];
    *wait_ms = extra + e->delay_ms;
    return e;
}

/* A field's value on one line: CR and LF would end it early. */
static int put_field(mk_buf_t *out, const char *name, const char *value)
{
    int rc = mk_buf_append(out, name, strlen(name));
    size_t at = out->len;
    if (rc == 0)
        rc = mk_buf_append(out, value, strlen(value));
    for (size_t i = at; rc == 0 && i < out->len; i++)
        if (out->data[i] == '\r' || out->data[i] == '\n')
            out->data[i] = ' ';
    return rc == 0 ? mk_buf_append(out, "\n", 1) : rc;
}

int mk_mock_sse_format(mk_buf_t *out, const mk_mock_sse_event_t *e, mk_str_t data)
{
    int rc = 0;
    if (e->id)
        rc = put_field(out, "id: ", e->id);
    if (rc == 0 && e->name)
        rc = put_field(out, "event: ", e->name);
    if (rc == 0 && e->retry_ms)
        rc = mk_buf_appendf(out, "retry: %u\n", e->retry_ms);
    size_t i = 0;
    do {
        size_t start = i;
        while (i < data.len && data.base[i] != '\r' && data.base[i] != '\n')
            i++;
        if (rc == 0)
            rc = mk_buf_append(out, "data: ", 6);
        if (rc == 0 && i > start)
            rc = mk_buf_append(out, data.base + start, i - start);
        if (rc == 0)
            rc = mk_buf_append(out, "\n", 1);
        if (i < data.len && data.base[i] == '\r' && i + 1 < data.len && data.base[i + 1] == '\n')
            i++;
        if (i < data.len)
            i++; /* past the line break; a break at the very end leaves an empty last line */
        else
            break;
    } while (rc == 0);
    return rc == 0 ? mk_buf_append(out, "\n", 1) : rc;
}
