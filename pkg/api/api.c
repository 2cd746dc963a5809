/* The admin REST API: the endpoint table compiled into a route index, dispatch (a request that
 * matches no row is left to mock serving), authentication, replies and request helpers. The
 * endpoints themselves live in one file per resource family. */
#include "api/api_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const mk_api_endpoint_t *const mk_api_families[] = {
    mk_api_mock_endpoints,
    mk_api_namespace_endpoints,
    mk_api_journal_endpoints,
    mk_api_store_endpoints,
    mk_api_library_endpoints,
    mk_api_meta_endpoints,
    mk_api_identity_endpoints,
    mk_api_grpc_endpoints,
    mk_api_graphql_endpoints,
    mk_api_generator_endpoints,
    mk_api_recorder_endpoints,
    mk_api_apitester_endpoints,
    mk_api_perf_endpoints,
    mk_api_environment_endpoints,
    mk_api_schedule_endpoints,
    mk_api_soap_endpoints,
    NULL,
};

/* Rows that share one path pattern, for 405 and its Allow header. */
struct path_group {
    const char *path;
    char allow[64];
};

/* --- replies --- */

int mk_api_reply_json(mk_httpd_req_t *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    if (text == NULL) {
        mk_httpd_respond(req, 500,
                         MK_STR_LIT("{\"error\":\"out of memory\",\"code\":\"internal\"}"));
        return 500;
    }
    mk_httpd_respond(req, status, mk_str_of(text));
    free(text);
    return status;
}

int mk_api_reply_error(mk_httpd_req_t *req, int code, const char *message)
{
    mk_str_t id = mk_httpd_req_id(req);
    return mk_api_reply_json(req, mk_err_http_status(code),
                             json_pack("{s:s, s:s, s:s#}", "error", message, "code",
                                       mk_err_code_name(code), "request_id", id.base, id.len));
}

int mk_api_reply_err(ctx_t *c, const mk_err_t *err)
{
    return mk_api_reply_error(c->req, err->code ? err->code : MK_EINTERNAL, err->msg);
}

int mk_api_reply_fmt(ctx_t *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mk_api_reply_error(c->req, code, msg);
}

/* --- the table --- */

static size_t literal_segments(const char *path)
{
    size_t n = 0;
    for (const char *s = path; *s; s++)
        if (*s == '/' && s[1] && s[1] != ':')
            n++;
    return n;
}

/* Compiles every family's rows: more literal segments rank first, so /mocks/batch wins over
 * /mocks/:id. */
static int compile_table(mk_api_t *api, mk_err_t *err)
{
    mk_route_builder_t *bm = mk_route_builder_new(), *bp = mk_route_builder_new();
    size_t rows = 0;
    int rc = 0;
    for (size_t f = 0; mk_api_families[f]; f++)
        for (const mk_api_endpoint_t *e = mk_api_families[f]; e->method; e++)
            rows++;
    api->groups = calloc(rows ? rows : 1, sizeof *api->groups);
    if (bm == NULL || bp == NULL || api->groups == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t f = 0; rc == 0 && mk_api_families[f]; f++) {
        for (const mk_api_endpoint_t *e = mk_api_families[f]; rc == 0 && e->method; e++) {
            int64_t rank = (int64_t)literal_segments(e->path);
            rc = mk_route_builder_add(bm, e->method, e->path, (void *)e, rank, 0, err);
            path_group_t *g = NULL;
            for (size_t i = 0; i < api->ngroups && g == NULL; i++)
                if (strcmp(api->groups[i].path, e->path) == 0)
                    g = &api->groups[i];
            if (g == NULL) {
                g = &api->groups[api->ngroups++];
                g->path = e->path;
                if (rc == 0)
                    rc = mk_route_builder_add(bp, "ANY", e->path, g, rank, 0, err);
            }
            size_t used = strlen(g->allow);
            snprintf(g->allow + used, sizeof g->allow - used, "%s%s", used ? ", " : "", e->method);
        }
    }
    if (rc != 0)
        goto out;
    api->by_method = mk_route_builder_build(bm);
    api->by_path = mk_route_builder_build(bp);
    bm = bp = NULL;
    if (api->by_method == NULL || api->by_path == NULL)
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
out:
    mk_route_builder_free(bm);
    mk_route_builder_free(bp);
    return rc;
}

