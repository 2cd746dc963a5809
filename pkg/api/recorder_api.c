/* Record and playback (Mockarty's /api/v1/recorder/...) and the per-namespace fallback proxy.
 *
 * A recording session is a proxy mock of its own (id "recorder-<session>", ANY method on the
 * session's path prefix followed by the `*` wildcard, highest priority) whose proxy carries
 * `record`: serving forwards each request to the session's target and hands the exchange to
 * mk_api_recorder_record on the worker thread, which filters, redacts and appends it in memory.
 * Sessions and their entries are repository documents ("recorder_session", "recorder_entries"),
 * written when the session stops and when entries are read or converted. Converting turns the
 * entries into mocks: one per method, route and query, the route parametrised (`:id`) where
 * asked, repeated exchanges with different answers played back in order (oneOf), credentials
 * dropped.
 *
 * The fallback proxy of a namespace is a proxy mock too (id "fallback-proxy.<namespace>", ANY
 * method on the wildcard route of every path, lowest priority): whatever no other mock of the
 * namespace answers goes upstream. */
#include "api/api_internal.h"

#include "grpc/grpc_frame.h"
#include "httpclient/fetch.h"
#include "mock/mock_proxy.h"
#include "repo/repo.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SESSION_KIND      "recorder_session"
#define ENTRIES_KIND      "recorder_entries"
#define MAX_ENTRIES       10000
#define MAX_SESSION_BYTES ((size_t)64 << 20)
#define MAX_BODY_KEPT     ((size_t)1 << 20)
#define RECORDER_PRIORITY 1000000000
#define FALLBACK_PRIORITY (-1000000000)
#define REDACTED          "[REDACTED]"

static const char *const default_redact[] = {"Authorization", "Cookie", "Set-Cookie"};

typedef struct session {
    struct session *next;
    char id[65];
    json_t *meta;    /* the session document; NULL until known (entries came first) */
    json_t *entries; /* array */
    size_t bytes, dropped;
    bool dirty; /* entries not yet written */
} session_t;

struct mk_api_recorder {
    session_t *sessions;
    bool loaded; /* the repository's sessions were read */
};

/* One lock for the recorder of every API object: sessions are few, and only recorded requests
 * and recorder calls take it, never a plain mock request. */
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

static session_t *session_find(struct mk_api_recorder *r, const char *id)
{
    for (session_t *s = r->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static session_t *session_add(struct mk_api_recorder *r, const char *id)
{
    session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->entries = json_array();
    s->next = r->sessions;
    r->sessions = s;
    return s;
}

static void session_free(session_t *s)
{
    json_decref(s->meta);
    json_decref(s->entries);
    free(s);
}

/* The recorder of api (created on first use); under rec_mu. */
static struct mk_api_recorder *recorder_of(mk_api_t *api)
{
    if (api->recorder == NULL)
        api->recorder = calloc(1, sizeof *api->recorder);
    return api->recorder;
}

void mk_api_recorder_free(mk_api_t *api)
{
    struct mk_api_recorder *r = api->recorder;
    if (r == NULL)
        return;
    while (r->sessions) {
        session_t *s = r->sessions;
        r->sessions = s->next;
        session_free(s);
    }
    free(r);
    api->recorder = NULL;
}

/* ---- the sink (worker threads) ---- */

static bool listed_ci(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void redact(json_t *headers, const json_t *names)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(headers, tmp, k, v)
    {
        bool hit = names ? listed_ci(names, k) : false;
        for (size_t i = 0; names == NULL && i < sizeof default_redact / sizeof *default_redact; i++)
            hit = hit || strcasecmp(k, default_redact[i]) == 0;
        if (hit)
            json_object_set_new(headers, k, json_string(REDACTED));
    }
}

/* Whether the session's filters keep entry e: methods, a path prefix, path substrings left out. */
static bool kept(const json_t *meta, const json_t *e)
{
    const json_t *f = json_object_get(meta, "filters");
    const char *method = json_string_value(json_object_get(e, "method"));
    const char *path = json_string_value(json_object_get(e, "path"));
    json_t *methods = json_object_get(f, "methods");
    if (json_array_size(methods) > 0 && !listed_ci(methods, method ? method : ""))
        return false;
    const char *prefix = json_string_value(json_object_get(f, "pathPrefix"));
    if (prefix && path && strncmp(path, prefix, strlen(prefix)) != 0)
        return false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(f, "excludePaths"), i, x)
    {
        if (json_is_string(x) && path && strstr(path, json_string_value(x)))
            return false;
    }
    return true;
}

static size_t entry_bytes(const json_t *e)
{
    return json_string_length(json_object_get(e, "requestBody")) +
           json_string_length(json_object_get(e, "responseBody")) + 512;
}

void mk_api_recorder_record(void *ud, const char *session, json_t *entry)
{
    mk_api_t *api = ud;
    pthread_mutex_lock(&rec_mu);
    struct mk_api_recorder *r = recorder_of(api);
    session_t *s = r ? session_find(r, session) : NULL;
    if (r != NULL && s == NULL)
        s = session_add(r, session); /* recording since before a restart: kept until known */
    if (s == NULL)
        goto out;
    if (s->meta != NULL) {
        if (strcmp(json_string_value(json_object_get(s->meta, "status")), "recording") != 0 ||
            !kept(s->meta, entry))
            goto out;
    }
    size_t bytes = entry_bytes(entry);
    if (json_array_size(s->entries) >= MAX_ENTRIES || s->bytes + bytes > MAX_SESSION_BYTES ||
        bytes > 2 * MAX_BODY_KEPT + 512) {
        s->dropped++;
        goto out;
    }
    json_t *redact_names = json_object_get(s->meta, "redactHeaders");
    if (!json_is_false(json_object_get(s->meta, "redact"))) {
        redact(json_object_get(entry, "requestHeaders"),
               json_is_array(redact_names) ? redact_names : NULL);
        redact(json_object_get(entry, "responseHeaders"),
               json_is_array(redact_names) ? redact_names : NULL);
    }
    json_array_append(s->entries, entry);
    s->bytes += bytes;
    s->dirty = true;
out:
    pthread_mutex_unlock(&rec_mu);
}

/* ---- persistence (pool threads) ---- */

typedef struct load_ctx {
    struct mk_api_recorder *r;
} load_ctx_t;

static int load_doc(void *ud, const mk_repo_doc_t *doc)
{
    load_ctx_t *l = ud;
    json_t *j = json_loads(doc->json, 0, NULL);
    if (j == NULL)
        return 0;
    bool is_meta = strcmp(doc->kind, SESSION_KIND) == 0;
    session_t *s = session_find(l->r, doc->id);
    if (s == NULL)
        s = session_add(l->r, doc->id);
    if (s == NULL) {
        json_decref(j);
        return MK_ENOMEM;
    }
    if (is_meta) {
        json_decref(s->meta);
        s->meta = j;
        return 0;
    }
    /* Stored entries come first, those recorded since the restart after them. */
    json_t *all = json_object_get(j, "entries");
    if (json_is_array(all)) {
        json_array_extend(all, s->entries);
        json_decref(s->entries);
        s->entries = json_incref(all);
        size_t i;
        json_t *e;
        s->bytes = 0;
        json_array_foreach(all, i, e) s->bytes += entry_bytes(e);
    }
    json_decref(j);
    return 0;
}

/* Reads the stored sessions once; then returns the recorder, locked (unlock with rec_mu). */
static struct mk_api_recorder *recorder_lock(mk_api_t *api, mk_err_t *err)
{
    pthread_mutex_lock(&rec_mu);
    struct mk_api_recorder *r = recorder_of(api);
    if (r == NULL) {
        pthread_mutex_unlock(&rec_mu);
        mk_err_set(err, MK_ENOMEM, "out of memory");
        return NULL;
    }
    if (!r->loaded) {
        load_ctx_t l = {r};
        if (mk_repo_list_docs(api->repo, SESSION_KIND, NULL, load_doc, &l, err) != 0 ||
            mk_repo_list_docs(api->repo, ENTRIES_KIND, NULL, load_doc, &l, err) != 0) {
            pthread_mutex_unlock(&rec_mu);
            return NULL;
        }
        r->loaded = true;
    }
    return r;
}

static const char *session_ns(const session_t *s)
{
    const char *ns = json_string_value(json_object_get(s->meta, "namespace"));
    return ns ? ns : MK_MOCK_DEFAULT_NAMESPACE;
}

/* Writes the session document and, when they changed, its entries; under rec_mu. */
static int session_save(mk_api_t *api, session_t *s, mk_err_t *err)
{
    json_object_set_new(s->meta, "entryCount",
                        json_integer((json_int_t)json_array_size(s->entries)));
    json_object_set_new(s->meta, "dropped", json_integer((json_int_t)s->dropped));
    char *meta = json_dumps(s->meta, JSON_COMPACT);
    json_t *wrap = s->dirty ? json_pack("{s:O}", "entries", s->entries) : NULL;
    char *entries = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
    json_decref(wrap);
    int64_t now = mk_mock_now_ms();
    mk_repo_doc_t docs[2] = {
        {SESSION_KIND, s->id, session_ns(s), meta, now},
        {ENTRIES_KIND, s->id, session_ns(s), entries, now},
    };
    int rc;
    if (meta == NULL || (s->dirty && entries == NULL))
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    else
        rc = mk_repo_put_docs(api->repo, docs, s->dirty ? 2 : 1, err);
    mk_api_note_write(api, rc, err);
    if (rc == 0)
        s->dirty = false;
    free(meta);
    free(entries);
    return rc;
}

/* ---- the mocks behind sessions and fallbacks ---- */

/* Stores def as a mock of ns (replacing one of the same id); caller holds write_lock. */
static int put_mock(ctx_t *c, json_t *def, const char *ns, mk_err_t *err)
{
    mk_mock_t *m = NULL;
    int rc = mk_api_prepare_mock(c, def, ns, mk_mock_now_ms(), &m, err);
    bool replaced = false;
    if (rc == 0) {
        mk_mock_t *old = mk_catalog_get(c->api->catalog, m->id);
        replaced = old != NULL;
        mk_mock_unref(old);
        mk_mock_ref(m);
        rc = mk_api_commit_mocks(c->api, &m, 1, &replaced, err);
        if (rc != 0)
            mk_mock_unref(m);
    }
    if (rc == 0)
        mk_api_mock_events(c->api, &m, 1, true);
    else
        mk_mock_unref(m);
    return rc;
}

/* Soft-deletes the live mock id (nothing when absent); caller holds write_lock. */
static int close_mock(ctx_t *c, const char *id, mk_err_t *err)
{
    mk_mock_t *m = mk_catalog_get(c->api->catalog, id);
    if (m == NULL || m->closed_at != 0) {
        mk_mock_unref(m);
        return 0;
    }
    json_t *def = mk_mock_definition(m);
    json_object_set_new(def, "closedAt", json_integer(mk_mock_now_ms()));
    mk_mock_t *next = NULL;
    int rc = mk_mock_load(def, atomic_load(&m->uses), atomic_load(&m->last_use), &next, err);
    json_decref(def);
    mk_mock_unref(m);
    if (rc == 0)
        rc = mk_api_commit_mocks(c->api, &next, 1, NULL, err);
    if (rc != 0)
        mk_mock_unref(next);
    return rc;
}

/* The proxy options a caller may set on a session or fallback, copied from body into proxy. */
static void copy_proxy_opts(json_t *proxy, const json_t *body)
{
    static const char *const opts[] = {"insecure", "timeout", "connectTimeout", "headers",
                                       "removeHeaders"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        json_t *v = json_object_get(body, opts[i]);
        if (v != NULL)
            json_object_set(proxy, opts[i], v);
    }
}

static json_t *recording_mock(const session_t *s)
{
    const char *prefix = json_string_value(json_object_get(s->meta, "pathPrefix"));
    char route[512];
    size_t n = strlen(prefix);
    snprintf(route, sizeof route, "%.*s/*", (int)(n && prefix[n - 1] == '/' ? n - 1 : n), prefix);
    char id[96];
    snprintf(id, sizeof id, "recorder-%s", s->id);
    json_t *proxy = json_pack("{s:O, s:s, s:[s]}", "target", json_object_get(s->meta, "targetUrl"),
                              "record", s->id, "removeHeaders", "Accept-Encoding");
    copy_proxy_opts(proxy, json_object_get(s->meta, "proxy"));
    /* Compressed answers would be recorded as opaque bytes: ask for plain ones. */
    json_t *rm = json_object_get(proxy, "removeHeaders");
    if (json_is_array(rm) && !listed_ci(rm, "Accept-Encoding"))
        json_array_append_new(rm, json_string("Accept-Encoding"));
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:i, s:[s]}", "id", id, "http", "httpMethod", "ANY",
                     "route", route, "proxy", proxy, "priority", RECORDER_PRIORITY, "tags",
                     "recorder");
}

