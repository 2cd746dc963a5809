/* The gRPC mock server: decode with the namespace's descriptors, match in the route index, render,
 * encode, answer all four call kinds; descriptor sets kept as repository documents. */
#include "grpcmock/grpcmock.h"
#include "docreg/docreg.h"
#include "grpc/grpc_frame.h"
#include "protodyn/protodyn.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_NEAREST 5
#define MAX_NAME    128

/* ---- the descriptor registry: a docreg whose snapshot data is a reg_t ---------------------- */

/* One uploaded set: its pool, and its bytes (server reflection answers with its files). */
typedef struct reg_set {
    mk_protodyn_pool_t *pool;
    char *data;
    size_t len;
} reg_set_t;

typedef struct reg_ns {
    char *name;
    reg_set_t *sets;
    size_t nsets;
} reg_ns_t;

typedef struct reg {
    reg_ns_t *nss;
    size_t n;
} reg_t;

struct mk_grpcmock {
    mk_grpcmock_opts_t o;
    mk_grpc_server_t *server;
    mk_docreg_t *reg;
    atomic_uint_fast64_t seq; /* seeds per-call random state */
};

static int64_t now_ms(void)
{
    return mk_mock_now_ms();
}

static void reg_free(void *data)
{
    reg_t *r = data;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t k = 0; k < r->nss[i].nsets; k++) {
            mk_protodyn_pool_free(r->nss[i].sets[k].pool);
            free(r->nss[i].sets[k].data);
        }
        free(r->nss[i].sets);
        free(r->nss[i].name);
    }
    free(r->nss);
    free(r);
}

static const reg_ns_t *reg_find_ns(const reg_t *r, const char *ns)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->nss[i].name, ns) == 0)
            return &r->nss[i];
    return NULL;
}

static const mk_protodyn_method_t *reg_find_method(const reg_t *r, const char *ns, const char *path)
{
    const reg_ns_t *n = reg_find_ns(r, ns);
    for (size_t k = 0; n && k < n->nsets; k++) {
        const mk_protodyn_method_t *m = mk_protodyn_find_method(n->sets[k].pool, path);
        if (m)
            return m;
    }
    return NULL;
}

/* Decodes the "data" member of a stored document. */
static int doc_data(const json_t *doc, mk_buf_t *out)
{
    const char *b64 = json_string_value(json_object_get(doc, "data"));
    if (b64 == NULL)
        return MK_EINVAL;
    return mk_grpc_base64_decode(out, b64, strlen(b64));
}

static int add_set(void **regp, const mk_repo_doc_t *d)
{
    json_t *doc = json_loads(d->json, 0, NULL);
    mk_buf_t data;
    mk_buf_init(&data, MK_GRPCMOCK_MAX_DESCRIPTOR);
    mk_protodyn_pool_t *pool = NULL;
    mk_err_t err;
    int rc = 0;
    /* A set that no longer loads (a newer protodyn refusing it) is skipped, not fatal. */
    if (doc && doc_data(doc, &data) == 0 &&
        mk_protodyn_pool_new((const uint8_t *)data.data, data.len, &pool, &err) == 0) {
        reg_t *r = *regp ? *regp : calloc(1, sizeof *r);
        *regp = r;
        rc = MK_ENOMEM;
        reg_ns_t *n = (reg_ns_t *)reg_find_ns(r, d->namespace_);
        if (r && n == NULL) {
            reg_ns_t *grown = realloc(r->nss, (r->n + 1) * sizeof *grown);
            if (grown) {
                r->nss = grown;
                n = &r->nss[r->n];
                memset(n, 0, sizeof *n);
                n->name = strdup(d->namespace_);
                if (n->name)
                    r->n++;
                else
                    n = NULL;
            }
        }
        reg_set_t *sets = n ? realloc(n->sets, (n->nsets + 1) * sizeof *sets) : NULL;
        if (sets) {
            n->sets = sets;
            size_t len = data.len;
            n->sets[n->nsets++] = (reg_set_t){pool, mk_buf_take(&data), len};
            pool = NULL;
            rc = 0;
        }
    }
    mk_buf_free(&data);
    mk_protodyn_pool_free(pool);
    json_decref(doc);
    return rc;
}

int mk_grpcmock_reload(mk_grpcmock_t *g, mk_err_t *err)
{
    return mk_docreg_reload(g->reg, err);
}

void mk_grpcmock_notify(void)
{
    mk_docreg_notify(MK_GRPCMOCK_DOC_KIND);
}

/* ---- google.rpc.Status details ------------------------------------------------------------ */

/* The google.rpc error detail messages, as a table: JSON key (lowerCamelCase; snake_case is
 * accepted too), field number, and kind. Sub-tables describe repeated messages. */
typedef enum { F_STR, F_STRS, F_MAP, F_DURATION, F_MSGS } fkind_t;
typedef struct dfield {
    const char *key;
    int num;
    fkind_t kind;
    const struct dfield *sub;
} dfield_t;

static const dfield_t f_violation2[] = {
    {"subject", 1, F_STR, NULL}, {"description", 2, F_STR, NULL}, {NULL, 0, 0, NULL}};
static const dfield_t f_precond[] = {{"type", 1, F_STR, NULL},
                                     {"subject", 2, F_STR, NULL},
                                     {"description", 3, F_STR, NULL},
                                     {NULL, 0, 0, NULL}};
static const dfield_t f_fieldviol[] = {
    {"field", 1, F_STR, NULL}, {"description", 2, F_STR, NULL}, {NULL, 0, 0, NULL}};
static const dfield_t f_link[] = {
    {"description", 1, F_STR, NULL}, {"url", 2, F_STR, NULL}, {NULL, 0, 0, NULL}};

