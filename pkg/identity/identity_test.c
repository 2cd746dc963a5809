/* Identity: hashing, token parsing and authentication, sessions, roles and the permission check,
 * persistence across a reopen, against a real SQLite repository. */
#include "identity/identity.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char db_path[64];

static int64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static mk_repo_t *open_repo(void)
{
    mk_repo_t *r = NULL;
    mk_err_t err;
    if (mk_sqlite_repo_open(db_path, &r, &err) != 0)
        fprintf(stderr, "sqlite: %s\n", err.msg);
    return r;
}

static void test_primitives(void)
{
    char h[MK_IDENTITY_HASH_MAX], h2[MK_IDENTITY_HASH_MAX], hex[65];
    MK_CHECK_INT(mk_identity_hash_password("correct horse", h, NULL), 0);
    MK_CHECK_INT(mk_identity_hash_password("correct horse", h2, NULL), 0);
    MK_CHECK(strncmp(h, "$argon2id$", 10) == 0);
    MK_CHECK(strcmp(h, h2) != 0); /* per-hash salt */
    MK_CHECK(strstr(h, "correct") == NULL);
    MK_CHECK(mk_identity_verify_password(h, "correct horse"));
    MK_CHECK(!mk_identity_verify_password(h, "correct horsf"));
    MK_CHECK(!mk_identity_verify_password("", "x"));
    mk_identity_sha256_hex("abc", 3, hex);
    MK_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231, test case 2 */
    mk_identity_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
    MK_CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    MK_CHECK(mk_identity_equal("abc", 3, "abc", 3));
    MK_CHECK(!mk_identity_equal("abc", 3, "abd", 3));
    MK_CHECK(!mk_identity_equal("abc", 3, "abcd", 4));
    int64_t ms = 0;
    char buf[32];
    MK_CHECK_INT(mk_identity_time_parse("2027-01-02T03:04:05Z", &ms), 0);
    mk_identity_time_format(ms, buf);
    MK_CHECK_STR(buf, "2027-01-02T03:04:05Z");
    MK_CHECK_INT(mk_identity_time_parse("2027-01-02T05:04:05.123+02:00", &ms), 0);
    mk_identity_time_format(ms, buf);
    MK_CHECK_STR(buf, "2027-01-02T03:04:05Z");
    MK_CHECK(mk_identity_time_parse("tomorrow", &ms) != 0);
    MK_CHECK(mk_identity_time_parse("2027-01-02T03:04:05", &ms) != 0);
}

static void test_limiter(void)
{
    mk_identity_limiter_t *l = mk_identity_limiter_new();
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++)
        MK_CHECK_INT(mk_identity_limiter_take(l, "a", 60, 5, t), 0);
    int wait = mk_identity_limiter_take(l, "a", 60, 5, t);
    MK_CHECK_INT(wait, 1);
    MK_CHECK_INT(mk_identity_limiter_take(l, "b", 60, 5, t), 0);        /* keys are separate */
    MK_CHECK_INT(mk_identity_limiter_take(l, "a", 60, 5, t + 1000), 0); /* one refilled */
    MK_CHECK(mk_identity_limiter_take(l, "a", 60, 5, t + 1000) > 0);
    MK_CHECK_INT(mk_identity_limiter_take(l, "a", 0, 5, t), 0); /* no limit */
    mk_identity_limiter_free(l);
}

typedef struct scan {
    const char *needle;
    int hits;
} scan_t;

static int scan_doc(void *ud, const mk_repo_doc_t *doc)
{
    scan_t *s = ud;
    s->hits += strstr(doc->json, s->needle) != NULL || strstr(doc->id, s->needle) != NULL;
    return 0;
}

static int secret_hits(mk_repo_t *r, const char *needle)
{
    scan_t s = {needle, 0};
    const char *kinds[] = {"user", "member", "token", "session"};
    for (int i = 0; i < 4; i++)
        mk_repo_list_docs(r, kinds[i], NULL, scan_doc, &s, NULL);
    return s.hits;
}