/* ---- endpoints ---- */

/* The session named by the path, locked; answers 404 (and unlocks) when absent. */
static session_t *session_locked(ctx_t *c, struct mk_api_recorder **rp)
{
    mk_err_t err;
    struct mk_api_recorder *r = recorder_lock(c->api, &err);
    if (r == NULL) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    session_t *s = session_find(r, mk_api_param(c, "id"));
    int guard = s && s->meta ? mk_api_guard_ns(c, session_ns(s)) : MK_ENOTFOUND;
    if (guard != 0) {
        pthread_mutex_unlock(&rec_mu);
        if (guard == MK_ENOTFOUND)
            mk_api_reply_fmt(c, MK_ENOTFOUND, "recorder session '%s' not found",
                             mk_api_param(c, "id"));
        return NULL;
    }
    *rp = r;
    return s;
}

static json_t *session_view(const session_t *s)
{
    json_t *v = json_deep_copy(s->meta);
    json_object_set_new(v, "entryCount", json_integer((json_int_t)json_array_size(s->entries)));
    json_object_set_new(v, "dropped", json_integer((json_int_t)s->dropped));
    return v;
}

static bool http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

static int set_recording(ctx_t *c, session_t *s, bool on, mk_err_t *err)
{
    char id[96];
    snprintf(id, sizeof id, "recorder-%s", s->id);
    pthread_mutex_lock(&c->api->write_lock);
    int rc;
    if (on) {
        json_t *def = recording_mock(s);
        rc = def ? put_mock(c, def, session_ns(s), err)
                 : mk_err_set(err, MK_ENOMEM, "out of memory");
        json_decref(def);
    } else {
        rc = close_mock(c, id, err);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    if (rc == 0) {
        json_object_set_new(s->meta, "status", json_string(on ? "recording" : "stopped"));
        json_object_set_new(s->meta, on ? "startedAt" : "stoppedAt",
                            json_integer(mk_mock_now_ms()));
    }
    return rc;
}

static int check_filters(ctx_t *c, const json_t *f)
{
    if (f == NULL || json_is_null(f))
        return 0;
    if (!json_is_object(f))
        return mk_api_reply_fmt(c, MK_EINVAL, "filters: must be an object");
    json_t *m = json_object_get(f, "methods"), *x = json_object_get(f, "excludePaths");
    json_t *p = json_object_get(f, "pathPrefix");
    if ((m && !json_is_array(m)) || (x && !json_is_array(x)) || (p && !json_is_string(p)))
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "filters: methods and excludePaths are arrays of strings, "
                                "pathPrefix a string");
    return 0;
}

static int recorder_start(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status;
    const char *ns = mk_api_namespace(c, body);
    const char *target = json_string_value(json_object_get(body, "targetUrl"));
    if (target == NULL)
        target = json_string_value(json_object_get(body, "target"));
    const char *prefix = json_string_value(json_object_get(body, "pathPrefix"));
    json_t *redact_names = json_object_get(body, "redactHeaders");
    json_t *redact_on = json_object_get(body, "redact");
    if (ns == NULL) {
        json_decref(body);
        return 400;
    }
    if (!http_url(target)) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "targetUrl: required, an http:// or https:// URL");
        goto out;
    }
    if (prefix != NULL && prefix[0] != '/') {
        status = mk_api_reply_fmt(c, MK_EINVAL, "pathPrefix: must start with '/'");
        goto out;
    }
    if ((redact_names && !json_is_array(redact_names)) ||
        (redact_on && !json_is_boolean(redact_on))) {
        status = mk_api_reply_fmt(c, MK_EINVAL,
                                  "redact is true or false, redactHeaders an array of names");
        goto out;
    }
    if ((status = check_filters(c, json_object_get(body, "filters"))) != 0)
        goto out;
    char sid[40];
    mk_mock_new_id(sid);
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *meta =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", sid, "name", name ? name : sid,
                  "targetUrl", target, "status", "idle", "namespace", ns, "pathPrefix",
                  prefix ? prefix : "/", "createdAt", (json_int_t)mk_mock_now_ms());
    static const char *const copied[] = {"filters", "redact", "redactHeaders"};
    for (size_t i = 0; meta && i < sizeof copied / sizeof *copied; i++)
        if (json_object_get(body, copied[i]))
            json_object_set(meta, copied[i], json_object_get(body, copied[i]));
    json_t *proxy = json_object();
    copy_proxy_opts(proxy, body);
    json_object_set_new(meta, "proxy", proxy);
    mk_err_t err;
    struct mk_api_recorder *r = recorder_lock(c->api, &err);
    if (r == NULL) {
        json_decref(meta);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    session_t *s = session_add(r, sid);
    if (s == NULL || meta == NULL) {
        pthread_mutex_unlock(&rec_mu);
        json_decref(meta);
        status = mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
        goto out;
    }
    s->meta = meta;
    int rc = set_recording(c, s, true, &err);
    if (rc == 0 && (rc = session_save(c->api, s, &err)) != 0) {
        /* Not saved: the recording mock must not go on proxying for a session nobody sees. */
        mk_err_t ignored;
        set_recording(c, s, false, &ignored);
    }
    if (rc != 0) {
        /* The proxy options were refused (a bad timeout, a header), or the database: no session. */
        r->sessions = s->next;
        session_free(s);
        pthread_mutex_unlock(&rec_mu);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    json_t *view = session_view(s);
    pthread_mutex_unlock(&rec_mu);
    status = mk_api_reply_json(c->req, 201, view);
out:
    json_decref(body);
    return status;
}

static int cmp_created(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "createdAt"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "createdAt"));
    return x < y ? -1 : x > y;
}

static int recorder_list(ctx_t *c)
{
    mk_err_t err;
    struct mk_api_recorder *r = recorder_lock(c->api, &err);
    if (r == NULL)
        return mk_api_reply_err(c, &err);
    json_t *list = json_array();
    for (session_t *s = r->sessions; s; s = s->next)
        if (s->meta && mk_api_may(c, "mocks:read", session_ns(s)))
            json_array_append_new(list, session_view(s));
    pthread_mutex_unlock(&rec_mu);
    size_t n = json_array_size(list);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++)
        items[i] = json_array_get(list, i);
    if (items)
        qsort(items, n, sizeof *items, cmp_created);
    json_t *sorted = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append(sorted, items[i]);
    free(items);
    json_decref(list);
    /* A bare array, as the SDKs read it. */
    return mk_api_reply_json(c->req, 200, sorted);
}

static int recorder_get(ctx_t *c)
{
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL)
        return 404;
    json_t *v = session_view(s);
    pthread_mutex_unlock(&rec_mu);
    return mk_api_reply_json(c->req, 200, v);
}

static int stop_or_restart(ctx_t *c, bool on)
{
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL)
        return 404;
    mk_err_t err;
    int rc = set_recording(c, s, on, &err);
    if (rc == 0)
        rc = session_save(c->api, s, &err);
    json_t *v = rc == 0 ? session_view(s) : NULL;
    pthread_mutex_unlock(&rec_mu);
    return rc == 0 ? mk_api_reply_json(c->req, 200, v) : mk_api_reply_err(c, &err);
}

