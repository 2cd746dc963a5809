/* Users, sessions, tokens and memberships: in memory under one lock, written through to the
 * repository's documents. Secrets never reach the repository: passwords as argon2id hashes,
 * session and token secrets as SHA-256 hashes. Slow work (argon2) runs outside the lock. */
#include "identity/identity.h"

#include "strmap/strmap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIND_USER    "user"
#define KIND_MEMBER  "member"
#define KIND_TOKEN   "token"
#define KIND_SESSION "session"

#define PASSWORD_MIN           8
#define PASSWORD_MAX           1024
#define LOGIN_MAX              64
#define FAILS_FREE             5   /* failed logins for one user before attempts slow down */
#define LOCK_MAX_S             300 /* longest wait imposed after repeated failures */
#define SECRET_BYTES           32  /* 256-bit secrets */
#define DEFAULT_SESSION_TTL_MS (12LL * 3600 * 1000)

typedef struct user {
    char *id, *login, *email, *hash;
    bool admin, must_change;
    int64_t created_at, updated_at;
    int fails;
    int64_t locked_until;
} user_t;

typedef struct member {
    char *ns, *user_id;
    mk_identity_role_t role;
} member_t;

typedef struct token {
    char *id, *hash, *prefix, *name, *description, *user_id, *ns, *created_by;
    bool integration;
    mk_identity_role_t role;
    json_t *actions;  /* array of strings; may be empty */
    json_t *metadata; /* object or NULL */
    int64_t created_at, expires_at, last_used_at;
    int64_t rpm, rph, rpd;
    bool dirty; /* last_used_at not yet written */
} token_t;

typedef struct session {
    char *id, *hash, *user_id;
    int64_t created_at, expires_at;
} session_t;

typedef struct vec {
    void **items;
    size_t n, cap;
} vec_t;

struct mk_identity {
    mk_repo_t *repo;
    int64_t session_ttl_ms;
    pthread_mutex_t lock;
    vec_t users, members, tokens;
    mk_strmap_t *token_by_hash;
    mk_strmap_t *sessions;                 /* hash -> session_t */
    char dummy_hash[MK_IDENTITY_HASH_MAX]; /* verified against for unknown logins: same cost */
};

/* --- small helpers --- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int vec_push(vec_t *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **grown = realloc(v->items, cap * sizeof *grown);
        if (grown == NULL)
            return MK_ENOMEM;
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->n++] = p;
    return 0;
}

static void vec_remove(vec_t *v, size_t i)
{
    memmove(&v->items[i], &v->items[i + 1], (v->n - i - 1) * sizeof *v->items);
    v->n--;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static const char *const role_names[] = {"none", "viewer", "editor", "owner", "admin"};

const char *mk_identity_role_name(mk_identity_role_t role)
{
    return role <= MK_ROLE_ADMIN ? role_names[role] : "none";
}

int mk_identity_role_parse(const char *name, bool allow_admin, mk_identity_role_t *out)
{
    for (int r = MK_ROLE_VIEWER; name && r <= MK_ROLE_ADMIN; r++) {
        if (strcmp(name, role_names[r]) == 0 && (r != MK_ROLE_ADMIN || allow_admin)) {
            *out = (mk_identity_role_t)r;
            return 0;
        }
    }
    return MK_EINVAL;
}

static int put_doc(mk_identity_t *id, const char *kind, const char *doc_id, const char *ns,
                   json_t *doc, mk_err_t *err)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_repo_doc_t row = {kind, doc_id, ns ? ns : "", text, 0};
    int rc = mk_repo_put_docs(id->repo, &row, 1, err);
    free(text);
    return rc;
}

static int delete_doc(mk_identity_t *id, const char *kind, const char *doc_id, mk_err_t *err)
{
    const char *ids[] = {doc_id};
    return mk_repo_delete_docs(id->repo, kind, ids, 1, err);
}

/* --- users --- */

static void user_free(user_t *u)
{
    if (u == NULL)
        return;
    free(u->id);
    free(u->login);
    free(u->email);
    free(u->hash);
    free(u);
}

static json_t *user_doc(const user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "id", u->id, "login", u->login,
                     "email", u->email, "password_hash", u->hash, "system_role",
                     u->admin ? "admin" : "user", "requires_password_change", u->must_change,
                     "created_at", (json_int_t)u->created_at, "updated_at",
                     (json_int_t)u->updated_at);
}

static user_t *user_by_id(mk_identity_t *id, const char *user_id, size_t *at)
{
    for (size_t i = 0; user_id && i < id->users.n; i++) {
        user_t *u = id->users.items[i];
        if (strcmp(u->id, user_id) == 0) {
            if (at)
                *at = i;
            return u;
        }
    }
    return NULL;
}

static user_t *user_by_login(mk_identity_t *id, const char *login)
{
    for (size_t i = 0; login && i < id->users.n; i++) {
        user_t *u = id->users.items[i];
        if (strcmp(u->login, login) == 0 || (u->email[0] && strcmp(u->email, login) == 0))
            return u;
    }
    return NULL;
}

/* Administrators among the users; caller holds the lock. */
static size_t admins(mk_identity_t *id)
{
    size_t n = 0;
    for (size_t i = 0; i < id->users.n; i++)
        n += ((user_t *)id->users.items[i])->admin;
    return n;
}

static json_t *user_namespaces(mk_identity_t *id, const char *user_id)
{
    json_t *out = json_array();
    for (size_t i = 0; i < id->members.n; i++) {
        member_t *m = id->members.items[i];
        if (strcmp(m->user_id, user_id) == 0)
            json_array_append_new(out, json_string(m->ns));
    }
    return out;
}

/* Mockarty's UserInfo; caller holds the lock. */
static json_t *user_info(mk_identity_t *id, const user_t *u)
{
    char created[32];
    mk_identity_time_format(u->created_at, created);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:s}", "id", u->id, "login", u->login,
                     "email", u->email, "system_role", u->admin ? "admin" : "user", "namespaces",
                     user_namespaces(id, u->id), "has_password", 1, "requires_password_change",
                     u->must_change, "created_at", created);
}

static int check_login_name(const char *login, mk_err_t *err)
{
    size_t n = login ? strlen(login) : 0;
    if (n == 0 || n > LOGIN_MAX)
        return mk_err_set(err, MK_EINVAL, "login: required, 1-%d characters", LOGIN_MAX);
    for (const char *s = login; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '/' || *s == '"' || *s == '\\')
            return mk_err_set(err, MK_EINVAL,
                              "login: must not contain spaces, control characters, '/', '\"' or "
                              "'\\'");
    return 0;
}

