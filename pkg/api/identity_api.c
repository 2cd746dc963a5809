/* Identity and access endpoints: login and sessions, the caller (me), users, API and integration
 * tokens, namespace members, the audit log; plus the lifecycle of identities and audit, and the
 * audit row every successful write through the table leaves behind. */
#include "api/api_internal.h"

#include "webhook/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PRUNE_EVERY_MS (3600LL * 1000)
#define AUDIT_FIELDS_MAX     20

/* The namespace webhooks: the sender and the subscriptions. */
struct mk_api_hooks {
    mk_webhook_sender_t *sender;
    mk_webhook_hooks_t *hooks;
};

/* --- lifecycle --- */

int mk_api_identity_start(mk_api_t *api, mk_err_t *err)
{
    mk_identity_config_t cfg = {.session_ttl_ms = api->session_ttl_ms};
    int rc = mk_identity_new(api->repo, &cfg, &api->identity, err);
    bool created = false;
    if (rc == 0)
        rc = mk_identity_bootstrap(api->identity, api->admin_password, api->generated_password,
                                   &created, err);
    if (rc != 0)
        return rc;
    api->audit = mk_audit_new(api->repo, api->audit_retention_days);
    if (api->audit == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    return mk_api_hooks_start(api, err);
}

void mk_api_identity_maintain(mk_api_t *api)
{
    int64_t now = mk_mock_now_ms();
    if (api->identity)
        mk_identity_maintain(api->identity, now);
    if (api->audit && now - api->last_prune_ms >= AUDIT_PRUNE_EVERY_MS) {
        api->last_prune_ms = now;
        mk_audit_prune(api->audit, now, NULL);
        /* The delivery log lives as long as the audit log. */
        if (api->hooks && api->audit_retention_days > 0)
            mk_webhook_hooks_prune(api->hooks->hooks, now,
                                   api->audit_retention_days * 24 * 3600 * 1000);
    }
}

void mk_api_identity_free(mk_api_t *api)
{
    mk_api_hooks_stop(api);
    mk_identity_free(api->identity);
    mk_audit_free(api->audit);
    mk_identity_limiter_free(api->limiter);
    free(api->admin_password);
    api->identity = NULL;
    api->audit = NULL;
    api->limiter = NULL;
}

mk_identity_t *mk_api_identity(mk_api_t *api)
{
    return api->identity;
}

bool mk_api_take_generated_password(mk_api_t *api, char *out)
{
    if (api->generated_password[0] == '\0')
        return false;
    memcpy(out, api->generated_password, sizeof api->generated_password);
    memset(api->generated_password, 0, sizeof api->generated_password);
    return true;
}

/* --- audit --- */

void mk_api_note_ns(ctx_t *c, const char *ns)
{
    if (ns == NULL)
        return;
    size_t n = strlen(ns);
    char *copy = mk_httpd_req_alloc(c->req, n + 1);
    memcpy(copy, ns, n + 1);
    c->ns = copy;
}

static const char *credential_of(const mk_identity_principal_t *who, char *buf, size_t size)
{
    switch (who->kind) {
    case MK_PRINCIPAL_SESSION:
        snprintf(buf, size, "session:%s", who->cred_id);
        break;
    case MK_PRINCIPAL_TOKEN:
    case MK_PRINCIPAL_INTEGRATION:
        snprintf(buf, size, "token:%s", who->cred_id);
        break;
    case MK_PRINCIPAL_BOOTSTRAP:
        snprintf(buf, size, "api_token");
        break;
    default:
        buf[0] = '\0';
    }
    return buf;
}

/* The object kind of a row: the path's first segment after /api/v1/ ("mocks", "users"). */
static const char *kind_of(ctx_t *c, char *buf, size_t size)
{
    const char *p = c->ep->path;
    if (strncmp(p, "/api/v1/", 8) == 0)
        p += 8;
    size_t n = strcspn(p, "/");
    snprintf(buf, size, "%.*s", (int)n, p);
    return buf;
}

/* A compact summary of a write: the body's field names and its id/name/login, never values that
 * might be secrets. */
static json_t *summary_of(ctx_t *c)
{
    json_t *sum = json_pack("{s:I}", "bytes", (json_int_t)c->view->body.len);
    json_t *body =
        c->view->body.len ? json_loadb(c->view->body.base, c->view->body.len, 0, NULL) : NULL;
    if (json_is_object(body)) {
        json_t *fields = json_array();
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (json_array_size(fields) < AUDIT_FIELDS_MAX)
                json_array_append_new(fields, json_string(key));
        }
        json_object_set_new(sum, "fields", fields);
        static const char *const named[] = {"id", "name", "login", "role", "userId"};
        for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
            v = json_object_get(body, named[i]);
            if (json_is_string(v) && json_string_length(v) <= 128)
                json_object_set(sum, named[i], v);
        }
    } else if (json_is_array(body)) {
        json_object_set_new(sum, "items", json_integer((json_int_t)json_array_size(body)));
    }
    json_decref(body);
    return sum;
}