static int recorder_stop(ctx_t *c)
{
    return stop_or_restart(c, false);
}

static int recorder_restart(ctx_t *c)
{
    return stop_or_restart(c, true);
}

static int recorder_delete(ctx_t *c)
{
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL)
        return 404;
    mk_err_t err;
    char id[96];
    snprintf(id, sizeof id, "recorder-%s", s->id);
    pthread_mutex_lock(&c->api->write_lock);
    int rc = close_mock(c, id, &err);
    pthread_mutex_unlock(&c->api->write_lock);
    const char *ids[] = {s->id};
    if (rc == 0)
        rc = mk_repo_delete_docs(c->api->repo, SESSION_KIND, ids, 1, &err);
    if (rc == 0)
        rc = mk_repo_delete_docs(c->api->repo, ENTRIES_KIND, ids, 1, &err);
    mk_api_note_write(c->api, rc, &err);
    if (rc == 0) {
        for (session_t **p = &r->sessions; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
        session_free(s);
    }
    pthread_mutex_unlock(&rec_mu);
    return rc == 0 ? mk_api_reply_json(c->req, 200, json_pack("{s:b}", "deleted", 1))
                   : mk_api_reply_err(c, &err);
}

static int recorder_entries(ctx_t *c)
{
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL)
        return 404;
    mk_err_t err;
    /* Reading them is a good moment to keep them. */
    if (s->dirty && session_save(c->api, s, &err) != 0) {
        pthread_mutex_unlock(&rec_mu);
        return mk_api_reply_err(c, &err);
    }
    json_t *copy = json_deep_copy(s->entries);
    pthread_mutex_unlock(&rec_mu);
    return mk_api_reply_json(c->req, 200, copy);
}

/* ---- converting a session into mocks ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* A path segment that names one object: a number, a UUID, a long hex id. */
static bool id_like(const char *s, size_t n)
{
    if (all_digits(s, n))
        return true;
    if (n == 36 && all_hex(s, n) && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-')
        return true;
    return n >= 16 && all_hex(s, n);
}

/* path with id-like segments turned into :id, :id2, ... (when parametrise), into out. */
static void route_of(const char *path, bool parametrise, char *out, size_t size)
{
    size_t o = 0;
    int nparams = 0;
    const char *p = path;
    out[0] = '\0';
    while (*p && o + 1 < size) {
        if (*p != '/') {
            out[o++] = *p++;
            continue;
        }
        out[o++] = *p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (parametrise && n > 0 && id_like(p, n) && nparams < MK_ROUTE_MAX_PARAMS) {
            nparams++;
            int w = nparams == 1 ? snprintf(out + o, size - o, ":id")
                                 : snprintf(out + o, size - o, ":id%d", nparams);
            o += (size_t)w < size - o ? (size_t)w : size - o - 1;
            p += n;
        }
    }
    out[o < size ? o : size - 1] = '\0';
    if (out[0] == '\0')
        snprintf(out, size, "/");
}

/* Response headers worth replaying: not hop-by-hop, not framing, not redacted credentials. */
static bool replayed_header(const char *name, const json_t *redact_names, bool redact_on)
{
    static const char *const dropped[] = {"Connection",         "Keep-Alive", "Transfer-Encoding",
                                          "Content-Length",     "Date",       "Content-Encoding",
                                          "Proxy-Authenticate", "Upgrade",    "Trailer"};
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        if (strcasecmp(name, dropped[i]) == 0)
            return false;
    if (!redact_on)
        return true;
    if (json_is_array(redact_names))
        return !listed_ci(redact_names, name);
    for (size_t i = 0; i < sizeof default_redact / sizeof *default_redact; i++)
        if (strcasecmp(name, default_redact[i]) == 0)
            return false;
    return true;
}

static json_t *response_of(const json_t *e, const json_t *redact_names, bool redact_on)
{
    json_t *headers = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(e, "responseHeaders"), k, v)
    {
        if (replayed_header(k, redact_names, redact_on) && json_is_string(v) &&
            strcmp(json_string_value(v), REDACTED) != 0)
            json_object_set(headers, k, v);
    }
    json_t *r =
        json_pack("{s:O, s:o}", "statusCode", json_object_get(e, "statusCode"), "headers", headers);
    const char *body = json_string_value(json_object_get(e, "responseBody"));
    if (body && body[0] && !json_is_true(json_object_get(e, "responseBodyBase64"))) {
        json_t *doc = json_loads(body, JSON_DECODE_ANY, NULL);
        json_object_set_new(r, "payload", doc ? doc : json_string(body));
    }
    return r;
}

/* The query string as HAR's name/value list (decoded names and values); a new array. */
static json_t *query_list(const char *query)
{
    json_t *list = json_array();
    char *copy = strdup(query ? query : "");
    char *save = NULL;
    for (char *part = copy ? strtok_r(copy, "&", &save) : NULL; part;
         part = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(part, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        char name[256], val[1024];
        if (strlen(part) >= sizeof name || strlen(value) >= sizeof val)
            continue;
        name[mk_str_url_decode(mk_str_of(part), name, true)] = '\0';
        val[mk_str_url_decode(mk_str_of(value), val, true)] = '\0';
        json_array_append_new(list, json_pack("{s:s, s:s}", "name", name, "value", val));
    }
    free(copy);
    return list;
}

/* The query string as queryParams conditions. */
static json_t *query_conds(const char *query)
{
    json_t *conds = query_list(query);
    size_t i;
    json_t *q;
    json_array_foreach(conds, i, q)
    {
        json_object_set(q, "path", json_object_get(q, "name"));
        json_object_del(q, "name");
        json_object_set_new(q, "assertAction", json_string("equals"));
    }
    return conds;
}

typedef struct convert_opts {
    bool parametrise, match_query, redact_on;
    json_t *redact_names; /* borrowed */
    const char *id_prefix;
} convert_opts_t;

/* The mocks of a session's entries: one per (method, route, query); several different answers
 * become a oneOf played in recorded order. A new array. */
static json_t *convert(const json_t *entries, const convert_opts_t *o)
{
    json_t *groups = json_object(); /* key -> {"def": mock, "responses": [...]} */
    json_t *order = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        if (json_integer_value(json_object_get(e, "statusCode")) == 0)
            continue; /* the upstream never answered: nothing to replay */
        const char *method = json_string_value(json_object_get(e, "method"));
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *query = json_string_value(json_object_get(e, "query"));
        if (!method || !path)
            continue;
        char route[1024], key[2300];
        route_of(path, o->parametrise, route, sizeof route);
        snprintf(key, sizeof key, "%s %s?%s", method, route, o->match_query && query ? query : "");
        json_t *g = json_object_get(groups, key);
        json_t *resp = response_of(e, o->redact_names, o->redact_on);
        if (g == NULL) {
            json_t *http = json_pack("{s:s, s:s}", "httpMethod", method, "route", route);
            if (o->match_query && query && query[0])
                json_object_set_new(http, "queryParams", query_conds(query));
            char id[160];
            snprintf(id, sizeof id, "%s-%zu", o->id_prefix, json_array_size(order) + 1);
            g = json_pack("{s:{s:s, s:o, s:[s]}, s:[]}", "def", "id", id, "http", http, "tags",
                          "recorded", "responses");
            json_object_set_new(groups, key, g);
            json_array_append_new(order, json_string(key));
        }
        json_t *list = json_object_get(g, "responses");
        bool seen = false;
        size_t k;
        json_t *r;
        json_array_foreach(list, k, r) seen = seen || json_equal(r, resp);
        if (!seen)
            json_array_append(list, resp);
        json_decref(resp);
    }
    json_t *mocks = json_array();
    json_array_foreach(order, i, e)
    {
        json_t *g = json_object_get(groups, json_string_value(e));
        json_t *def = json_deep_copy(json_object_get(g, "def"));
        json_t *list = json_object_get(g, "responses");
        if (json_array_size(list) == 1)
            json_object_set(def, "response", json_array_get(list, 0));
        else
            json_object_set_new(def, "oneOf",
                                json_pack("{s:s, s:O}", "order", "order", "responses", list));
        json_array_append_new(mocks, def);
    }
    json_decref(groups);
    json_decref(order);
    return mocks;
}

static int recorder_mocks(ctx_t *c)
{
    json_t *body = NULL;
    if (c->view->body.len > 0 && mk_api_parse_body(c, &body))
        return 400;
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL) {
        json_decref(body);
        return 404;
    }
    mk_err_t err;
    json_t *pb = json_object_get(body, "parametrize");
    if (pb == NULL)
        pb = json_object_get(body, "parametrise");
    json_t *mq = json_object_get(body, "matchQuery");
    json_t *rd = json_object_get(body, "redact");
    json_t *rn = json_object_get(body, "redactHeaders");
    if (rd == NULL)
        rd = json_object_get(s->meta, "redact");
    if (rn == NULL)
        rn = json_object_get(s->meta, "redactHeaders");
    char prefix[96];
    snprintf(prefix, sizeof prefix, "rec-%.8s", s->id);
    convert_opts_t o = {
        .parametrise = json_is_true(pb),
        .match_query = !json_is_false(mq),
        .redact_on = !json_is_false(rd),
        .redact_names = rn,
        .id_prefix = prefix,
    };
    if (s->dirty && session_save(c->api, s, &err) != 0) {
        pthread_mutex_unlock(&rec_mu);
        json_decref(body);
        return mk_api_reply_err(c, &err);
    }
    json_t *defs = convert(s->entries, &o);
    char ns[80];
    snprintf(ns, sizeof ns, "%s", session_ns(s));
    pthread_mutex_unlock(&rec_mu);
    const char *target_ns = json_string_value(json_object_get(body, "namespace"));
    if (target_ns != NULL) {
        if (mk_mock_validate_namespace(target_ns, &err) != 0 ||
            mk_api_guard_ns(c, target_ns) != 0) {
            json_decref(defs);
            json_decref(body);
            return mk_api_reply_fmt(c, MK_EINVAL, "namespace: '%s' is not one you may write to",
                                    target_ns);
        }
        snprintf(ns, sizeof ns, "%s", target_ns);
    }
    size_t n = json_array_size(defs);
    mk_mock_t **mocks = calloc(n ? n : 1, sizeof *mocks);
    bool *replaced = calloc(n ? n : 1, sizeof *replaced);
    int status = 0, rc = 0;
    if (mocks == NULL || replaced == NULL)
        rc = mk_err_set(&err, MK_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->api->write_lock);
    int64_t now = mk_mock_now_ms();
    size_t made = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mk_api_prepare_mock(c, json_array_get(defs, i), ns, now, &mocks[i], &err);
        if (rc == 0) {
            made++;
            mk_mock_t *old = mk_catalog_get(c->api->catalog, mocks[i]->id);
            replaced[i] = old != NULL;
            mk_mock_unref(old);
        }
    }
    json_t *items = json_array();
    if (rc == 0 && n > 0) {
        for (size_t i = 0; i < n; i++)
            mk_mock_ref(mocks[i]);
        rc = mk_api_commit_mocks(c->api, mocks, n, replaced, &err);
        if (rc != 0)
            for (size_t i = 0; i < n; i++)
                mk_mock_unref(mocks[i]);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(items, mk_mock_to_json(mocks[i]));
        mk_api_mock_events(c->api, mocks, n, true);
        status = mk_api_reply_json(c->req, 201, items);
    } else {
        for (size_t i = 0; i < made; i++)
            mk_mock_unref(mocks[i]);
        json_decref(items);
        status = mk_api_reply_err(c, &err);
    }
    free(mocks);
    free(replaced);
    json_decref(defs);
    json_decref(body);
    return status;
}