bool mk_api_shadowed(mk_api_t *api, const char *method, const char *route)
{
    mk_route_iter_t it;
    mk_route_match_t m;
    mk_str_t path = mk_str_of(route);
    if (strcmp(method, "ANY") == 0) {
        mk_route_lookup(api->by_path, MK_STR_LIT("GET"), path, &it);
        return mk_route_next(&it, &m);
    }
    mk_route_lookup(api->by_method, mk_str_of(method), path, &it);
    if (mk_route_next(&it, &m))
        return true;
    /* A path the API owns for other methods answers 405 there, which shadows it too. */
    mk_route_lookup(api->by_path, mk_str_of(method), path, &it);
    return mk_route_next(&it, &m);
}

/* --- lifecycle --- */

mk_api_t *mk_api_new(const mk_api_config_t *cfg, mk_catalog_t *catalog, mk_repo_t *repo,
                     mk_journal_t *journal, mk_store_t *store)
{
    mk_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    api->token = (cfg->api_token && cfg->api_token[0]) ? strdup(cfg->api_token) : NULL;
    api->catalog = catalog;
    api->repo = repo;
    api->journal = journal;
    api->store = store;
    api->admin_password = cfg->admin_password && cfg->admin_password[0]
                              ? strdup(cfg->admin_password)
                              : NULL;
    api->auth_required = cfg->auth_required;
    api->session_ttl_ms = cfg->session_ttl_ms;
    api->audit_retention_days = cfg->audit_retention_days;
    api->login_rate = cfg->login_rate_per_minute;
    api->token_rate = cfg->token_rate_per_minute;
    api->retention.run_max_age_ms = cfg->test_run_retention_ms;
    api->retention.run_keep = cfg->test_run_keep;
    api->retention.perf_max_age_ms = cfg->perf_result_retention_ms;
    api->retention.perf_keep = cfg->perf_result_keep;
    pthread_mutex_init(&api->retention.mu, NULL);
    api->limiter = mk_identity_limiter_new();
    api->started_ms = mk_mock_now_ms();
    api->namespaces = mk_strmap_new();
    api->sched = mk_api_sched_new();
    pthread_mutex_init(&api->write_lock, NULL);
    pthread_mutex_init(&api->fault_mu, NULL);
    if (api->namespaces)
        mk_strmap_set(api->namespaces, MK_STR_LIT(MK_MOCK_DEFAULT_NAMESPACE), (void *)1);
    mk_err_t err;
    if (api->namespaces == NULL || api->limiter == NULL || api->sched == NULL ||
        compile_table(api, &err) != 0) {
        mk_api_free(api);
        return NULL;
    }
    return api;
}

void mk_api_free(mk_api_t *api)
{
    if (api == NULL)
        return;
    mk_api_identity_free(api);
    mk_api_sched_free(api->sched);
    mk_api_perf_free(api);
    mk_api_recorder_free(api);
    free(api->token);
    mk_strmap_free(api->namespaces);
    mk_route_index_free(api->by_method);
    mk_route_index_free(api->by_path);
    free(api->groups);
    pthread_mutex_destroy(&api->write_lock);
    pthread_mutex_destroy(&api->fault_mu);
    pthread_mutex_destroy(&api->retention.mu);
    free(api);
}

static int load_one(void *ud, const mk_repo_mock_t *row)
{
    return mk_mock_loader_add(ud, row->json, row->uses, row->last_use);
}

static int load_ns(void *ud, const char *name, int64_t created_at)
{
    (void)created_at;
    return mk_strmap_set(ud, mk_str_of(name), (void *)1);
}

