/* SQLite implementation of the repository: one connection guarded by a mutex, prepared statements
 * cached on it, every write in one BEGIN IMMEDIATE transaction, versioned schema migrations. */
#include "sqlite/sqlite.h"

#include <sqlite3.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BUSY_TIMEOUT_MS 5000

/* Ordered; version N is migrations[N - 1]. Never edit an entry once released: append a new one. */
static const char *const migrations[] = {
    /* 1: initial schema. The change sequence is a single-row counter so a purge never lets a seq
     * value be handed out twice (max(seq)+1 would, after the newest row is deleted). */
    "CREATE TABLE mocks ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) > 0),"
    "  namespace TEXT NOT NULL,"
    "  chain_id TEXT,"
    "  json TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL DEFAULT 0,"
    "  closed_at INTEGER NOT NULL DEFAULT 0,"
    "  uses INTEGER NOT NULL DEFAULT 0,"
    "  last_use INTEGER NOT NULL DEFAULT 0,"
    "  seq INTEGER NOT NULL"
    ");"
    "CREATE INDEX mocks_namespace ON mocks(namespace);"
    "CREATE INDEX mocks_chain_id ON mocks(chain_id);"
    "CREATE UNIQUE INDEX mocks_seq ON mocks(seq);"
    "CREATE TABLE namespaces ("
    "  name TEXT PRIMARY KEY NOT NULL CHECK (length(name) > 0),"
    "  created_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE change_seq ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  value INTEGER NOT NULL"
    ");"
    "INSERT INTO change_seq(id, value) VALUES (1, 0);",
    /* 2: tombstones of purged mocks, so a node resyncing from an older seq learns of a purge. A
     * table of their own keeps mocks.json NOT NULL and a full load free of tombstones. */
    "CREATE TABLE mock_tombstones ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  seq INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX mock_tombstones_seq ON mock_tombstones(seq);",
    /* 3: the admin's own documents (mock versions, folders, templates, tags, ...), keyed by kind
     * and id. json is stored byte for byte (SQLite does not check that TEXT is UTF-8). */
    "CREATE TABLE docs ("
    "  kind TEXT NOT NULL CHECK (length(kind) > 0),"
    "  id TEXT NOT NULL CHECK (length(id) > 0),"
    "  namespace TEXT NOT NULL DEFAULT '',"
    "  json TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, id)"
    ");",
};

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SCHEMA_VERSION,
    ST_RECORD_MIGRATION,
    ST_NEXT_SEQ,
    ST_UPSERT,
    ST_DELETE,
    ST_TOMB_PUT,
    ST_TOMB_DELETE,
    ST_LOAD_ALL,
    ST_LOAD_CHANGES,
    ST_GET,
    ST_USAGE,
    ST_NS_PUT,
    ST_NS_LIST,
    ST_DOC_PUT,
    ST_DOC_DELETE,
    ST_DOC_LIST,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [ST_RECORD_MIGRATION] = "INSERT INTO schema_migrations(version, applied_at) VALUES (?1, ?2)",
    [ST_NEXT_SEQ] = "UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value",
    [ST_UPSERT] = "INSERT INTO mocks(" MK_REPO_MOCK_COLUMNS
                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                  " ON CONFLICT(id) DO UPDATE SET namespace = excluded.namespace,"
                  " chain_id = excluded.chain_id, json = excluded.json,"
                  " created_at = excluded.created_at, updated_at = excluded.updated_at,"
                  " closed_at = excluded.closed_at, uses = excluded.uses,"
                  " last_use = excluded.last_use, seq = excluded.seq",
    [ST_DELETE] = "DELETE FROM mocks WHERE id = ?1",
    [ST_TOMB_PUT] = "INSERT INTO mock_tombstones(id, seq) VALUES (?1, ?2)"
                    " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq",
    [ST_TOMB_DELETE] = "DELETE FROM mock_tombstones WHERE id = ?1",
    [ST_LOAD_ALL] = "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE seq > ?1 ORDER BY seq",
    /* json is NOT NULL in mocks, so a NULL json marks a tombstone. */
    [ST_LOAD_CHANGES] = "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE seq > ?1"
                        " UNION ALL SELECT id, NULL, NULL, NULL, 0, 0, 0, 0, 0, seq"
                        " FROM mock_tombstones WHERE seq > ?1 ORDER BY seq",
    [ST_GET] = "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE id = ?1",
    [ST_USAGE] = "UPDATE mocks SET uses = ?2, last_use = ?3 WHERE id = ?1",
    [ST_NS_PUT] = "INSERT INTO namespaces(name, created_at) VALUES (?1, ?2)"
                  " ON CONFLICT(name) DO NOTHING",
    [ST_NS_LIST] = "SELECT name, created_at FROM namespaces ORDER BY name",
    [ST_DOC_PUT] = "INSERT INTO docs(kind, id, namespace, json, updated_at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(kind, id) DO UPDATE SET"
                   " namespace = excluded.namespace, json = excluded.json,"
                   " updated_at = excluded.updated_at",
    [ST_DOC_DELETE] = "DELETE FROM docs WHERE kind = ?1 AND id = ?2",
    /* A range on the primary key rather than LIKE, so '%' and '_' in the prefix are literal. Ids
     * compare bytewise (BINARY) and no UTF-8 string has a 0xFF byte, so every id starting with
     * the prefix lies below prefix || 0xFF and every other id outside the range. */
    [ST_DOC_LIST] = "SELECT kind, id, namespace, json, updated_at FROM docs"
                    " WHERE kind = ?1 AND id >= ?2 AND id < ?2 || CAST(x'FF' AS TEXT) ORDER BY id",
};