/* ---- export (HAR 1.2), annotation, replay ---- */

/* Copies of the session's document and entries, so slow work runs without rec_mu; answers 404
 * itself and returns -1 when the session is absent. New references. */
static int session_copy(ctx_t *c, json_t **meta, json_t **entries)
{
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL)
        return -1;
    *meta = json_deep_copy(s->meta);
    *entries = json_deep_copy(s->entries);
    pthread_mutex_unlock(&rec_mu);
    return 0;
}

static json_t *entry_by_id(const json_t *entries, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (eid && id && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

static const char *header_ci(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return json_is_string(v) ? json_string_value(v)
                                     : json_string_value(json_array_get(v, 0));
    }
    return NULL;
}

/* base (its trailing '/' dropped), then the entry's path and query; caller frees. */
static char *entry_url(const char *base, const json_t *e)
{
    const char *path = json_string_value(json_object_get(e, "path"));
    const char *query = json_string_value(json_object_get(e, "query"));
    size_t n = base ? strlen(base) : 0;
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *u = NULL;
    if (asprintf(&u, "%.*s%s%s%s", (int)n, base ? base : "", path ? path : "/",
                 query && query[0] ? "?" : "", query ? query : "") < 0)
        return NULL;
    return u;
}

/* HAR's name/value list of a recorded header object (Set-Cookie arrays give one row each). */
static json_t *har_headers(const json_t *headers)
{
    json_t *list = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        size_t i;
        json_t *x;
        if (json_is_string(v))
            json_array_append_new(list, json_pack("{s:s, s:O}", "name", k, "value", v));
        json_array_foreach(v, i, x)
        {
            if (json_is_string(x))
                json_array_append_new(list, json_pack("{s:s, s:O}", "name", k, "value", x));
        }
    }
    return list;
}

/* The decoded size of a stored body (base64 when flagged). */
static size_t body_size(const json_t *e, const char *key)
{
    char flag[40];
    snprintf(flag, sizeof flag, "%sBase64", key);
    const char *b = json_string_value(json_object_get(e, key));
    size_t n = b ? strlen(b) : 0;
    if (!json_is_true(json_object_get(e, flag)))
        return n;
    size_t pad = (n > 0 && b[n - 1] == '=') + (n > 1 && b[n - 2] == '=');
    return n / 4 * 3 - pad;
}

static json_t *har_body(const json_t *e, const char *key, const char *mime, bool response)
{
    char flag[40];
    snprintf(flag, sizeof flag, "%sBase64", key);
    json_t *text = json_object_get(e, key);
    json_t *b = json_pack("{s:s, s:s}", "mimeType", mime ? mime : "", "text",
                          json_is_string(text) ? json_string_value(text) : "");
    if (response)
        json_object_set_new(b, "size", json_integer((json_int_t)body_size(e, key)));
    else
        json_object_set_new(b, "params", json_array());
    if (json_is_true(json_object_get(e, flag)))
        json_object_set_new(b, "encoding", json_string("base64"));
    return b;
}

static json_t *har_entry(const char *target, const json_t *e)
{
    const json_t *rqh = json_object_get(e, "requestHeaders");
    const json_t *rsh = json_object_get(e, "responseHeaders");
    int status = (int)json_integer_value(json_object_get(e, "statusCode"));
    json_int_t ts = json_integer_value(json_object_get(e, "timestamp"));
    json_int_t took = json_integer_value(json_object_get(e, "duration"));
    const char *method = json_string_value(json_object_get(e, "method"));
    char started[48];
    time_t t = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(started + n, sizeof started - n, ".%03dZ", (int)(ts % 1000));
    char *url = entry_url(target, e);
    const char *location = header_ci(rsh, "Location");
    json_t *request = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:[], s:i, s:I}", "method", method ? method : "GET", "url",
        url ? url : "", "httpVersion", "HTTP/1.1", "headers", har_headers(rqh), "queryString",
        query_list(json_string_value(json_object_get(e, "query"))), "cookies", "headersSize", -1,
        "bodySize", (json_int_t)body_size(e, "requestBody"));
    if (json_string_length(json_object_get(e, "requestBody")) > 0)
        json_object_set_new(request, "postData",
                            har_body(e, "requestBody", header_ci(rqh, "Content-Type"), false));
    json_t *response =
        json_pack("{s:i, s:s, s:s, s:o, s:[], s:o, s:s, s:i, s:I}", "status", status, "statusText",
                  status ? mk_httpd_reason_phrase(status) : "", "httpVersion", "HTTP/1.1",
                  "headers", har_headers(rsh), "cookies", "content",
                  har_body(e, "responseBody", header_ci(rsh, "Content-Type"), true), "redirectURL",
                  location ? location : "", "headersSize", -1, "bodySize",
                  (json_int_t)body_size(e, "responseBody"));
    free(url);
    json_t *h = json_pack("{s:s, s:I, s:o, s:o, s:{}, s:{s:i, s:i, s:i, s:i, s:I, s:i}, s:O}",
                          "startedDateTime", started, "time", took, "request", request, "response",
                          response, "cache", "timings", "blocked", -1, "dns", -1, "connect", -1,
                          "send", 0, "wait", took, "receive", 0, "_id", json_object_get(e, "id"));
    static const char *const extras[][2] = {{"annotation", "_annotation"}, {"error", "_error"}};
    for (size_t i = 0; h && i < sizeof extras / sizeof *extras; i++)
        if (json_object_get(e, extras[i][0]))
            json_object_set(h, extras[i][1], json_object_get(e, extras[i][0]));
    return h;
}

/* The session as a HAR 1.2 log; entries keep their redactions. */
static int recorder_export(ctx_t *c)
{
    json_t *meta, *entries;
    if (session_copy(c, &meta, &entries) != 0)
        return 404;
    const char *target = json_string_value(json_object_get(meta, "targetUrl"));
    json_t *list = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) json_array_append_new(list, har_entry(target, e));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char comment[200];
    snprintf(comment, sizeof comment, "Mockarty recorder session %s", name ? name : "");
    json_t *har = json_pack("{s:{s:s, s:{s:s, s:s}, s:[], s:o, s:s}}", "log", "version", "1.2",
                            "creator", "name", "mockarty", "version", MK_API_VERSION, "pages",
                            "entries", list, "comment", comment);
    char disp[160];
    snprintf(disp, sizeof disp, "attachment; filename=\"recorder-%s.har\"",
             json_string_value(json_object_get(meta, "id")));
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Disposition"), mk_str_of(disp));
    json_decref(meta);
    json_decref(entries);
    return mk_api_reply_json(c->req, 200, har);
}

/* PATCH: the body (an object) becomes the entry's annotation, kept with the session. */
static int recorder_annotate(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    if (!json_is_object(body)) {
        json_decref(body);
        return mk_api_reply_fmt(c, MK_EINVAL, "annotation: the body must be a JSON object");
    }
    struct mk_api_recorder *r;
    session_t *s = session_locked(c, &r);
    if (s == NULL) {
        json_decref(body);
        return 404;
    }
    const char *eid = mk_api_param(c, "entryId");
    json_t *e = entry_by_id(s->entries, eid);
    int status;
    mk_err_t err;
    if (e == NULL) {
        char sid[65];
        snprintf(sid, sizeof sid, "%s", s->id);
        pthread_mutex_unlock(&rec_mu);
        status = mk_api_reply_fmt(c, MK_ENOTFOUND, "entry '%s' not found in recorder session '%s'",
                                  eid, sid);
    } else {
        json_object_set(e, "annotation", body);
        s->dirty = true;
        int rc = session_save(c->api, s, &err);
        json_t *copy = rc == 0 ? json_deep_copy(e) : NULL;
        pthread_mutex_unlock(&rec_mu);
        status = rc == 0 ? mk_api_reply_json(c->req, 200, copy) : mk_api_reply_err(c, &err);
    }
    json_decref(body);
    return status;
}

#define MAX_REPLAY_CONCURRENCY 16
#define MAX_REPLAY_ENTRIES     1000 /* per call: the call holds an API pool thread until done */
#define MAX_REPLAY_TIMEOUT_MS  120000
#define REPLAY_PREVIEW         256
#define REPLAY_MAX_BODY        ((size_t)4 << 20)

typedef struct replay_opts {
    const char *target; /* NULL: each entry's original URL */
    long timeout_ms;
    bool follow, non_http, insecure;
    int concurrency;
} replay_opts_t;