static const struct {
    const char *type, *message;
    dfield_t fields[5];
} detail_types[] = {
    {"errorInfo",
     "ErrorInfo",
     {{"reason", 1, F_STR, NULL}, {"domain", 2, F_STR, NULL}, {"metadata", 3, F_MAP, NULL}}},
    {"retryInfo", "RetryInfo", {{"retryDelay", 1, F_DURATION, NULL}}},
    {"debugInfo", "DebugInfo", {{"stackEntries", 1, F_STRS, NULL}, {"detail", 2, F_STR, NULL}}},
    {"quotaFailure", "QuotaFailure", {{"violations", 1, F_MSGS, f_violation2}}},
    {"preconditionFailure", "PreconditionFailure", {{"violations", 1, F_MSGS, f_precond}}},
    {"badRequest", "BadRequest", {{"fieldViolations", 1, F_MSGS, f_fieldviol}}},
    {"requestInfo",
     "RequestInfo",
     {{"requestId", 1, F_STR, NULL}, {"servingData", 2, F_STR, NULL}}},
    {"resourceInfo",
     "ResourceInfo",
     {{"resourceType", 1, F_STR, NULL},
      {"resourceName", 2, F_STR, NULL},
      {"owner", 3, F_STR, NULL},
      {"description", 4, F_STR, NULL}}},
    {"help", "Help", {{"links", 1, F_MSGS, f_link}}},
    {"localizedMessage",
     "LocalizedMessage",
     {{"locale", 1, F_STR, NULL}, {"message", 2, F_STR, NULL}}},
};

static int put_varint(mk_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return mk_buf_append(b, tmp, n);
}

static int put_bytes(mk_buf_t *b, int num, const void *p, size_t n)
{
    int rc = put_varint(b, ((uint64_t)num << 3) | 2);
    if (rc == 0)
        rc = put_varint(b, n);
    return rc ? rc : mk_buf_append(b, p, n);
}

/* A member by its camelCase key or the snake_case form of it. */
static json_t *get_either(const json_t *obj, const char *camel)
{
    json_t *v = json_object_get(obj, camel);
    if (v)
        return v;
    char snake[64];
    size_t k = 0;
    for (const char *p = camel; *p && k + 2 < sizeof snake; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            snake[k++] = '_';
            snake[k++] = (char)(*p - 'A' + 'a');
        } else {
            snake[k++] = *p;
        }
    }
    snake[k] = '\0';
    return json_object_get(obj, snake);
}

/* Text of a JSON scalar (numbers and booleans as JSON text). */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static int encode_fields(const dfield_t *f, const json_t *obj, mk_buf_t *out);

static int encode_field(const dfield_t *f, const json_t *v, mk_buf_t *out)
{
    int rc = 0;
    if (f->kind == F_STR) {
        char *t = scalar_text(v);
        rc = t ? put_bytes(out, f->num, t, strlen(t)) : MK_ENOMEM;
        free(t);
    } else if (f->kind == F_STRS || f->kind == F_MSGS) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (rc)
                break;
            if (f->kind == F_STRS) {
                rc = encode_field(&(dfield_t){NULL, f->num, F_STR, NULL}, e, out);
            } else {
                mk_buf_t sub;
                mk_buf_init(&sub, 0);
                rc = json_is_object(e) ? encode_fields(f->sub, e, &sub) : 0;
                if (rc == 0)
                    rc = put_bytes(out, f->num, sub.data ? sub.data : "", sub.len);
                mk_buf_free(&sub);
            }
        }
    } else if (f->kind == F_MAP) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            mk_buf_t entry;
            mk_buf_init(&entry, 0);
            char *t = scalar_text(e);
            rc = t ? put_bytes(&entry, 1, k, strlen(k)) : MK_ENOMEM;
            if (rc == 0)
                rc = put_bytes(&entry, 2, t, strlen(t));
            free(t);
            if (rc == 0)
                rc = put_bytes(out, f->num, entry.data, entry.len);
            mk_buf_free(&entry);
            if (rc)
                break;
        }
    } else { /* F_DURATION: "1.5s" or a number of seconds */
        double s = json_is_number(v)   ? json_number_value(v)
                   : json_is_string(v) ? strtod(json_string_value(v), NULL)
                                       : 0;
        int64_t secs = (int64_t)s;
        int32_t nanos = (int32_t)((s - (double)secs) * 1e9);
        mk_buf_t d;
        mk_buf_init(&d, 0);
        rc = put_varint(&d, 1 << 3);
        if (rc == 0)
            rc = put_varint(&d, (uint64_t)secs);
        if (rc == 0 && nanos) {
            rc = put_varint(&d, 2 << 3);
            if (rc == 0)
                rc = put_varint(&d, (uint64_t)(int64_t)nanos);
        }
        if (rc == 0)
            rc = put_bytes(out, f->num, d.data, d.len);
        mk_buf_free(&d);
    }
    return rc;
}

static int encode_fields(const dfield_t *f, const json_t *obj, mk_buf_t *out)
{
    int rc = 0;
    for (; rc == 0 && f->key; f++) {
        json_t *v = get_either(obj, f->key);
        if (v == NULL || json_is_null(v))
            continue;
        bool ok = f->kind == F_STR        ? !json_is_object(v) && !json_is_array(v)
                  : f->kind == F_MAP      ? json_is_object(v)
                  : f->kind == F_DURATION ? json_is_number(v) || json_is_string(v)
                                          : json_is_array(v);
        if (ok)
            rc = encode_field(f, v, out);
    }
    return rc;
}