static int check_password(const char *field, const char *pw, mk_err_t *err)
{
    size_t n = pw ? strlen(pw) : 0;
    if (n < PASSWORD_MIN || n > PASSWORD_MAX)
        return mk_err_set(err, MK_EINVAL, "%s: required, %d to %d characters", field, PASSWORD_MIN,
                          PASSWORD_MAX);
    return 0;
}

/* --- members, tokens, sessions: free and serialise --- */

static void member_free(member_t *m)
{
    if (m == NULL)
        return;
    free(m->ns);
    free(m->user_id);
    free(m);
}

static void token_free(token_t *t)
{
    if (t == NULL)
        return;
    free(t->id);
    free(t->hash);
    free(t->prefix);
    free(t->name);
    free(t->description);
    free(t->user_id);
    free(t->ns);
    free(t->created_by);
    json_decref(t->actions);
    json_decref(t->metadata);
    free(t);
}

static json_t *token_doc(const token_t *t)
{
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:I, s:I, s:I}",
        "id", t->id, "hash", t->hash, "prefix", t->prefix, "name", t->name, "description",
        t->description, "kind", t->integration ? "integration" : "personal", "user_id", t->user_id,
        "namespace", t->ns, "role", mk_identity_role_name(t->role), "created_by", t->created_by,
        "allowed_actions", t->actions, "created_at", (json_int_t)t->created_at, "expires_at",
        (json_int_t)t->expires_at, "last_used_at", (json_int_t)t->last_used_at,
        "rate_limit_per_minute", (json_int_t)t->rpm, "rate_limit_per_hour", (json_int_t)t->rph,
        "rate_limit_per_day", (json_int_t)t->rpd);
    if (d && t->metadata)
        json_object_set(d, "metadata", t->metadata);
    return d;
}

/* Mockarty's token_info (APIKey); never the hash. Caller holds the lock. */
static json_t *token_info(mk_identity_t *id, const token_t *t)
{
    char created[32], expires[32] = "", used[32] = "";
    mk_identity_time_format(t->created_at, created);
    if (t->expires_at)
        mk_identity_time_format(t->expires_at, expires);
    if (t->last_used_at)
        mk_identity_time_format(t->last_used_at, used);
    const user_t *u = user_by_id(id, t->user_id, NULL);
    json_t *info = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, "
        "s:b}",
        "id", t->id, "name", t->name, "description", t->description, "kind",
        t->integration ? "integration" : "personal", "role",
        t->integration ? mk_identity_role_name(t->role) : "", "prefix", t->prefix, "namespace",
        t->ns, "user_id", t->user_id, "user_login", u ? u->login : "", "created_at", created,
        "created_by", t->created_by, "expires_at", expires, "last_used_at", used, "allowed_actions",
        t->actions, "rate_limit_per_minute", (json_int_t)t->rpm, "rate_limit_per_hour",
        (json_int_t)t->rph, "rate_limit_per_day", (json_int_t)t->rpd, "enabled", 1);
    if (info && t->metadata)
        json_object_set(info, "metadata", t->metadata);
    return info;
}

static void session_free(session_t *s)
{
    if (s == NULL)
        return;
    free(s->id);
    free(s->hash);
    free(s->user_id);
    free(s);
}

/* --- loading --- */

static int load_user(void *ud, const mk_repo_doc_t *doc)
{
    mk_identity_t *id = ud;
    json_t *j = json_loads(doc->json, 0, NULL);
    if (j == NULL)
        return 0; /* a damaged document is skipped, not fatal */
    user_t *u = calloc(1, sizeof *u);
    if (u) {
        *u = (user_t){.id = dup_or_empty(jstr(j, "id")),
                      .login = dup_or_empty(jstr(j, "login")),
                      .email = dup_or_empty(jstr(j, "email")),
                      .hash = dup_or_empty(jstr(j, "password_hash")),
                      .admin = jstr(j, "system_role") && !strcmp(jstr(j, "system_role"), "admin"),
                      .must_change = json_is_true(json_object_get(j, "requires_password_change")),
                      .created_at = jint(j, "created_at"),
                      .updated_at = jint(j, "updated_at")};
    }
    json_decref(j);
    return u && vec_push(&id->users, u) == 0 ? 0 : (user_free(u), MK_ENOMEM);
}

static int load_member(void *ud, const mk_repo_doc_t *doc)
{
    mk_identity_t *id = ud;
    json_t *j = json_loads(doc->json, 0, NULL);
    mk_identity_role_t role;
    if (j == NULL || mk_identity_role_parse(jstr(j, "role"), false, &role) != 0) {
        json_decref(j);
        return 0;
    }
    member_t *m = calloc(1, sizeof *m);
    if (m)
        *m = (member_t){dup_or_empty(jstr(j, "namespace")), dup_or_empty(jstr(j, "userId")), role};
    json_decref(j);
    return m && vec_push(&id->members, m) == 0 ? 0 : (member_free(m), MK_ENOMEM);
}

static int load_token(void *ud, const mk_repo_doc_t *doc)
{
    mk_identity_t *id = ud;
    json_t *j = json_loads(doc->json, 0, NULL);
    if (j == NULL || jstr(j, "hash") == NULL) {
        json_decref(j);
        return 0;
    }
    token_t *t = calloc(1, sizeof *t);
    if (t) {
        json_t *actions = json_object_get(j, "allowed_actions");
        json_t *meta = json_object_get(j, "metadata");
        mk_identity_role_t role = MK_ROLE_NONE;
        mk_identity_role_parse(jstr(j, "role"), true, &role);
        *t = (token_t){.id = dup_or_empty(jstr(j, "id")),
                       .hash = dup_or_empty(jstr(j, "hash")),
                       .prefix = dup_or_empty(jstr(j, "prefix")),
                       .name = dup_or_empty(jstr(j, "name")),
                       .description = dup_or_empty(jstr(j, "description")),
                       .user_id = dup_or_empty(jstr(j, "user_id")),
                       .ns = dup_or_empty(jstr(j, "namespace")),
                       .created_by = dup_or_empty(jstr(j, "created_by")),
                       .integration = jstr(j, "kind") && !strcmp(jstr(j, "kind"), "integration"),
                       .role = role,
                       .actions = json_is_array(actions) ? json_incref(actions) : json_array(),
                       .metadata = json_is_object(meta) ? json_incref(meta) : NULL,
                       .created_at = jint(j, "created_at"),
                       .expires_at = jint(j, "expires_at"),
                       .last_used_at = jint(j, "last_used_at"),
                       .rpm = jint(j, "rate_limit_per_minute"),
                       .rph = jint(j, "rate_limit_per_hour"),
                       .rpd = jint(j, "rate_limit_per_day")};
    }
    json_decref(j);
    if (t == NULL || vec_push(&id->tokens, t) != 0) {
        token_free(t);
        return MK_ENOMEM;
    }
    return mk_strmap_set(id->token_by_hash, mk_str_of(t->hash), t);
}

