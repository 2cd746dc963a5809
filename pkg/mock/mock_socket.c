/* WebSocket mock definitions: the `socket` context and the answer fields, validated and compiled
 * once (see mock_socket.h). */
#include "mock/mock_socket.h"
#include "mock/mock_internal.h"

#include "cond/cond.h"
#include "mock/mock.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request context in use: anything but absent, null or an empty object. (Mockarty's Go SDK
 * sends every context of dto.Mock, the unused ones as {}.) */
static bool has_content(const json_t *def, const char *key)
{
    const json_t *v = json_object_get(def, key);
    return v != NULL && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0);
}

bool mk_mock_socket_is(const json_t *def)
{
    static const char *const others[] = {"http", "grpc", "graphql", "soap", "sse"};
    const json_t *s = json_object_get(def, "socket");
    if (s == NULL || json_is_null(s))
        return false;
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        if (has_content(def, others[i]))
            return false;
    return true;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t mk_mock_socket_route(mk_str_t endpoint, mk_str_t key, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    if (endpoint.len == 1 && endpoint.base[0] == '/')
        endpoint.len = 0; /* the root endpoint: "/<key>" */
    if (endpoint.len + 1 + 3 * key.len + 1 > cap)
        return 0;
    size_t k = 0;
    memcpy(buf, endpoint.base, endpoint.len);
    k = endpoint.len;
    buf[k++] = '/';
    for (size_t i = 0; i < key.len; i++) {
        unsigned char c = (unsigned char)key.base[i];
        if (unreserved(c)) {
            buf[k++] = (char)c;
        } else {
            buf[k++] = '%';
            buf[k++] = hex[c >> 4];
            buf[k++] = hex[c & 15];
        }
    }
    buf[k] = '\0';
    return k;
}

bool mk_mock_socket_key(const json_t *json, mk_str_t text, bool is_text, mk_str_t *key)
{
    const json_t *ev = json_is_object(json) ? json_object_get(json, "event") : NULL;
    if (json_is_string(ev))
        *key = (mk_str_t){json_string_value(ev), json_string_length(ev)};
    else if (is_text)
        *key = text;
    else
        return false;
    return key->len <= MK_MOCK_SOCKET_MAX_EVENT;
}

static void msg_clear(mk_mock_socket_msg_t *msg)
{
    free(msg->text);
    mk_template_free(msg->tpl);
}

void mk_mock_socket_free(mk_mock_socket_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nreplies; i++) {
        mk_mock_socket_reply_t *r = &s->replies[i];
        for (size_t j = 0; j < r->nchain; j++)
            msg_clear(&r->chain[j]);
        free(r->chain);
        free(r->close_reason);
    }
    free(s->replies);
    free(s->endpoint);
    free(s->event);
    free(s->server_name);
    free(s);
}