static void audit(ctx_t *c, const char *action, const char *actor, const char *ns,
                  const char *object_id, int status, json_t *summary)
{
    char cred[64], kind[32], action_buf[160];
    if (c->api->audit == NULL)
        return;
    if (action == NULL) {
        snprintf(action_buf, sizeof action_buf, "%s %s", c->ep->method, c->ep->path);
        action = action_buf;
    }
    mk_str_t rid = mk_httpd_req_id(c->req);
    char *request_id = mk_httpd_req_alloc(c->req, rid.len + 1);
    memcpy(request_id, rid.base, rid.len);
    request_id[rid.len] = '\0';
    mk_audit_entry_t e = {.actor = actor ? actor : c->who.login,
                          .actor_id = c->who.user_id,
                          .credential = credential_of(&c->who, cred, sizeof cred),
                          .action = action,
                          .namespace_ = ns,
                          .kind = kind_of(c, kind, sizeof kind),
                          .object_id = object_id,
                          .status = status,
                          .request_id = request_id,
                          .summary = summary};
    mk_audit_record(c->api->audit, &e, NULL);
}

static bool is_write_method(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

int mk_api_audit_call(ctx_t *c, int status)
{
    if (status < 200 || status >= 300 || !is_write_method(c->ep->method) ||
        (c->ep->flags & MK_API_NOAUDIT))
        return status;
    const char *ns = c->ns, *object_id = "";
    /* The namespace parameter says where; the first other path parameter names the object. */
    for (size_t i = 0; i < c->match.nparams; i++) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)c->match.names[i].len, c->match.names[i].base);
        if (strcmp(name, "ns") == 0) {
            if (ns == NULL)
                ns = mk_api_param(c, name);
        } else if (object_id[0] == '\0') {
            object_id = mk_api_param(c, name);
        }
    }
    json_t *sum = summary_of(c);
    audit(c, NULL, NULL, ns ? ns : "", object_id, status, sum);
    json_decref(sum);
    return status;
}

/* --- helpers --- */

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int reply_ok(ctx_t *c, int status, json_t *body)
{
    return mk_api_reply_json(c->req, status, body);
}

static void retry_after(ctx_t *c, int seconds)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", seconds > 0 ? seconds : 1);
    mk_httpd_add_header(c->req, MK_STR_LIT("Retry-After"), mk_str_of(buf));
}

static bool namespace_exists(mk_api_t *api, const char *ns)
{
    pthread_mutex_lock(&api->write_lock);
    bool found = mk_strmap_get(api->namespaces, mk_str_of(ns)) != NULL;
    pthread_mutex_unlock(&api->write_lock);
    return found;
}

/* The :ns path parameter, checked: 404 when it does not exist or the caller has no role there
 * (the same answer, so existence is not revealed), 403 when the role is too low. */