static void test_flow(void)
{
    mk_repo_t *r = open_repo();
    mk_identity_t *id = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_identity_new(r, &(mk_identity_config_t){.session_ttl_ms = 60000}, &id, &err),
                 0);
    char generated[33];
    bool created;
    MK_CHECK_INT(mk_identity_bootstrap(id, NULL, generated, &created, &err), 0);
    MK_CHECK(created);
    MK_CHECK_INT(strlen(generated), 32);
    /* Only once. */
    char again[33];
    MK_CHECK_INT(mk_identity_bootstrap(id, "other-password", again, &created, &err), 0);
    MK_CHECK(!created);
    MK_CHECK_INT(secret_hits(r, generated), 0);

    char *tok = NULL;
    int64_t exp = 0;
    json_t *user = NULL;
    int retry = 0;
    MK_CHECK_INT(mk_identity_login(id, "admin", generated, now(), &tok, &exp, &user, &retry, &err),
                 0);
    MK_CHECK(tok && strncmp(tok, "mks_", 4) == 0 && strlen(tok) == 68);
    MK_CHECK_STR(json_string_value(json_object_get(user, "system_role")), "admin");
    json_decref(user);
    mk_identity_principal_t p;
    MK_CHECK_INT(mk_identity_authenticate(id, tok, strlen(tok), now(), &p, &err), 0);
    MK_CHECK_INT(p.kind, MK_PRINCIPAL_SESSION);
    MK_CHECK(p.admin);
    MK_CHECK_INT(secret_hits(r, tok), 0);
    /* Expired: the same secret later than the TTL. */
    mk_identity_principal_t late;
    MK_CHECK_INT(mk_identity_authenticate(id, tok, strlen(tok), now() + 61000, &late, &err),
                 MK_EUNAUTH);
    MK_CHECK(strstr(err.msg, "expired") != NULL);
    free(tok);

    /* Unknown user and wrong password answer alike. */
    char msg1[512], msg2[512];
    MK_CHECK_INT(
        mk_identity_login(id, "nobody", "whatever1", now(), &tok, &exp, &user, &retry, &err),
        MK_EUNAUTH);
    snprintf(msg1, sizeof msg1, "%s", err.msg);
    char *t2;
    MK_CHECK_INT(
        mk_identity_login(id, "admin", "wrong-pass", now(), &t2, &exp, &user, &retry, &err),
        MK_EUNAUTH);
    snprintf(msg2, sizeof msg2, "%s", err.msg);
    MK_CHECK_STR(msg1, msg2);

    /* A user, a membership, tokens. */
    json_t *body = json_pack("{s:s, s:s, s:s}", "login", "ann", "password", "ann-secret-1", "email",
                             "ann@example.com");
    json_t *ann = NULL;
    MK_CHECK_INT(mk_identity_user_create(id, body, &ann, &err), 0);
    json_decref(body);
    const char *ann_id = json_string_value(json_object_get(ann, "id"));
    body = json_pack("{s:s, s:s}", "login", "ann", "password", "short");
    json_t *dup = NULL;
    MK_CHECK_INT(mk_identity_user_create(id, body, &dup, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "password") != NULL);
    json_decref(body);
    body = json_pack("{s:s, s:s}", "login", "ann", "password", "long-enough");
    MK_CHECK_INT(mk_identity_user_create(id, body, &dup, &err), MK_ECONFLICT);
    json_decref(body);
    MK_CHECK_INT(mk_identity_member_set(id, "team-a", ann_id, MK_ROLE_EDITOR, &err), 0);
    MK_CHECK_INT(mk_identity_member_set(id, "team-b", ann_id, MK_ROLE_VIEWER, &err), 0);
    MK_CHECK_INT(mk_identity_member_set(id, "team-b", "u_missing", MK_ROLE_VIEWER, &err),
                 MK_ENOTFOUND);

    char *ann_tok;
    MK_CHECK_INT(mk_identity_login(id, "ann@example.com", "ann-secret-1", now(), &ann_tok, &exp,
                                   &user, &retry, &err),
                 0);
    json_decref(user);
    mk_identity_principal_t a;
    MK_CHECK_INT(mk_identity_authenticate(id, ann_tok, strlen(ann_tok), now(), &a, &err), 0);
    MK_CHECK(!a.admin);
    MK_CHECK(mk_identity_may(id, &a, "mocks:write", "team-a"));
    MK_CHECK(mk_identity_may(id, &a, "mocks:read", "team-b"));
    MK_CHECK(!mk_identity_may(id, &a, "mocks:write", "team-b"));
    MK_CHECK(!mk_identity_may(id, &a, "mocks:read", "team-c"));
    MK_CHECK(mk_identity_may(id, &a, "mocks:write", NULL)); /* somewhere */
    MK_CHECK(!mk_identity_may(id, &a, "members:write", "team-a"));
    MK_CHECK(!mk_identity_may(id, &a, "users:write", NULL));
    MK_CHECK(mk_identity_may(id, &a, "self", NULL));
    MK_CHECK(!mk_identity_may(id, &a, "no-such:perm", "team-a"));
    MK_CHECK(mk_identity_may(id, &p, "no-such:perm", "team-a")); /* administrators only */

    /* A personal token narrowed to team-a and to reading. */
    body = json_pack("{s:s, s:s, s:[s]}", "name", "ci", "namespace", "team-a", "allowed_actions",
                     "mocks:read");
    char *sec;
    json_t *info;
    MK_CHECK_INT(mk_identity_token_create(id, &a, body, now(), &sec, &info, &err), 0);
    json_decref(body);
    MK_CHECK(strncmp(sec, "mk_", 3) == 0 && strlen(sec) == 67);
    MK_CHECK(json_object_get(info, "hash") == NULL);
    MK_CHECK_STR(json_string_value(json_object_get(info, "user_login")), "ann");
    char tid[64];
    snprintf(tid, sizeof tid, "%s", json_string_value(json_object_get(info, "id")));
    json_decref(info);
    mk_identity_principal_t tp;
    MK_CHECK_INT(mk_identity_authenticate(id, sec, strlen(sec), now(), &tp, &err), 0);
    MK_CHECK_INT(tp.kind, MK_PRINCIPAL_TOKEN);
    MK_CHECK(mk_identity_may(id, &tp, "mocks:read", "team-a"));
    MK_CHECK(!mk_identity_may(id, &tp, "mocks:write", "team-a"));
    MK_CHECK(!mk_identity_may(id, &tp, "mocks:read", "team-b"));
    MK_CHECK_INT(secret_hits(r, sec), 0);
    /* A near miss is not the token. */
    sec[10] ^= 1;
    MK_CHECK_INT(mk_identity_authenticate(id, sec, strlen(sec), now(), &tp, &err), MK_EUNAUTH);
    sec[10] ^= 1;

    /* Integration tokens: ann (editor) may not mint one for team-a; admin may. */
    body = json_pack("{s:s, s:s, s:s, s:s}", "name", "runner", "kind", "integration", "namespace",
                     "team-a", "role", "editor");
    char *isec = NULL;
    MK_CHECK_INT(mk_identity_token_create(id, &a, body, now(), &isec, &info, &err), MK_EFORBIDDEN);
    MK_CHECK_INT(mk_identity_token_create(id, &p, body, now(), &isec, &info, &err), 0);
    json_decref(body);
    json_decref(info);
    mk_identity_principal_t ip;
    MK_CHECK_INT(mk_identity_authenticate(id, isec, strlen(isec), now(), &ip, &err), 0);
    MK_CHECK_INT(ip.kind, MK_PRINCIPAL_INTEGRATION);
    MK_CHECK(mk_identity_may(id, &ip, "mocks:write", "team-a"));
    MK_CHECK(!mk_identity_may(id, &ip, "mocks:read", "team-b"));
    MK_CHECK(!mk_identity_may(id, &ip, "members:write", "team-a"));
    body = json_pack("{s:s, s:s, s:s, s:s}", "name", "bad", "kind", "integration", "namespace",
                     "team-a", "role", "superuser");
    char *nsec;
    MK_CHECK_INT(mk_identity_token_create(id, &p, body, now(), &nsec, &info, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "role") != NULL);
    json_decref(body);
    body = json_pack("{s:s, s:s}", "name", "old", "expires_at", "2001-01-01T00:00:00Z");
    MK_CHECK_INT(mk_identity_token_create(id, &p, body, now(), &nsec, &info, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "expires_at") != NULL);
    json_decref(body);
    /* Expiry: a token valid one second. */
    char soon[32];
    mk_identity_time_format(now() + 2000, soon);
    body = json_pack("{s:s, s:s}", "name", "brief", "expires_at", soon);
    char *bsec;
    MK_CHECK_INT(mk_identity_token_create(id, &p, body, now(), &bsec, &info, &err), 0);
    json_decref(body);
    json_decref(info);
    MK_CHECK_INT(mk_identity_authenticate(id, bsec, strlen(bsec), now(), &tp, &err), 0);
    MK_CHECK_INT(mk_identity_authenticate(id, bsec, strlen(bsec), now() + 5000, &tp, &err),
                 MK_EUNAUTH);
    free(bsec);

    /* Lists: ann sees her own token only; admin sees all three. */
    json_t *list = mk_identity_tokens(id, &a);
    MK_CHECK_INT(json_array_size(list), 1);
    json_decref(list);
    list = mk_identity_tokens(id, &p);
    MK_CHECK_INT(json_array_size(list), 3);
    json_decref(list);

    /* Repeated failures slow logins down for that user (one clock: a slow hash must not let
     * the wait run out between attempts). */
    int last = 0;
    int64_t t0 = now();
    for (int i = 0; i < 6; i++)
        last = mk_identity_login(id, "ann", "not-her-password", t0, &t2, &exp, &user, &retry, &err);
    MK_CHECK_INT(last, MK_ERATE);
    MK_CHECK(retry >= 1);
    mk_identity_maintain(id, now());
    mk_identity_free(id);

    /* A reopen finds the session, the tokens and the membership. */
    MK_CHECK_INT(mk_identity_new(r, NULL, &id, &err), 0);
    MK_CHECK_INT(mk_identity_authenticate(id, ann_tok, strlen(ann_tok), now(), &a, &err), 0);
    MK_CHECK(mk_identity_may(id, &a, "mocks:write", "team-a"));
    MK_CHECK_INT(mk_identity_authenticate(id, sec, strlen(sec), now(), &tp, &err), 0);
    json_t *members = mk_identity_members(id, "team-a");
    MK_CHECK_INT(json_array_size(members), 1);
    json_decref(members);
    /* Revoked token, deleted user's session. */
    MK_CHECK_INT(mk_identity_token_revoke(id, &a, tid, &err), 0);
    MK_CHECK_INT(mk_identity_authenticate(id, sec, strlen(sec), now(), &tp, &err), MK_EUNAUTH);
    MK_CHECK_INT(mk_identity_user_delete(id, ann_id, &err), 0);
    MK_CHECK_INT(mk_identity_authenticate(id, ann_tok, strlen(ann_tok), now(), &a, &err),
                 MK_EUNAUTH);
    MK_CHECK_INT(mk_identity_authenticate(id, isec, strlen(isec), now(), &ip, &err), 0);
    /* The last administrator stays, and stays an administrator. */
    MK_CHECK_INT(mk_identity_user_delete(id, p.user_id, &err), MK_ECONFLICT);
    json_t *demote = json_pack("{s:s}", "system_role", "user"), *after = NULL;
    MK_CHECK_INT(mk_identity_user_update(id, p.user_id, demote, &after, &err), MK_ECONFLICT);
    json_decref(demote);
    mk_identity_free(id);
    free(sec);
    free(isec);
    free(ann_tok);
    json_decref(ann);
    mk_repo_free(r);
}

int main(void)
{
    snprintf(db_path, sizeof db_path, "/tmp/identity-test-%d.db", (int)getpid());
    MK_RUN(test_primitives);
    MK_RUN(test_limiter);
    MK_RUN(test_flow);
    unlink(db_path);
    return mk_testing_done();
}