typedef struct sqlite_repo {
    mk_repo_t base; /* first: the repo.h contract casts between the two */
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmts[ST_COUNT];
} sqlite_repo_t;

static const char *primary_code_name(int rc)
{
    static const char *const names[] = {
        "SQLITE_OK",       "SQLITE_ERROR",     "SQLITE_INTERNAL", "SQLITE_PERM",
        "SQLITE_ABORT",    "SQLITE_BUSY",      "SQLITE_LOCKED",   "SQLITE_NOMEM",
        "SQLITE_READONLY", "SQLITE_INTERRUPT", "SQLITE_IOERR",    "SQLITE_CORRUPT",
        "SQLITE_NOTFOUND", "SQLITE_FULL",      "SQLITE_CANTOPEN", "SQLITE_PROTOCOL",
        "SQLITE_EMPTY",    "SQLITE_SCHEMA",    "SQLITE_TOOBIG",   "SQLITE_CONSTRAINT",
        "SQLITE_MISMATCH", "SQLITE_MISUSE",    "SQLITE_NOLFS",    "SQLITE_AUTH",
        "SQLITE_FORMAT",   "SQLITE_RANGE",     "SQLITE_NOTADB",
    };
    int primary = rc & 0xff;
    if (primary >= 0 && primary < (int)(sizeof names / sizeof names[0]))
        return names[primary];
    return "SQLITE_UNKNOWN";
}

static int map_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return MK_EINVAL;
    case SQLITE_NOMEM:
        return MK_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
        /* The storage cannot take writes now (read-only, disk full, I/O error): one status for
         * every such fault, 503, and /health reports it. */
        return MK_EUNAVAIL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return MK_EIO;
    default:
        return MK_EINTERNAL;
    }
}

/* Fills err from SQLite's state after rc; call before anything else touches the connection
 * (a ROLLBACK would replace the message). Returns the MK_E code. */
static int fail_rc(sqlite3 *db, int rc, mk_err_t *err, const char *what)
{
    int ext = rc;
    const char *msg = sqlite3_errstr(rc);
    if (db != NULL) {
        if (ext == (ext & 0xff))
            ext = sqlite3_extended_errcode(db);
        msg = sqlite3_errmsg(db);
    }
    int code = map_code(rc);
    mk_err_set(err, code, "sqlite %s: %s", what, msg);
    if (err != NULL)
        snprintf(err->cause, sizeof err->cause, "%s (extended code %d)", primary_code_name(ext),
                 ext);
    return code;
}

static int stmt_get(sqlite_repo_t *s, int which, sqlite3_stmt **out, mk_err_t *err)
{
    if (s->stmts[which] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[which], NULL);
        if (rc != SQLITE_OK)
            return fail_rc(s->db, rc, err, "prepare");
    }
    *out = s->stmts[which];
    return 0;
}