static const char *path_ns(ctx_t *c)
{
    const char *ns = mk_api_param(c, "ns");
    mk_err_t err;
    if (mk_mock_validate_namespace(ns, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    int guard = mk_api_guard_ns(c, ns);
    if (guard == MK_EFORBIDDEN)
        return NULL;
    if (guard != 0 || !namespace_exists(c->api, ns)) {
        mk_api_reply_fmt(c, MK_ENOTFOUND, "namespace '%s' not found", ns);
        return NULL;
    }
    return ns;
}

/* --- login, logout, me --- */

static void set_cookie(ctx_t *c, const char *token, int64_t max_age_s)
{
    char buf[256];
    snprintf(buf, sizeof buf,
             MK_API_SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
                                   "SameSite=Strict%s",
             token, (long long)max_age_s, mk_httpd_req_tls(c->req) ? "; Secure" : "");
    mk_httpd_add_header(c->req, MK_STR_LIT("Set-Cookie"), mk_str_of(buf));
}

static int login(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *name = jstr(body, "login");
    if (name == NULL)
        name = jstr(body, "username");
    if (name == NULL)
        name = jstr(body, "email");
    const char *password = jstr(body, "password");
    int status;
    if (name == NULL || password == NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "login and password: required strings");
        goto out;
    }
    char *token = NULL;
    int64_t expires = 0;
    json_t *user = NULL;
    int wait = 0;
    mk_err_t err;
    int rc = mk_identity_login(c->api->identity, name, password, mk_mock_now_ms(), &token, &expires,
                               &user, &wait, &err);
    if (rc != 0) {
        json_t *sum = json_pack("{s:s}", "reason", err.msg);
        audit(c, rc == MK_ERATE ? "login.throttled" : "login.failed", name, "", "", rc, sum);
        json_decref(sum);
        if (rc == MK_ERATE)
            retry_after(c, wait);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    char when[32];
    mk_identity_time_format(expires, when);
    set_cookie(c, token, (expires - mk_mock_now_ms()) / 1000);
    snprintf(c->who.login, sizeof c->who.login, "%s", jstr(user, "login"));
    snprintf(c->who.user_id, sizeof c->who.user_id, "%s", jstr(user, "id"));
    audit(c, "login", NULL, "", jstr(user, "id"), 200, NULL);
    bool must_change = json_is_true(json_object_get(user, "requires_password_change"));
    status = reply_ok(c, 200,
                      json_pack("{s:s, s:s, s:o, s:b}", "token", token, "expires_at", when, "user",
                                user, "requires_password_change", must_change));
    free(token);
out:
    json_decref(body);
    return status;
}

static int logout(ctx_t *c)
{
    mk_err_t err;
    if (c->who.kind != MK_PRINCIPAL_SESSION)
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "not a session: tokens are revoked with DELETE "
                                "/api/v1/auth/tokens/{id}");
    if (mk_identity_logout(c->api->identity, c->who.cred_id, &err) != 0)
        return mk_api_reply_err(c, &err);
    set_cookie(c, "", 0);
    return reply_ok(c, 200, json_pack("{s:b}", "ok", 1));
}

static const char *const kind_names[] = {"anonymous", "api_token", "session", "token",
                                         "integration_token"};

static int me(ctx_t *c)
{
    json_t *user = c->who.user_id[0] ? mk_identity_user(c->api->identity, c->who.user_id) : NULL;
    if (user == NULL)
        user = json_pack("{s:s, s:s, s:s, s:[]}", "id", "", "login", c->who.login, "system_role",
                         c->who.admin ? "admin" : "user", "namespaces");
    char cred[64];
    return reply_ok(c, 200,
                    json_pack("{s:o, s:o, s:b, s:{s:s, s:s, s:s, s:s}}", "user", user, "roles",
                              mk_identity_roles(c->api->identity, &c->who), "admin", c->who.admin,
                              "principal", "kind", kind_names[c->who.kind], "login", c->who.login,
                              "credential", credential_of(&c->who, cred, sizeof cred), "scope",
                              c->who.scope_ns));
}

/* --- users --- */

static int users_list(ctx_t *c)
{
    return reply_ok(c, 200, mk_identity_users(c->api->identity));
}

static int users_create(ctx_t *c)
{
    json_t *body, *user;
    if (mk_api_parse_body(c, &body))
        return 400;
    mk_err_t err;
    int status = mk_identity_user_create(c->api->identity, body, &user, &err) == 0
                     ? reply_ok(c, 201, user)
                     : mk_api_reply_err(c, &err);
    json_decref(body);
    return status;
}

static bool is_admin(ctx_t *c)
{
    return mk_api_may(c, "users:write", NULL);
}

static int users_get(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    /* Others' accounts are an administrator's business: anyone else gets 404 for them. */
    json_t *user = is_admin(c) || strcmp(id, c->who.user_id) == 0
                       ? mk_identity_user(c->api->identity, id)
                       : NULL;
    if (user == NULL)
        return mk_api_reply_fmt(c, MK_ENOTFOUND, "user '%s' not found", id);
    return reply_ok(c, 200, user);
}

static int users_update(ctx_t *c)
{
    json_t *body, *user;
    if (mk_api_parse_body(c, &body))
        return 400;
    mk_err_t err;
    int status =
        mk_identity_user_update(c->api->identity, mk_api_param(c, "id"), body, &user, &err) == 0
            ? reply_ok(c, 200, user)
            : mk_api_reply_err(c, &err);
    json_decref(body);
    return status;
}

static int users_delete(ctx_t *c)
{
    mk_err_t err;
    if (mk_identity_user_delete(c->api->identity, mk_api_param(c, "id"), &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, json_pack("{s:b}", "deleted", 1));
}

static int users_password(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    bool self = strcmp(id, c->who.user_id) == 0;
    if (!self && !is_admin(c))
        return mk_api_reply_fmt(c, MK_ENOTFOUND, "user '%s' not found", id);
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *old_pw = jstr(body, "old_password");
    const char *new_pw = jstr(body, "new_password");
    if (new_pw == NULL)
        new_pw = jstr(body, "password");
    int status;
    mk_err_t err;
    if (self && old_pw == NULL) {
        /* One's own password needs the old one, administrators included: a stolen session
         * alone must not be enough to take the account over. */
        status = mk_api_reply_fmt(c, MK_EINVAL, "old_password: required to change your own");
    } else if (mk_identity_user_password(c->api->identity, id, self ? old_pw : NULL, new_pw,
                                         &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        status = reply_ok(c, 200, json_pack("{s:b}", "ok", 1));
    }
    json_decref(body);
    return status;
}

/* --- tokens --- */

static int tokens_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *ns = jstr(body, "namespace");
    int status;
    mk_err_t err;
    char *secret = NULL;
    json_t *info = NULL;
    if (ns && ns[0] &&
        (mk_mock_validate_namespace(ns, &err) != 0 || !namespace_exists(c->api, ns))) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "namespace: '%s' does not exist", ns);
    } else if (mk_identity_token_create(c->api->identity, &c->who, body, mk_mock_now_ms(), &secret,
                                        &info, &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        mk_api_note_ns(c, ns);
        status = reply_ok(c, 201,
                          json_pack("{s:s, s:o, s:s}", "token", secret, "token_info", info,
                                    "message", "store the token now: it is not shown again"));
    }
    free(secret);
    json_decref(body);
    return status;
}

static int tokens_list(ctx_t *c)
{
    return reply_ok(c, 200, mk_identity_tokens(c->api->identity, &c->who));
}

static int tokens_revoke(ctx_t *c)
{
    mk_err_t err;
    if (mk_identity_token_revoke(c->api->identity, &c->who, mk_api_param(c, "id"), &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, json_pack("{s:b}", "revoked", 1));
}

/* --- members --- */

static int members_list(ctx_t *c)
{
    const char *ns = path_ns(c);
    return ns ? reply_ok(c, 200, mk_identity_members(c->api->identity, ns)) : 404;
}

static int member_put(ctx_t *c, const char *ns, const char *user_id, json_t *body)
{
    mk_identity_role_t role;
    mk_err_t err;
    if (mk_identity_role_parse(jstr(body, "role"), false, &role) != 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "role: must be viewer, editor or owner");
    if (mk_identity_member_set(c->api->identity, ns, user_id, role, &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200,
                    json_pack("{s:s, s:s, s:s}", "namespace", ns, "userId", user_id, "role",
                              mk_identity_role_name(role)));
}

static int members_put(ctx_t *c)
{
    const char *ns = path_ns(c);
    json_t *body;
    if (ns == NULL)
        return 404;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status = member_put(c, ns, mk_api_param(c, "user"), body);
    json_decref(body);
    return status;
}

static int members_add(ctx_t *c)
{
    const char *ns = path_ns(c);
    json_t *body;
    if (ns == NULL)
        return 404;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *user = jstr(body, "userId");
    int status = user ? member_put(c, ns, user, body)
                      : mk_api_reply_fmt(c, MK_EINVAL, "userId: required, a user id");
    json_decref(body);
    return status;
}

static int members_delete(ctx_t *c)
{
    const char *ns = path_ns(c);
    mk_err_t err;
    if (ns == NULL)
        return 404;
    if (mk_identity_member_delete(c->api->identity, ns, mk_api_param(c, "user"), &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, json_pack("{s:b}", "deleted", 1));
}

/* --- audit --- */

static bool audit_visible(void *ud, const char *ns)
{
    return ns[0] && mk_api_may(ud, "audit:read", ns);
}

static int audit_list(ctx_t *c)
{
    mk_audit_filter_t f = {
        .namespace_ = mk_api_query(c, "namespace"),
        .actor = mk_api_query(c, "actor"),
        .action = mk_api_query(c, "action"),
        .limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT),
    };
    const char *since = mk_api_query(c, "since");
    if (since) {
        char *end;
        long long ms = strtoll(since, &end, 10);
        if (*end == '\0')
            f.since_ms = ms;
        else if (mk_identity_time_parse(since, &f.since_ms) != 0)
            return mk_api_reply_fmt(c, MK_EINVAL, "since: an RFC 3339 time or unix milliseconds");
    }
    if (f.namespace_ && mk_api_namespace(c, NULL) == NULL)
        return 403;
    /* Owners read their namespaces' rows; administrators read everything. */
    if (!is_admin(c)) {
        f.allowed = audit_visible;
        f.allowed_ud = c;
    }
    json_t *rows;
    mk_err_t err;
    if (mk_audit_query(c->api->audit, &f, &rows, &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(
        c, 200,
        json_pack("{s:o, s:I}", "entries", rows, "total", (json_int_t)json_array_size(rows)));
}

/* --- namespace webhooks --- */

int mk_api_hooks_start(mk_api_t *api, mk_err_t *err)
{
    api->hooks = calloc(1, sizeof *api->hooks);
    if (api->hooks == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    int rc = mk_webhook_sender_new(0, &api->hooks->sender, err);
    if (rc != 0)
        return rc;
    api->hooks->hooks = mk_webhook_hooks_new(api->repo, api->hooks->sender, NULL);
    return api->hooks->hooks ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

void mk_api_hooks_stop(mk_api_t *api)
{
    if (api->hooks == NULL)
        return;
    /* The sender first: its last callbacks write the delivery log through the hooks. */
    mk_webhook_sender_free(api->hooks->sender);
    mk_webhook_hooks_free(api->hooks->hooks);
    free(api->hooks);
    api->hooks = NULL;
}

void mk_api_mock_events(mk_api_t *api, mk_mock_t **mocks, size_t n, bool stored)
{
    for (size_t i = 0; i < n; i++) {
        mk_mock_t *m = mocks[i];
        if (stored && api->hooks && api->hooks->hooks) {
            const char *event = m->closed_at                     ? "mock.deleted"
                                : m->created_at == m->updated_at ? "mock.created"
                                                                 : "mock.updated";
            json_t *data = mk_mock_to_json(m);
            mk_webhook_hooks_emit(api->hooks->hooks, m->namespace_, event, data);
            json_decref(data);
        }
        mk_mock_unref(m);
    }
}

static int webhooks_list(ctx_t *c)
{
    const char *ns = path_ns(c);
    json_t *list;
    mk_err_t err;
    if (ns == NULL)
        return 404;
    if (mk_webhook_hooks_list(c->api->hooks->hooks, ns, &list, &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, list);
}

static int webhooks_create(ctx_t *c)
{
    const char *ns = path_ns(c);
    json_t *body, *hook;
    mk_err_t err;
    if (ns == NULL)
        return 404;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status =
        mk_webhook_hooks_create(c->api->hooks->hooks, ns, body, c->who.login, &hook, &err) == 0
            ? reply_ok(c, 201, hook)
            : mk_api_reply_err(c, &err);
    json_decref(body);
    return status;
}

static int webhooks_delete(ctx_t *c)
{
    const char *ns = path_ns(c);
    mk_err_t err;
    if (ns == NULL)
        return 404;
    if (mk_webhook_hooks_delete(c->api->hooks->hooks, ns, mk_api_param(c, "id"), &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, json_pack("{s:b}", "deleted", 1));
}

static int webhooks_deliveries(ctx_t *c)
{
    const char *ns = path_ns(c);
    json_t *list;
    mk_err_t err;
    if (ns == NULL)
        return 404;
    size_t limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT);
    if (mk_webhook_hooks_deliveries(c->api->hooks->hooks, ns, mk_api_param(c, "id"), limit, &list,
                                    &err) != 0)
        return mk_api_reply_err(c, &err);
    return reply_ok(c, 200, list);
}

const mk_api_endpoint_t mk_api_identity_endpoints[] = {
    {"POST", "/api/v1/login", login, "public",
     "Log in with {login, password}: a session token (also set as an HttpOnly cookie)",
     MK_API_PUBLIC | MK_API_HEAVY | MK_API_NOAUDIT | MK_API_CLIENT_LIMIT},
    {"POST", "/api/v1/auth/login", login, "public", "Same as POST /api/v1/login",
     MK_API_PUBLIC | MK_API_HEAVY | MK_API_NOAUDIT | MK_API_CLIENT_LIMIT},
    {"POST", "/api/v1/auth/logout", logout, "self", "End the caller's session", 0},
    {"GET", "/api/v1/me", me, "self", "The caller: user, roles per namespace, credential", 0},
    {"GET", "/api/v1/users", users_list, "users:read", "Every user", 0},
    {"POST", "/api/v1/users", users_create, "users:write",
     "Create a user {login, password, email, system_role}", MK_API_HEAVY},
    {"GET", "/api/v1/users/:id", users_get, "self", "One user (administrators, or oneself)", 0},
    {"PATCH", "/api/v1/users/:id", users_update, "users:write",
     "Change a user's login, email, system_role", 0},
    {"DELETE", "/api/v1/users/:id", users_delete, "users:write",
     "Delete a user with their sessions, tokens and memberships", 0},
    {"POST", "/api/v1/users/:id/password", users_password, "self",
     "Change a password {old_password, new_password}; administrators reset others'", MK_API_HEAVY},
    {"POST", "/api/v1/auth/tokens", tokens_create, "self",
     "Create a personal (mk_) or integration (mki_) token; the secret is shown once", 0},
    {"GET", "/api/v1/auth/tokens", tokens_list, "self",
     "Tokens the caller may see (own; owners: their namespaces'; administrators: all)", 0},
    {"DELETE", "/api/v1/auth/tokens/:id", tokens_revoke, "self", "Revoke a token", 0},
    {"GET", "/api/v1/namespaces/:ns/members", members_list, "members:read",
     "Members of a namespace and their roles", 0},
    {"POST", "/api/v1/namespaces/:ns/members", members_add, "members:write",
     "Add a member {userId, role}", 0},
    {"PUT", "/api/v1/namespaces/:ns/members/:user", members_put, "members:write",
     "Set a member's role {role: viewer|editor|owner}", 0},
    {"DELETE", "/api/v1/namespaces/:ns/members/:user", members_delete, "members:write",
     "Remove a member", 0},
    {"GET", "/api/v1/audit", audit_list, "audit:read",
     "Audit rows, newest first (?namespace=&actor=&action=&since=&limit=)", MK_API_HEAVY},
    {"GET", "/api/v1/namespaces/:ns/webhooks", webhooks_list, "webhooks:read",
     "Webhooks of a namespace (without secrets)", 0},
    {"POST", "/api/v1/namespaces/:ns/webhooks", webhooks_create, "webhooks:write",
     "Add a webhook {url, events, secret?, retries?}; the secret is shown once", 0},
    {"DELETE", "/api/v1/namespaces/:ns/webhooks/:id", webhooks_delete, "webhooks:write",
     "Remove a webhook", 0},
    {"GET", "/api/v1/namespaces/:ns/webhooks/:id/deliveries", webhooks_deliveries, "webhooks:read",
     "A webhook's delivery attempts, newest first", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
