/* Lazy accessors for the request view. */
#include "request/request.h"

#include <stdlib.h>
#include <string.h>

void mk_request_init(mk_request_t *req)
{
    req->params_ = NULL;
    req->nparams_ = 0;
    req->params_state_ = 0;
    req->json_ = NULL;
    req->json_state_ = 0;
}

void mk_request_release(mk_request_t *req)
{
    free(req->params_);
    req->params_ = NULL;
    if (req->json_)
        json_decref(req->json_);
    req->json_ = NULL;
}

bool mk_request_header(const mk_request_t *req, mk_str_t name, mk_str_t *value)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (mk_str_caseeq(req->headers[i].name, name)) {
            *value = req->headers[i].value;
            return true;
        }
    }
    return false;
}

size_t mk_request_header_values(const mk_request_t *req, mk_str_t name, mk_str_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!mk_str_caseeq(req->headers[i].name, name))
            continue;
        if (n < max)
            out[n] = req->headers[i].value;
        n++;
    }
    return n;
}

/* One allocation holds the parameter table followed by the decoded bytes. */
static void parse_params(mk_request_t *req)
{
    req->params_state_ = 1;
    if (req->query.len == 0)
        return;
    size_t count = 1;
    for (size_t i = 0; i < req->query.len; i++)
        count += req->query.base[i] == '&';
    size_t table = count * sizeof(mk_header_t);
    char *block = malloc(table + req->query.len + count * 2);
    if (block == NULL)
        return;
    mk_header_t *params = (mk_header_t *)block;
    char *out = block + table;
    size_t n = 0;
    const char *p = req->query.base, *end = p + req->query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            mk_str_t k = {p, (size_t)((eq ? eq : stop) - p)};
            mk_str_t v = eq ? (mk_str_t){eq + 1, (size_t)(stop - eq - 1)} : (mk_str_t){"", 0};
            size_t kl = mk_str_url_decode(k, out, true);
            params[n].name = (mk_str_t){out, kl};
            out += kl + 1;
            size_t vl = mk_str_url_decode(v, out, true);
            params[n].value = (mk_str_t){out, vl};
            out += vl + 1;
            n++;
        }
        p = stop + 1;
    }
    req->params_ = params;
    req->nparams_ = n;
}

bool mk_request_credential(const mk_request_t *req, mk_str_t *token)
{
    mk_str_t v;
    if (mk_request_header(req, MK_STR_LIT("Authorization"), &v) && v.len > 7 &&
        mk_str_caseeq((mk_str_t){v.base, 7}, MK_STR_LIT("Bearer "))) {
        *token = (mk_str_t){v.base + 7, v.len - 7};
        return true;
    }
    return mk_request_header(req, MK_STR_LIT("X-API-Key"), token);
}

bool mk_request_query_param(mk_request_t *req, mk_str_t name, mk_str_t *value)
{
    if (req->params_state_ == 0)
        parse_params(req);
    for (size_t i = 0; i < req->nparams_; i++) {
        if (mk_str_eq(req->params_[i].name, name)) {
            *value = req->params_[i].value;
            return true;
        }
    }
    return false;
}

json_t *mk_request_json(mk_request_t *req)
{
    if (req->json_state_ == 0) {
        req->json_state_ = 1;
        if (req->body.len > 0)
            req->json_ =
                json_loadb(req->body.base, req->body.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    }
    return req->json_;
}

void mk_request_set_json(mk_request_t *req, json_t *json)
{
    if (req->json_)
        json_decref(req->json_);
    req->json_ = json;
    req->json_state_ = 1;
}