static int load_session(void *ud, const mk_repo_doc_t *doc)
{
    mk_identity_t *id = ud;
    json_t *j = json_loads(doc->json, 0, NULL);
    if (j == NULL) {
        return 0;
    }
    session_t *s = calloc(1, sizeof *s);
    if (s)
        *s = (session_t){dup_or_empty(jstr(j, "id")), strdup(doc->id),
                         dup_or_empty(jstr(j, "user_id")), jint(j, "created_at"),
                         jint(j, "expires_at")};
    json_decref(j);
    if (s == NULL || mk_strmap_set(id->sessions, mk_str_of(s->hash), s) != 0) {
        session_free(s);
        return MK_ENOMEM;
    }
    return 0;
}

int mk_identity_new(mk_repo_t *repo, const mk_identity_config_t *cfg, mk_identity_t **out,
                    mk_err_t *err)
{
    mk_identity_t *id = calloc(1, sizeof *id);
    *out = NULL;
    if (id == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    id->repo = repo;
    id->session_ttl_ms =
        cfg && cfg->session_ttl_ms > 0 ? cfg->session_ttl_ms : DEFAULT_SESSION_TTL_MS;
    pthread_mutex_init(&id->lock, NULL);
    id->token_by_hash = mk_strmap_new();
    id->sessions = mk_strmap_new();
    int rc = id->token_by_hash && id->sessions ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    char random_pw[33];
    mk_identity_random_hex(16, random_pw);
    if (rc == 0)
        rc = mk_identity_hash_password(random_pw, id->dummy_hash, err);
    if (rc == 0)
        rc = mk_repo_list_docs(repo, KIND_USER, NULL, load_user, id, err);
    if (rc == 0)
        rc = mk_repo_list_docs(repo, KIND_MEMBER, NULL, load_member, id, err);
    if (rc == 0)
        rc = mk_repo_list_docs(repo, KIND_TOKEN, NULL, load_token, id, err);
    if (rc == 0)
        rc = mk_repo_list_docs(repo, KIND_SESSION, NULL, load_session, id, err);
    if (rc != 0) {
        if (err && err->code == 0)
            mk_err_set(err, rc, "loading identities: out of memory");
        mk_identity_free(id);
        return rc;
    }
    *out = id;
    return 0;
}

void mk_identity_free(mk_identity_t *id)
{
    if (id == NULL)
        return;
    for (size_t i = 0; i < id->users.n; i++)
        user_free(id->users.items[i]);
    for (size_t i = 0; i < id->members.n; i++)
        member_free(id->members.items[i]);
    for (size_t i = 0; i < id->tokens.n; i++)
        token_free(id->tokens.items[i]);
    free(id->users.items);
    free(id->members.items);
    free(id->tokens.items);
    size_t pos = 0;
    mk_str_t key;
    void *v;
    while (id->sessions && mk_strmap_next(id->sessions, &pos, &key, &v))
        session_free(v);
    mk_strmap_free(id->sessions);
    mk_strmap_free(id->token_by_hash);
    pthread_mutex_destroy(&id->lock);
    free(id);
}

/* --- users: create, update, delete, passwords --- */

/* Adds a user (caller holds the lock; hash computed before). */
static int add_user(mk_identity_t *id, const char *login, const char *email, const char *hash,
                    bool admin, bool must_change, user_t **out, mk_err_t *err)
{
    if (user_by_login(id, login) != NULL || (email && email[0] && user_by_login(id, email)))
        return mk_err_set(err, MK_ECONFLICT, "login: '%s' is taken", login);
    char uid[MK_IDENTITY_ID_MAX];
    memcpy(uid, "u_", 2);
    mk_identity_random_hex(8, uid + 2);
    int64_t now = now_ms();
    user_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    *u = (user_t){.id = strdup(uid),
                  .login = strdup(login),
                  .email = dup_or_empty(email),
                  .hash = strdup(hash),
                  .admin = admin,
                  .must_change = must_change,
                  .created_at = now,
                  .updated_at = now};
    int rc = put_doc(id, KIND_USER, u->id, NULL, user_doc(u), err);
    if (rc == 0 && vec_push(&id->users, u) != 0)
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc != 0) {
        user_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int mk_identity_bootstrap(mk_identity_t *id, const char *password, char *generated, bool *created,
                          mk_err_t *err)
{
    generated[0] = '\0';
    *created = false;
    pthread_mutex_lock(&id->lock);
    size_t n = id->users.n;
    pthread_mutex_unlock(&id->lock);
    if (n > 0)
        return 0;
    if (password == NULL || password[0] == '\0') {
        mk_identity_random_hex(16, generated);
        password = generated;
    } else if (check_password("ADMIN_PASSWORD", password, err) != 0) {
        return MK_EINVAL;
    }
    char hash[MK_IDENTITY_HASH_MAX];
    int rc = mk_identity_hash_password(password, hash, err);
    user_t *u;
    pthread_mutex_lock(&id->lock);
    if (rc == 0 && id->users.n == 0) {
        rc = add_user(id, "admin", "", hash, true, false, &u, err);
        *created = rc == 0;
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

json_t *mk_identity_users(mk_identity_t *id)
{
    json_t *out = json_array();
    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->users.n; i++)
        json_array_append_new(out, user_info(id, id->users.items[i]));
    pthread_mutex_unlock(&id->lock);
    return out;
}

json_t *mk_identity_user(mk_identity_t *id, const char *user_id)
{
    pthread_mutex_lock(&id->lock);
    user_t *u = user_by_id(id, user_id, NULL);
    json_t *out = u ? user_info(id, u) : NULL;
    pthread_mutex_unlock(&id->lock);
    return out;
}

static int parse_system_role(json_t *body, bool *admin, mk_err_t *err)
{
    json_t *v = json_object_get(body, "system_role");
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "admin") == 0 || strcmp(s, "user") == 0)) {
        *admin = strcmp(s, "admin") == 0;
        return 0;
    }
    return mk_err_set(err, MK_EINVAL, "system_role: must be \"admin\" or \"user\"");
}

static int check_email(json_t *body, mk_err_t *err)
{
    json_t *v = json_object_get(body, "email");
    if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 254))
        return mk_err_set(err, MK_EINVAL, "email: must be a string of at most 254 characters");
    return 0;
}

