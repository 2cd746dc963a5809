/* Parsing of input documents and the pieces every translator uses to build mocks. */
#include "importer/importer_internal.h"

#include "config/config.h"
#include "str/str.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void mk_import_result_init(mk_import_result_t *r)
{
    r->mocks = json_array();
    r->skipped = json_array();
    r->errors = json_array();
    r->warnings = json_array();
}

void mk_import_result_free(mk_import_result_t *r)
{
    if (r == NULL)
        return;
    json_decref(r->mocks);
    json_decref(r->skipped);
    json_decref(r->errors);
    json_decref(r->warnings);
    memset(r, 0, sizeof *r);
}

int mk_import_parse(const char *text, size_t len, json_t **out, mk_err_t *err)
{
    *out = NULL;
    if (len > MK_IMPORT_MAX_BYTES)
        return mk_err_set(err, MK_ETOOBIG, "spec: %zu bytes, over the import limit of %u bytes",
                          len, MK_IMPORT_MAX_BYTES);
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len)
        return mk_err_set(err, MK_EINVAL, "spec: empty document");
    if (text[i] == '{' || text[i] == '[') {
        json_error_t jerr;
        *out = json_loadb(text, len, 0, &jerr);
        if (*out == NULL)
            return mk_err_set(err, MK_EINVAL, "spec: invalid JSON at line %d column %d: %s",
                              jerr.line, jerr.column, jerr.text);
        return 0;
    }
    mk_err_t yerr;
    int rc = mk_config_yaml_to_json(text, len, out, &yerr);
    if (rc != 0)
        return mk_err_set(err, rc, "spec: invalid YAML: %s", yerr.msg);
    return 0;
}

void mk_imp_note(json_t *list, const char *item, const char *fmt, ...)
{
    char reason[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_pack("{s:s, s:s}", "item", item, "reason", reason));
}

/* FNV-1a, 64 bits: stable ids from stable input. */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    h ^= 0xff; /* a separator, so ("ab","c") and ("a","bc") differ */
    h *= 1099511628211ull;
    return h;
}

json_t *mk_imp_mock_new(const mk_import_opts_t *o, const char *kind, const char *key,
                        const char *method, const char *route)
{
    uint64_t h = 14695981039346656037ull;
    h = fnv(h, o ? o->id_seed : NULL);
    h = fnv(h, o ? o->path_prefix : NULL);
    h = fnv(h, kind);
    h = fnv(h, key);
    char id[64];
    snprintf(id, sizeof id, "%s-%016llx", kind, (unsigned long long)h);
    json_t *m =
        json_pack("{s:s, s:{s:s, s:s}}", "id", id, "http", "route", route, "httpMethod", method);
    json_t *tags = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(o ? o->tags : NULL, i, t)
    {
        if (json_is_string(t))
            json_array_append(tags, t);
    }
    if (json_array_size(tags))
        json_object_set(m, "tags", tags);
    json_decref(tags);
    if (o && o->chain_id)
        json_object_set_new(m, "chainId", json_string(o->chain_id));
    if (o && o->server_name)
        json_object_set_new(m, "serverName", json_string(o->server_name));
    if (o && o->path_prefix)
        json_object_set_new(m, "pathPrefix", json_string(o->path_prefix));
    return m;
}

json_t *mk_imp_cond(json_t *mock, const char *list, const char *path, const char *action,
                    json_t *value)
{
    json_t *http = json_object_get(mock, "http");
    json_t *l = json_object_get(http, list);
    if (l == NULL) {
        l = json_array();
        json_object_set_new(http, list, l);
    }
    json_t *c = json_pack("{s:s, s:s}", "path", path, "assertAction", action);
    if (value)
        json_object_set_new(c, "value", value);
    json_array_append_new(l, c);
    return c;
}

int mk_imp_push(mk_import_result_t *r, json_t *mock, mk_err_t *err)
{
    if (json_array_size(r->mocks) >= MK_IMPORT_MAX_MOCKS) {
        json_decref(mock);
        return mk_err_set(err, MK_ETOOBIG, "import: more than %d mocks in one import",
                          MK_IMPORT_MAX_MOCKS);
    }
    json_array_append_new(r->mocks, mock);
    return 0;
}