int mk_api_load(mk_api_t *api, mk_err_t *err)
{
    if (mk_api_identity_start(api, err) != 0)
        return err->code;
    mk_mock_loader_t *loader = mk_mock_loader_new();
    if (loader == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory loading mocks");
    int rc = mk_repo_load_mocks(api->repo, 0, load_one, loader, err);
    if (rc == MK_ENOMEM)
        mk_err_set(err, MK_ENOMEM, "out of memory loading mocks");
    if (rc == 0)
        rc = mk_repo_list_namespaces(api->repo, load_ns, api->namespaces, err);
    mk_mock_t **mocks = NULL;
    size_t n = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (rc == 0 && mk_mock_loader_run(loader, cpus > 0 ? (unsigned)cpus : 1, &mocks, &n, NULL))
        rc = mk_err_set(err, MK_ENOMEM, "out of memory loading mocks");
    mk_mock_loader_free(loader);
    /* The catalog takes the references over, also when it fails. */
    if (rc == 0 && n > 0)
        rc = mk_catalog_put(api->catalog, mocks, n, NULL, err);
    free(mocks);
    return rc;
}

void mk_api_maintain(mk_api_t *api)
{
    mk_catalog_usage_t *u;
    size_t n = mk_catalog_take_usage(api->catalog, &u);
    if (n) {
        mk_repo_usage_t *rows = malloc(n * sizeof *rows);
        if (rows) {
            for (size_t i = 0; i < n; i++)
                rows[i] = (mk_repo_usage_t){u[i].id, u[i].uses, u[i].last_use};
            mk_repo_update_usage(api->repo, rows, n, NULL);
            free(rows);
        }
    }
    mk_catalog_usage_free(u, n);
    mk_catalog_reclaim(api->catalog);
    mk_api_identity_maintain(api);
    mk_api_sched_tick(api, mk_mock_now_ms());
    mk_api_perf_maintain(api);
    mk_api_retention_maintain(api, mk_mock_now_ms());
}

/* --- request helpers --- */

/* A NUL-terminated copy of s in the request's memory. */
static char *req_strdup(ctx_t *c, mk_str_t s)
{
    char *p = mk_httpd_req_alloc(c->req, s.len + 1);
    memcpy(p, s.base, s.len);
    p[s.len] = '\0';
    return p;
}

const char *mk_api_query(ctx_t *c, const char *name)
{
    mk_str_t v;
    if (!mk_request_query_param(c->view, mk_str_of(name), &v) || v.len == 0)
        return NULL;
    return req_strdup(c, v);
}

size_t mk_api_query_size(ctx_t *c, const char *name, size_t def, size_t max)
{
    const char *v = mk_api_query(c, name);
    if (v == NULL)
        return def;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 0)
        return def;
    return (size_t)n > max ? max : (size_t)n;
}

const char *mk_api_param(ctx_t *c, const char *name)
{
    for (size_t i = 0; i < c->match.nparams; i++) {
        if (!mk_str_eq_cstr(c->match.names[i], name))
            continue;
        mk_str_t raw = c->match.values[i];
        char *out = mk_httpd_req_alloc(c->req, raw.len + 1);
        size_t n = mk_str_url_decode(raw, out, false);
        out[n] = '\0';
        return out;
    }
    return "";
}

const char *mk_api_namespace(ctx_t *c, json_t *body)
{
    const char *ns = mk_api_query(c, "namespace");
    json_t *bns = json_is_object(body) ? json_object_get(body, "namespace") : NULL;
    mk_str_t h;
    if (ns == NULL && json_is_string(bns) && json_string_length(bns) > 0)
        ns = req_strdup(c, (mk_str_t){json_string_value(bns), json_string_length(bns)});
    if (ns == NULL && mk_request_header(c->view, MK_STR_LIT("X-Namespace"), &h) && h.len > 0)
        ns = req_strdup(c, h);
    if (ns == NULL)
        ns = MK_MOCK_DEFAULT_NAMESPACE;
    mk_err_t err;
    if (mk_mock_validate_namespace(ns, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    /* The caller named it: a role too low, or none, is a 403 that names the permission. */
    if (!mk_api_may(c, c->ep->permission, ns)) {
        mk_api_reply_fmt(c, MK_EFORBIDDEN, "namespace '%s': %s needs permission %s there", ns,
                         c->who.login, c->ep->permission);
        return NULL;
    }
    c->ns = ns;
    return ns;
}

int mk_api_parse_body(ctx_t *c, json_t **out)
{
    json_error_t jerr;
    *out = NULL;
    if (c->view->body.len == 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "request body: empty, expected JSON");
    *out = json_loadb(c->view->body.base, c->view->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL)
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "request body: malformed JSON at line %d column %d: %s", jerr.line,
                                jerr.column, jerr.text);
    return 0;
}

json_t *mk_api_body_ids(ctx_t *c, json_t *body, const char *key)
{
    json_t *ids = json_is_object(body) ? json_object_get(body, key) : NULL;
    if (!json_is_array(ids)) {
        mk_api_reply_fmt(c, MK_EINVAL, "%s: required, an array of ids", key);
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_string(v)) {
            mk_api_reply_fmt(c, MK_EINVAL, "%s[%zu]: must be a string", key, i);
            return NULL;
        }
    }
    return ids;
}

/* --- write health --- */