int mk_identity_user_create(mk_identity_t *id, json_t *body, json_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return mk_err_set(err, MK_EINVAL, "request body: must be a JSON object");
    const char *login = jstr(body, "login");
    if (login == NULL)
        login = jstr(body, "username");
    const char *password = jstr(body, "password");
    bool admin = false;
    int rc = check_login_name(login, err);
    if (rc == 0)
        rc = check_password("password", password, err);
    if (rc == 0)
        rc = parse_system_role(body, &admin, err);
    if (rc == 0)
        rc = check_email(body, err);
    char hash[MK_IDENTITY_HASH_MAX];
    if (rc == 0)
        rc = mk_identity_hash_password(password, hash, err);
    if (rc != 0)
        return rc;
    user_t *u;
    pthread_mutex_lock(&id->lock);
    rc = add_user(id, login, jstr(body, "email"), hash, admin,
                  json_is_true(json_object_get(body, "requires_password_change")), &u, err);
    if (rc == 0)
        *out = user_info(id, u);
    pthread_mutex_unlock(&id->lock);
    return rc;
}

int mk_identity_user_update(mk_identity_t *id, const char *user_id, json_t *body, json_t **out,
                            mk_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return mk_err_set(err, MK_EINVAL, "request body: must be a JSON object");
    bool admin = false;
    const char *login = jstr(body, "login");
    int rc = parse_system_role(body, &admin, err);
    if (rc == 0)
        rc = check_email(body, err);
    if (rc == 0 && json_object_get(body, "login"))
        rc = check_login_name(login, err);
    if (rc == 0 && json_object_get(body, "password"))
        rc =
            mk_err_set(err, MK_EINVAL, "password: change it with POST /api/v1/users/{id}/password");
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&id->lock);
    user_t *u = user_by_id(id, user_id, NULL);
    user_t *other = login ? user_by_login(id, login) : NULL;
    if (u == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "user '%s' not found", user_id);
    } else if (other && other != u) {
        rc = mk_err_set(err, MK_ECONFLICT, "login: '%s' is taken", login);
    } else if (u->admin && json_object_get(body, "system_role") && !admin && admins(id) == 1) {
        rc = mk_err_set(err, MK_ECONFLICT, "system_role: '%s' is the last administrator", u->login);
    } else {
        user_t next = *u;
        next.admin = json_object_get(body, "system_role") ? admin : u->admin;
        next.login = login ? (char *)login : u->login;
        next.email = jstr(body, "email") ? (char *)jstr(body, "email") : u->email;
        if (json_object_get(body, "requires_password_change"))
            next.must_change = json_is_true(json_object_get(body, "requires_password_change"));
        next.updated_at = now_ms();
        rc = put_doc(id, KIND_USER, u->id, NULL, user_doc(&next), err);
        if (rc == 0) {
            char *nl = strdup(next.login), *ne = strdup(next.email);
            free(u->login);
            free(u->email);
            u->login = nl;
            u->email = ne;
            u->admin = next.admin;
            u->must_change = next.must_change;
            u->updated_at = next.updated_at;
            *out = user_info(id, u);
        }
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

/* Drops sessions of user_id (NULL: none) from memory and the repository. Caller holds the lock. */
static void drop_sessions_of(mk_identity_t *id, const char *user_id)
{
    size_t pos = 0;
    mk_str_t key;
    void *v;
    char *doomed[256];
    size_t n = 0;
    do {
        n = 0;
        pos = 0;
        while (n < 256 && mk_strmap_next(id->sessions, &pos, &key, &v))
            if (strcmp(((session_t *)v)->user_id, user_id) == 0)
                doomed[n++] = ((session_t *)v)->hash;
        for (size_t i = 0; i < n; i++) {
            session_t *s = mk_strmap_del(id->sessions, mk_str_of(doomed[i]));
            delete_doc(id, KIND_SESSION, s->hash, NULL);
            session_free(s);
        }
    } while (n == 256);
}

int mk_identity_user_delete(mk_identity_t *id, const char *user_id, mk_err_t *err)
{
    pthread_mutex_lock(&id->lock);
    size_t at;
    user_t *u = user_by_id(id, user_id, &at);
    int rc = 0;
    if (u == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "user '%s' not found", user_id);
        goto out;
    }
    if (u->admin && admins(id) == 1) {
        rc = mk_err_set(err, MK_ECONFLICT, "user '%s' is the last administrator", u->login);
        goto out;
    }
    rc = delete_doc(id, KIND_USER, u->id, err);
    if (rc != 0)
        goto out;
    for (size_t i = id->members.n; i-- > 0;) {
        member_t *m = id->members.items[i];
        if (strcmp(m->user_id, user_id) != 0)
            continue;
        char key[2 * MK_IDENTITY_NAME_MAX];
        snprintf(key, sizeof key, "%s/%s", m->ns, m->user_id);
        delete_doc(id, KIND_MEMBER, key, NULL);
        member_free(m);
        vec_remove(&id->members, i);
    }
    for (size_t i = id->tokens.n; i-- > 0;) {
        token_t *t = id->tokens.items[i];
        if (t->integration || strcmp(t->user_id, user_id) != 0)
            continue;
        delete_doc(id, KIND_TOKEN, t->id, NULL);
        mk_strmap_del(id->token_by_hash, mk_str_of(t->hash));
        token_free(t);
        vec_remove(&id->tokens, i);
    }
    drop_sessions_of(id, user_id);
    vec_remove(&id->users, at);
    user_free(u);
out:
    pthread_mutex_unlock(&id->lock);
    return rc;
}