/* google.rpc.Status{code, message, details: [Any]} for grpc-status-details-bin. */
static int encode_status(int code, const char *message, const json_t *details, mk_buf_t *out)
{
    int rc = 0;
    if (code) {
        rc = put_varint(out, 1 << 3);
        if (rc == 0)
            rc = put_varint(out, (uint64_t)code);
    }
    if (rc == 0 && message && message[0])
        rc = put_bytes(out, 2, message, strlen(message));
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        if (rc)
            break;
        const char *type = json_string_value(json_object_get(d, "type"));
        json_t *body = json_object_get(d, "details");
        size_t k = 0, n = sizeof detail_types / sizeof *detail_types;
        while (type && k < n && strcmp(type, detail_types[k].type) != 0)
            k++;
        if (type == NULL || k == n)
            continue; /* validated when the mock was saved */
        mk_buf_t val, any;
        mk_buf_init(&val, 0);
        mk_buf_init(&any, 0);
        if (json_is_object(body))
            rc = encode_fields(detail_types[k].fields, body, &val);
        char url[96];
        snprintf(url, sizeof url, "type.googleapis.com/google.rpc.%s", detail_types[k].message);
        if (rc == 0)
            rc = put_bytes(&any, 1, url, strlen(url));
        if (rc == 0)
            rc = put_bytes(&any, 2, val.data ? val.data : "", val.len);
        if (rc == 0)
            rc = put_bytes(out, 3, any.data, any.len);
        mk_buf_free(&val);
        mk_buf_free(&any);
    }
    return rc;
}

/* ---- calls ---------------------------------------------------------------------------------- */

typedef struct gcall {
    mk_grpcmock_t *g;
    const mk_docreg_snap_t *snap; /* the descriptor registry, held for the call */
    const mk_protodyn_method_t *method;
    char ns[65];
    json_t *last; /* the last request message */
    size_t nmsgs;
    bool answered; /* headers went out (bidi answers per message) */
    bool over;     /* finish was called */
    int64_t start_ms;
    mk_faker_rng_t rng;
} gcall_t;

static mk_mock_grpc_kind_t method_kind(const mk_protodyn_method_t *m)
{
    if (m->client_streaming && m->server_streaming)
        return MK_MOCK_GRPC_BIDI;
    if (m->client_streaming)
        return MK_MOCK_GRPC_CLIENT_STREAM;
    if (m->server_streaming)
        return MK_MOCK_GRPC_SERVER_STREAM;
    return MK_MOCK_GRPC_UNARY;
}

static void journal(gcall_t *gc, mk_grpc_call_t *call, const char *mock_id, const char *body,
                    const mk_header_t *hdrs, size_t nh, int code, const char *response)
{
    mk_grpcmock_t *g = gc->g;
    if (g->o.metrics != NULL)
        mk_metrics_protocol(g->o.metrics, g->o.journal_slot, "grpc", mock_id && mock_id[0]);
    if (g->o.journal == NULL)
        return;
    mk_journal_rec_t rec = {
        .namespace_ = mk_str_of(gc->ns),
        .mock_id = mk_str_of(mock_id),
        .method = MK_STR_LIT(MK_MOCK_GRPC_METHOD),
        .path = mk_str_of(mk_grpc_call_path(call)),
        .body = mk_str_of(body),
        .headers = hdrs,
        .nheaders = nh,
        .status = code,
        .duration_ms = (double)(now_ms() - gc->start_ms),
        .protocol = MK_STR_LIT("grpc"),
        /* The call's :path without its leading slash: "pkg.Service/Method". */
        .operation = mk_str_of(mk_grpc_call_path(call) + (mk_grpc_call_path(call)[0] == '/')),
        .response = mk_str_of(response),
    };
    mk_journal_record(g->o.journal, g->o.journal_slot, &rec);
}

static void finish(gcall_t *gc, mk_grpc_call_t *call, int code, const char *msg,
                   const mk_grpc_mdlist_t *trailers, int delay_ms)
{
    if (gc->over)
        return;
    gc->over = true;
    mk_grpc_call_finish(call, code, msg, trailers, delay_ms);
}

/* Metadata as request headers, for meta conditions and $.reqHeader templates. */
static mk_header_t *md_headers(mk_grpc_call_t *call, size_t *n)
{
    const mk_grpc_mdlist_t *md = mk_grpc_call_metadata(call);
    mk_header_t *h = calloc(md->n ? md->n : 1, sizeof *h);
    *n = 0;
    for (size_t i = 0; h && i < md->n; i++)
        h[(*n)++] = (mk_header_t){mk_str_of(md->items[i].key),
                                  (mk_str_t){md->items[i].value, md->items[i].len}};
    return h;
}

/* May this caller see the closest mocks (opts.details)? */
static bool details_allowed(const mk_grpcmock_t *g, mk_grpc_call_t *call)
{
    if (g->o.details != MK_GRPCMOCK_DETAILS_TOKEN)
        return g->o.details == MK_GRPCMOCK_DETAILS_PUBLIC;
    if (g->o.api_token == NULL || g->o.api_token[0] == '\0')
        return true;
    const mk_grpc_mdlist_t *md = mk_grpc_call_metadata(call);
    const mk_grpc_md_t *a = md ? mk_grpc_md_get(md, "authorization") : NULL;
    const mk_grpc_md_t *x = md ? mk_grpc_md_get(md, "x-api-key") : NULL;
    mk_str_t tok = {0};
    if (a && a->len > 7 && strncasecmp(a->value, "Bearer ", 7) == 0)
        tok = (mk_str_t){a->value + 7, a->len - 7};
    else if (x)
        tok = (mk_str_t){x->value, x->len};
    return tok.base != NULL && mk_str_secret_eq(tok, g->o.api_token);
}

/* The "no mock" message: the closest mock routes of the namespace, and why the first candidate
 * of this method failed when there was one; only the path for callers who may not see mocks. */