void mk_api_note_write(mk_api_t *api, int rc, const mk_err_t *err)
{
    /* Bad input is the caller's fault, not the storage's. */
    if (rc == MK_EINVAL || rc == MK_ENOTFOUND || rc == MK_ECONFLICT || rc == MK_ETOOBIG)
        return;
    pthread_mutex_lock(&api->fault_mu);
    if (rc == 0) {
        api->write_fault_ms = 0;
    } else {
        api->write_fault_ms = mk_mock_now_ms();
        snprintf(api->write_fault, sizeof api->write_fault, "%.500s",
                 err && err->msg[0] ? err->msg : "write failed");
    }
    pthread_mutex_unlock(&api->fault_mu);
}

bool mk_api_writes_failing(mk_api_t *api, char *why, size_t size)
{
    pthread_mutex_lock(&api->fault_mu);
    bool failing =
        api->write_fault_ms != 0 && mk_mock_now_ms() - api->write_fault_ms < MK_API_WRITE_FAULT_MS;
    if (failing && why && size)
        snprintf(why, size, "%s", api->write_fault);
    pthread_mutex_unlock(&api->fault_mu);
    return failing;
}

/* --- documents --- */

static int doc_collect(void *ud, const mk_repo_doc_t *doc)
{
    json_t *v = json_loads(doc->json, JSON_DECODE_ANY, NULL);
    return json_array_append_new(ud, v ? v : json_string(doc->json)) ? MK_ENOMEM : 0;
}

int mk_api_docs_list(mk_api_t *api, const char *kind, const char *prefix, json_t **out,
                     mk_err_t *err)
{
    *out = json_array();
    int rc = mk_repo_list_docs(api->repo, kind, prefix, doc_collect, *out, err);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int mk_api_doc_put(mk_api_t *api, const char *kind, const char *id, const char *ns,
                   const json_t *doc, mk_err_t *err)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_repo_doc_t row = {kind, id, ns ? ns : "", text, mk_mock_now_ms()};
    int rc = mk_repo_put_docs(api->repo, &row, 1, err);
    mk_api_note_write(api, rc, err);
    free(text);
    return rc;
}

/* --- dispatch --- */

/* The credential a request carries: a bearer token, X-API-Key, or the session cookie. */
static mk_str_t credential(mk_request_t *view, bool *cookie)
{
    mk_str_t v, values[8];
    *cookie = false;
    if (mk_request_header(view, MK_STR_LIT("Authorization"), &v) && v.len > 7 &&
        mk_str_caseeq((mk_str_t){v.base, 7}, MK_STR_LIT("Bearer ")))
        return (mk_str_t){v.base + 7, v.len - 7};
    if (mk_request_header(view, MK_STR_LIT("X-API-Key"), &v) && v.len > 0)
        return v;
    size_t n = mk_request_header_values(view, MK_STR_LIT("Cookie"), values, 8);
    for (size_t i = 0; i < n && i < 8; i++) {
        const char *s = values[i].base, *end = s + values[i].len;
        while (s < end) {
            while (s < end && (*s == ' ' || *s == ';'))
                s++;
            const char *stop = memchr(s, ';', (size_t)(end - s));
            if (stop == NULL)
                stop = end;
            size_t klen = sizeof MK_API_SESSION_COOKIE - 1;
            if ((size_t)(stop - s) > klen + 1 && memcmp(s, MK_API_SESSION_COOKIE, klen) == 0 &&
                s[klen] == '=') {
                *cookie = true;
                return (mk_str_t){s + klen + 1, (size_t)(stop - s) - klen - 1};
            }
            s = stop;
        }
    }
    return (mk_str_t){NULL, 0};
}

/* Who is calling. Without authentication required, a caller without valid credentials is an
 * anonymous administrator (the single-user laptop setup); valid credentials still identify. */
static int authenticate(mk_api_t *api, mk_request_t *view, mk_identity_principal_t *who,
                        bool *cookie, mk_err_t *err)
{
    mk_str_t given = credential(view, cookie);
    int rc;
    memset(who, 0, sizeof *who);
    if (given.base == NULL) {
        rc = mk_err_set(err, MK_EUNAUTH,
                        "missing credentials: send Authorization: Bearer <token>, X-API-Key, or "
                        "log in (POST /api/v1/login)");
    } else if (api->token && mk_identity_equal(given.base, given.len, api->token,
                                               strlen(api->token))) {
        who->kind = MK_PRINCIPAL_BOOTSTRAP;
        who->admin = true;
        strcpy(who->login, "api_token");
        return 0;
    } else if (api->identity == NULL) {
        rc = mk_err_set(err, MK_EUNAUTH, "missing or invalid API token (Authorization: Bearer "
                                         "<token> or X-API-Key)");
    } else {
        rc = mk_identity_authenticate(api->identity, given.base, given.len, mk_mock_now_ms(), who,
                                      err);
    }
    if (rc != 0 && !api->auth_required) {
        memset(who, 0, sizeof *who);
        who->kind = MK_PRINCIPAL_ANONYMOUS;
        who->admin = true;
        strcpy(who->login, "anonymous");
        *cookie = false;
        return 0;
    }
    return rc;
}

