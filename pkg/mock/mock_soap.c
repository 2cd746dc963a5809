/* SOAP mock definitions: the `soap` section and SOAP responses (see mock_soap.h). */
#include "mock/mock_soap.h"
#include "mock/mock_internal.h"
#include "mock/mock.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool section_present(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) > 0;
}

bool mk_mock_soap_is(const json_t *def)
{
    /* The Go SDK writes empty sections ("http": {}) for the protocols a mock does not use. */
    return section_present(json_object_get(def, "soap")) &&
           !section_present(json_object_get(def, "http")) &&
           !section_present(json_object_get(def, "grpc"));
}

/* An XML NCName: what a Body element's local name can be. */
static bool ncname_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

size_t mk_mock_soap_route(mk_str_t endpoint, mk_str_t op, char *buf, size_t cap)
{
    if (endpoint.len == 1 && endpoint.base[0] == '/')
        endpoint.len = 0;
    mk_str_t seg = op.len ? op : MK_STR_LIT(MK_MOCK_SOAP_ANY);
    if (endpoint.len + 1 + seg.len + 1 > cap)
        return 0;
    memcpy(buf, endpoint.base, endpoint.len);
    buf[endpoint.len] = '/';
    memcpy(buf + endpoint.len + 1, seg.base, seg.len);
    buf[endpoint.len + 1 + seg.len] = '\0';
    return endpoint.len + 1 + seg.len;
}