int mk_identity_user_password(mk_identity_t *id, const char *user_id, const char *old_password,
                              const char *new_password, mk_err_t *err)
{
    int rc = check_password("new_password", new_password, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&id->lock);
    user_t *u = user_by_id(id, user_id, NULL);
    char *old_hash = u ? strdup(u->hash) : NULL;
    pthread_mutex_unlock(&id->lock);
    if (u == NULL)
        return mk_err_set(err, MK_ENOTFOUND, "user '%s' not found", user_id);
    bool ok = old_password == NULL || mk_identity_verify_password(old_hash, old_password);
    free(old_hash);
    if (!ok)
        return mk_err_set(err, MK_EFORBIDDEN, "old_password: does not match");
    char hash[MK_IDENTITY_HASH_MAX];
    rc = mk_identity_hash_password(new_password, hash, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&id->lock);
    u = user_by_id(id, user_id, NULL);
    if (u == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "user '%s' not found", user_id);
    } else {
        user_t next = *u;
        next.hash = hash;
        next.must_change = false;
        next.updated_at = now_ms();
        rc = put_doc(id, KIND_USER, u->id, NULL, user_doc(&next), err);
        if (rc == 0) {
            char *h = strdup(hash);
            free(u->hash);
            u->hash = h;
            u->must_change = false;
            u->updated_at = next.updated_at;
        }
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

/* --- sessions and login --- */

int mk_identity_login(mk_identity_t *id, const char *login, const char *password, int64_t now_ms,
                      char **token, int64_t *expires_ms, json_t **user, int *retry_after_s,
                      mk_err_t *err)
{
    *token = NULL;
    *user = NULL;
    *retry_after_s = 0;
    if (login == NULL || password == NULL || strlen(password) > PASSWORD_MAX)
        return mk_err_set(err, MK_EINVAL, "login and password: required strings");
    pthread_mutex_lock(&id->lock);
    user_t *u = user_by_login(id, login);
    char *hash = strdup(u ? u->hash : id->dummy_hash);
    char *uid = u ? strdup(u->id) : NULL;
    int64_t locked = u ? u->locked_until : 0;
    pthread_mutex_unlock(&id->lock);
    if (locked > now_ms) {
        free(hash);
        free(uid);
        *retry_after_s = (int)((locked - now_ms + 999) / 1000);
        return mk_err_set(err, MK_ERATE, "too many failed logins for this user: retry in %d s",
                          *retry_after_s);
    }
    /* Unknown logins verify against a dummy hash, so both answers take as long. */
    int64_t started = mono_ms();
    bool ok = mk_identity_verify_password(hash, password) && uid != NULL;
    /* The wait runs from the failure's answer, not from its arrival: a slow hash must not use
     * it up. */
    int64_t failed_at = now_ms + (mono_ms() - started);
    free(hash);
    pthread_mutex_lock(&id->lock);
    u = uid ? user_by_id(id, uid, NULL) : NULL;
    int rc = 0;
    if (u == NULL || !ok) {
        if (u) {
            u->fails++;
            if (u->fails >= FAILS_FREE) {
                int shift = u->fails - FAILS_FREE;
                int64_t wait = shift > 8 ? LOCK_MAX_S : (int64_t)1 << shift;
                u->locked_until = failed_at + (wait > LOCK_MAX_S ? LOCK_MAX_S : wait) * 1000;
            }
        }
        rc = mk_err_set(err, MK_EUNAUTH, "invalid login or password");
        goto out;
    }
    u->fails = 0;
    u->locked_until = 0;
    char secret[4 + 2 * SECRET_BYTES + 1] = "mks_";
    mk_identity_random_hex(SECRET_BYTES, secret + 4);
    char hash_hex[65];
    mk_identity_sha256_hex(secret, strlen(secret), hash_hex);
    session_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    /* The public id is a prefix of the hash: enough to name it in audit rows, useless to log in. */
    *s = (session_t){strndup(hash_hex, 16), strdup(hash_hex), strdup(u->id), now_ms,
                     now_ms + id->session_ttl_ms};
    rc = put_doc(id, KIND_SESSION, s->hash, NULL,
                 json_pack("{s:s, s:s, s:I, s:I}", "id", s->id, "user_id", s->user_id, "created_at",
                           (json_int_t)s->created_at, "expires_at", (json_int_t)s->expires_at),
                 err);
    if (rc == 0 && mk_strmap_set(id->sessions, mk_str_of(s->hash), s) != 0)
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc != 0) {
        session_free(s);
        goto out;
    }
    *token = strdup(secret);
    *expires_ms = s->expires_at;
    *user = user_info(id, u);
out:
    pthread_mutex_unlock(&id->lock);
    free(uid);
    return rc;
}

int mk_identity_logout(mk_identity_t *id, const char *session_id, mk_err_t *err)
{
    pthread_mutex_lock(&id->lock);
    size_t pos = 0;
    mk_str_t key;
    void *v;
    session_t *found = NULL;
    while (found == NULL && mk_strmap_next(id->sessions, &pos, &key, &v))
        if (strcmp(((session_t *)v)->id, session_id) == 0)
            found = v;
    int rc = 0;
    if (found) {
        rc = delete_doc(id, KIND_SESSION, found->hash, err);
        if (rc == 0) {
            mk_strmap_del(id->sessions, mk_str_of(found->hash));
            session_free(found);
        }
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

static void principal_of_user(mk_identity_principal_t *p, const user_t *u)
{
    snprintf(p->user_id, sizeof p->user_id, "%s", u->id);
    snprintf(p->login, sizeof p->login, "%s", u->login);
    p->admin = u->admin;
}

int mk_identity_authenticate(mk_identity_t *id, const char *secret, size_t len, int64_t now_ms,
                             mk_identity_principal_t *out, mk_err_t *err)
{
    memset(out, 0, sizeof *out);
    char hash[65];
    mk_identity_sha256_hex(secret, len, hash);
    int rc = 0;
    pthread_mutex_lock(&id->lock);
    if (len > 4 && memcmp(secret, "mks_", 4) == 0) {
        session_t *s = mk_strmap_get(id->sessions, mk_str_of(hash));
        user_t *u = s ? user_by_id(id, s->user_id, NULL) : NULL;
        if (s == NULL) {
            rc = mk_err_set(err, MK_EUNAUTH, "session: unknown or ended");
        } else if (s->expires_at <= now_ms) {
            rc = mk_err_set(err, MK_EUNAUTH, "session: expired");
        } else if (u == NULL) {
            rc = mk_err_set(err, MK_EUNAUTH, "session: its user was deleted");
        } else {
            out->kind = MK_PRINCIPAL_SESSION;
            principal_of_user(out, u);
            snprintf(out->cred_id, sizeof out->cred_id, "%s", s->id);
        }
        goto out;
    }
    token_t *t = mk_strmap_get(id->token_by_hash, mk_str_of(hash));
    if (t == NULL) {
        rc = mk_err_set(err, MK_EUNAUTH, "token: unknown or revoked");
        goto out;
    }
    if (t->expires_at && t->expires_at <= now_ms) {
        rc = mk_err_set(err, MK_EUNAUTH, "token: expired");
        goto out;
    }
    snprintf(out->cred_id, sizeof out->cred_id, "%s", t->id);
    snprintf(out->scope_ns, sizeof out->scope_ns, "%s", t->ns);
    out->rate_per_minute = t->rpm;
    out->rate_per_hour = t->rph;
    out->rate_per_day = t->rpd;
    if (t->integration) {
        out->kind = MK_PRINCIPAL_INTEGRATION;
        snprintf(out->login, sizeof out->login, "%s", t->name);
        out->scope_role = t->role;
        out->admin = t->role == MK_ROLE_ADMIN && t->ns[0] == '\0';
    } else {
        user_t *u = user_by_id(id, t->user_id, NULL);
        if (u == NULL) {
            rc = mk_err_set(err, MK_EUNAUTH, "token: its user was deleted");
            goto out;
        }
        out->kind = MK_PRINCIPAL_TOKEN;
        principal_of_user(out, u);
        size_t used = 0;
        size_t i;
        json_t *a;
        json_array_foreach(t->actions, i, a)
        {
            int n = snprintf(out->actions + used, sizeof out->actions - used, "%s%s,",
                             used ? "" : ",", json_string_value(a));
            if (n < 0 || (size_t)n >= sizeof out->actions - used)
                break;
            used += (size_t)n;
        }
    }
    /* Written by mk_identity_maintain, not on every call. */
    if (now_ms - t->last_used_at >= 1000) {
        t->last_used_at = now_ms;
        t->dirty = true;
    }
out:
    pthread_mutex_unlock(&id->lock);
    return rc;
}

/* --- tokens --- */

static mk_identity_role_t role_locked(mk_identity_t *id, const mk_identity_principal_t *p,
                                      const char *ns);

/* The token's expiry from the request: absent, an RFC 3339 time in the future, or a number of
 * unix milliseconds. */
static int parse_expiry(json_t *v, int64_t now_ms, int64_t *out, mk_err_t *err)
{
    *out = 0;
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return 0;
    if (json_is_integer(v))
        *out = (int64_t)json_integer_value(v);
    else if (!json_is_string(v) || mk_identity_time_parse(json_string_value(v), out) != 0)
        return mk_err_set(err, MK_EINVAL,
                          "expires_at: must be an RFC 3339 time such as 2027-01-01T00:00:00Z");
    if (*out <= now_ms)
        return mk_err_set(err, MK_EINVAL, "expires_at: must be in the future");
    return 0;
}

static int check_actions(json_t *v, mk_err_t *err)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > 32)
        return mk_err_set(err, MK_EINVAL, "allowed_actions: must be an array of permissions");
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        if (!json_is_string(a) || !mk_identity_perm_known(json_string_value(a)))
            return mk_err_set(err, MK_EINVAL,
                              "allowed_actions[%zu]: unknown permission (see GET "
                              "/api/v1/endpoints)",
                              i);
    }
    return 0;
}