static void no_mock_message(const mk_grpcmock_t *g, mk_grpc_call_t *call,
                            const mk_route_index_t *idx, const char *path, const char *why,
                            char *buf, size_t size)
{
    int k = snprintf(buf, size, "no mock for %s", path);
    if (!details_allowed(g, call)) {
        if (k > 0 && (size_t)k < size)
            snprintf(buf + k, size - (size_t)k,
                     "; send the API token (authorization metadata) to see the closest mocks");
        return;
    }
    if (why[0] && k > 0 && (size_t)k < size)
        k += snprintf(buf + k, size - (size_t)k, " (%s)", why);
    void *near[MAX_NEAREST];
    size_t n = idx ? mk_route_nearest(idx, MK_STR_LIT(MK_MOCK_GRPC_METHOD), mk_str_of(path), near,
                                      MAX_NEAREST)
                   : 0;
    size_t shown = 0;
    for (size_t i = 0; i < n && k > 0 && (size_t)k < size; i++) {
        const mk_mock_t *m = near[i];
        if (m->grpc_kind == MK_MOCK_GRPC_NONE)
            continue;
        k += snprintf(buf + k, size - (size_t)k, "%s%s (mock %s)",
                      shown++ ? ", " : "; closest mocks: ", m->route, m->id);
    }
}

/* Response metadata value i of r, rendered when it holds placeholders ($.req..., fakers); a
 * header that fails to render is sent as written. Caller frees. */
static char *header_value(const mk_mock_response_t *r, size_t i, mk_template_env_t *env)
{
    if (r->header_tpls == NULL || r->header_tpls[i] == NULL)
        return mk_str_dup(r->headers[i].value);
    mk_buf_t b;
    mk_buf_init(&b, 8192);
    mk_err_t err;
    char *v = mk_template_render(r->header_tpls[i], env, &b, &err) == 0
                  ? strndup(b.data ? b.data : "", b.len)
                  : mk_str_dup(r->headers[i].value);
    mk_buf_free(&b);
    return v;
}

/* Answers one request message (every call kind but client streaming answers the last one). */
static void answer(gcall_t *gc, mk_grpc_call_t *call, bool last)
{
    mk_grpcmock_t *g = gc->g;
    const char *path = mk_grpc_call_path(call);
    char *body = gc->last ? json_dumps(gc->last, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    size_t nh = 0;
    mk_header_t *hdrs = md_headers(call, &nh);
    mk_request_t view;
    mk_request_init(&view);
    view.method = MK_STR_LIT(MK_MOCK_GRPC_METHOD);
    view.path = mk_str_of(path);
    view.headers = hdrs;
    view.nheaders = nh;
    view.body = mk_str_of(body);
    mk_mock_t *found = NULL;
    char *summary = NULL; /* the rendered payload, for the journal */
    mk_route_match_t match = {0};
    char why[256] = "", msg[1024] = "";
    mk_mock_grpc_kind_t kind = method_kind(gc->method);
    int64_t now = now_ms();

    const mk_snapshot_t *snap = mk_catalog_enter(g->o.catalog, g->o.reader_slot);
    const mk_route_index_t *idx = mk_snapshot_index(snap, mk_str_of(gc->ns));
    if (idx && body && hdrs) {
        mk_route_iter_t it;
        mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_GRPC_METHOD), mk_str_of(path), &it);
        while (found == NULL && mk_route_next(&it, &match)) {
            mk_mock_t *m = match.value;
            if (m->grpc_kind == MK_MOCK_GRPC_NONE || !mk_mock_active(m, now))
                continue;
            if (m->grpc_kind != MK_MOCK_GRPC_ANY && m->grpc_kind != kind) {
                if (!why[0])
                    snprintf(why, sizeof why, "mock %s is for another methodType", m->id);
                continue;
            }
            size_t i = 0;
            while (i < m->nconds && mk_cond_eval(m->conds[i], &view))
                i++;
            if (i < m->nconds) {
                if (!why[0]) {
                    char ex[200];
                    mk_cond_explain(m->conds[i], &view, ex, sizeof ex);
                    snprintf(why, sizeof why, "mock %s: %s", m->id, ex);
                }
                continue;
            }
            if (mk_mock_claim_use(m, now))
                found = mk_mock_ref(m);
        }
    }
    if (found == NULL)
        no_mock_message(g, call, idx, path, why, msg, sizeof msg);
    mk_catalog_leave(g->o.catalog, g->o.reader_slot);

    int code = MK_GRPC_OK;
    if (found == NULL) {
        code = MK_GRPC_UNIMPLEMENTED;
        finish(gc, call, code, msg, NULL, 0);
        goto out;
    }
    const mk_mock_response_t *r = mk_mock_pick_response(found, &gc->rng);
    int delay = (int)mk_mock_pick_delay(r, &gc->rng);
    mk_buf_t out;
    mk_buf_init(&out, MK_GRPC_DEFAULT_MAX_MSG);
    mk_err_t err = {0};
    json_t *payload = NULL;
    int rc = 0;
    mk_template_env_t env = {.req = &view, .match = &match, .rng = &gc->rng, .now_ms = now};
    if (r->body_tpl) {
        rc = mk_template_render(r->body_tpl, &env, &out, &err);
    } else {
        rc = mk_buf_append(&out, r->body, r->body_len);
    }
    if (rc == 0 && out.len > 0) {
        payload = json_loadb(out.data, out.len, JSON_DECODE_ANY, NULL);
        summary = strndup(out.data, out.len);
    }
    mk_buf_free(&out);
    if (rc) {
        code = MK_GRPC_INTERNAL;
        snprintf(msg, sizeof msg, "mock %s: rendering the payload: %s", found->id, err.msg);
        finish(gc, call, code, msg, NULL, 0);
        goto done;
    }
    if (!gc->answered) {
        gc->answered = true;
        for (size_t i = 0; i < r->nheaders; i++) {
            char *v = header_value(r, i, &env), *k = mk_str_dup(r->headers[i].name);
            /* The payload's default Content-Type is HTTP's; gRPC sets its own. */
            if (k && v && strcasecmp(k, "content-type") != 0) {
                for (char *p = k; *p; p++)
                    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
                mk_grpc_call_add_header(call, k, v, strlen(v)); /* reserved keys are refused */
            }
            free(k);
            free(v);
        }
    }
    if (r->status != MK_GRPC_OK || r->grpc_message) {
        code = r->status != MK_GRPC_OK ? r->status : MK_GRPC_UNKNOWN;
        snprintf(msg, sizeof msg, "%s", r->grpc_message ? r->grpc_message : "");
        mk_grpc_mdlist_t tr = {0};
        mk_buf_t st;
        mk_buf_init(&st, 0);
        if (r->grpc_details && encode_status(code, r->grpc_message, r->grpc_details, &st) == 0)
            mk_grpc_md_add(&tr, "grpc-status-details-bin", st.data, st.len);
        finish(gc, call, code, r->grpc_message, &tr, delay);
        mk_buf_free(&st);
        mk_grpc_md_clear(&tr);
        goto done;
    }
    /* A streaming answer's payload is a list of messages; "$delay" in one (no protobuf JSON
     * name starts with '$') holds it back that many ms after the previous one. */
    bool stream = gc->method->server_streaming && json_is_array(payload);
    size_t count = stream ? json_array_size(payload) : 1;
    for (size_t i = 0; i < count && code == MK_GRPC_OK; i++) {
        json_t *msgj = stream ? json_array_get(payload, i) : payload;
        json_t *copy = NULL;
        int d = i == 0 ? delay : 0;
        json_t *dj = json_is_object(msgj) ? json_object_get(msgj, "$delay") : NULL;
        if (dj) {
            d += (int)json_integer_value(dj);
            copy = json_copy(msgj);
            json_object_del(copy, "$delay");
            msgj = copy;
        }
        json_t *empty = msgj ? NULL : json_object();
        mk_buf_t wire;
        mk_buf_init(&wire, MK_GRPC_DEFAULT_MAX_MSG);
        rc = mk_protodyn_encode(gc->method->output, msgj ? msgj : empty, &wire, &err);
        if (rc) {
            code = MK_GRPC_INTERNAL;
            snprintf(msg, sizeof msg, "mock %s: the payload is not a %s: %s", found->id,
                     mk_protodyn_msg_name(gc->method->output), err.msg);
            finish(gc, call, code, msg, NULL, d);
        } else {
            mk_grpc_call_send(call, (const uint8_t *)(wire.data ? wire.data : ""), wire.len, d);
        }
        mk_buf_free(&wire);
        json_decref(copy);
        json_decref(empty);
    }
    if (code == MK_GRPC_OK && last)
        finish(gc, call, MK_GRPC_OK, NULL, NULL, 0);