/* Reads ReplayOptions from body (may be NULL); answers 400 naming the field and returns it. */
static int replay_opts(ctx_t *c, const json_t *body, replay_opts_t *o)
{
    json_t *t = json_object_get(body, "targetUrl"), *n = json_object_get(body, "concurrency");
    json_t *ms = json_object_get(body, "timeoutMs");
    *o = (replay_opts_t){.timeout_ms = 10000, .concurrency = 1};
    if (body != NULL && !json_is_object(body))
        return mk_api_reply_fmt(c, MK_EINVAL, "the body must be a JSON object (ReplayOptions)");
    if (t && !json_is_null(t) &&
        !(json_is_string(t) && (json_string_length(t) == 0 || http_url(json_string_value(t)))))
        return mk_api_reply_fmt(c, MK_EINVAL, "targetUrl: an http:// or https:// URL");
    if (n && !json_is_null(n) &&
        (!json_is_integer(n) || json_integer_value(n) < 0 ||
         json_integer_value(n) > MAX_REPLAY_CONCURRENCY))
        return mk_api_reply_fmt(c, MK_EINVAL, "concurrency: an integer from 1 to %d",
                                MAX_REPLAY_CONCURRENCY);
    if (ms && !json_is_null(ms) &&
        (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
         json_integer_value(ms) > MAX_REPLAY_TIMEOUT_MS))
        return mk_api_reply_fmt(c, MK_EINVAL, "timeoutMs: an integer from 1 to %d",
                                MAX_REPLAY_TIMEOUT_MS);
    json_t *ids = json_object_get(body, "entryIds");
    size_t i;
    json_t *x;
    bool ids_ok = ids == NULL || json_is_null(ids) || json_is_array(ids);
    json_array_foreach(ids, i, x) ids_ok = ids_ok && json_is_string(x);
    if (!ids_ok)
        return mk_api_reply_fmt(c, MK_EINVAL, "entryIds: an array of entry ids");
    if (json_string_length(t) > 0)
        o->target = json_string_value(t);
    if (json_integer_value(n) > 0)
        o->concurrency = (int)json_integer_value(n);
    if (json_integer_value(ms) > 0)
        o->timeout_ms = (long)json_integer_value(ms);
    o->follow = json_is_true(json_object_get(body, "followRedirects"));
    o->non_http = json_is_true(json_object_get(body, "includeNonHttp"));
    return 0;
}

/* A WebSocket upgrade or an event stream: not a plain exchange to send again. */
static bool non_http_entry(const json_t *e)
{
    const char *up = header_ci(json_object_get(e, "requestHeaders"), "Upgrade");
    const char *ct = header_ci(json_object_get(e, "responseHeaders"), "Content-Type");
    const char *acc = header_ci(json_object_get(e, "requestHeaders"), "Accept");
    return up != NULL || (ct && strstr(ct, "text/event-stream")) ||
           (acc && strcmp(acc, "text/event-stream") == 0);
}

/* Request headers not sent again: hop-by-hop and framing ones (curl sets its own) and the
 * placeholders of redacted credentials. */
static bool replay_sends(const char *name, const json_t *value)
{
    static const char *const dropped[] = {"Host",
                                          "Connection",
                                          "Content-Length",
                                          "Transfer-Encoding",
                                          "Keep-Alive",
                                          "Upgrade",
                                          "Proxy-Connection",
                                          "TE",
                                          "Trailer",
                                          "Accept-Encoding",
                                          "Expect"};
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        if (strcasecmp(name, dropped[i]) == 0)
            return false;
    return json_is_string(value) && strcmp(json_string_value(value), REDACTED) != 0;
}

/* The first bytes of a body as text, cut at a character boundary; NULL when not UTF-8. */
static json_t *preview_of(const char *body, size_t len)
{
    size_t n = len < REPLAY_PREVIEW ? len : REPLAY_PREVIEW;
    while (n > 0 && n < len && ((unsigned char)body[n] & 0xC0) == 0x80)
        n--;
    return json_stringn(body, n);
}

/* Sends entry e again and says how it went: a ReplayResult object. */
static json_t *replay_one(const json_t *e, const char *base, const replay_opts_t *o)
{
    const char *id = json_string_value(json_object_get(e, "id"));
    int orig = (int)json_integer_value(json_object_get(e, "statusCode"));
    char *url = entry_url(o->target ? o->target : base, e);
    json_t *r =
        json_pack("{s:s, s:i, s:i, s:b, s:i, s:s}", "entryId", id ? id : "", "originalStatus", orig,
                  "newStatus", 0, "statusMatch", 0, "durationMs", 0, "replayedUrl", url ? url : "");
    if (r == NULL || url == NULL) {
        free(url);
        return r;
    }
    if (!o->non_http && non_http_entry(e)) {
        json_object_set_new(r, "skipped", json_true());
        json_object_set_new(r, "skippedReason",
                            json_string("a WebSocket or event-stream exchange (includeNonHttp "
                                        "sends it as a plain request)"));
        free(url);
        return r;
    }
    const json_t *rqh = json_object_get(e, "requestHeaders");
    mk_httpclient_fetch_header_t *hs = calloc(json_object_size(rqh) + 1, sizeof *hs);
    size_t nh = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rqh, k, v)
    {
        if (hs && replay_sends(k, v))
            hs[nh++] = (mk_httpclient_fetch_header_t){(char *)k, (char *)json_string_value(v)};
    }
    mk_buf_t raw;
    mk_buf_init(&raw, REPLAY_MAX_BODY);
    const char *body = json_string_value(json_object_get(e, "requestBody"));
    size_t body_len = body ? strlen(body) : 0;
    if (body_len > 0 && json_is_true(json_object_get(e, "requestBodyBase64")) &&
        mk_grpc_base64_decode(&raw, body, body_len) == 0) {
        body = raw.data;
        body_len = raw.len;
    }
    const char *method = json_string_value(json_object_get(e, "method"));
    mk_httpclient_fetch_req_t req = {
        .method = method ? method : "GET",
        .url = url,
        .headers = hs,
        .n_headers = nh,
        .body = body_len ? body : NULL,
        .body_len = body_len,
        .timeout_ms = o->timeout_ms,
        .connect_timeout_ms = o->timeout_ms,
        .follow_redirects = o->follow,
        .insecure = o->insecure,
        .max_body = REPLAY_MAX_BODY,
        .user_agent = NULL,
    };
    mk_httpclient_fetch_resp_t resp = {0};
    mk_err_t err = {0};
    int64_t t0 = mk_mock_now_ms();
    int rc =
        hs ? mk_httpclient_fetch(&req, &resp, &err) : mk_err_set(&err, MK_ENOMEM, "out of memory");
    json_object_set_new(r, "durationMs", json_integer(mk_mock_now_ms() - t0));
    if (rc != 0) {
        json_object_set_new(r, "error", json_string(err.msg[0] ? err.msg : "request failed"));
    } else {
        json_object_set_new(r, "newStatus", json_integer(resp.status));
        json_object_set_new(r, "statusMatch", json_boolean(resp.status == orig));
        json_t *pv = preview_of(resp.body ? resp.body : "", resp.body_len);
        if (pv == NULL) {
            char note[64];
            snprintf(note, sizeof note, "(%zu bytes, not UTF-8 text)", resp.body_len);
            pv = json_string(note);
        }
        if (resp.body_len > 0)
            json_object_set_new(r, "responsePreview", pv);
        else
            json_decref(pv);
    }
    mk_httpclient_fetch_resp_free(&resp);
    mk_buf_free(&raw);
    free(hs);
    free(url);
    return r;
}

typedef struct replay_job {
    const json_t *entries; /* borrowed */
    json_t **results;
    const char *base;
    const replay_opts_t *o;
    atomic_size_t next;
} replay_job_t;

static void *replay_worker(void *ud)
{
    replay_job_t *j = ud;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= json_array_size(j->entries))
            break;
        j->results[i] = replay_one(json_array_get(j->entries, i), j->base, j->o);
    }
    return NULL;
}

/* Replays entries with at most o->concurrency at once (this thread is one of them); a new array
 * of results in the entries' order. */
static json_t *replay_all(const json_t *entries, const char *base, const replay_opts_t *o)
{
    size_t n = json_array_size(entries);
    replay_job_t j = {.entries = entries, .base = base, .o = o};
    atomic_init(&j.next, 0);
    j.results = calloc(n ? n : 1, sizeof *j.results);
    json_t *out = json_array();
    if (j.results == NULL)
        return out;
    pthread_t th[MAX_REPLAY_CONCURRENCY];
    size_t started = 0;
    for (size_t i = 1; i < (size_t)o->concurrency && i < n; i++)
        if (pthread_create(&th[started], NULL, replay_worker, &j) == 0)
            started++;
    replay_worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, j.results[i] ? j.results[i] : json_null());
    free(j.results);
    return out;
}

/* Parses the optional body and reads the session: 0 with the options, meta and entries, or the
 * status already answered. */
static int replay_prepare(ctx_t *c, json_t **body, replay_opts_t *o, json_t **meta,
                          json_t **entries)
{
    *body = NULL;
    if (c->view->body.len > 0 && mk_api_parse_body(c, body))
        return 400;
    int status = replay_opts(c, *body, o);
    if (status == 0 && session_copy(c, meta, entries) != 0)
        status = 404;
    if (status != 0) {
        json_decref(*body);
        return status;
    }
    o->insecure = json_is_true(json_object_get(json_object_get(*meta, "proxy"), "insecure"));
    return 0;
}