static int opt_int(const json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                   int64_t *out, mk_err_t *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mk_err_set(err, MK_EINVAL, "%s: must be an integer from %lld to %lld", field,
                          (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

/* One chain message: data (any JSON; a string is sent as it is), wrapped as
 * {"event": eventName, "data": data} when eventName is given. */
static int compile_msg(const json_t *ev, const char *field, mk_mock_socket_msg_t *msg,
                       mk_err_t *err)
{
    if (!json_is_object(ev))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
    char sub[256]; /* field (at most 199) and a suffix */
    int64_t delay;
    snprintf(sub, sizeof sub, "%s.delay", field);
    int rc = opt_int(ev, "delay", sub, 0, MK_MOCK_MAX_DELAY_MS, &delay, err);
    const char *name;
    snprintf(sub, sizeof sub, "%s.eventName", field);
    if (rc == 0)
        rc = mk_mock_get_string(ev, "eventName", sub, false, &name, err);
    if (rc)
        return rc;
    msg->delay_ms = (uint32_t)delay;
    json_t *data = json_object_get(ev, "data");
    json_t *owned = NULL;
    if (name && name[0]) {
        owned = json_pack("{s:s, s:O}", "event", name, "data", data ? data : json_null());
        data = owned;
    }
    snprintf(sub, sizeof sub, "%s.data", field);
    if (data == NULL) {
        msg->text = strdup("");
    } else if (json_is_string(data)) {
        rc = mk_template_compile_text((mk_str_t){json_string_value(data), json_string_length(data)},
                                      sub, &msg->tpl, err);
        msg->len = json_string_length(data);
        msg->text = rc == 0 ? strndup(json_string_value(data), msg->len) : NULL;
    } else {
        rc = mk_template_compile_json(data, sub, &msg->tpl, err);
        msg->text = rc == 0 ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    }
    json_decref(owned);
    if (rc)
        return rc;
    if (msg->text == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    /* serve_ws.c renders messages without stores (mock_stores.c refuses the other fields). */
    if (msg->tpl && mk_template_uses_store(msg->tpl))
        return mk_err_set(err, MK_EINVAL,
                          "%s: stores ($.gS, $.cS, $.mS, $.increment, extract) are not available "
                          "in WebSocket mocks",
                          sub);
    if (msg->tpl && mk_template_is_static(msg->tpl)) {
        mk_str_t lit = mk_template_literal(msg->tpl);
        char *copy = malloc(lit.len + 1);
        if (copy == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        memcpy(copy, lit.base, lit.len);
        copy[lit.len] = '\0';
        free(msg->text);
        msg->text = copy;
        msg->len = lit.len;
        mk_template_free(msg->tpl);
        msg->tpl = NULL;
    } else if (msg->tpl == NULL) {
        msg->len = strlen(msg->text);
    }
    return 0;
}

/* Close codes an endpoint may send (RFC 6455 7.4): not 1004-1006 or 1015, which are reserved. */
static bool sendable_code(int64_t c)
{
    return (c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006) ||
           (c >= 3000 && c <= 4999);
}

static int compile_reply(const json_t *resp, const char *field, mk_mock_socket_reply_t *r,
                         mk_err_t *err)
{
    if (!json_is_object(resp))
        return 0; /* mock.c reports it */
    char sub[160];
    const json_t *payload = json_object_get(resp, "payload");
    r->has_payload = payload != NULL && !json_is_null(payload);
    int64_t code;
    snprintf(sub, sizeof sub, "%s.closeCode", field);
    int rc = opt_int(resp, "closeCode", sub, 0, 4999, &code, err);
    if (rc)
        return rc;
    if (code != 0 && !sendable_code(code))
        return mk_err_set(err, MK_EINVAL,
                          "%s: %lld is not a close code a server may send (1000-1003, "
                          "1007-1014, 3000-4999)",
                          sub, (long long)code);
    r->close_code = (uint16_t)code;
    const char *reason;
    snprintf(sub, sizeof sub, "%s.error", field);
    rc = mk_mock_get_string(resp, "error", sub, false, &reason, err);
    if (rc)
        return rc;
    if (reason && reason[0] && (r->close_reason = strndup(reason, 123)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");

    const json_t *chain = json_object_get(resp, "sseEventChain");
    if (chain == NULL || json_is_null(chain))
        return 0;
    snprintf(sub, sizeof sub, "%s.sseEventChain", field);
    if (!json_is_object(chain))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object", sub);
    const json_t *events = json_object_get(chain, "events");
    if (events && !json_is_null(events) && !json_is_array(events))
        return mk_err_set(err, MK_EINVAL, "%s.events: must be an array", sub);
    size_t n = json_array_size(events);
    if (n > MK_MOCK_SOCKET_MAX_CHAIN)
        return mk_err_set(err, MK_EINVAL, "%s.events: at most %d messages", sub,
                          MK_MOCK_SOCKET_MAX_CHAIN);
    if (n > 0 && (r->chain = calloc(n, sizeof *r->chain)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char f[200];
        snprintf(f, sizeof f, "%s.events[%zu]", sub, i);
        r->nchain = i + 1;
        rc = compile_msg(json_array_get(events, i), f, &r->chain[i], err);
        if (rc)
            return rc;
    }
    const json_t *loop = json_object_get(chain, "loop");
    if (loop && !json_is_null(loop) && !json_is_boolean(loop))
        return mk_err_set(err, MK_EINVAL, "%s.loop: must be true or false", sub);
    r->loop = json_is_true(loop);
    int64_t v;
    char f[200];
    snprintf(f, sizeof f, "%s.loopDelay", sub);
    rc = opt_int(chain, "loopDelay", f, 0, MK_MOCK_MAX_DELAY_MS, &v, err);
    r->loop_delay_ms = (uint32_t)v;
    snprintf(f, sizeof f, "%s.maxLoops", sub);
    if (rc == 0)
        rc = opt_int(chain, "maxLoops", f, 0, 1000000000, &v, err);
    r->max_loops = (uint32_t)v;
    if (rc)
        return rc;
    /* A loop must take time, or one connection would spin its worker. */
    uint64_t period = r->loop_delay_ms;
    for (size_t i = 0; i < r->nchain; i++)
        period += r->chain[i].delay_ms;
    if (r->loop && period < 10)
        return mk_err_set(
            err, MK_EINVAL,
            "%s: a looping chain needs loopDelay plus its delays to be at least 10 ms", sub);
    return 0;
}

static int compile_replies(mk_mock_socket_t *s, const json_t *def, mk_err_t *err)
{
    const json_t *oneof = json_object_get(def, "oneOf");
    const json_t *list = oneof && !json_is_null(oneof) ? json_object_get(oneof, "responses") : NULL;
    size_t n = list ? json_array_size(list) : 1;
    if (n == 0)
        return 0; /* mock.c reports it */
    s->replies = calloc(n, sizeof *s->replies);
    if (s->replies == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    s->nreplies = n;
    for (size_t i = 0; i < n; i++) {
        char field[64];
        if (list)
            snprintf(field, sizeof field, "oneOf.responses[%zu]", i);
        else
            snprintf(field, sizeof field, "response");
        int rc = compile_reply(list ? json_array_get(list, i) : json_object_get(def, "response"),
                               field, &s->replies[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

/* "$.body.x" (the form Mockarty's examples use for message fields) reads "$.x". */
static json_t *cond_def(const json_t *def)
{
    static const char *const body[] = {"$.body"};
    return mk_mock_cond_unprefix(def, body, 1);
}

/* pathPrefix + socket.namespace, checked to be a plain path (no parameters or wildcard). */
static int compile_endpoint(mk_mock_socket_t *s, const json_t *def, const json_t *sock,
                            mk_err_t *err)
{
    const char *prefix, *path;
    int rc = mk_mock_get_string(def, "pathPrefix", "pathPrefix", false, &prefix, err);
    if (rc == 0)
        rc = mk_mock_get_string(sock, "namespace", "socket.namespace", false, &path, err);
    if (rc)
        return rc;
    if (path == NULL || path[0] == '\0')
        path = "/ws";
    if (path[0] != '/')
        return mk_err_set(err, MK_EINVAL, "socket.namespace: must start with '/' (\"/ws\")");
    if (prefix && prefix[0] && prefix[0] != '/')
        return mk_err_set(err, MK_EINVAL, "pathPrefix: must start with '/'");
    size_t pl = prefix ? strlen(prefix) : 0;
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    size_t nl = strlen(path);
    while (nl > 1 && path[nl - 1] == '/')
        nl--;
    if (pl + nl > 512)
        return mk_err_set(err, MK_EINVAL, "socket.namespace: longer than 512 bytes");
    s->endpoint = malloc(pl + nl + 1);
    if (s->endpoint == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    memcpy(s->endpoint, prefix ? prefix : "", pl);
    memcpy(s->endpoint + pl, path, nl);
    s->endpoint[pl + nl] = '\0';
    if (pl > 0 && nl == 1) /* "/ws-prefix" + "/" */
        s->endpoint[pl] = '\0';
    for (const char *p = s->endpoint; *p; p++) {
        if ((p[0] == '/' && (p[1] == ':' || p[1] == '*')) || p[0] == '?' || p[0] == '#')
            return mk_err_set(err, MK_EINVAL,
                              "socket.namespace: '%s' must be a plain path (no :parameter, * or "
                              "query)",
                              s->endpoint);
    }
    mk_err_t rerr;
    if (mk_route_validate(s->endpoint, &rerr) != 0)
        return mk_err_set(err, MK_EINVAL, "socket.namespace: %s", rerr.msg);
    return 0;
}

int mk_mock_socket_compile(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    const json_t *sock = json_object_get(def, "socket");
    if (!json_is_object(sock))
        return mk_err_set(err, MK_EINVAL, "socket: must be an object");
    mk_mock_socket_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->socket = s;
    const char *event, *server;
    int rc = mk_mock_get_string(sock, "event", "socket.event", false, &event, err);
    if (rc == 0)
        rc = mk_mock_get_string(sock, "serverName", "socket.serverName", false, &server, err);
    if (rc == 0)
        rc = compile_endpoint(s, def, sock, err);
    if (rc)
        return rc;
    if (event && strlen(event) > MK_MOCK_SOCKET_MAX_EVENT)
        return mk_err_set(err, MK_EINVAL, "socket.event: longer than %d bytes",
                          MK_MOCK_SOCKET_MAX_EVENT);
    if (event && event[0] && strcmp(event, "*") != 0 && (s->event = strdup(event)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (server && server[0] && (s->server_name = strdup(server)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    char route[MK_MOCK_SOCKET_MAX_ROUTE];
    size_t n =
        s->event
            ? mk_mock_socket_route(mk_str_of(s->endpoint), mk_str_of(s->event), route, sizeof route)
            : mk_mock_socket_route(mk_str_of(s->endpoint), MK_STR_LIT("*"), route, sizeof route);
    if (n == 0 || (m->route = strdup(route)) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->method = (char *)MK_MOCK_WS_METHOD;
    rc = mk_mock_compile_conds(m, sock, "socket", "conditions", MK_COND_BODY, cond_def, err);
    if (rc == 0)
        rc = compile_replies(s, def, err);
    return rc;
}
