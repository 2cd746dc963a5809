/* Who may call the admin API: users (argon2id password hashes), sessions, personal (mk_) and
 * integration (mki_) tokens kept only as SHA-256 hashes, roles per namespace, and the permission
 * check every endpoint row goes through. The state is small and read on every API call, so it is
 * held in memory and written through to the repository's documents (kinds "user", "member",
 * "token", "session"), which is what survives a restart. Thread-safe: one lock around the state. */
#ifndef MK_IDENTITY_H
#define MK_IDENTITY_H

#include "err/err.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ordered: a higher role can do everything a lower one can. */
typedef enum mk_identity_role {
    MK_ROLE_NONE = 0,
    MK_ROLE_VIEWER,
    MK_ROLE_EDITOR,
    MK_ROLE_OWNER,
    MK_ROLE_ADMIN,
} mk_identity_role_t;

const char *mk_identity_role_name(mk_identity_role_t role);
/* "viewer", "editor", "owner" (and "admin" when allow_admin); MK_EINVAL otherwise. */
int mk_identity_role_parse(const char *name, bool allow_admin, mk_identity_role_t *out);

typedef enum mk_identity_kind {
    MK_PRINCIPAL_ANONYMOUS = 0, /* no credentials (only admitted when authentication is off) */
    MK_PRINCIPAL_BOOTSTRAP,     /* the API_TOKEN setting */
    MK_PRINCIPAL_SESSION,       /* a login session (cookie or bearer) */
    MK_PRINCIPAL_TOKEN,         /* a personal API token: acts as its user, maybe narrowed */
    MK_PRINCIPAL_INTEGRATION,   /* an integration token: a scope and a role, no user */
} mk_identity_kind_t;

#define MK_IDENTITY_ID_MAX   40
#define MK_IDENTITY_NAME_MAX 72

/* The caller of one request, copied by value (no pointers into the identity's state). */
typedef struct mk_identity_principal {
    mk_identity_kind_t kind;
    char user_id[MK_IDENTITY_ID_MAX];    /* "" without a user */
    char login[MK_IDENTITY_NAME_MAX];    /* user login, token name, "api_token" or "anonymous" */
    char cred_id[MK_IDENTITY_ID_MAX];    /* session or token id ("" otherwise) */
    bool admin;                          /* global administrator */
    char scope_ns[MK_IDENTITY_NAME_MAX]; /* a token narrowed to one namespace; "" none */
    mk_identity_role_t scope_role;       /* integration tokens: their role in scope_ns */
    char actions[512];                   /* personal tokens: ",perm,perm," allowed; "" all */
    int64_t rate_per_minute;             /* the token's own limit (0: the default) */
    int64_t rate_per_hour, rate_per_day; /* the token's own (0: none) */
} mk_identity_principal_t;

typedef struct mk_identity mk_identity_t;

typedef struct mk_identity_config {
    int64_t session_ttl_ms; /* 0: 12 h */
} mk_identity_config_t;

/* repo is borrowed and must outlive the identity. Loads users, members, tokens and sessions. */
int mk_identity_new(mk_repo_t *repo, const mk_identity_config_t *cfg, mk_identity_t **out,
                    mk_err_t *err);
void mk_identity_free(mk_identity_t *id);

/* First start: when no user exists, creates the administrator "admin" with password (NULL or "":
 * a random one, written into generated, which must hold 33 bytes). *created tells whether it did;
 * generated is "" unless a password was generated. */
int mk_identity_bootstrap(mk_identity_t *id, const char *password, char *generated, bool *created,
                          mk_err_t *err);

/* --- credentials --- */

/* A bearer secret (session "mks_", personal "mk_", integration "mki_") to its principal; also
 * records lastUsedAt. MK_EUNAUTH naming the reason (unknown, expired, revoked, user deleted). */
int mk_identity_authenticate(mk_identity_t *id, const char *secret, size_t len, int64_t now_ms,
                             mk_identity_principal_t *out, mk_err_t *err);

/* Checks login (or email) and password; on success opens a session: *token (caller frees) is
 * the session secret, *expires_ms its expiry, *user (new reference) the user as Mockarty's
 * UserInfo. One answer for an unknown login and a wrong password (MK_EUNAUTH). After repeated
 * failures for one user, further attempts are refused for a growing time: MK_ERATE with
 * *retry_after_s. */
int mk_identity_login(mk_identity_t *id, const char *login, const char *password, int64_t now_ms,
                      char **token, int64_t *expires_ms, json_t **user, int *retry_after_s,
                      mk_err_t *err);
/* Ends a session by its id; not an error when gone. */
int mk_identity_logout(mk_identity_t *id, const char *session_id, mk_err_t *err);

/* --- users --- */

/* Every user (new reference, an array of UserInfo objects without hashes). */
json_t *mk_identity_users(mk_identity_t *id);
/* One user as UserInfo (new reference) or NULL. */
json_t *mk_identity_user(mk_identity_t *id, const char *user_id);
/* body: {"login", "password", "email"?, "system_role"? ("admin"|"user"),
 * "requires_password_change"?}. *out is the new user (new reference). */