static int check_limits(json_t *body, int64_t out[3], mk_err_t *err)
{
    static const char *const keys[] = {"rate_limit_per_minute", "rate_limit_per_hour",
                                       "rate_limit_per_day"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(body, keys[i]);
        out[i] = 0;
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return mk_err_set(err, MK_EINVAL, "%s: must be a non-negative integer", keys[i]);
        out[i] = (int64_t)json_integer_value(v);
    }
    return 0;
}

int mk_identity_token_create(mk_identity_t *id, const mk_identity_principal_t *creator,
                             json_t *body, int64_t now_ms, char **secret, json_t **info,
                             mk_err_t *err)
{
    *secret = NULL;
    *info = NULL;
    if (!json_is_object(body))
        return mk_err_set(err, MK_EINVAL, "request body: must be a JSON object");
    const char *name = jstr(body, "name");
    const char *kind = jstr(body, "kind") ? jstr(body, "kind") : "personal";
    const char *ns = jstr(body, "namespace") ? jstr(body, "namespace") : "";
    json_t *desc = json_object_get(body, "description");
    json_t *meta = json_object_get(body, "metadata");
    bool integration = strcmp(kind, "integration") == 0;
    mk_identity_role_t role = MK_ROLE_NONE;
    int64_t expires = 0, limits[3];
    int rc = 0;
    if (name == NULL || name[0] == '\0' || strlen(name) >= MK_IDENTITY_NAME_MAX)
        rc =
            mk_err_set(err, MK_EINVAL, "name: required, 1-%d characters", MK_IDENTITY_NAME_MAX - 1);
    else if (!integration && strcmp(kind, "personal") != 0)
        rc = mk_err_set(err, MK_EINVAL, "kind: must be \"personal\" or \"integration\"");
    else if (desc && !json_is_null(desc) && !json_is_string(desc))
        rc = mk_err_set(err, MK_EINVAL, "description: must be a string");
    else if (meta && !json_is_null(meta) && !json_is_object(meta))
        rc = mk_err_set(err, MK_EINVAL, "metadata: must be an object");
    else if (strlen(ns) >= MK_IDENTITY_NAME_MAX)
        rc = mk_err_set(err, MK_EINVAL, "namespace: too long");
    if (rc == 0 && integration) {
        const char *r = jstr(body, "role");
        if (r == NULL)
            r = ns[0] ? "viewer" : "admin";
        if (mk_identity_role_parse(r, ns[0] == '\0', &role) != 0)
            rc = mk_err_set(err, MK_EINVAL,
                            ns[0] ? "role: must be viewer, editor or owner"
                                  : "role: an admin-scoped token (no namespace) has role admin");
        else if (ns[0] == '\0' && role != MK_ROLE_ADMIN)
            rc = mk_err_set(err, MK_EINVAL,
                            "role: an admin-scoped token (no namespace) has role admin");
    } else if (rc == 0 && json_object_get(body, "role")) {
        rc = mk_err_set(err, MK_EINVAL,
                        "role: only integration tokens have a role (a personal "
                        "token acts as its user)");
    }
    if (rc == 0)
        rc = parse_expiry(json_object_get(body, "expires_at"), now_ms, &expires, err);
    if (rc == 0)
        rc = check_actions(json_object_get(body, "allowed_actions"), err);
    if (rc == 0)
        rc = check_limits(body, limits, err);
    if (rc != 0)
        return rc;
    /* Who may mint what: integration tokens need admin (admin scope) or owner of the namespace;
     * a personal token needs a user behind the caller, and a namespace narrowing it must be one
     * the user has a role in. */
    if (integration &&
        !mk_identity_may(id, creator, ns[0] ? "tokens:write" : "admin", ns[0] ? ns : NULL))
        return mk_err_set(err, MK_EFORBIDDEN,
                          ns[0] ? "creating an integration token for namespace '%s' needs the "
                                  "owner role there"
                                : "creating an admin-scoped integration token needs an "
                                  "administrator%s",
                          ns);
    if (!integration && creator->user_id[0] == '\0')
        return mk_err_set(err, MK_EFORBIDDEN,
                          "a personal token belongs to a user: log in as one, or create an "
                          "integration token (\"kind\": \"integration\")");
    if (!integration && ns[0] && mk_identity_role_in(id, creator, ns) == MK_ROLE_NONE)
        return mk_err_set(err, MK_EFORBIDDEN, "namespace: you have no role in '%s'", ns);
    char sec[5 + 2 * SECRET_BYTES + 1];
    strcpy(sec, integration ? "mki_" : "mk_");
    mk_identity_random_hex(SECRET_BYTES, sec + strlen(sec));
    char hash[65], tid[MK_IDENTITY_ID_MAX] = "t_", prefix[16];
    mk_identity_sha256_hex(sec, strlen(sec), hash);
    mk_identity_random_hex(8, tid + 2);
    snprintf(prefix, sizeof prefix, "%.*s", (int)strlen(integration ? "mki_" : "mk_") + 6, sec);
    token_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    json_t *actions = json_object_get(body, "allowed_actions");
    *t = (token_t){.id = strdup(tid),
                   .hash = strdup(hash),
                   .prefix = strdup(prefix),
                   .name = strdup(name),
                   .description = dup_or_empty(json_string_value(desc)),
                   .user_id = dup_or_empty(integration ? "" : creator->user_id),
                   .ns = strdup(ns),
                   .created_by = strdup(creator->login),
                   .integration = integration,
                   .role = role,
                   .actions = json_is_array(actions) ? json_deep_copy(actions) : json_array(),
                   .metadata = json_is_object(meta) ? json_deep_copy(meta) : NULL,
                   .created_at = now_ms,
                   .expires_at = expires,
                   .rpm = limits[0],
                   .rph = limits[1],
                   .rpd = limits[2]};
    pthread_mutex_lock(&id->lock);
    rc = put_doc(id, KIND_TOKEN, t->id, t->ns, token_doc(t), err);
    if (rc == 0 && (vec_push(&id->tokens, t) != 0 ||
                    mk_strmap_set(id->token_by_hash, mk_str_of(t->hash), t) != 0))
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc == 0)
        *info = token_info(id, t);
    pthread_mutex_unlock(&id->lock);
    if (rc != 0) {
        token_free(t);
        return rc;
    }
    *secret = strdup(sec);
    return 0;
}