done:
    json_decref(payload);
out:
    journal(gc, call, found ? found->id : "", body, hdrs, nh, code,
            summary              ? summary
            : code != MK_GRPC_OK ? msg
                                 : "");
    free(summary);
    mk_mock_unref(found);
    mk_request_release(&view);
    free(hdrs);
    free(body);
}

static const char *call_namespace(mk_grpc_call_t *call, char *buf, size_t size)
{
    const mk_grpc_md_t *md = mk_grpc_call_metadata(call)
                                 ? mk_grpc_md_get(mk_grpc_call_metadata(call), "x-namespace")
                                 : NULL;
    mk_err_t err;
    if (md && md->len > 0 && md->len < size && mk_mock_validate_namespace(md->value, &err) == 0)
        snprintf(buf, size, "%s", md->value);
    else
        snprintf(buf, size, "%s", MK_MOCK_DEFAULT_NAMESPACE);
    return buf;
}

static void on_start(mk_grpc_call_t *call, void *ud)
{
    mk_grpcmock_t *g = ud;
    gcall_t *gc = calloc(1, sizeof *gc);
    if (gc == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    gc->g = g;
    gc->start_ms = now_ms();
    mk_faker_rng_seed(&gc->rng, (uint64_t)gc->start_ms ^ (atomic_fetch_add(&g->seq, 1) << 20));
    call_namespace(call, gc->ns, sizeof gc->ns);
    gc->snap = mk_docreg_acquire(g->reg);
    mk_grpc_call_set_data(call, gc);
    const char *path = mk_grpc_call_path(call);
    gc->method = reg_find_method(mk_docreg_data(gc->snap), gc->ns, path);
    if (gc->method == NULL) {
        char msg[1024];
        char why[160];
        snprintf(why, sizeof why, "no uploaded descriptor of namespace %s defines it", gc->ns);
        const mk_snapshot_t *snap = mk_catalog_enter(g->o.catalog, g->o.reader_slot);
        no_mock_message(g, call, mk_snapshot_index(snap, mk_str_of(gc->ns)), path, why, msg,
                        sizeof msg);
        mk_catalog_leave(g->o.catalog, g->o.reader_slot);
        finish(gc, call, MK_GRPC_UNIMPLEMENTED, msg, NULL, 0);
        journal(gc, call, "", "", NULL, 0, MK_GRPC_UNIMPLEMENTED, msg);
    }
}

static void on_message(mk_grpc_call_t *call, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    gcall_t *gc = mk_grpc_call_data(call);
    if (gc == NULL || gc->over || gc->method == NULL)
        return;
    json_t *j = NULL;
    mk_err_t err = {0};
    if (mk_protodyn_decode(gc->method->input, data, len, &j, &err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "request is not a valid %s: %s",
                 mk_protodyn_msg_name(gc->method->input), err.msg);
        finish(gc, call, MK_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        journal(gc, call, "", "", NULL, 0, MK_GRPC_INVALID_ARGUMENT, msg);
        return;
    }
    json_decref(gc->last);
    gc->last = j;
    gc->nmsgs++;
    if (gc->method->client_streaming && gc->method->server_streaming)
        answer(gc, call, false);
}

static void on_half_close(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    gcall_t *gc = mk_grpc_call_data(call);
    if (gc == NULL || gc->over || gc->method == NULL)
        return;
    if (gc->method->client_streaming && gc->method->server_streaming) {
        finish(gc, call, MK_GRPC_OK, NULL, NULL, 0);
        return;
    }
    if (!gc->method->client_streaming && gc->nmsgs != 1) {
        finish(gc, call, MK_GRPC_UNIMPLEMENTED,
               gc->nmsgs ? "more than one request message for a unary method"
                         : "no request message",
               NULL, 0);
        return;
    }
    answer(gc, call, true);
}

static void on_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)code;
    (void)ud;
    gcall_t *gc = mk_grpc_call_data(call);
    if (gc == NULL)
        return;
    mk_docreg_release(gc->snap);
    json_decref(gc->last);
    free(gc);
    mk_grpc_call_set_data(call, NULL);
}