static int recorder_replay(ctx_t *c)
{
    json_t *body, *meta, *entries;
    replay_opts_t o;
    int status = replay_prepare(c, &body, &o, &meta, &entries);
    if (status != 0)
        return status;
    json_t *ids = json_object_get(body, "entryIds");
    json_t *chosen = json_array_size(ids) ? json_array() : json_incref(entries);
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x)
    {
        json_t *e = entry_by_id(entries, json_string_value(x));
        if (e == NULL) {
            status = mk_api_reply_fmt(c, MK_ENOTFOUND,
                                      "entryIds: entry '%s' not found in recorder session '%s'",
                                      json_string_value(x), mk_api_param(c, "id"));
            goto out;
        }
        json_array_append(chosen, e);
    }
    if (json_array_size(chosen) > MAX_REPLAY_ENTRIES) {
        status = mk_api_reply_fmt(c, MK_ETOOBIG,
                                  "replay: %zu entries, over the limit of %d per call; name a "
                                  "subset in entryIds",
                                  json_array_size(chosen), MAX_REPLAY_ENTRIES);
        goto out;
    }
    json_t *results = replay_all(chosen, json_string_value(json_object_get(meta, "targetUrl")), &o);
    int matched = 0, mismatched = 0, failed = 0, skipped = 0;
    json_array_foreach(results, i, x)
    {
        if (json_is_true(json_object_get(x, "skipped")))
            skipped++;
        else if (json_object_get(x, "error") || !json_is_object(x))
            failed++;
        else if (json_is_true(json_object_get(x, "statusMatch")))
            matched++;
        else
            mismatched++;
    }
    status = mk_api_reply_json(
        c->req, 200,
        json_pack("{s:O, s:i, s:i, s:i, s:i, s:i, s:o}", "sessionId", json_object_get(meta, "id"),
                  "totalEntries", (int)json_array_size(chosen), "matched", matched, "mismatched",
                  mismatched, "failed", failed, "skipped", skipped, "results", results));
out:
    json_decref(chosen);
    json_decref(meta);
    json_decref(entries);
    json_decref(body);
    return status;
}

static int recorder_replay_entry(ctx_t *c)
{
    json_t *body, *meta, *entries;
    replay_opts_t o;
    int status = replay_prepare(c, &body, &o, &meta, &entries);
    if (status != 0)
        return status;
    const char *eid = mk_api_param(c, "entryId");
    json_t *e = entry_by_id(entries, eid);
    if (e == NULL)
        status = mk_api_reply_fmt(c, MK_ENOTFOUND, "entry '%s' not found in recorder session '%s'",
                                  eid, mk_api_param(c, "id"));
    else
        status = mk_api_reply_json(
            c->req, 200, replay_one(e, json_string_value(json_object_get(meta, "targetUrl")), &o));
    json_decref(meta);
    json_decref(entries);
    json_decref(body);
    return status;
}

/* ---- correlation: response values reused by later requests ---- */

#define CORR_MAX_SITES 4096   /* per entry: request places indexed, response values tried */
#define CORR_MAX_TOTAL 200000 /* request places indexed in all */
/* and their bytes: each segment of a URL path is a place naming the whole path, so a few long
 * paths would otherwise index gigabytes */
#define CORR_MAX_BYTES ((size_t)32 << 20)
#define CORR_MAX_DEPTH 32
#define CORR_DELIMS    " \t\r\n,;&=\"'()<>{}[]|\\"

typedef struct corr_opts {
    size_t min_len, max_len, max_per_source;
    bool exclude_numeric;
} corr_opts_t;

/* Places of one entry's request or response, as (section, path, value) calls of fn. */
typedef void (*corr_fn)(void *ud, const char *section, const char *path, const char *value);

typedef struct corr_walk {
    corr_fn fn;
    void *ud;
    const char *section;
    size_t budget;
} corr_walk_t;

static void corr_emit(corr_walk_t *w, const char *path, const char *value)
{
    if (w->budget == 0)
        return;
    w->budget--;
    w->fn(w->ud, w->section, path, value);
}