/* Caller holds the lock. */
static bool token_visible(mk_identity_t *id, const mk_identity_principal_t *caller,
                          const token_t *t)
{
    if (caller->admin && caller->scope_ns[0] == '\0')
        return true;
    if (caller->user_id[0] && strcmp(t->user_id, caller->user_id) == 0)
        return true;
    return t->ns[0] && role_locked(id, caller, t->ns) >= MK_ROLE_OWNER;
}

json_t *mk_identity_tokens(mk_identity_t *id, const mk_identity_principal_t *caller)
{
    json_t *out = json_array();
    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->tokens.n; i++)
        if (token_visible(id, caller, id->tokens.items[i]))
            json_array_append_new(out, token_info(id, id->tokens.items[i]));
    pthread_mutex_unlock(&id->lock);
    return out;
}

int mk_identity_token_revoke(mk_identity_t *id, const mk_identity_principal_t *caller,
                             const char *token_id, mk_err_t *err)
{
    pthread_mutex_lock(&id->lock);
    int rc = mk_err_set(err, MK_ENOTFOUND, "token '%s' not found", token_id);
    for (size_t i = 0; i < id->tokens.n; i++) {
        token_t *t = id->tokens.items[i];
        if (strcmp(t->id, token_id) != 0 || !token_visible(id, caller, t))
            continue;
        mk_err_clear(err);
        rc = delete_doc(id, KIND_TOKEN, t->id, err);
        if (rc == 0) {
            mk_strmap_del(id->token_by_hash, mk_str_of(t->hash));
            token_free(t);
            vec_remove(&id->tokens, i);
        }
        break;
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

/* --- members and roles --- */

static member_t *member_find(mk_identity_t *id, const char *ns, const char *user_id, size_t *at)
{
    for (size_t i = 0; i < id->members.n; i++) {
        member_t *m = id->members.items[i];
        if (strcmp(m->ns, ns) == 0 && strcmp(m->user_id, user_id) == 0) {
            if (at)
                *at = i;
            return m;
        }
    }
    return NULL;
}

json_t *mk_identity_members(mk_identity_t *id, const char *ns)
{
    json_t *out = json_array();
    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->members.n; i++) {
        member_t *m = id->members.items[i];
        user_t *u = strcmp(m->ns, ns) == 0 ? user_by_id(id, m->user_id, NULL) : NULL;
        if (u)
            json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "userId", u->id,
                                                 "username", u->login, "email", u->email, "role",
                                                 mk_identity_role_name(m->role)));
    }
    pthread_mutex_unlock(&id->lock);
    return out;
}

int mk_identity_member_set(mk_identity_t *id, const char *ns, const char *user_id,
                           mk_identity_role_t role, mk_err_t *err)
{
    if (role < MK_ROLE_VIEWER || role > MK_ROLE_OWNER)
        return mk_err_set(err, MK_EINVAL, "role: must be viewer, editor or owner");
    pthread_mutex_lock(&id->lock);
    int rc = 0;
    char key[2 * MK_IDENTITY_NAME_MAX];
    snprintf(key, sizeof key, "%s/%s", ns, user_id);
    if (user_by_id(id, user_id, NULL) == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "user '%s' not found", user_id);
        goto out;
    }
    rc = put_doc(id, KIND_MEMBER, key, ns,
                 json_pack("{s:s, s:s, s:s}", "namespace", ns, "userId", user_id, "role",
                           mk_identity_role_name(role)),
                 err);
    if (rc != 0)
        goto out;
    member_t *m = member_find(id, ns, user_id, NULL);
    if (m) {
        m->role = role;
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m)
        *m = (member_t){strdup(ns), strdup(user_id), role};
    if (m == NULL || vec_push(&id->members, m) != 0) {
        member_free(m);
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    }
out:
    pthread_mutex_unlock(&id->lock);
    return rc;
}

int mk_identity_member_delete(mk_identity_t *id, const char *ns, const char *user_id, mk_err_t *err)
{
    pthread_mutex_lock(&id->lock);
    size_t at;
    member_t *m = member_find(id, ns, user_id, &at);
    int rc = 0;
    if (m == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "user '%s' is not a member of '%s'", user_id, ns);
    } else {
        char key[2 * MK_IDENTITY_NAME_MAX];
        snprintf(key, sizeof key, "%s/%s", ns, user_id);
        rc = delete_doc(id, KIND_MEMBER, key, err);
        if (rc == 0) {
            member_free(m);
            vec_remove(&id->members, at);
        }
    }
    pthread_mutex_unlock(&id->lock);
    return rc;
}