/* grpc.health.v1.Health/Check: SERVING for every service name. */
static void health_half_close(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    static const uint8_t serving[] = {0x08, 0x01};
    mk_grpc_call_send(call, serving, sizeof serving, 0);
    mk_grpc_call_finish(call, MK_GRPC_OK, NULL, NULL, 0);
}

/* ---- server reflection (v1 and v1alpha: the same messages) ---------------------------------- */

/* A protobuf wire reader over borrowed bytes. */
typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

static bool rd_varint(rd_t *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* The next field: its number, and for length-delimited ones the bytes; other wire types are
 * skipped (val NULL). False at the end or on malformed input. */
static bool rd_field(rd_t *r, int *num, const uint8_t **val, size_t *len)
{
    uint64_t key, n;
    if (r->p >= r->end || !rd_varint(r, &key))
        return false;
    *num = (int)(key >> 3);
    *val = NULL;
    *len = 0;
    switch (key & 7) {
    case 0:
        return rd_varint(r, &n);
    case 1:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case 5:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    case 2:
        if (!rd_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return false;
        *val = r->p;
        *len = (size_t)n;
        r->p += n;
        return true;
    default:
        return false;
    }
}

/* The name (field 1) of a FileDescriptorProto. */
static bool file_name_is(const uint8_t *fd, size_t len, const char *name)
{
    rd_t r = {fd, fd + len};
    int num;
    const uint8_t *v;
    size_t n;
    while (rd_field(&r, &num, &v, &n))
        if (num == 1 && v)
            return n == strlen(name) && memcmp(v, name, n) == 0;
    return false;
}

/* Does the set define symbol (a message, a service, or a service's method)? */
static bool set_has_symbol(const reg_set_t *set, const char *sym)
{
    if (mk_protodyn_find_message(set->pool, sym))
        return true;
    size_t sl = strlen(sym);
    for (size_t i = 0; i < mk_protodyn_method_count(set->pool); i++) {
        const mk_protodyn_method_t *m = mk_protodyn_method_at(set->pool, i);
        size_t ls = strlen(m->service);
        if (strcmp(m->service, sym) == 0 || (sl > ls && strncmp(sym, m->service, ls) == 0 &&
                                             sym[ls] == '.' && strcmp(sym + ls + 1, m->name) == 0))
            return true;
    }
    return false;
}

/* A set's files (FileDescriptorSet field 1) into a FileDescriptorResponse; with want_file, only
 * when the set has a file of that name. Returns whether the set matched. */
static bool add_set_files(const reg_set_t *set, const char *want_file, mk_buf_t *fdr)
{
    rd_t r = {(const uint8_t *)set->data, (const uint8_t *)set->data + set->len};
    int num;
    const uint8_t *v;
    size_t n;
    if (want_file) {
        bool found = false;
        while (!found && rd_field(&r, &num, &v, &n))
            found = num == 1 && v && file_name_is(v, n, want_file);
        if (!found)
            return false;
        r.p = (const uint8_t *)set->data;
    }
    while (rd_field(&r, &num, &v, &n))
        if (num == 1 && v)
            put_bytes(fdr, 1, v, n);
    return true;
}

typedef struct rcall {
    const mk_docreg_snap_t *snap;
    char ns[65];
} rcall_t;

static void refl_start(mk_grpc_call_t *call, void *ud)
{
    mk_grpcmock_t *g = ud;
    rcall_t *rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    call_namespace(call, rc->ns, sizeof rc->ns);
    rc->snap = mk_docreg_acquire(g->reg);
    mk_grpc_call_set_data(call, rc);
}

static void refl_message(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    (void)ud;
    rcall_t *rc = mk_grpc_call_data(call);
    if (rc == NULL)
        return;
    const reg_ns_t *ns = reg_find_ns(mk_docreg_data(rc->snap), rc->ns);
    rd_t r = {msg, msg + len};
    int num, kind = 0;
    const uint8_t *v, *host = NULL, *arg = NULL;
    size_t n, host_len = 0, arg_len = 0;
    while (rd_field(&r, &num, &v, &n)) {
        if (num == 1 && v) {
            host = v;
            host_len = n;
        } else if (num >= 3 && num <= 7 && v) {
            kind = num;
            arg = v;
            arg_len = n;
        }
    }
    char name[512];
    snprintf(name, sizeof name, "%.*s", (int)(arg_len < 500 ? arg_len : 500),
             arg ? (const char *)arg : "");
    mk_buf_t out, body;
    mk_buf_init(&out, 0);
    mk_buf_init(&body, 0);
    if (host)
        put_bytes(&out, 1, host, host_len);
    put_bytes(&out, 2, msg, len);
    int field = 7; /* error_response unless something below answers */
    const char *err_msg = "not found";
    int err_code = MK_GRPC_NOT_FOUND;
    if (kind == 7) { /* list_services */
        field = 6;
        const char **seen = NULL;
        size_t nseen = 0;
        for (size_t k = 0; ns && k < ns->nsets; k++)
            for (size_t i = 0; i < mk_protodyn_method_count(ns->sets[k].pool); i++) {
                const char *svc = mk_protodyn_method_at(ns->sets[k].pool, i)->service;
                size_t j = 0;
                while (j < nseen && strcmp(seen[j], svc) != 0)
                    j++;
                const char **grown = j == nseen ? realloc(seen, (nseen + 1) * sizeof *seen) : NULL;
                if (grown == NULL)
                    continue;
                seen = grown;
                seen[nseen++] = svc;
                mk_buf_t sr;
                mk_buf_init(&sr, 0);
                put_bytes(&sr, 1, svc, strlen(svc));
                put_bytes(&body, 1, sr.data, sr.len);
                mk_buf_free(&sr);
            }
        free(seen);
    } else if (kind == 3 || kind == 4) { /* file_by_filename, file_containing_symbol */
        for (size_t k = 0; ns && k < ns->nsets && field == 7; k++) {
            if (kind == 3 ? add_set_files(&ns->sets[k], name, &body)
                          : set_has_symbol(&ns->sets[k], name) &&
                                add_set_files(&ns->sets[k], NULL, &body))
                field = 4;
        }
        if (field == 7)
            err_msg = kind == 3 ? "no uploaded descriptor has this file"
                                : "no uploaded descriptor defines this symbol";
    } else if (kind == 6) { /* all_extension_numbers_of_type: none are known */
        field = 5;
        put_bytes(&body, 1, name, strlen(name));
    } else {
        err_code = MK_GRPC_UNIMPLEMENTED;
        err_msg = "extensions are not served";
    }
    if (field == 7) {
        put_varint(&body, 1 << 3);
        put_varint(&body, (uint64_t)err_code);
        put_bytes(&body, 2, err_msg, strlen(err_msg));
    }
    put_bytes(&out, field, body.data ? body.data : "", body.len);
    mk_grpc_call_send(call, (const uint8_t *)out.data, out.len, 0);
    mk_buf_free(&out);
    mk_buf_free(&body);
}

static void refl_half_close(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    mk_grpc_call_finish(call, MK_GRPC_OK, NULL, NULL, 0);
}

static void refl_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)code;
    (void)ud;
    rcall_t *rc = mk_grpc_call_data(call);
    if (rc)
        mk_docreg_release(rc->snap);
    free(rc);
    mk_grpc_call_set_data(call, NULL);
}

