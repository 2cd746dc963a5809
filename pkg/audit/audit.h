/* The audit log: one row per write through the admin API (who, with which credential, when,
 * what, where, the outcome and a compact summary), kept as repository documents of kind "audit"
 * whose ids sort by time, queried with filters and pruned after a retention period. */
#ifndef MK_AUDIT_H
#define MK_AUDIT_H

#include "err/err.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mk_audit mk_audit_t;

/* One row; strings are borrowed (NULL reads as ""). */
typedef struct mk_audit_entry {
    int64_t at_ms;          /* 0: now */
    const char *actor;      /* user login, token name, "api_token", "anonymous" */
    const char *actor_id;   /* user id ("" without a user) */
    const char *credential; /* "session:<id>", "token:<id>", "api_token", "" */
    const char *action;     /* "POST /api/v1/mocks", "login.failed", ... */
    const char *namespace_; /* "" when the write names none */
    const char *kind;       /* object kind: "mocks", "users", "tokens", ... */
    const char *object_id;  /* "" when none */
    int status;             /* HTTP status answered */
    const char *request_id;
    json_t *summary; /* borrowed; NULL or a small JSON value */
} mk_audit_entry_t;

typedef struct mk_audit_filter {
    const char *namespace_; /* NULL: any */
    const char *actor;      /* NULL: any; login or user id */
    const char *action;     /* NULL: any; a prefix ("POST /api/v1/mocks", "login") */
    int64_t since_ms;       /* 0: any */
    size_t limit;           /* 0: 100 */
    /* When set, only rows whose namespace allowed(ud, ns) accepts (owners see their own). */
    bool (*allowed)(void *ud, const char *ns);
    void *allowed_ud;
} mk_audit_filter_t;

/* repo is borrowed and must outlive the log. retention_days 0: keep forever. */
mk_audit_t *mk_audit_new(mk_repo_t *repo, int64_t retention_days);
void mk_audit_free(mk_audit_t *a);

int mk_audit_record(mk_audit_t *a, const mk_audit_entry_t *e, mk_err_t *err);
/* Matching rows, newest first, as a JSON array (new reference in *out). */
int mk_audit_query(mk_audit_t *a, const mk_audit_filter_t *f, json_t **out, mk_err_t *err);
/* Removes rows older than the retention; returns how many went (or a negative error). */
int64_t mk_audit_prune(mk_audit_t *a, int64_t now_ms, mk_err_t *err);

#endif