static bool authenticated(mk_api_t *api, mk_request_t *view)
{
    mk_identity_principal_t who;
    bool cookie;
    mk_err_t err;
    return authenticate(api, view, &who, &cookie, &err) == 0;
}

bool mk_api_caller_may_read(mk_api_t *api, mk_request_t *view)
{
    mk_identity_principal_t who;
    bool cookie;
    mk_err_t err;
    if (authenticate(api, view, &who, &cookie, &err) != 0)
        return false;
    return who.admin || (api->identity && mk_identity_may(api->identity, &who, "mocks:read", NULL));
}

bool mk_api_may(ctx_t *c, const char *perm, const char *ns)
{
    if (c->api->identity == NULL)
        return c->who.admin;
    return mk_identity_may(c->api->identity, &c->who, perm, ns);
}

int mk_api_guard_ns(ctx_t *c, const char *ns)
{
    if (mk_api_may(c, c->ep->permission, ns)) {
        mk_api_note_ns(c, ns);
        return 0;
    }
    if (c->api->identity == NULL ||
        mk_identity_role_in(c->api->identity, &c->who, ns) == MK_ROLE_NONE)
        return MK_ENOTFOUND;
    mk_api_reply_fmt(c, MK_EFORBIDDEN, "namespace '%s': %s needs permission %s there", ns,
                     c->who.login, c->ep->permission);
    return MK_EFORBIDDEN;
}

/* Cookie sessions are what a browser sends by itself: a write must come from our own origin. */
static bool same_origin(mk_httpd_req_t *req, mk_request_t *view)
{
    char authority[256];
    mk_httpd_req_authority(req, authority, sizeof authority);
    mk_str_t host = mk_str_of(authority), v;
    if (host.len == 0)
        return false;
    if (!mk_request_header(view, MK_STR_LIT("Origin"), &v) &&
        !mk_request_header(view, MK_STR_LIT("Referer"), &v))
        return false;
    const char *s = memmem(v.base, v.len, "://", 3);
    if (s == NULL)
        return false;
    s += 3;
    const char *end = v.base + v.len;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    mk_str_t origin_host = {s, (size_t)((slash ? slash : end) - s)};
    return mk_str_caseeq(origin_host, host);
}

static bool is_write(mk_str_t method)
{
    return !mk_str_eq_cstr(method, "GET") && !mk_str_eq_cstr(method, "HEAD") &&
           !mk_str_eq_cstr(method, "OPTIONS");
}

/* Takes one from key's bucket; when empty, adds Retry-After and returns true. */
static bool limited(ctx_t *c, const char *key, double per_minute, int64_t burst)
{
    int wait = mk_identity_limiter_take(c->api->limiter, key, per_minute, (double)burst,
                                        mk_mock_now_ms());
    if (wait <= 0)
        return false;
    char after[16];
    snprintf(after, sizeof after, "%d", wait);
    mk_httpd_add_header(c->req, MK_STR_LIT("Retry-After"), mk_str_of(after));
    return true;
}

/* Authentication, CSRF, the token's rate limit and the row's permission "in some namespace";
 * the namespace itself is checked where the handler learns it (mk_api_namespace,
 * mk_api_guard_ns). Returns 0, or the status of the refusal it sent. */