/* JSON leaves (strings and integers) with their paths ($.data.token, $.items[0].id). */
static void corr_leaves(corr_walk_t *w, const json_t *v, char *path, size_t len, int depth)
{
    char num[32];
    size_t cap = 512, i;
    const char *k;
    json_t *x;
    if (json_is_string(v)) {
        corr_emit(w, path, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        corr_emit(w, path, num);
    } else if (json_is_object(v) && depth < CORR_MAX_DEPTH) {
        json_object_foreach((json_t *)v, k, x)
        {
            int n = snprintf(path + len, cap - len, ".%s", k);
            if (n > 0 && (size_t)n < cap - len)
                corr_leaves(w, x, path, len + (size_t)n, depth + 1);
            path[len] = '\0';
        }
    } else if (json_is_array(v) && depth < CORR_MAX_DEPTH) {
        json_array_foreach(v, i, x)
        {
            int n = snprintf(path + len, cap - len, "[%zu]", i);
            if (n > 0 && (size_t)n < cap - len)
                corr_leaves(w, x, path, len + (size_t)n, depth + 1);
            path[len] = '\0';
        }
    }
}

/* The words of text (split at spaces and punctuation that never sits inside an id or token). */
static void corr_words(corr_walk_t *w, const char *path, const char *text)
{
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    for (char *t = copy ? strtok_r(copy, CORR_DELIMS, &save) : NULL; t;
         t = strtok_r(NULL, CORR_DELIMS, &save))
        corr_emit(w, path, t);
    free(copy);
}

/* "a=b; c=d" (Cookie) or "a=b; Path=/" (one Set-Cookie): each name's value (only the first
 * pair of a Set-Cookie). */
static void corr_cookies(corr_walk_t *w, const char *text, bool first_only)
{
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    for (char *t = copy ? strtok_r(copy, ";", &save) : NULL; t; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ')
            t++;
        char *eq = strchr(t, '=');
        if (eq != NULL) {
            *eq = '\0';
            corr_emit(w, t, eq + 1);
        }
        if (first_only)
            break;
    }
    free(copy);
}

static void corr_body(corr_walk_t *w, const json_t *e, const char *key, bool words)
{
    char flag[40], path[512] = "$";
    snprintf(flag, sizeof flag, "%sBase64", key);
    const char *body = json_string_value(json_object_get(e, key));
    if (body == NULL || body[0] == '\0' || json_is_true(json_object_get(e, flag)))
        return;
    json_t *doc = json_loads(body, JSON_DECODE_ANY, NULL);
    if (doc != NULL)
        corr_leaves(w, doc, path, 1, 0);
    else if (words)
        corr_words(w, "", body);
    json_decref(doc);
}

/* Response headers that describe the transfer, never an id handed to the client. */
static bool corr_plain_header(const char *name)
{
    static const char *const plain[] = {"Date",
                                        "Content-Type",
                                        "Content-Length",
                                        "Server",
                                        "Connection",
                                        "Keep-Alive",
                                        "Vary",
                                        "Cache-Control",
                                        "Expires",
                                        "Last-Modified",
                                        "Accept-Ranges",
                                        "Content-Encoding",
                                        "Transfer-Encoding",
                                        "Pragma",
                                        "Host",
                                        "User-Agent",
                                        "Accept",
                                        "Accept-Language",
                                        "Set-Cookie",
                                        "Cookie"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (strcasecmp(name, plain[i]) == 0)
            return true;
    return false;
}

/* Where entry e's request carries values: path segments, query values, header words, cookies,
 * body leaves (or words). */
static void corr_request(const json_t *e, corr_fn fn, void *ud)
{
    corr_walk_t w = {fn, ud, "request.path", CORR_MAX_SITES};
    const char *path = json_string_value(json_object_get(e, "path"));
    char *copy = strdup(path ? path : "");
    char *save = NULL;
    for (char *t = copy ? strtok_r(copy, "/", &save) : NULL; t; t = strtok_r(NULL, "/", &save)) {
        char seg[512];
        if (strlen(t) < sizeof seg) {
            seg[mk_str_url_decode(mk_str_of(t), seg, false)] = '\0';
            corr_emit(&w, path, seg);
        }
    }
    free(copy);
    w.section = "request.query";
    json_t *q = query_list(json_string_value(json_object_get(e, "query")));
    size_t i;
    json_t *x;
    json_array_foreach(q, i, x) corr_emit(&w, json_string_value(json_object_get(x, "name")),
                                          json_string_value(json_object_get(x, "value")));
    json_decref(q);
    const char *k;
    json_object_foreach(json_object_get(e, "requestHeaders"), k, x)
    {
        w.section = strcasecmp(k, "Cookie") == 0 ? "request.cookie" : "request.header";
        if (!json_is_string(x) || strcmp(json_string_value(x), REDACTED) == 0)
            continue;
        if (strcasecmp(k, "Cookie") == 0)
            corr_cookies(&w, json_string_value(x), false);
        else if (!corr_plain_header(k))
            corr_words(&w, k, json_string_value(x));
    }
    w.section = "request.body";
    corr_body(&w, e, "requestBody", true);
}

/* The values entry e's response hands out: body leaves, headers, Set-Cookie values. */
static void corr_response(const json_t *e, corr_fn fn, void *ud)
{
    corr_walk_t w = {fn, ud, "response.body", CORR_MAX_SITES};
    corr_body(&w, e, "responseBody", false);
    const char *k;
    json_t *x;
    json_object_foreach(json_object_get(e, "responseHeaders"), k, x)
    {
        size_t i;
        json_t *c;
        if (strcasecmp(k, "Set-Cookie") == 0) {
            w.section = "response.cookie";
            if (json_is_string(x))
                corr_cookies(&w, json_string_value(x), true);
            json_array_foreach(x, i, c) corr_cookies(&w, json_string_value(c), true);
        } else if (json_is_string(x) && !corr_plain_header(k)) {
            w.section = "response.header";
            corr_emit(&w, k, json_string_value(x));
        }
    }
}

static const char *corr_type(const char *v, bool *numeric)
{
    size_t n = strlen(v), dots = 0, digits = 0, alpha = 0;
    bool word = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        dots += ch == '.';
        digits += isdigit(ch) != 0;
        alpha += isalpha(ch) != 0;
        word = word && (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~');
    }
    *numeric = n > 0 && all_digits(v + (v[0] == '-'), n - (v[0] == '-'));
    if (*numeric)
        return "number";
    if (n == 36 && all_hex(v, n) && v[8] == '-' && v[13] == '-' && v[18] == '-' && v[23] == '-')
        return "uuid";
    if (dots == 2 && word && strncmp(v, "eyJ", 3) == 0)
        return "jwt";
    if (word && n >= 8 && digits > 0 && alpha > 0)
        return "token";
    return "string";
}

static double corr_confidence(const char *type, size_t len, size_t ntargets)
{
    static const struct {
        const char *type;
        double base;
    } bases[] = {{"jwt", 0.95}, {"uuid", 0.9}, {"token", 0.85}, {"string", 0.6}, {"number", 0.5}};
    double c = 0.5;
    for (size_t i = 0; i < sizeof bases / sizeof *bases; i++)
        if (strcmp(type, bases[i].type) == 0)
            c = bases[i].base;
    if (strcmp(type, "number") == 0 && len < 6)
        c -= 0.1; /* short numbers repeat by chance */
    if (ntargets > 1)
        c += 0.04;
    return c > 0.99 ? 0.99 : c;
}

typedef struct corr_scan {
    json_t *sites;     /* value -> [{seq, entryId, section, path}] */
    json_t *seen;      /* values already tried */
    json_t *found;     /* the correlations */
    const json_t *src; /* the source entry */
    int seq;
    size_t from_source;
    const corr_opts_t *o;
    size_t sites_left; /* of CORR_MAX_TOTAL; at 0 the report says truncated */
    size_t bytes_left; /* of CORR_MAX_BYTES; at its end sites_left becomes 0 */
} corr_scan_t;

static void corr_site(void *ud, const char *section, const char *path, const char *value)
{
    corr_scan_t *s = ud;
    if (value == NULL || strlen(value) < s->o->min_len || strlen(value) > s->o->max_len ||
        s->sites_left == 0)
        return;
    size_t bytes = strlen(value) + (path ? strlen(path) : 0) + 128; /* + the site's JSON */
    if (bytes > s->bytes_left) {
        s->sites_left = 0;
        return;
    }
    s->bytes_left -= bytes;
    s->sites_left--;
    json_t *list = json_object_get(s->sites, value);
    if (list == NULL)
        json_object_set_new(s->sites, value, list = json_array());
    json_array_append_new(list, json_pack("{s:O, s:i, s:s, s:s}", "entryId",
                                          json_object_get(s->src, "id"), "sequence", s->seq,
                                          "section", section, "path", path ? path : ""));
}

static void corr_source(void *ud, const char *section, const char *path, const char *value)
{
    corr_scan_t *s = ud;
    size_t n = value ? strlen(value) : 0;
    bool numeric;
    if (n < s->o->min_len || n > s->o->max_len || strcmp(value, REDACTED) == 0 ||
        json_object_get(s->seen, value) || s->from_source >= s->o->max_per_source)
        return;
    json_object_set_new(s->seen, value, json_true());
    const char *type = corr_type(value, &numeric);
    if (numeric && s->o->exclude_numeric)
        return;
    json_t *targets = json_array();
    size_t i;
    json_t *site;
    bool known_before = false;
    json_array_foreach(json_object_get(s->sites, value), i, site)
    {
        if (json_integer_value(json_object_get(site, "sequence")) <= s->seq)
            known_before = true; /* the client sent it first: not handed out here */
        else
            json_array_append(targets, site);
    }
    if (known_before || json_array_size(targets) == 0) {
        json_decref(targets);
        return;
    }
    size_t nt = json_array_size(targets);
    char reason[300];
    snprintf(reason, sizeof reason,
             "%s value from %s %s of entry %d, sent back in %zu later request place%s%s", type,
             section, path, s->seq, nt, nt == 1 ? "" : "s",
             strcmp(type, "number") == 0 && n < 6 ? " (a short number: may be chance)" : "");
    json_array_append_new(
        s->found, json_pack("{s:s, s:s, s:{s:O, s:i, s:s, s:s}, s:o, s:f, s:s}", "value", value,
                            "valueType", type, "source", "entryId", json_object_get(s->src, "id"),
                            "sequence", s->seq, "section", section, "path", path, "targets",
                            targets, "confidence", corr_confidence(type, n, nt), "reason", reason));
    s->from_source++;
}

static int corr_opt(ctx_t *c, const json_t *body, const char *key, size_t def, size_t max,
                    size_t *out)
{
    json_t *v = json_object_get(body, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) > max)
        return mk_api_reply_fmt(c, MK_EINVAL, "%s: an integer from 0 to %zu", key, max);
    if (json_integer_value(v) > 0)
        *out = (size_t)json_integer_value(v);
    return 0;
}

static int recorder_correlate(ctx_t *c)
{
    json_t *body = NULL, *meta = NULL, *entries = NULL;
    if (c->view->body.len > 0 && mk_api_parse_body(c, &body))
        return 400;
    corr_opts_t o = {.exclude_numeric = json_is_true(json_object_get(body, "excludeNumeric"))};
    json_t *ids = json_object_get(body, "entryIds");
    int status = 0;
    if (body && !json_is_object(body))
        status = mk_api_reply_fmt(c, MK_EINVAL, "the body must be a JSON object");
    if (status == 0 && ids && !json_is_null(ids) && !json_is_array(ids))
        status = mk_api_reply_fmt(c, MK_EINVAL, "entryIds: an array of entry ids");
    if (status == 0)
        status = corr_opt(c, body, "minValueLength", 4, 4096, &o.min_len);
    if (status == 0)
        status = corr_opt(c, body, "maxValueLength", 512, 4096, &o.max_len);
    if (status == 0)
        status = corr_opt(c, body, "maxCorrelationsPerSource", 50, 10000, &o.max_per_source);
    if (status == 0 && session_copy(c, &meta, &entries) != 0)
        status = 404;
    if (status != 0) {
        json_decref(body);
        return status;
    }
    corr_scan_t s = {.sites = json_object(),
                     .seen = json_object(),
                     .found = json_array(),
                     .o = &o,
                     .sites_left = CORR_MAX_TOTAL,
                     .bytes_left = CORR_MAX_BYTES};
    size_t i, scanned = 0;
    json_t *e;
    /* Which entries take part: all, or those named (unknown names are a 404). */
    json_t *chosen = json_object();
    json_array_foreach(ids, i, e)
    {
        if (!json_is_string(e) || entry_by_id(entries, json_string_value(e)) == NULL) {
            status = mk_api_reply_fmt(
                c, MK_ENOTFOUND, "entryIds: entry '%s' not found in recorder session '%s'",
                json_string_value(e) ? json_string_value(e) : "?", mk_api_param(c, "id"));
            goto out;
        }
        json_object_set_new(chosen, json_string_value(e), json_true());
    }
#define TAKES_PART(e)                                                                              \
    (json_object_size(chosen) == 0 ||                                                              \
     json_object_get(chosen, json_string_value(json_object_get(e, "id"))))
    json_array_foreach(entries, i, e)
    {
        if (!TAKES_PART(e))
            continue;
        s.src = e;
        s.seq = (int)i;
        corr_request(e, corr_site, &s);
        scanned++;
    }
    json_array_foreach(entries, i, e)
    {
        if (!TAKES_PART(e))
            continue;
        s.src = e;
        s.seq = (int)i;
        s.from_source = 0;
        corr_response(e, corr_source, &s);
    }
#undef TAKES_PART
    json_t *by_type = json_object(), *by_section = json_object();
    json_array_foreach(s.found, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "valueType"));
        json_object_set_new(by_type, t,
                            json_integer(json_integer_value(json_object_get(by_type, t)) + 1));
        size_t k;
        json_t *tg;
        json_array_foreach(json_object_get(e, "targets"), k, tg)
        {
            const char *sec = json_string_value(json_object_get(tg, "section"));
            json_object_set_new(
                by_section, sec,
                json_integer(json_integer_value(json_object_get(by_section, sec)) + 1));
        }
    }
    json_t *report = json_pack(
        "{s:O, s:i, s:i, s:O, s:{s:o, s:o}}", "sessionId", json_object_get(meta, "id"),
        "totalEntries", (int)json_array_size(entries), "scanned", (int)scanned, "correlations",
        s.found, "summary", "byValueType", by_type, "bySection", by_section);
    if (s.sites_left == 0)
        json_object_set_new(report, "truncated", json_true());
    status = mk_api_reply_json(c->req, 200, report);
out:
    json_decref(chosen);
    json_decref(s.sites);
    json_decref(s.seen);
    json_decref(s.found);
    json_decref(meta);
    json_decref(entries);
    json_decref(body);
    return status;
}

/* ---- saved recorder configurations (documents "recorder_config") ---- */

#define CONFIG_KIND "recorder_config"

static bool config_id_ok(const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && !strchr("-_.", id[i]))
            return false;
    return n > 0 && n <= 64;
}