void mk_imp_param_name(const char *name, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)name[i];
        out[j++] = (isalnum(ch) || ch == '_' || ch == '-') ? (char)ch : '_';
    }
    if (j == 0 && cap > 1)
        out[j++] = 'p';
    out[j] = 0;
}

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

unsigned char *mk_imp_base64(const char *in, size_t n, size_t *len)
{
    unsigned char *out = malloc(n / 4 * 3 + 4);
    uint32_t acc = 0;
    int bits = 0;
    size_t j = 0;
    bool pad = false;
    for (size_t i = 0; out && i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '=') {
            pad = true;
            continue;
        }
        if (isspace(ch))
            continue;
        int v = b64val(ch);
        if (v < 0 || pad) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[j++] = (unsigned char)(acc >> bits);
        }
    }
    if (out)
        out[j] = 0;
    *len = j;
    return out;
}

bool mk_imp_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (c == 0 || k == 9 || i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

char *mk_imp_url_path(const char *url, const char **query)
{
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme && strcspn(url, "/?#") > (size_t)(scheme - url)) {
        p = scheme + 3;
        p += strcspn(p, "/?#");
    }
    size_t n = strcspn(p, "?#");
    if (query)
        *query = p[n] == '?' ? p + n + 1 : NULL;
    char *out = malloc(n + 2);
    if (out == NULL)
        return NULL;
    if (n == 0 || p[0] != '/') {
        out[0] = '/';
        memcpy(out + 1, p, n);
        out[n + 1] = 0;
    } else {
        memcpy(out, p, n);
        out[n] = 0;
    }
    return out;
}

json_t *mk_imp_payload(const char *text, size_t n, const char *mime)
{
    if (mime && (strstr(mime, "json") != NULL)) {
        json_t *v = json_loadb(text, n, JSON_DECODE_ANY, NULL);
        if (v)
            return v;
    }
    return json_stringn(text, n);
}

json_t *mk_imp_query_text(const char *s, size_t n)
{
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return NULL;
    size_t len = mk_str_url_decode((mk_str_t){s, n}, buf, true);
    json_t *v = json_stringn(buf, len);
    free(buf);
    return v;
}

static const char *const dropped_headers[] = {
    "connection",       "keep-alive", "transfer-encoding", "content-length", "content-encoding",
    "proxy-connection", "te",         "trailer",           "upgrade",        "date",
    "x-request-id",     NULL,
};

bool mk_imp_drop_header(const char *name)
{
    for (size_t i = 0; dropped_headers[i]; i++)
        if (strcasecmp(name, dropped_headers[i]) == 0)
            return true;
    return name[0] == ':'; /* HTTP/2 pseudo-headers as browsers save them */
}

/* "/pets/{petId}" → "/pets/:petId". Segments mixing text and a parameter become a parameter
 * (looser than the spec: noted in *loose). Returns a heap string. */
char *mk_imp_route_template(const char *path, bool *loose)
{
    size_t cap = strlen(path) * 2 + 8;
    char *out = malloc(cap);
    size_t j = 0;
    int params = 0;
    char names[MK_IMP_MAX_PARAMS][64];
    const char *p = path;
    *loose = false;
    if (*p != '/')
        out[j++] = '/';
    while (*p) {
        if (*p == '/') {
            out[j++] = *p++;
            continue;
        }
        size_t n = strcspn(p, "/");
        const char *open = memchr(p, '{', n);
        const char *close = open ? memchr(open, '}', n - (size_t)(open - p)) : NULL;
        if (open && close && params < MK_IMP_MAX_PARAMS) {
            char name[64];
            mk_imp_param_name(open + 1, (size_t)(close - open - 1), name, sizeof name);
            for (int k = 0; k < params; k++)
                if (strcmp(names[k], name) == 0)
                    snprintf(name + strlen(name) / 2, sizeof name / 2, "_%d", params + 1);
            snprintf(names[params++], sizeof names[0], "%s", name);
            *loose |= open != p || close != p + n - 1;
            j += (size_t)snprintf(out + j, cap - j, ":%s", name);
        } else {
            memcpy(out + j, p, n);
            j += n;
        }
        p += n;
    }
    out[j] = 0;
    return out;
}