int mk_identity_user_create(mk_identity_t *id, json_t *body, json_t **out, mk_err_t *err);
/* body: any of "email", "system_role", "login", "requires_password_change". */
int mk_identity_user_update(mk_identity_t *id, const char *user_id, json_t *body, json_t **out,
                            mk_err_t *err);
/* Removes the user, its memberships, sessions and personal tokens. */
int mk_identity_user_delete(mk_identity_t *id, const char *user_id, mk_err_t *err);
/* Sets a new password; old_password must match unless it is NULL (an administrator's reset).
 * Clears requires_password_change. */
int mk_identity_user_password(mk_identity_t *id, const char *user_id, const char *old_password,
                              const char *new_password, mk_err_t *err);

/* --- tokens --- */

/* Creates a token for creator from Mockarty's CreateAPITokenRequest plus "kind" ("personal",
 * default, or "integration") and "role" (integration). *secret (caller frees) is shown once;
 * *info (new reference) is its token_info. Scope checks: only an administrator creates admin-
 * scoped integration tokens; a namespace-scoped one needs owner there. The caller checks the
 * namespace exists. */
int mk_identity_token_create(mk_identity_t *id, const mk_identity_principal_t *creator,
                             json_t *body, int64_t now_ms, char **secret, json_t **info,
                             mk_err_t *err);
/* The token_info objects caller may see (administrators: all; others: their own and those of the
 * namespaces they own). New reference. */
json_t *mk_identity_tokens(mk_identity_t *id, const mk_identity_principal_t *caller);
/* Revokes (deletes) a token caller may see; MK_ENOTFOUND otherwise. */
int mk_identity_token_revoke(mk_identity_t *id, const mk_identity_principal_t *caller,
                             const char *token_id, mk_err_t *err);

/* --- roles --- */

/* The members of ns: [{"userId","username","email","role"}] (new reference). */
json_t *mk_identity_members(mk_identity_t *id, const char *ns);
int mk_identity_member_set(mk_identity_t *id, const char *ns, const char *user_id,
                           mk_identity_role_t role, mk_err_t *err);
int mk_identity_member_delete(mk_identity_t *id, const char *ns, const char *user_id,
                              mk_err_t *err);
/* The role p has in ns (MK_ROLE_ADMIN for administrators). */
mk_identity_role_t mk_identity_role_in(mk_identity_t *id, const mk_identity_principal_t *p,
                                       const char *ns);
/* {"namespace": "role", ...} of p (new reference); administrators get {}. */
json_t *mk_identity_roles(mk_identity_t *id, const mk_identity_principal_t *p);

/* May p do perm ("mocks:read", "members:write", "users:write", "self", "public", ...) in ns?
 * ns NULL asks "in some namespace", the check made before a handler learns which one. A
 * permission the table does not know is granted to global administrators only. */
bool mk_identity_may(mk_identity_t *id, const mk_identity_principal_t *p, const char *perm,
                     const char *ns);
/* True when perm is one the permission table knows. */
bool mk_identity_perm_known(const char *perm);

/* Periodic upkeep: drops expired sessions, writes lastUsedAt of tokens used since last time. */
void mk_identity_maintain(mk_identity_t *id, int64_t now_ms);

/* --- rate limits --- */

/* Token buckets by key ("login:<address>", "token:<id>"): capacity burst, refilled at
 * per_minute per minute. Thread-safe; idle full buckets are dropped when the map grows large. */
typedef struct mk_identity_limiter mk_identity_limiter_t;
mk_identity_limiter_t *mk_identity_limiter_new(void);
void mk_identity_limiter_free(mk_identity_limiter_t *l);
/* Takes one unit from key's bucket: 0 when allowed, else the seconds to wait (at least 1). */
int mk_identity_limiter_take(mk_identity_limiter_t *l, const char *key, double per_minute,
                             double burst, int64_t now_ms);

/* --- primitives (libsodium is wrapped here only) --- */

#define MK_IDENTITY_HASH_MAX 128
/* argon2id (libsodium's interactive limits), encoded with its salt and parameters. */
int mk_identity_hash_password(const char *password, char out[MK_IDENTITY_HASH_MAX], mk_err_t *err);
bool mk_identity_verify_password(const char *hash, const char *password);
void mk_identity_sha256_hex(const void *data, size_t len, char out[65]);
void mk_identity_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                                 char out[65]);
/* nbytes random bytes as 2*nbytes hex characters plus NUL. */
void mk_identity_random_hex(size_t nbytes, char *out);
bool mk_identity_equal(const void *a, size_t alen, const void *b, size_t blen);
/* RFC 3339 UTC ("2026-12-04T17:00:00Z") to and from unix ms. */
void mk_identity_time_format(int64_t ms, char out[32]);
int mk_identity_time_parse(const char *s, int64_t *ms);

#endif