static void stmt_done(sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows (or whose rows are not wanted). */
static int stmt_exec(sqlite_repo_t *s, int which, mk_err_t *err, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, which, &st, err);
    if (rc != 0)
        return rc;
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = fail_rc(s->db, src, err, what);
    stmt_done(st);
    return rc;
}

/* Runs statement `which` bound to id (?1) and, unless seq < 0, seq (?2). */
static int stmt_exec_id(sqlite_repo_t *s, int which, const char *id, int64_t seq, mk_err_t *err,
                        const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, which, &st, err);
    if (rc != 0)
        return rc;
    int src = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK && seq >= 0)
        src = sqlite3_bind_int64(st, 2, seq);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = fail_rc(s->db, src, err, what);
    stmt_done(st);
    return rc;
}

/* A unit of work run inside one transaction by run_tx. */
typedef int (*tx_fn)(sqlite_repo_t *s, void *ud, mk_err_t *err);

/* Takes the connection, runs fn between BEGIN IMMEDIATE and COMMIT, and rolls back when fn or the
 * commit fails; err describes the first failure. Every write goes through here. */
static int run_tx(sqlite_repo_t *s, tx_fn fn, void *ud, mk_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    int rc = stmt_exec(s, ST_BEGIN, err, "begin transaction");
    if (rc == 0)
        rc = fn(s, ud, err);
    if (rc == 0)
        rc = stmt_exec(s, ST_COMMIT, err, "commit");
    if (rc != 0 && sqlite3_get_autocommit(s->db) == 0)
        stmt_exec(s, ST_ROLLBACK, NULL, "rollback");
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int next_seq(sqlite_repo_t *s, int64_t *seq, mk_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_NEXT_SEQ, &st, err);
    if (rc != 0)
        return rc;
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE
                 ? mk_err_set(err, MK_EINTERNAL, "sqlite: change sequence row missing")
                 : fail_rc(s->db, src, err, "next change sequence");
        goto out;
    }
    *seq = sqlite3_column_int64(st, 0);
out:
    stmt_done(st);
    return rc;
}

static int put_one(sqlite_repo_t *s, mk_repo_mock_t *m, size_t index, mk_err_t *err)
{
    int64_t seq = 0;
    int rc = next_seq(s, &seq, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = stmt_get(s, ST_UPSERT, &st, err);
    if (rc != 0)
        return rc;
    int src = bind_text_or_null(st, 1, m->id);
    if (src == SQLITE_OK)
        src = bind_text_or_null(st, 2, m->namespace_);
    if (src == SQLITE_OK)
        src = bind_text_or_null(st, 3, m->chain_id);
    if (src == SQLITE_OK)
        src = bind_text_or_null(st, 4, m->json);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 5, m->created_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 6, m->updated_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 7, m->closed_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 8, m->uses);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 9, m->last_use);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 10, seq);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        char what[96];
        mk_repo_what_mock(what, sizeof what, index, m);
        rc = fail_rc(s->db, src, err, what);
    }
    stmt_done(st);
    /* A mock re-created after a purge is live again: its tombstone goes. */
    if (rc == 0)
        rc = stmt_exec_id(s, ST_TOMB_DELETE, m->id, -1, err, "remove tombstone");
    if (rc == 0)
        m->seq = seq;
    return rc;
}

static int put_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        int rc = put_one(s, &b->mocks[i], i, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int sq_put_mocks(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.mocks = rows, .n = n};
    return run_tx((sqlite_repo_t *)r, put_tx, &b, err);
}

/* Only a row that existed gets a tombstone (and a seq): deleting a missing id changes nothing. */
static int delete_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        int rc = stmt_exec_id(s, ST_DELETE, b->ids[i], -1, err, "delete mock");
        if (rc != 0)
            return rc;
        if (sqlite3_changes(s->db) == 0)
            continue;
        int64_t seq = 0;
        rc = next_seq(s, &seq, err);
        if (rc == 0)
            rc = stmt_exec_id(s, ST_TOMB_PUT, b->ids[i], seq, err, "write tombstone");
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int sq_delete_mocks(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.ids = ids, .n = n};
    return run_tx((sqlite_repo_t *)r, delete_tx, &b, err);
}