/* Caller holds the lock. ns NULL: the highest role in any namespace. */
static mk_identity_role_t role_locked(mk_identity_t *id, const mk_identity_principal_t *p,
                                      const char *ns)
{
    if (p->scope_ns[0]) {
        if (ns && strcmp(ns, p->scope_ns) != 0)
            return MK_ROLE_NONE;
        ns = p->scope_ns;
    }
    if (p->admin)
        return MK_ROLE_ADMIN;
    if (p->kind == MK_PRINCIPAL_INTEGRATION)
        return p->scope_role;
    if (p->user_id[0] == '\0')
        return MK_ROLE_NONE;
    if (ns) {
        member_t *m = member_find(id, ns, p->user_id, NULL);
        return m ? m->role : MK_ROLE_NONE;
    }
    mk_identity_role_t best = MK_ROLE_NONE;
    for (size_t i = 0; i < id->members.n; i++) {
        member_t *m = id->members.items[i];
        if (strcmp(m->user_id, p->user_id) == 0 && m->role > best)
            best = m->role;
    }
    return best;
}

mk_identity_role_t mk_identity_role_in(mk_identity_t *id, const mk_identity_principal_t *p,
                                       const char *ns)
{
    pthread_mutex_lock(&id->lock);
    mk_identity_role_t r = role_locked(id, p, ns);
    pthread_mutex_unlock(&id->lock);
    return r;
}

json_t *mk_identity_roles(mk_identity_t *id, const mk_identity_principal_t *p)
{
    json_t *out = json_object();
    pthread_mutex_lock(&id->lock);
    if (p->kind == MK_PRINCIPAL_INTEGRATION && p->scope_ns[0]) {
        json_object_set_new(out, p->scope_ns, json_string(mk_identity_role_name(p->scope_role)));
    } else if (!p->admin && p->user_id[0]) {
        for (size_t i = 0; i < id->members.n; i++) {
            member_t *m = id->members.items[i];
            if (strcmp(m->user_id, p->user_id) == 0 &&
                (p->scope_ns[0] == '\0' || strcmp(p->scope_ns, m->ns) == 0))
                json_object_set_new(out, m->ns, json_string(mk_identity_role_name(m->role)));
        }
    }
    pthread_mutex_unlock(&id->lock);
    return out;
}

/* --- the permission table --- */

typedef struct perm_row {
    const char *perm;
    mk_identity_role_t min; /* MK_ROLE_ADMIN: global administrators only */
} perm_row_t;

static const perm_row_t perms[] = {
    {"public", MK_ROLE_NONE},
    {"self", MK_ROLE_NONE},
    {"mocks:read", MK_ROLE_VIEWER},
    {"mocks:write", MK_ROLE_EDITOR},
    {"stores:read", MK_ROLE_VIEWER},
    {"stores:write", MK_ROLE_EDITOR},
    {"requests:read", MK_ROLE_VIEWER},
    {"requests:write", MK_ROLE_EDITOR},
    {"runs:read", MK_ROLE_VIEWER},
    {"runs:write", MK_ROLE_EDITOR},
    {"namespaces:read", MK_ROLE_VIEWER},
    {"namespaces:write", MK_ROLE_ADMIN},
    {"members:read", MK_ROLE_VIEWER},
    {"members:write", MK_ROLE_OWNER},
    {"tokens:write", MK_ROLE_OWNER},
    {"webhooks:read", MK_ROLE_OWNER},
    {"webhooks:write", MK_ROLE_OWNER},
    {"audit:read", MK_ROLE_OWNER},
    {"users:read", MK_ROLE_ADMIN},
    {"users:write", MK_ROLE_ADMIN},
    {"admin", MK_ROLE_ADMIN},
};

static const perm_row_t *perm_row(const char *perm)
{
    for (size_t i = 0; perm && i < sizeof perms / sizeof *perms; i++)
        if (strcmp(perms[i].perm, perm) == 0)
            return &perms[i];
    return NULL;
}

bool mk_identity_perm_known(const char *perm)
{
    return perm_row(perm) != NULL;
}

/* A personal token's allowed_actions: exact permissions, or "resource:*". */
static bool action_allowed(const char *actions, const char *perm)
{
    if (actions[0] == '\0')
        return true;
    char want[80];
    snprintf(want, sizeof want, ",%s,", perm);
    if (strstr(actions, want))
        return true;
    const char *colon = strchr(perm, ':');
    if (colon == NULL)
        return false;
    snprintf(want, sizeof want, ",%.*s:*,", (int)(colon - perm), perm);
    return strstr(actions, want) != NULL;
}

bool mk_identity_may(mk_identity_t *id, const mk_identity_principal_t *p, const char *perm,
                     const char *ns)
{
    const perm_row_t *row = perm_row(perm);
    if (row == NULL) /* a row with a permission the table lacks: administrators only */
        return p->admin && p->scope_ns[0] == '\0';
    if (row->min == MK_ROLE_NONE)
        return strcmp(perm, "public") == 0 || p->kind != MK_PRINCIPAL_ANONYMOUS || p->admin;
    if (!action_allowed(p->actions, perm))
        return false;
    if (row->min == MK_ROLE_ADMIN)
        return p->admin && p->scope_ns[0] == '\0';
    return mk_identity_role_in(id, p, ns) >= row->min;
}

/* --- upkeep --- */

void mk_identity_maintain(mk_identity_t *id, int64_t now_ms)
{
    pthread_mutex_lock(&id->lock);
    for (size_t i = 0; i < id->tokens.n; i++) {
        token_t *t = id->tokens.items[i];
        if (t->dirty && put_doc(id, KIND_TOKEN, t->id, t->ns, token_doc(t), NULL) == 0)
            t->dirty = false;
    }
    char *doomed[256];
    size_t n = 0, pos = 0;
    mk_str_t key;
    void *v;
    while (n < 256 && mk_strmap_next(id->sessions, &pos, &key, &v))
        if (((session_t *)v)->expires_at <= now_ms)
            doomed[n++] = ((session_t *)v)->hash;
    for (size_t i = 0; i < n; i++) {
        session_t *s = mk_strmap_del(id->sessions, mk_str_of(doomed[i]));
        delete_doc(id, KIND_SESSION, s->hash, NULL);
        session_free(s);
    }
    pthread_mutex_unlock(&id->lock);
}