static int admit(ctx_t *c)
{
    mk_err_t err;
    if (authenticate(c->api, c->view, &c->who, &c->via_cookie, &err) != 0) {
        if (c->ep->flags & MK_API_PUBLIC) {
            memset(&c->who, 0, sizeof c->who);
            strcpy(c->who.login, "anonymous");
            return 0;
        }
        return mk_api_reply_error(c->req, err.code, err.msg);
    }
    if (c->via_cookie && is_write(c->view->method) && !same_origin(c->req, c->view))
        return mk_api_reply_error(c->req, MK_EFORBIDDEN,
                                  "a cookie session's write must come with a same-origin Origin "
                                  "or Referer header (CSRF protection)");
    /* Rates are charged once, on the serving loop (where the client's address is known), not
     * again when a heavy row runs on the pool. */
    char peer[64];
    mk_httpd_req_peer(c->req, peer, sizeof peer);
    bool token = c->who.kind == MK_PRINCIPAL_TOKEN || c->who.kind == MK_PRINCIPAL_INTEGRATION;
    if (peer[0] && token) {
        int64_t rate = c->who.rate_per_minute ? c->who.rate_per_minute : c->api->token_rate;
        char key[64];
        snprintf(key, sizeof key, "token:%s", c->who.cred_id);
        if (limited(c, key, rate, rate))
            return mk_api_reply_fmt(c, MK_ERATE, "token rate limit (%lld per minute) reached",
                                    (long long)rate);
        /* Hourly and daily limits are buckets that refill over the hour and the day. */
        const int64_t spans[2] = {60, 24 * 60}, caps[2] = {c->who.rate_per_hour,
                                                            c->who.rate_per_day};
        for (int i = 0; i < 2; i++) {
            snprintf(key, sizeof key, "token-%c:%s", i ? 'd' : 'h', c->who.cred_id);
            if (caps[i] > 0 && limited(c, key, (double)caps[i] / (double)spans[i], caps[i]))
                return mk_api_reply_fmt(c, MK_ERATE, "token rate limit (%lld per %s) reached",
                                        (long long)caps[i], i ? "day" : "hour");
        }
    }
    if (peer[0] && (c->ep->flags & MK_API_CLIENT_LIMIT)) {
        char key[80];
        snprintf(key, sizeof key, "client:%s", peer);
        if (limited(c, key, (double)c->api->login_rate, c->api->login_rate))
            return mk_api_reply_fmt(c, MK_ERATE,
                                    "too many attempts from %s (%lld per minute): retry later",
                                    peer, (long long)c->api->login_rate);
    }
    if (!(c->ep->flags & MK_API_PUBLIC) && !mk_api_may(c, c->ep->permission, NULL))
        return mk_api_reply_fmt(c, MK_EFORBIDDEN, "%s %s needs permission %s, which %s lacks",
                                c->ep->method, c->ep->path, c->ep->permission, c->who.login);
    return 0;
}

static int dispatch(mk_api_t *api, mk_httpd_req_t *req, mk_request_t *view, bool may_offload);

/* A heavy row's handler on a pool thread: its request is a copy, so the route is looked up again
 * in that copy (the original's path may be gone if the client left). */
static void heavy_work(void *ud, mk_httpd_req_t *wreq)
{
    mk_request_t view;
    mk_httpd_req_view(wreq, &view);
    dispatch(ud, wreq, &view, false);
    mk_request_release(&view);
}

static int dispatch(mk_api_t *api, mk_httpd_req_t *req, mk_request_t *view, bool may_offload)
{
    ctx_t *c = mk_httpd_req_alloc(req, sizeof *c);
    *c = (ctx_t){.api = api, .req = req, .view = view};
    mk_route_iter_t it;
    mk_route_lookup(api->by_method, view->method, view->path, &it);
    if (mk_route_next(&it, &c->match)) {
        c->ep = c->match.value;
    } else {
        mk_route_lookup(api->by_path, view->method, view->path, &it);
        mk_route_match_t m;
        if (!mk_route_next(&it, &m))
            return 0;
        if (!authenticated(api, view))
            goto unauthorized;
        const path_group_t *g = m.value;
        mk_httpd_add_header(req, MK_STR_LIT("Allow"), mk_str_of(g->allow));
        return mk_api_reply_fmt(c, MK_EMETHOD, "method %.*s not allowed on %s (allowed: %s)",
                                (int)view->method.len, view->method.base, g->path, g->allow);
    }
    int denied = admit(c);
    if (denied)
        return denied;
    /* Scans run on the pool, so a mock call on this worker does not wait behind them. */
    if (may_offload && (c->ep->flags & MK_API_HEAVY)) {
        mk_httpd_offload(req, heavy_work, api);
        return MK_API_DEFERRED;
    }
    return mk_api_audit_call(c, c->ep->fn(c));
unauthorized:
    return mk_api_reply_error(req, MK_EUNAUTH,
                              "missing or invalid API token (Authorization: Bearer <token> "
                              "or X-API-Key)");
}

int mk_api_handle(mk_api_t *api, mk_httpd_req_t *req, mk_request_t *view)
{
    return dispatch(api, req, view, true);
}