static const char *column_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Reads the current row of a MK_REPO_MOCK_COLUMNS query; a NULL json is a tombstone (id and seq
 * only). */
static int read_mock_row(sqlite3_stmt *st, mk_repo_mock_t *row, mk_err_t *err, const char *what)
{
    bool tombstone = sqlite3_column_type(st, 3) == SQLITE_NULL;
    *row = (mk_repo_mock_t){
        .id = column_text(st, 0),
        .namespace_ = column_text(st, 1),
        .chain_id = column_text(st, 2),
        .json = column_text(st, 3),
        .created_at = sqlite3_column_int64(st, 4),
        .updated_at = sqlite3_column_int64(st, 5),
        .closed_at = sqlite3_column_int64(st, 6),
        .uses = sqlite3_column_int64(st, 7),
        .last_use = sqlite3_column_int64(st, 8),
        .seq = sqlite3_column_int64(st, 9),
    };
    /* NOT NULL columns come back NULL only when SQLite ran out of memory converting them. */
    if (row->id == NULL || (!tombstone && (row->namespace_ == NULL || row->json == NULL)))
        return mk_err_set(err, MK_ENOMEM, "sqlite %s: out of memory reading a row", what);
    return 0;
}

static int sq_load_mocks(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud,
                         mk_err_t *err)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    /* A full load rebuilds from nothing, so it has no use for tombstones. */
    int rc = stmt_get(s, after_seq > 0 ? ST_LOAD_CHANGES : ST_LOAD_ALL, &st, err);
    if (rc != 0)
        goto out;
    int src = sqlite3_bind_int64(st, 1, after_seq);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        src = sqlite3_step(st);
        if (src != SQLITE_ROW)
            break;
        mk_repo_mock_t row;
        rc = read_mock_row(st, &row, err, "load mocks");
        if (rc != 0)
            goto out;
        rc = cb(ud, &row);
        if (rc != 0)
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = fail_rc(s->db, src, err, "load mocks");
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_get_mock(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud, mk_err_t *err)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_GET, &st, err);
    if (rc != 0)
        goto out;
    int src = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = mk_err_set(err, MK_ENOTFOUND, "sqlite get mock: no mock with id \"%.200s\"", id);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = fail_rc(s->db, src, err, "get mock");
        goto out;
    }
    mk_repo_mock_t row;
    rc = read_mock_row(st, &row, err, "get mock");
    if (rc == 0)
        rc = cb(ud, &row);
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int usage_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_USAGE, &st, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        int src = sqlite3_bind_text(st, 1, b->usage[i].id, -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
            src = sqlite3_bind_int64(st, 2, b->usage[i].uses);
        if (src == SQLITE_OK)
            src = sqlite3_bind_int64(st, 3, b->usage[i].last_use);
        if (src == SQLITE_OK)
            src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = fail_rc(s->db, src, err, "update usage");
        stmt_done(st);
    }
    return rc;
}

static int sq_update_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.usage = rows, .n = n};
    return run_tx((sqlite_repo_t *)r, usage_tx, &b, err);
}

static int ns_put_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *p = ud;
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_NS_PUT, &st, err);
    if (rc != 0)
        return rc;
    int src = sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 2, p->created_at);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = fail_rc(s->db, src, err, "put namespace");
    stmt_done(st);
    return rc;
}

static int sq_put_namespace(mk_repo_t *r, const char *name, int64_t created_at, mk_err_t *err)
{
    mk_repo_batch_t p = {.name = name, .created_at = created_at};
    return run_tx((sqlite_repo_t *)r, ns_put_tx, &p, err);
}

static int sq_list_namespaces(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_NS_LIST, &st, err);
    if (rc != 0)
        goto out;
    int src;
    for (;;) {
        src = sqlite3_step(st);
        if (src != SQLITE_ROW)
            break;
        const char *name = column_text(st, 0);
        if (name == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "sqlite list namespaces: out of memory reading a row");
            goto out;
        }
        rc = cb(ud, name, sqlite3_column_int64(st, 1));
        if (rc != 0)
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = fail_rc(s->db, src, err, "list namespaces");
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int read_schema_version(sqlite_repo_t *s, int64_t *version, mk_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_SCHEMA_VERSION, &st, err);
    if (rc != 0)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    else
        rc = fail_rc(s->db, src, err, "read schema version");
    stmt_done(st);
    return rc;
}

