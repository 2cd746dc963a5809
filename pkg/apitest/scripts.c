/* The bridge to the script sandbox: pm's JavaScript (sandbox.js) in a pkg/js engine, one call per
 * script event, and pm.sendRequest served from the sandbox's worker through pkg/httpclient. */
#include <stdlib.h>
#include <string.h>

#include "apitest/internal.h"
#include "httpclient/fetch.h"

char *mk_apitest_utf8_clean(const char *s, size_t len)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = 0;
        unsigned c = *p;
        if (c < 0x80)
            n = c ? 1 : 0;
        else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
            n = 2;
        else if ((c & 0xF0) == 0xE0)
            n = 3;
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
            n = 4;
        int ok = n > 0 && (size_t)(end - p) >= n;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        /* overlong 3-byte forms, surrogates and values past U+10FFFF */
        if (ok && n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
            ok = 0;
        if (ok && n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
            ok = 0;
        if (ok) {
            mk_buf_append(&b, p, n);
            p += n;
        } else {
            mk_buf_append(&b, "\xEF\xBF\xBD", 3);
            p++;
        }
    }
    return b.data ? mk_buf_take(&b) : strdup("");
}

/* pm.sendRequest: {url, method, headers: [{key, value}], body} -> a response object. */
/* What pm.sendRequest needs from the run, copied into the sandbox's worker. */
typedef struct host_ctx {
    long request_timeout_ms;
    long connect_timeout_ms;
    int insecure;
} host_ctx_t;

static int send_request(const host_ctx_t *s, const char *arg, size_t len, char **out,
                        size_t *out_len, mk_err_t *err)
{
    json_error_t je;
    json_t *spec = json_loadb(arg, len, 0, &je);
    if (!spec)
        return mk_err_set(err, MK_EINVAL, "pm.sendRequest: bad request: %s", je.text);
    int rc = 0;
    json_t *headers = json_object_get(spec, "headers");
    size_t nh = json_array_size(headers);
    mk_httpclient_fetch_header_t *hs = calloc(nh ? nh : 1, sizeof *hs);
    mk_httpclient_fetch_resp_t resp = {0};
    json_t *res = NULL;
    for (size_t i = 0; hs && i < nh; i++) {
        const char *k = json_string_value(json_object_get(json_array_get(headers, i), "key"));
        const char *v = json_string_value(json_object_get(json_array_get(headers, i), "value"));
        hs[i].name = (char *)(k ? k : "X-Empty");
        hs[i].value = (char *)(v ? v : "");
    }
    const char *body = json_string_value(json_object_get(spec, "body"));
    const char *url = json_string_value(json_object_get(spec, "url"));
    mk_httpclient_fetch_req_t req = {
        .method = json_string_value(json_object_get(spec, "method")),
        .url = url,
        .headers = hs,
        .n_headers = hs ? nh : 0,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = s->request_timeout_ms,
        .connect_timeout_ms = s->connect_timeout_ms,
        .follow_redirects = 1,
        .insecure = s->insecure,
        .user_agent = "MockartyRunner/1.0",
    };
    if (!hs) {
        rc = mk_err_set(err, MK_ENOMEM, "pm.sendRequest: out of memory");
        goto out;
    }
    if (url && !strstr(url, "://")) {
        rc = mk_err_set(err, MK_EINVAL, "pm.sendRequest: %s is not an absolute http(s) URL", url);
        goto out;
    }
    if ((rc = mk_httpclient_fetch(&req, &resp, err)) < 0)
        goto out;
    json_t *rh = json_array();
    for (size_t i = 0; i < resp.n_headers; i++)
        json_array_append_new(rh, json_pack("{s:s, s:s}", "key", resp.headers[i].name, "value",
                                            resp.headers[i].value));
    char *text = mk_apitest_utf8_clean(resp.body, resp.body_len);
    res = json_pack("{s:i, s:s, s:o, s:s, s:f, s:I}", "code", (json_int_t)resp.status, "status",
                    resp.reason, "headers", rh, "body", text ? text : "", "responseTime",
                    resp.total_ms, "responseSize", (json_int_t)resp.body_len);
    free(text);
    *out = res ? json_dumps(res, JSON_COMPACT) : NULL;
    if (!*out)
        rc = mk_err_set(err, MK_ENOMEM, "pm.sendRequest: out of memory");
    else
        *out_len = strlen(*out);
out:
    json_decref(res);
    mk_httpclient_fetch_resp_free(&resp);
    free(hs);
    json_decref(spec);
    return rc;
}

static int host(const void *ud, const char *name, const char *arg, size_t len, char **out,
                size_t *out_len, mk_err_t *err)
{
    if (strcmp(name, "sendRequest") == 0)
        return send_request(ud, arg, len, out, out_len, err);
    return mk_err_set(err, MK_EINVAL, "no host function %s", name);
}

int mk_apitest_init(mk_err_t *err)
{
    return mk_js_init(err);
}

int mk_apitest_scripts_init(mk_apitest_scripts_t *s, long timeout_ms, size_t max_heap,
                            mk_err_t *err)
{
    mk_js_limits_t lim = {.timeout_ms = timeout_ms, .max_heap_bytes = max_heap};
    host_ctx_t ctx = {s->request_timeout_ms, s->connect_timeout_ms, s->insecure};
    return mk_js_new(&lim, mk_apitest_sandbox_js, mk_apitest_sandbox_js_len, "sandbox.js", host,
                     &ctx, sizeof ctx, &s->js, err);
}

void mk_apitest_scripts_fini(mk_apitest_scripts_t *s)
{
    mk_js_free(s->js);
    s->js = NULL;
}

int mk_apitest_scripts_run(mk_apitest_scripts_t *s, const json_t *input, json_t **output,
                           mk_err_t *err)
{
    *output = NULL;
    char *in = json_dumps(input, JSON_COMPACT);
    if (!in)
        return mk_err_set(err, MK_ENOMEM, "scripts: out of memory");
    char *out = NULL;
    size_t out_len = 0;
    int rc = mk_js_call(s->js, "__mk_run", in, strlen(in), &out, &out_len, err);
    free(in);
    if (rc < 0)
        return rc;
    json_error_t je;
    *output = json_loadb(out, out_len, 0, &je);
    free(out);
    if (!*output)
        return mk_err_set(err, MK_EINTERNAL, "scripts: unreadable sandbox output: %s", je.text);
    return 0;
}