int mk_grpcmock_start(const mk_grpcmock_opts_t *opts, mk_grpcmock_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_grpcmock_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    g->o = *opts;
    mk_docreg_opts_t ro = {.repo = opts->repo,
                           .kind = MK_GRPCMOCK_DOC_KIND,
                           .poll_ms = opts->poll_ms,
                           .add = add_set,
                           .free = reg_free};
    int rc = mk_docreg_start(&ro, &g->reg, err);
    mk_grpc_server_opts_t so = {.host = opts->host ? opts->host : "0.0.0.0",
                                .port = opts->port,
                                .threads = 1,
                                .tls = opts->tls};
    mk_grpc_method_t fb = {.on_start = on_start,
                           .on_message = on_message,
                           .on_half_close = on_half_close,
                           .on_done = on_done,
                           .ud = g};
    mk_grpc_method_t health = {.path = "/grpc.health.v1.Health/Check",
                               .on_half_close = health_half_close};
    if (rc == 0)
        rc = mk_grpc_server_new(&so, &g->server, err);
    if (rc == 0)
        rc = mk_grpc_server_add(g->server, &health, err);
    static const char *const refl_paths[] = {
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        mk_grpc_method_t refl = {.path = refl_paths[i],
                                 .on_start = refl_start,
                                 .on_message = refl_message,
                                 .on_half_close = refl_half_close,
                                 .on_done = refl_done,
                                 .ud = g};
        rc = mk_grpc_server_add(g->server, &refl, err);
    }
    if (rc == 0)
        rc = mk_grpc_server_set_fallback(g->server, &fb, err);
    if (rc == 0)
        rc = mk_grpc_server_start(g->server, err);
    if (rc) {
        mk_grpcmock_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int mk_grpcmock_port(const mk_grpcmock_t *g)
{
    return mk_grpc_server_port(g->server);
}

void mk_grpcmock_free(mk_grpcmock_t *g)
{
    if (g == NULL)
        return;
    mk_grpc_server_free(g->server);
    mk_docreg_free(g->reg); /* after the server: its calls hold snapshots */
    free(g);
}

/* ---- descriptor documents ------------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

int mk_grpcmock_descriptor_put(mk_repo_t *repo, const char *namespace_, const char *name,
                               const uint8_t *data, size_t len, json_t **info, mk_err_t *err)
{
    if (info)
        *info = NULL;
    if (!name_ok(name))
        return mk_err_set(err, MK_EINVAL, "name: '%.64s' is not 1-%d of [A-Za-z0-9_.-]", name,
                          MAX_NAME);
    if (len == 0)
        return mk_err_set(err, MK_EINVAL, "body: an empty descriptor set");
    if (len > MK_GRPCMOCK_MAX_DESCRIPTOR)
        return mk_err_set(err, MK_ETOOBIG, "body: a descriptor set is at most %u bytes",
                          MK_GRPCMOCK_MAX_DESCRIPTOR);
    mk_protodyn_pool_t *pool = NULL;
    int rc = mk_protodyn_pool_new(data, len, &pool, err);
    if (rc) /* protodyn's message starts with "descriptor set: " */
        return rc == MK_ENOMEM ? rc : MK_EINVAL;
    json_t *sum = json_object(), *services = json_array(), *methods = json_array();
    json_object_set_new(sum, "services", services); /* sum owns them from here on */
    json_object_set_new(sum, "methods", methods);
    mk_buf_t b64;
    mk_buf_init(&b64, 0);
    char *text = NULL, id[200];
    int64_t now = mk_mock_now_ms();
    for (size_t i = 0; rc == 0 && i < mk_protodyn_method_count(pool); i++) {
        const mk_protodyn_method_t *m = mk_protodyn_method_at(pool, i);
        bool seen = false;
        size_t k;
        json_t *sv;
        json_array_foreach(services, k, sv) seen =
            seen || strcmp(json_string_value(sv), m->service) == 0;
        /* jansson refuses names that are not UTF-8; such a set could not be listed. */
        json_t *row = json_pack("{s:s, s:s, s:s, s:b, s:b}", "path", m->path, "input",
                                mk_protodyn_msg_name(m->input), "output",
                                mk_protodyn_msg_name(m->output), "clientStreaming",
                                m->client_streaming, "serverStreaming", m->server_streaming);
        if (row == NULL || (!seen && json_array_append_new(services, json_string(m->service))))
            rc = mk_err_set(err, MK_EINVAL, "descriptor set: method %zu: a name is not UTF-8", i);
        json_array_append_new(methods, row);
    }
    mk_protodyn_pool_free(pool);
    if (rc)
        goto out;
    json_object_set_new(sum, "name", json_string(name));
    json_object_set_new(sum, "namespace", json_string(namespace_));
    json_object_set_new(sum, "size", json_integer((json_int_t)len));
    json_object_set_new(sum, "updatedAt", json_integer(now));
    rc = mk_grpc_base64_encode(&b64, data, len);
    if (rc == 0) {
        json_object_set_new(sum, "data", json_stringn(b64.data, b64.len));
        text = json_dumps(sum, JSON_COMPACT);
        json_object_del(sum, "data");
    }
    if (rc || text == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(id, sizeof id, "%s/%s", namespace_, name);
    mk_repo_doc_t doc = {.kind = MK_GRPCMOCK_DOC_KIND,
                         .id = id,
                         .namespace_ = namespace_,
                         .json = text,
                         .updated_at = now};
    rc = mk_repo_put_docs(repo, &doc, 1, err);
    if (rc == 0 && info)
        *info = json_incref(sum);
out:
    free(text);
    mk_buf_free(&b64);
    json_decref(sum);
    return rc;
}

/* Whether the document exact is among those listed. */
typedef struct find_ctx {
    const char *exact;
    bool found;
} find_ctx_t;

static int find_doc(void *ud, const mk_repo_doc_t *d)
{
    find_ctx_t *fc = ud;
    fc->found = fc->found || strcmp(d->id, fc->exact) == 0;
    return 0;
}

int mk_grpcmock_descriptor_list(mk_repo_t *repo, const char *namespace_, json_t **out,
                                mk_err_t *err)
{
    return mk_docreg_list(repo, MK_GRPCMOCK_DOC_KIND, namespace_, "data", out, err);
}

int mk_grpcmock_descriptor_delete(mk_repo_t *repo, const char *namespace_, const char *name,
                                  mk_err_t *err)
{
    char id[200];
    snprintf(id, sizeof id, "%s/%s", namespace_, name);
    find_ctx_t fc = {.exact = id};
    int rc = mk_repo_list_docs(repo, MK_GRPCMOCK_DOC_KIND, id, find_doc, &fc, err);
    if (rc)
        return rc;
    if (!fc.found)
        return mk_err_set(err, MK_ENOTFOUND, "no descriptor set '%.128s' in namespace %s", name,
                          namespace_);
    const char *ids[] = {id};
    return mk_repo_delete_docs(repo, MK_GRPCMOCK_DOC_KIND, ids, 1, err);
}

/* ---- .proto text through protoc -------------------------------------------------------------- */

#define PROTOC "/usr/bin/protoc"

static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return MK_EIO;
    mk_buf_t b;
    mk_buf_init(&b, max);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = mk_buf_append(&b, chunk, n);
    fclose(f);
    if (rc) {
        mk_buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = (uint8_t *)mk_buf_take(&b);
    return *out ? 0 : MK_ENOMEM;
}

int mk_grpcmock_compile_proto(const char *text, size_t len, uint8_t **out, size_t *out_len,
                              mk_err_t *err)
{
    *out = NULL;
    *out_len = 0;
    if (access(PROTOC, X_OK) != 0)
        return mk_err_set(err, MK_EUNAVAIL,
                          ".proto upload needs protoc (Debian package protobuf-compiler), which is "
                          "not installed here; upload a descriptor set instead (protoc "
                          "--descriptor_set_out=api.pb --include_imports api.proto)");
    char dir[] = "/tmp/mk-protoc-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return mk_err_set(err, MK_EIO, "temporary directory: %s", strerror(errno));
    char src[96], pb[96], log[96], out_arg[128], inc[128];
    snprintf(src, sizeof src, "%s/upload.proto", dir);
    snprintf(pb, sizeof pb, "%s/out.pb", dir);
    snprintf(log, sizeof log, "%s/err.txt", dir);
    snprintf(out_arg, sizeof out_arg, "--descriptor_set_out=%s", pb);
    snprintf(inc, sizeof inc, "-I%s", dir);
    int rc = 0;
    FILE *f = fopen(src, "wb");
    if (f == NULL || fwrite(text, 1, len, f) != len) {
        rc = mk_err_set(err, MK_EIO, "writing the .proto: %s", strerror(errno));
        if (f)
            fclose(f);
        goto out;
    }
    fclose(f);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    /* /usr/include holds the well-known types that imports name (google/protobuf/...). */
    char *argv[] = {PROTOC, "--include_imports", out_arg, inc, "-I/usr/include", src, NULL};
    pid_t pid;
    int status = 0;
    int sp = posix_spawn(&pid, PROTOC, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (sp != 0) {
        rc = mk_err_set(err, MK_EUNAVAIL, "running protoc: %s", strerror(sp));
        goto out;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        uint8_t *msg = NULL;
        size_t mlen = 0;
        read_file(log, 4000, &msg, &mlen);
        while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == '\r'))
            msg[--mlen] = '\0';
        rc = mk_err_set(err, MK_EINVAL, "the .proto does not compile: %s",
                        msg && mlen ? (char *)msg : "protoc failed");
        free(msg);
        goto out;
    }
    if (read_file(pb, MK_GRPCMOCK_MAX_DESCRIPTOR, out, out_len) != 0)
        rc = mk_err_set(err, MK_EIO, "reading protoc's output failed");
out:
    unlink(src);
    unlink(pb);
    unlink(log);
    rmdir(dir);
    return rc;
}