static int sq_ping(mk_repo_t *r, mk_err_t *err)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    pthread_mutex_lock(&s->mu);
    int64_t version = 0;
    int rc = read_schema_version(s, &version, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int doc_put_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_DOC_PUT, &st, err);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        const mk_repo_doc_t *d = &b->docs[i];
        int src = bind_text_or_null(st, 1, d->kind);
        if (src == SQLITE_OK)
            src = bind_text_or_null(st, 2, d->id);
        if (src == SQLITE_OK)
            src = bind_text_or_null(st, 3, d->namespace_ != NULL ? d->namespace_ : "");
        if (src == SQLITE_OK)
            src = bind_text_or_null(st, 4, d->json);
        if (src == SQLITE_OK)
            src = sqlite3_bind_int64(st, 5, d->updated_at);
        if (src == SQLITE_OK)
            src = sqlite3_step(st);
        if (src != SQLITE_DONE) {
            char what[120];
            mk_repo_what_doc(what, sizeof what, i, d);
            rc = fail_rc(s->db, src, err, what);
        }
        stmt_done(st);
    }
    return rc;
}

static int sq_put_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.docs = docs, .n = n};
    return run_tx((sqlite_repo_t *)r, doc_put_tx, &b, err);
}

static int doc_delete_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_DOC_DELETE, &st, err);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        int src = sqlite3_bind_text(st, 1, b->kind, -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
            src = sqlite3_bind_text(st, 2, b->ids[i], -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
            src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = fail_rc(s->db, src, err, "delete document");
        stmt_done(st);
    }
    return rc;
}

static int sq_delete_docs(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                          mk_err_t *err)
{
    mk_repo_batch_t b = {.kind = kind, .ids = ids, .n = n};
    return run_tx((sqlite_repo_t *)r, doc_delete_tx, &b, err);
}

static int sq_list_docs(mk_repo_t *r, const char *kind, const char *id_prefix, mk_repo_doc_cb cb,
                        void *ud, mk_err_t *err)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_DOC_LIST, &st, err);
    if (rc != 0)
        goto out;
    int src = sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 2, id_prefix != NULL ? id_prefix : "", -1, SQLITE_STATIC);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        src = sqlite3_step(st);
        if (src != SQLITE_ROW)
            break;
        mk_repo_doc_t doc = {
            .kind = column_text(st, 0),
            .id = column_text(st, 1),
            .namespace_ = column_text(st, 2),
            .json = column_text(st, 3),
            .updated_at = sqlite3_column_int64(st, 4),
        };
        /* NOT NULL columns come back NULL only when SQLite ran out of memory converting them. */
        if (doc.kind == NULL || doc.id == NULL || doc.namespace_ == NULL || doc.json == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "sqlite list documents: out of memory reading a row");
            goto out;
        }
        rc = cb(ud, &doc);
        if (rc != 0)
            goto out;
    }
    if (src != SQLITE_DONE)
        rc = fail_rc(s->db, src, err, "list documents");