static int add_cond(mk_mock_t *m, mk_cond_t *c, mk_err_t *err)
{
    mk_cond_t **grown = realloc(m->conds, (m->nconds + 1) * sizeof *grown);
    if (grown == NULL) {
        mk_cond_free(c);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    m->conds = grown;
    m->conds[m->nconds++] = c;
    return 0;
}

/* A copy of def whose path is path. */
static json_t *with_path(const json_t *def, const char *path)
{
    json_t *copy = json_copy((json_t *)def);
    if (copy && json_object_set_new(copy, "path", json_string(path)) != 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

/* A condition whose path starts with '$' reads the operation's content as JSON (Mockarty's
 * "$.body.accountId": "$.body" is that object); any other path is XPath on the envelope. */
static int compile_condition(mk_mock_t *m, mk_mock_soap_t *s, const json_t *def, const char *field,
                             mk_err_t *err)
{
    const char *path = json_string_value(json_object_get(def, "path"));
    mk_cond_t *c = NULL;
    int rc;
    if (path == NULL || path[0] == '$') {
        json_t *d = NULL;
        if (path && strncmp(path, "$.body", 6) == 0 && (path[6] == '.' || path[6] == '[')) {
            char buf[MK_SOAP_MAX_XPATH + 8];
            snprintf(buf, sizeof buf, "$%s", path + 6);
            d = with_path(def, buf);
        } else {
            d = json_incref((json_t *)def);
        }
        if (d == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        rc = mk_cond_compile(d, MK_COND_BODY, field, &c, err);
        json_decref(d);
        return rc ? rc : add_cond(m, c, err);
    }
    mk_mock_soap_xcond_t *grown = realloc(s->xconds, (s->nxconds + 1) * sizeof *grown);
    if (grown == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    s->xconds = grown;
    mk_mock_soap_xcond_t *x = &s->xconds[s->nxconds];
    memset(x, 0, sizeof *x);
    rc = mk_soap_xpath_compile(path, &x->xp, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return mk_err_set(err, rc, "%s.path: %s", field, msg);
    }
    s->nxconds++;
    x->expr = strdup(path);
    json_t *d = with_path(def, MK_MOCK_SOAP_XVALUE);
    if (x->expr == NULL || d == NULL) {
        json_decref(d);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    rc = mk_cond_compile(d, MK_COND_HEADER, field, &x->assertion, err);
    json_decref(d);
    return rc;
}

static int compile_list(mk_mock_t *m, mk_mock_soap_t *s, const json_t *soap, const char *key,
                        mk_err_t *err)
{
    const json_t *list = json_object_get(soap, key);
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mk_err_set(err, MK_EINVAL, "soap.%s: must be an array", key);
    size_t i;
    json_t *def;
    json_array_foreach(list, i, def)
    {
        char field[64];
        snprintf(field, sizeof field, "soap.%s[%zu]", key, i);
        int rc;
        if (strcmp(key, "header") == 0) {
            mk_cond_t *c = NULL;
            rc = mk_cond_compile(def, MK_COND_HEADER, field, &c, err);
            if (rc == 0)
                rc = add_cond(m, c, err);
        } else {
            rc = json_is_object(def) ? compile_condition(m, s, def, field, err)
                                     : mk_err_set(err, MK_EINVAL, "%s: must be an object", field);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* "/a/" -> "/a"; "/" stays. */
static size_t trimmed(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    return n;
}

int mk_mock_soap_compile(mk_mock_t *m, const json_t *def, mk_err_t *err)
{
    const json_t *soap = json_object_get(def, "soap");
    const char *path, *method, *action, *service, *prefix;
    int rc = mk_mock_get_string(soap, "path", "soap.path", false, &path, err);
    if (rc == 0)
        rc = mk_mock_get_string(soap, "method", "soap.method", false, &method, err);
    if (rc == 0)
        rc = mk_mock_get_string(soap, "action", "soap.action", false, &action, err);
    if (rc == 0)
        rc = mk_mock_get_string(soap, "service", "soap.service", false, &service, err);
    if (rc == 0)
        rc = mk_mock_get_string(def, "pathPrefix", "pathPrefix", false, &prefix, err);
    if (rc)
        return rc;
    if (path == NULL || path[0] == '\0')
        path = MK_MOCK_SOAP_DEFAULT_PATH;
    if (path[0] != '/')
        return mk_err_set(err, MK_EINVAL, "soap.path: must start with '/'");
    if (prefix && prefix[0] && prefix[0] != '/')
        return mk_err_set(err, MK_EINVAL, "pathPrefix: must start with '/'");
    if (method && method[0] && !ncname_ok(method))
        return mk_err_set(err, MK_EINVAL,
                          "soap.method: '%.64s' is not an XML element name (the Body's first "
                          "element, without prefix)",
                          method);

    mk_mock_soap_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    m->soap = s;
    if ((action && action[0] && (s->action = strdup(action)) == NULL) ||
        (service && service[0] && (s->service = strdup(service)) == NULL))
        return mk_err_set(err, MK_ENOMEM, "out of memory");

    char endpoint[MK_MOCK_SOAP_MAX_ROUTE], route[MK_MOCK_SOAP_MAX_ROUTE];
    size_t pl = prefix && prefix[0] ? trimmed(prefix) : 0;
    if (pl == 1)
        pl = 0; /* a "/" prefix adds nothing */
    int n = snprintf(endpoint, sizeof endpoint, "%.*s%.*s", (int)pl, pl ? prefix : "",
                     (int)trimmed(path), path);
    if (n < 0 || (size_t)n >= sizeof endpoint)
        return mk_err_set(err, MK_EINVAL, "soap.path: longer than %d bytes",
                          MK_MOCK_SOAP_MAX_ROUTE / 2);
    size_t rl = mk_mock_soap_route(mk_str_of(endpoint), mk_str_of(method), route, sizeof route);
    if (rl == 0)
        return mk_err_set(err, MK_EINVAL, "soap.method: too long");
    s->endpoint_len = rl - 1 - (method && method[0] ? strlen(method) : strlen(MK_MOCK_SOAP_ANY));
    mk_err_t rerr;
    if (mk_route_validate(route, &rerr) != 0)
        return mk_err_set(err, MK_EINVAL, "soap.path: %s", rerr.msg);
    m->method = (char *)MK_MOCK_SOAP_METHOD;
    m->route = strdup(route);
    if (m->route == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    rc = compile_list(m, s, soap, "conditions", err);
    if (rc == 0)
        rc = compile_list(m, s, soap, "header", err);
    return rc;
}

/* ---- responses ---- */

static bool has_content_type(const json_t *headers)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (strcasecmp(k, "Content-Type") == 0)
            return true;
    }
    return false;
}

static int fault_of(const json_t *f, const char *field, mk_soap_version_t v, mk_buf_t *out,
                    int64_t *status, mk_err_t *err)
{
    static const char *const keys[] = {"faultCode", "faultString", "faultActor", "detail"};
    const char *vals[4];
    for (int i = 0; i < 4; i++) {
        char sub[200];
        snprintf(sub, sizeof sub, "%s.soapFault.%s", field, keys[i]);
        int rc = mk_mock_get_string(f, keys[i], sub, false, &vals[i], err);
        if (rc)
            return rc;
    }
    const json_t *hs = json_object_get(f, "httpStatus");
    *status = 500;
    if (hs && !json_is_null(hs)) {
        if (!json_is_integer(hs) || json_integer_value(hs) < 100 || json_integer_value(hs) > 599)
            return mk_err_set(err, MK_EINVAL,
                              "%s.soapFault.httpStatus: must be an integer between 100 and 599",
                              field);
        if (json_integer_value(hs) != 0)
            *status = json_integer_value(hs);
    }
    mk_soap_fault_t sf = {vals[0], vals[1], vals[2], vals[3]};
    if (mk_soap_fault(v, &sf, out) != 0)
        return mk_err_set(err, MK_EINVAL, "%s.soapFault: larger than %u bytes", field,
                          MK_SOAP_MAX_BYTES);
    return 0;
}

/* One response rewritten for version v: payload as the whole envelope text, Content-Type set,
 * a fault's status. A new reference; NULL with err set on failure. */
static json_t *rewrite_response(const json_t *resp, const char *field, mk_soap_version_t v,
                                mk_err_t *err)
{
    if (!json_is_object(resp))
        return json_incref((json_t *)resp); /* compile_responses names the error */
    json_t *copy = json_copy((json_t *)resp);
    mk_buf_t xml, inner;
    mk_buf_init(&xml, MK_SOAP_MAX_BYTES);
    mk_buf_init(&inner, MK_SOAP_MAX_BYTES);
    int rc = copy ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    const json_t *fault = json_object_get(resp, "soapFault");
    const json_t *payload = json_object_get(resp, "payload");
    if (rc == 0 && section_present(fault)) {
        int64_t status;
        rc = fault_of(fault, field, v, &xml, &status, err);
        if (rc == 0)
            json_object_set_new(copy, "statusCode", json_integer(status));
    } else if (rc == 0 && json_is_string(payload) &&
               mk_soap_is_envelope(
                   (mk_str_t){json_string_value(payload), json_string_length(payload)})) {
        rc = mk_buf_append(&xml, json_string_value(payload), json_string_length(payload));
    } else if (rc == 0) {
        if (json_is_string(payload))
            rc = mk_buf_append(&inner, json_string_value(payload), json_string_length(payload));
        else if (json_is_object(payload))
            rc = mk_soap_json_to_xml(payload, &inner, err);
        else if (payload != NULL && !json_is_null(payload))
            rc =
                mk_err_set(err, MK_EINVAL, "%s.payload: must be an XML string or an object", field);
        if (rc == 0)
            rc = mk_soap_wrap(v, (mk_str_t){inner.data ? inner.data : "", inner.len}, &xml);
        else if (rc == MK_EINVAL && payload && json_is_object(payload)) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = mk_err_set(err, MK_EINVAL, "%s.payload: %s", field, msg);
        }
    }
    if (rc == MK_ETOOBIG || rc == MK_ENOMEM)
        rc = mk_err_set(err, MK_EINVAL, "%s.payload: larger than %u bytes as XML", field,
                        MK_SOAP_MAX_BYTES);
    if (rc == 0) {
        json_object_set_new(copy, "payload", json_stringn(xml.data, xml.len));
        json_t *h = json_object_get(copy, "headers");
        if (h == NULL || json_is_null(h)) {
            h = json_object();
            json_object_set_new(copy, "headers", h);
        } else if (json_is_object(h)) {
            h = json_copy(h);
            json_object_set_new(copy, "headers", h);
        }
        if (json_is_object(h) && !has_content_type(h))
            json_object_set_new(h, "Content-Type",
                                json_string(v == MK_SOAP_12 ? MK_SOAP_CTYPE_12 : MK_SOAP_CTYPE_11));
    }
    mk_buf_free(&xml);
    mk_buf_free(&inner);
    if (rc) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

/* def with its response or oneOf responses rewritten for v (a new reference). */
static json_t *rewrite(const json_t *def, mk_soap_version_t v, mk_err_t *err)
{
    json_t *out = json_copy((json_t *)def);
    if (out == NULL) {
        mk_err_set(err, MK_ENOMEM, "out of memory");
        return NULL;
    }
    const json_t *resp = json_object_get(def, "response");
    if (resp && !json_is_null(resp)) {
        json_t *r = rewrite_response(resp, "response", v, err);
        if (r == NULL)
            goto fail;
        json_object_set_new(out, "response", r);
    }
    const json_t *oneof = json_object_get(def, "oneOf");
    const json_t *list = json_object_get(oneof, "responses");
    if (json_is_array(list)) {
        json_t *o = json_copy((json_t *)oneof), *l = json_array();
        json_object_set_new(o, "responses", l);
        json_object_set_new(out, "oneOf", o);
        for (size_t i = 0; i < json_array_size(list); i++) {
            char field[64];
            snprintf(field, sizeof field, "oneOf.responses[%zu]", i);
            json_t *r = rewrite_response(json_array_get(list, i), field, v, err);
            if (r == NULL)
                goto fail;
            json_array_append_new(l, r);
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

int mk_mock_soap_responses(mk_mock_t *m, const json_t *def,
                           int (*compile_responses)(mk_mock_t *, const json_t *, mk_err_t *),
                           mk_err_t *err)
{
    json_t *d11 = rewrite(def, MK_SOAP_11, err);
    if (d11 == NULL)
        return err->code;
    int rc = compile_responses(m, d11, err);
    json_decref(d11);
    if (rc)
        return rc;
    json_t *d12 = rewrite(def, MK_SOAP_12, err);
    if (d12 == NULL)
        return err->code;
    /* A shell mock holding only responses: freed by mk_mock_unref like any other. */
    mk_mock_t *v12 = calloc(1, sizeof *v12);
    if (v12 == NULL) {
        json_decref(d12);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    atomic_init(&v12->refs, 1);
    m->soap->v12 = v12;
    rc = compile_responses(v12, d12, err);
    json_decref(d12);
    m->uses_store = m->uses_store || v12->uses_store;
    return rc;
}

void mk_mock_soap_free(mk_mock_soap_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nxconds; i++) {
        free(s->xconds[i].expr);
        mk_soap_xpath_free(s->xconds[i].xp);
        mk_cond_free(s->xconds[i].assertion);
    }
    free(s->xconds);
    free(s->action);
    free(s->service);
    mk_mock_unref(s->v12);
    free(s);
}

/* ---- XPath conditions ---- */

/* The assertion reads the XPath's value as the one header of a request of its own. */
static bool xcond_eval(const mk_mock_soap_xcond_t *x, const mk_soap_msg_t *msg, char *explain,
                       size_t size)
{
    char *text = NULL;
    bool found = mk_soap_xpath_eval(x->xp, msg, &text);
    mk_header_t h = {MK_STR_LIT(MK_MOCK_SOAP_XVALUE), mk_str_of(text)};
    mk_request_t r;
    memset(&r, 0, sizeof r);
    mk_request_init(&r);
    r.headers = &h;
    r.nheaders = found && text ? 1 : 0;
    bool ok = mk_cond_eval(x->assertion, &r);
    if (explain) {
        char line[512];
        mk_cond_explain(x->assertion, &r, line, sizeof line);
        const char *rest = strstr(line, MK_MOCK_SOAP_XVALUE);
        rest = rest ? rest + strlen(MK_MOCK_SOAP_XVALUE) : line;
        snprintf(explain, size, "xpath %.200s%s", x->expr, rest);
    }
    mk_request_release(&r);
    free(text);
    return ok;
}

bool mk_mock_soap_xconds_hold(const mk_mock_soap_t *s, const mk_soap_msg_t *msg)
{
    for (size_t i = 0; i < s->nxconds; i++)
        if (!xcond_eval(&s->xconds[i], msg, NULL, 0))
            return false;
    return true;
}

void mk_mock_soap_xcond_explain(const mk_mock_soap_t *s, size_t i, const mk_soap_msg_t *msg,
                                char *buf, size_t size)
{
    if (xcond_eval(&s->xconds[i], msg, buf, size))
        buf[0] = '\0';
}