/* POST: creates a configuration, or replaces the one whose id the body names. */
static int config_save(ctx_t *c)
{
    json_t *body, *all = NULL, *old = NULL;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status = 0;
    json_t *id = json_object_get(body, "id"), *name = json_object_get(body, "name");
    json_t *port = json_object_get(body, "port"), *prefix = json_object_get(body, "pathPrefix");
    const char *target = json_string_value(json_object_get(body, "targetUrl"));
    const char *ns = json_is_object(body) ? mk_api_namespace(c, body) : NULL;
    if (!json_is_object(body))
        status = mk_api_reply_fmt(c, MK_EINVAL, "the body must be a JSON object (RecorderConfig)");
    else if (ns == NULL)
        status = 400;
    else if (id && !(json_is_string(id) && config_id_ok(json_string_value(id))))
        status = mk_api_reply_fmt(c, MK_EINVAL, "id: 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.'");
    else if (name && !json_is_string(name))
        status = mk_api_reply_fmt(c, MK_EINVAL, "name: a string");
    else if (!http_url(target))
        status = mk_api_reply_fmt(c, MK_EINVAL, "targetUrl: required, an http:// or https:// URL");
    else if (port && !(json_is_integer(port) && json_integer_value(port) >= 0 &&
                       json_integer_value(port) <= 65535))
        status = mk_api_reply_fmt(c, MK_EINVAL, "port: an integer from 0 to 65535");
    else if (prefix && !(json_is_string(prefix) && json_string_value(prefix)[0] == '/'))
        status = mk_api_reply_fmt(c, MK_EINVAL, "pathPrefix: a path starting with '/'");
    if (status != 0)
        goto out;
    char fresh[40];
    mk_mock_new_id(fresh);
    const char *cid = id ? json_string_value(id) : fresh;
    mk_err_t err;
    if (id && mk_api_docs_list(c->api, CONFIG_KIND, cid, &all, &err) != 0) {
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "id")), cid) == 0)
            old = d;
    }
    const char *old_ns = json_string_value(json_object_get(old, "namespace"));
    if (old && !mk_api_may(c, "mocks:write", old_ns ? old_ns : "")) {
        status = mk_api_reply_fmt(c, MK_EFORBIDDEN, "mocks:write needed in namespace '%s'",
                                  old_ns ? old_ns : "");
        goto out;
    }
    int64_t now = mk_mock_now_ms();
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I}", "id", cid, "name",
                  name ? json_string_value(name) : cid, "targetUrl", target, "port",
                  (json_int_t)json_integer_value(port), "namespace", ns, "pathPrefix",
                  prefix ? json_string_value(prefix) : "/", "createdAt",
                  (json_int_t)(old ? json_integer_value(json_object_get(old, "createdAt")) : now),
                  "updatedAt", (json_int_t)now);
    status = doc ? mk_api_doc_store(c, CONFIG_KIND, "mocks:write", doc, old ? 200 : 201)
                 : mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
out:
    json_decref(all);
    json_decref(body);
    return status;
}

static int configs_list(ctx_t *c)
{
    json_t *docs = mk_api_docs_visible(c, CONFIG_KIND, "mocks:read");
    return docs ? mk_api_reply_json(c->req, 200, docs) : 500;
}

static int config_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, CONFIG_KIND, "recorder config", NULL);
}

static int config_export(ctx_t *c)
{
    json_t *doc = mk_api_doc_get(c, CONFIG_KIND, mk_api_param(c, "id"), "recorder config");
    if (doc == NULL)
        return 404;
    char disp[160];
    snprintf(disp, sizeof disp, "attachment; filename=\"recorder-config-%s.json\"",
             json_string_value(json_object_get(doc, "id")));
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Disposition"), mk_str_of(disp));
    return mk_api_reply_json(c->req, 200, doc);
}

/* The recorder's certificate authority (HTTPS interception) is not part of this server. */
static int recorder_ca(ctx_t *c)
{
    mk_str_t id = mk_httpd_req_id(c->req);
    return mk_api_reply_json(
        c->req, 501,
        json_pack("{s:s, s:s, s:s#}", "error",
                  "the recorder has no certificate authority here: HTTPS interception (MITM) is "
                  "not implemented; record through a session's targetUrl instead",
                  "code", "not_implemented", "request_id", id.base, id.len));
}

/* ---- the fallback proxy of a namespace ---- */

static const char *param_ns(ctx_t *c)
{
    const char *ns = mk_api_param(c, "namespace");
    mk_err_t err;
    if (mk_mock_validate_namespace(ns, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    int guard = mk_api_guard_ns(c, ns);
    if (guard == MK_ENOTFOUND)
        mk_api_reply_fmt(c, MK_ENOTFOUND, "namespace '%s' not found", ns);
    return guard == 0 ? ns : NULL;
}

static void fallback_id(const char *ns, char *buf, size_t size)
{
    snprintf(buf, size, "fallback-proxy.%s", ns);
}

static int fallback_get(ctx_t *c)
{
    const char *ns = param_ns(c);
    if (ns == NULL)
        return 403;
    char id[96];
    fallback_id(ns, id, sizeof id);
    mk_mock_t *m = mk_catalog_get(c->api->catalog, id);
    if (m == NULL || m->closed_at != 0) {
        mk_mock_unref(m);
        return mk_api_reply_fmt(c, MK_ENOTFOUND, "namespace '%s' has no fallback proxy", ns);
    }
    json_t *proxy = mk_api_mock_field(m, "proxy");
    mk_mock_unref(m);
    json_object_set_new(proxy, "namespace", json_string(ns));
    json_object_set_new(proxy, "mockId", json_string(id));
    return mk_api_reply_json(c->req, 200, proxy);
}

static int fallback_put(ctx_t *c)
{
    const char *ns = param_ns(c);
    if (ns == NULL)
        return 403;
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *proxy = json_object();
    const char *target = json_string_value(json_object_get(body, "target"));
    if (target == NULL)
        target = json_string_value(json_object_get(body, "targetUrl"));
    if (target != NULL)
        json_object_set_new(proxy, "target", json_string(target));
    copy_proxy_opts(proxy, body);
    json_t *o = json_object_get(body, "override");
    if (o != NULL)
        json_object_set(proxy, "override", o);
    char id[96];
    fallback_id(ns, id, sizeof id);
    json_t *def = json_pack("{s:s, s:{s:s, s:s}, s:O, s:i, s:[s]}", "id", id, "http", "httpMethod",
                            "ANY", "route", "/*", "proxy", proxy, "priority", FALLBACK_PRIORITY,
                            "tags", "fallback-proxy");
    mk_err_t err;
    int status;
    if (target == NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "target: required, an http:// or https:// URL");
    } else {
        pthread_mutex_lock(&c->api->write_lock);
        int rc = put_mock(c, def, ns, &err);
        pthread_mutex_unlock(&c->api->write_lock);
        json_object_set_new(proxy, "namespace", json_string(ns));
        json_object_set_new(proxy, "mockId", json_string(id));
        status = rc == 0 ? mk_api_reply_json(c->req, 200, json_incref(proxy))
                         : mk_api_reply_err(c, &err);
    }
    json_decref(def);
    json_decref(proxy);
    json_decref(body);
    return status;
}

static int fallback_delete(ctx_t *c)
{
    const char *ns = param_ns(c);
    if (ns == NULL)
        return 403;
    char id[96];
    fallback_id(ns, id, sizeof id);
    mk_err_t err;
    pthread_mutex_lock(&c->api->write_lock);
    int rc = close_mock(c, id, &err);
    pthread_mutex_unlock(&c->api->write_lock);
    return rc == 0 ? mk_api_reply_json(c->req, 200,
                                       json_pack("{s:s, s:b}", "namespace", ns, "deleted", 1))
                   : mk_api_reply_err(c, &err);
}

const mk_api_endpoint_t mk_api_recorder_endpoints[] = {
    {"POST", "/api/v1/recorder/start", recorder_start, "mocks:write",
     "Start recording: requests under pathPrefix go to targetUrl and are recorded", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/sessions", recorder_list, "mocks:read",
     "Recording sessions (a bare array), oldest first", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/:id", recorder_get, "mocks:read", "One recording session",
     MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/stop", recorder_stop, "mocks:write",
     "Stop recording (the entries are kept)", MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/restart", recorder_restart, "mocks:write",
     "Record again into the same session", MK_API_HEAVY},
    {"DELETE", "/api/v1/recorder/:id", recorder_delete, "mocks:write",
     "Delete a session and its entries (mocks made from it stay)", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/:id/entries", recorder_entries, "mocks:read",
     "The recorded exchanges (a bare array), credentials redacted", MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/mocks", recorder_mocks, "mocks:write",
     "Turn a session into mocks (deduplicated; parametrize: ids in paths become :id)",
     MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/export", recorder_export, "mocks:read",
     "The session as a HAR 1.2 document (credentials stay redacted)", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/:id/export", recorder_export, "mocks:read",
     "The session as a HAR 1.2 document, for browsers (as POST)", MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/replay", recorder_replay, "mocks:write",
     "Send the recorded requests again (ReplayOptions) and compare statuses: a ReplaySummary",
     MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/entries/:entryId/replay", recorder_replay_entry, "mocks:write",
     "Send one recorded request again: a ReplayResult", MK_API_HEAVY},
    {"PATCH", "/api/v1/recorder/:id/entries/:entryId", recorder_annotate, "mocks:write",
     "Annotate an entry: the body (an object) is kept as its annotation", MK_API_HEAVY},
    {"POST", "/api/v1/recorder/:id/correlate", recorder_correlate, "mocks:read",
     "Which response values (ids, tokens, cookies) later requests send back: a CorrelationReport",
     MK_API_HEAVY},
    {"GET", "/api/v1/recorder/configs", configs_list, "mocks:read",
     "Saved recorder configurations (a bare array): id, name, targetUrl, port", MK_API_HEAVY},
    {"POST", "/api/v1/recorder/configs", config_save, "mocks:write",
     "Save a recorder configuration (a new one, or the one whose id is given)", MK_API_HEAVY},
    {"DELETE", "/api/v1/recorder/configs/:id", config_delete, "mocks:write",
     "Delete a saved recorder configuration", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/configs/:id/export", config_export, "mocks:read",
     "A saved recorder configuration as a JSON file", MK_API_HEAVY},
    {"GET", "/api/v1/recorder/ca/status", recorder_ca, "mocks:read",
     "501: HTTPS interception (a recorder CA) is not implemented", 0},
    {"POST", "/api/v1/recorder/ca/generate", recorder_ca, "mocks:write",
     "501: HTTPS interception (a recorder CA) is not implemented", 0},
    {"GET", "/api/v1/recorder/ca/download", recorder_ca, "mocks:read",
     "501: HTTPS interception (a recorder CA) is not implemented", 0},
    {"GET", "/api/v1/namespaces/:namespace/fallback-proxy", fallback_get, "mocks:read",
     "The namespace's fallback proxy (where requests no mock matches go)", 0},
    {"PUT", "/api/v1/namespaces/:namespace/fallback-proxy", fallback_put, "mocks:write",
     "Set the namespace's fallback proxy: target, insecure, timeout, headers, override", 0},
    {"DELETE", "/api/v1/namespaces/:namespace/fallback-proxy", fallback_delete, "mocks:write",
     "Remove the namespace's fallback proxy (unmatched requests answer 404 again)", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