out:
    stmt_done(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void sq_free(mk_repo_t *r)
{
    sqlite_repo_t *s = (sqlite_repo_t *)r;
    if (s == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const mk_repo_ops_t sqlite_ops = {
    .name = "sqlite",
    .put_mocks = sq_put_mocks,
    .delete_mocks = sq_delete_mocks,
    .load_mocks = sq_load_mocks,
    .update_usage = sq_update_usage,
    .put_namespace = sq_put_namespace,
    .list_namespaces = sq_list_namespaces,
    .ping = sq_ping,
    .get_mock = sq_get_mock,
    .put_docs = sq_put_docs,
    .delete_docs = sq_delete_docs,
    .list_docs = sq_list_docs,
    .subscribe = NULL, /* one process owns the file: there is nobody to hear changes from */
    .free = sq_free,
};

/* One migration step; done is set when the schema is current. */
typedef struct migrate_step {
    bool done;
} migrate_step_t;

/* The version is read inside the step's BEGIN IMMEDIATE so two processes opening the same new
 * file cannot both apply the same step. */
static int migrate_tx(sqlite_repo_t *s, void *ud, mk_err_t *err)
{
    migrate_step_t *step = ud;
    int64_t version = 0;
    int rc = read_schema_version(s, &version, err);
    if (rc != 0)
        return rc;
    if (version > MIGRATION_COUNT)
        return mk_repo_newer_schema(err, "sqlite", version, MIGRATION_COUNT);
    if (version == MIGRATION_COUNT) {
        step->done = true;
        return 0;
    }
    int src = sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        char what[64];
        snprintf(what, sizeof what, "migration %lld", (long long)version + 1);
        return fail_rc(s->db, src, err, what);
    }
    sqlite3_stmt *st = NULL;
    rc = stmt_get(s, ST_RECORD_MIGRATION, &st, err);
    if (rc != 0)
        return rc;
    src = sqlite3_bind_int64(st, 1, version + 1);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 2, mk_repo_now_ms());
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = fail_rc(s->db, src, err, "record migration");
    stmt_done(st);
    return rc;
}

/* Applies pending migrations, one transaction each. */
static int migrate(sqlite_repo_t *s, mk_err_t *err)
{
    int src = sqlite3_exec(s->db,
                           "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                           NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return fail_rc(s->db, src, err, "create schema_migrations");
    migrate_step_t step = {.done = false};
    while (!step.done) {
        int rc = run_tx(s, migrate_tx, &step, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* CANTOPEN alone does not say why; name the missing directory when that is the reason. */
static int open_failure(const char *path, sqlite3 *db, int src, mk_err_t *err)
{
    char what[600];
    snprintf(what, sizeof what, "open \"%s\"", path);
    int code = fail_rc(db, src, err, what);
    if ((src & 0xff) != SQLITE_CANTOPEN)
        goto out;
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        goto out;
    char dir[512];
    size_t len = (size_t)(slash - path);
    if (len >= sizeof dir)
        goto out;
    memcpy(dir, path, len);
    dir[len] = '\0';
    struct stat sb;
    if (stat(dir, &sb) != 0)
        mk_err_set(err, code,
                   "sqlite open \"%s\": directory \"%s\" does not exist or is not "
                   "accessible (%s)",
                   path, dir, strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        mk_err_set(err, code, "sqlite open \"%s\": \"%s\" is not a directory", path, dir);
    if (err != NULL && err->cause[0] == '\0')
        snprintf(err->cause, sizeof err->cause, "SQLITE_CANTOPEN (extended code %d)", src);
out:
    return code;
}

static int configure(sqlite_repo_t *s, const char *path, mk_err_t *err)
{
    /* journal_mode answers with a row, so step it rather than exec with no callback check. */
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    };
    int src = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (src != SQLITE_OK)
        return fail_rc(s->db, src, err, "busy_timeout");
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
        src = sqlite3_exec(s->db, pragmas[i], NULL, NULL, NULL);
        if (src != SQLITE_OK) {
            /* The first statement to read the file is where "file is not a database" shows. */
            char what[600];
            snprintf(what, sizeof what, "open \"%s\" (%s)", path, pragmas[i]);
            return fail_rc(s->db, src, err, what);
        }
    }
    return 0;
}

int mk_sqlite_repo_open(const char *path, mk_repo_t **out, mk_err_t *err)
{
    if (out == NULL)
        return mk_err_set(err, MK_EINVAL, "sqlite open: out is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "sqlite open: empty database path");
    int rc = 0;
    sqlite_repo_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "sqlite open: out of memory");
    s->base.ops = &sqlite_ops;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return mk_err_set(err, MK_EINTERNAL, "sqlite open: cannot create mutex");
    }
    /* NOMUTEX: our own mutex serializes every use of the connection. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = open_failure(path, s->db, src, err);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = configure(s, path, err);
    if (rc != 0)
        goto out;
    rc = migrate(s, err);
    if (rc != 0) {
        mk_err_prefix(err, "open \"%s\"", path);
        goto out;
    }
    *out = &s->base;
out:
    if (rc != 0)
        sq_free(&s->base);
    return rc;
}

int mk_sqlite_repo_schema_version(void)
{
    return MIGRATION_COUNT;
}
