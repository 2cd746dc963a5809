/* PostgreSQL implementation of the repository: the repo.h operations as (prepared or unnamed)
 * statements on a pooled connection, versioned migrations under an advisory lock, and the change
 * feed. */
#include "pg/pg.h"

#include "pg/conn.h"
#include "pg/listen.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_POOL_SIZE       4
#define MAX_POOL_SIZE           64
#define DEFAULT_CONNECT_TIMEOUT 3000
#define SCHEMA_POLL_MS          100
/* pg_advisory_xact_lock key held while migrating: "mockarty" in ASCII. */
#define MIGRATION_LOCK_KEY "7885630785396569209"

/* Ordered; version N is migrations[N - 1]. Never edit an entry once released: append a new one.
 */
static const char *const migrations[] = {
    /* 1: initial schema, the same tables as the SQLite backend's. The change sequence is a
     * single-row counter rather than a SEQUENCE: nextval() is not transactional, so two writers
     * could commit seqs out of order and a reader resuming from the higher one would skip the
     * lower. Updating the counter row holds its lock until COMMIT, so seqs follow commit order.
     * json is TEXT so a definition round-trips byte for byte. */
    "CREATE TABLE mocks ("
    "  id TEXT PRIMARY KEY CHECK (length(id) > 0),"
    "  namespace TEXT NOT NULL,"
    "  chain_id TEXT,"
    "  json TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL DEFAULT 0,"
    "  updated_at BIGINT NOT NULL DEFAULT 0,"
    "  closed_at BIGINT NOT NULL DEFAULT 0,"
    "  uses BIGINT NOT NULL DEFAULT 0,"
    "  last_use BIGINT NOT NULL DEFAULT 0,"
    "  seq BIGINT NOT NULL"
    ");"
    "CREATE INDEX mocks_namespace ON mocks(namespace);"
    "CREATE INDEX mocks_chain_id ON mocks(chain_id);"
    "CREATE UNIQUE INDEX mocks_seq ON mocks(seq);"
    "CREATE TABLE mock_tombstones ("
    "  id TEXT PRIMARY KEY,"
    "  seq BIGINT NOT NULL"
    ");"
    "CREATE UNIQUE INDEX mock_tombstones_seq ON mock_tombstones(seq);"
    "CREATE TABLE namespaces ("
    "  name TEXT PRIMARY KEY CHECK (length(name) > 0),"
    "  created_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE change_seq ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  value BIGINT NOT NULL"
    ");"
    "INSERT INTO change_seq(id, value) VALUES (1, 0);",
    /* 2: the admin's own documents, as in the SQLite backend. Keys collate "C" so ids order and
     * compare bytewise whatever the database's locale (SQLite's BINARY). json is BYTEA because a
     * document is stored byte for byte and TEXT refuses bytes that are not UTF-8. */
    "CREATE TABLE docs ("
    "  kind TEXT COLLATE \"C\" NOT NULL CHECK (length(kind) > 0),"
    "  id TEXT COLLATE \"C\" NOT NULL CHECK (length(id) > 0),"
    "  namespace TEXT NOT NULL DEFAULT '',"
    "  json BYTEA NOT NULL,"
    "  updated_at BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, id)"
    ");",
};

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

enum {
    ST_PUT,
    ST_LOCK_SEQ,
    ST_DELETE,
    ST_LOAD_ALL,
    ST_LOAD_CHANGES,
    ST_GET,
    ST_USAGE,
    ST_NS_PUT,
    ST_NS_LIST,
    ST_PING,
    ST_DOC_PUT,
    ST_DOC_DELETE,
    ST_DOC_LIST_RANGE,
    ST_DOC_LIST_FROM,
    ST_SEQ,
    ST_REPLICA,
    ST_COUNT
};

/* Sub-statements of one WITH run in an unspecified order but the main query pulls m, which pulls
 * s: the counter row is locked before the mock row, the order every writer uses. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_PUT] = "WITH s AS (UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value),"
               " m AS (INSERT INTO mocks(" MK_REPO_MOCK_COLUMNS ")"
               "  SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint,"
               "   $7::bigint, $8::bigint, $9::bigint, s.value FROM s"
               "  ON CONFLICT (id) DO UPDATE SET namespace = excluded.namespace,"
               "   chain_id = excluded.chain_id, json = excluded.json,"
               "   created_at = excluded.created_at, updated_at = excluded.updated_at,"
               "   closed_at = excluded.closed_at, uses = excluded.uses,"
               "   last_use = excluded.last_use, seq = excluded.seq"
               "  RETURNING id, seq),"
               " t AS (DELETE FROM mock_tombstones WHERE id = $1::text)"
               " SELECT m.seq, pg_notify('" MK_PG_CHANNEL "', m.seq::text || ' ' || m.id) FROM m",
    /* A purge deletes the mock row before it can touch the counter, so it locks the counter
     * first to keep the writers' lock order. */
    [ST_LOCK_SEQ] = "SELECT value FROM change_seq WHERE id = 1 FOR UPDATE",
    /* Only a row that existed gets a seq and a tombstone. */
    [ST_DELETE] = "WITH d AS (DELETE FROM mocks WHERE id = $1::text RETURNING id),"
                  " s AS (UPDATE change_seq SET value = value + 1"
                  "  WHERE id = 1 AND EXISTS (SELECT 1 FROM d) RETURNING value),"
                  " t AS (INSERT INTO mock_tombstones(id, seq) SELECT $1::text, s.value FROM s"
                  "  ON CONFLICT (id) DO UPDATE SET seq = excluded.seq RETURNING id, seq)"
                  " SELECT t.seq, pg_notify('" MK_PG_CHANNEL "', t.seq::text || ' ' || t.id)"
                  " FROM t",
    [ST_LOAD_ALL] =
        "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE seq > $1::bigint ORDER BY seq",
    /* json is NOT NULL in mocks, so a NULL json marks a tombstone. */
    [ST_LOAD_CHANGES] = "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE seq > $1::bigint"
                        " UNION ALL SELECT id, NULL, NULL, NULL, 0, 0, 0, 0, 0, seq"
                        " FROM mock_tombstones WHERE seq > $1::bigint ORDER BY seq",
    [ST_GET] = "SELECT " MK_REPO_MOCK_COLUMNS " FROM mocks WHERE id = $1::text",
    [ST_USAGE] = "UPDATE mocks SET uses = $2::bigint, last_use = $3::bigint WHERE id = $1::text",
    [ST_NS_PUT] = "INSERT INTO namespaces(name, created_at) VALUES ($1::text, $2::bigint)"
                  " ON CONFLICT (name) DO NOTHING",
    [ST_NS_LIST] = "SELECT name, created_at FROM namespaces ORDER BY name",
    [ST_PING] = "SELECT 1",
    [ST_DOC_PUT] = "INSERT INTO docs(kind, id, namespace, json, updated_at)"
                   " VALUES ($1::text, $2::text, $3::text, $4::bytea, $5::bigint)"
                   " ON CONFLICT (kind, id) DO UPDATE SET namespace = excluded.namespace,"
                   " json = excluded.json, updated_at = excluded.updated_at",
    [ST_DOC_DELETE] = "DELETE FROM docs WHERE kind = $1::text AND id = $2::text",
    /* Read with binary results (raw bytes, updated_at as text). A prefix is a range of the key
     * ($3 from prefix_end), never LIKE, so '%' and '_' in it are literal. */
    [ST_DOC_LIST_RANGE] = "SELECT kind, id, namespace, json, updated_at::text FROM docs"
                          " WHERE kind = $1::text AND id >= $2::text AND id < $3::text ORDER BY id",
    /* For a prefix with no upper bound ("" or only U+10FFFF). */
    [ST_DOC_LIST_FROM] = "SELECT kind, id, namespace, json, updated_at::text FROM docs"
                         " WHERE kind = $1::text AND id >= $2::text AND starts_with(id, $2::text)"
                         " ORDER BY id",
    [ST_SEQ] = "SELECT value FROM change_seq WHERE id = 1",
    /* On a standby: its seq and how long ago the last commit it replayed was made. */
    [ST_REPLICA] = "SELECT value, CASE WHEN pg_is_in_recovery() THEN coalesce(extract(epoch FROM"
                   " now() - pg_last_xact_replay_timestamp()) * 1000, 0) ELSE 0 END::float8"
                   " FROM change_seq WHERE id = 1",
};

/* A read replica: its own pool, and what reads last learnt of it. */
typedef struct replica {
    char *dsn;
    char name[160];
    mk_pg_pool_t *pool;
    atomic_int_fast64_t seq; /* its change seq when last read */
} replica_t;

typedef struct pg_repo {
    mk_repo_t base; /* first: the repo.h contract casts between the two */
    char *dsn;
    char *listen_dsn;
    int timeout_ms;
    mk_pg_pool_t *pool;
    pthread_mutex_t sub_mu;
    mk_pg_listener_t *listener;
    mk_repo_change_cb sub_cb; /* the subscriber, called through on_notify */
    void *sub_ud;
    replica_t *replicas;
    int nreplicas;
    int read_wait_ms;
    atomic_uint next_replica;
    atomic_int_fast64_t announced; /* highest seq the feed announced: reads see it or newer */
    atomic_int_fast64_t fallbacks;
} pg_repo_t;

/* Statuses a replica read ends with besides the MK_E codes (fn's own returns are negative). */
#define REPLICA_BEHIND 1

typedef struct replica_read {
    replica_t *r;
    int64_t need;
    mk_pg_op_fn fn;
    void *ud;
    bool started; /* fn ran: rows may have reached the caller, so no second try elsewhere */
} replica_read_t;

static int replica_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    replica_read_t *q = ud;
    if (atomic_load(&q->r->seq) < q->need) {
        PGresult *res = NULL;
        int rc = mk_pg_exec(c, ST_SEQ, 0, NULL, &res, "read replica seq", err);
        if (rc != 0)
            return rc;
        int64_t seq = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
        atomic_store(&q->r->seq, seq);
        if (seq < q->need)
            return REPLICA_BEHIND;
    }
    q->started = true;
    return q->fn(c, q->ud, err);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A read: on a replica that has everything announced so far, else (none caught up within
 * read_wait_ms, or none up) on the primary. */
static int read_run(pg_repo_t *p, mk_pg_op_fn fn, void *ud, mk_err_t *err)
{
    if (p->nreplicas == 0)
        return mk_pg_pool_run(p->pool, false, fn, ud, err);
    int64_t need = atomic_load(&p->announced);
    int64_t deadline = mk_pg_now_ms() + p->read_wait_ms;
    unsigned first = atomic_fetch_add(&p->next_replica, 1);
    for (;;) {
        bool behind = false;
        for (int i = 0; i < p->nreplicas; i++) {
            replica_read_t q = {.r = &p->replicas[(first + (unsigned)i) % (unsigned)p->nreplicas],
                                .need = need,
                                .fn = fn,
                                .ud = ud};
            mk_err_t rerr;
            int rc = mk_pg_pool_run(q.r->pool, false, replica_op, &q, &rerr);
            if (rc == REPLICA_BEHIND) {
                behind = true;
                continue;
            }
            if (rc == 0 || q.started) {
                if (rc != 0 && err != NULL)
                    *err = rerr;
                return rc;
            }
            /* Not reached (down, or failed before the read): the next one, then the primary. */
        }
        if (!behind || mk_pg_now_ms() >= deadline)
            break;
        sleep_ms(20);
    }
    atomic_fetch_add(&p->fallbacks, 1);
    return mk_pg_pool_run(p->pool, false, fn, ud, err);
}

static int64_t int_at(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *text_at(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* A row of a MK_REPO_MOCK_COLUMNS query; a tombstone has only id and seq. */
static mk_repo_mock_t mock_at(const PGresult *res, int row)
{
    return (mk_repo_mock_t){
        .id = text_at(res, row, 0),
        .namespace_ = text_at(res, row, 1),
        .chain_id = text_at(res, row, 2),
        .json = text_at(res, row, 3),
        .created_at = int_at(res, row, 4),
        .updated_at = int_at(res, row, 5),
        .closed_at = int_at(res, row, 6),
        .uses = int_at(res, row, 7),
        .last_use = int_at(res, row, 8),
        .seq = int_at(res, row, 9),
    };
}

static int put_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        mk_repo_mock_t *m = &b->mocks[i];
        char ints[5][24];
        snprintf(ints[0], sizeof ints[0], "%" PRId64, m->created_at);
        snprintf(ints[1], sizeof ints[1], "%" PRId64, m->updated_at);
        snprintf(ints[2], sizeof ints[2], "%" PRId64, m->closed_at);
        snprintf(ints[3], sizeof ints[3], "%" PRId64, m->uses);
        snprintf(ints[4], sizeof ints[4], "%" PRId64, m->last_use);
        const char *params[9] = {m->id,   m->namespace_, m->chain_id, m->json, ints[0],
                                 ints[1], ints[2],       ints[3],     ints[4]};
        char what[96];
        mk_repo_what_mock(what, sizeof what, i, m);
        PGresult *res = NULL;
        int rc = mk_pg_exec(c, ST_PUT, 9, params, &res, what, err);
        if (rc != 0)
            return rc;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return mk_err_set(err, MK_EINTERNAL, "postgres %s: change sequence row missing", what);
        }
        m->seq = int_at(res, 0, 0);
        PQclear(res);
    }
    return 0;
}

static int pg_put_mocks(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.mocks = rows, .n = n};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, true, put_op, &b, err);
}

static int delete_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    int rc = mk_pg_exec(c, ST_LOCK_SEQ, 0, NULL, NULL, "lock change sequence", err);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        const char *params[1] = {b->ids[i]};
        rc = mk_pg_exec(c, ST_DELETE, 1, params, NULL, "delete mock", err);
    }
    return rc;
}

static int pg_delete_mocks(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.ids = ids, .n = n};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, true, delete_op, &b, err);
}

typedef struct mock_rows {
    mk_repo_mock_cb cb;
    void *ud;
    int64_t after_seq;
    const char *id;
} mock_rows_t;

static int mock_row(void *ud, const PGresult *res)
{
    mock_rows_t *q = ud;
    mk_repo_mock_t row = mock_at(res, 0);
    return q->cb(q->ud, &row);
}

/* One statement, so one snapshot: with commit-ordered seqs the highest seq seen is a safe point
 * to resume from. */
static int load_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mock_rows_t *q = ud;
    char after[24];
    snprintf(after, sizeof after, "%" PRId64, q->after_seq);
    const char *params[1] = {after};
    /* A full load rebuilds from nothing, so it has no use for tombstones. */
    int stmt = q->after_seq > 0 ? ST_LOAD_CHANGES : ST_LOAD_ALL;
    return mk_pg_query_rows(c, stmt, 1, params, mock_row, q, "load mocks", err);
}

static int pg_load_mocks(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud,
                         mk_err_t *err)
{
    pg_repo_t *p = (pg_repo_t *)r;
    mock_rows_t q = {.cb = cb, .ud = ud, .after_seq = after_seq};
    return read_run(p, load_op, &q, err);
}

static int get_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mock_rows_t *q = ud;
    const char *params[1] = {q->id};
    PGresult *res = NULL;
    int rc = mk_pg_exec(c, ST_GET, 1, params, &res, "get mock", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 0) {
        rc = mk_err_set(err, MK_ENOTFOUND, "postgres get mock: no mock with id \"%.200s\"", q->id);
    } else {
        mk_repo_mock_t row = mock_at(res, 0);
        rc = q->cb(q->ud, &row);
    }
    PQclear(res);
    return rc;
}

static int pg_get_mock(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud, mk_err_t *err)
{
    pg_repo_t *p = (pg_repo_t *)r;
    mock_rows_t q = {.cb = cb, .ud = ud, .id = id};
    return read_run(p, get_op, &q, err);
}

/* No seq, no notify: usage is not a change resolvers need. */
static int usage_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        char uses[24], last[24];
        snprintf(uses, sizeof uses, "%" PRId64, b->usage[i].uses);
        snprintf(last, sizeof last, "%" PRId64, b->usage[i].last_use);
        const char *params[3] = {b->usage[i].id, uses, last};
        int rc = mk_pg_exec(c, ST_USAGE, 3, params, NULL, "update usage", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pg_update_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.usage = rows, .n = n};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, true, usage_op, &b, err);
}

static int ns_put_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *q = ud;
    char created[24];
    snprintf(created, sizeof created, "%" PRId64, q->created_at);
    const char *params[2] = {q->name, created};
    return mk_pg_exec(c, ST_NS_PUT, 2, params, NULL, "put namespace", err);
}

/* A single statement: its own transaction. */
static int pg_put_namespace(mk_repo_t *r, const char *name, int64_t created_at, mk_err_t *err)
{
    mk_repo_batch_t q = {.name = name, .created_at = created_at};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, false, ns_put_op, &q, err);
}

typedef struct name_rows {
    mk_repo_name_cb cb;
    void *ud;
} name_rows_t;

static int name_row(void *ud, const PGresult *res)
{
    name_rows_t *q = ud;
    return q->cb(q->ud, PQgetvalue(res, 0, 0), int_at(res, 0, 1));
}

static int ns_list_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    return mk_pg_query_rows(c, ST_NS_LIST, 0, NULL, name_row, ud, "list namespaces", err);
}

static int pg_list_namespaces(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err)
{
    pg_repo_t *p = (pg_repo_t *)r;
    name_rows_t q = {.cb = cb, .ud = ud};
    return read_run(p, ns_list_op, &q, err);
}

static int doc_put_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        const mk_repo_doc_t *d = &b->docs[i];
        char updated[24];
        snprintf(updated, sizeof updated, "%" PRId64, d->updated_at);
        const char *params[5] = {d->kind, d->id, d->namespace_ != NULL ? d->namespace_ : "",
                                 d->json, updated};
        /* json goes as raw bytes: nothing in it is parsed as an escape. */
        size_t json_len = d->json != NULL ? strlen(d->json) : 0;
        if (json_len > INT32_MAX)
            return mk_err_set(err, MK_ETOOBIG, "postgres put document %zu: json too long", i);
        const int lengths[5] = {0, 0, 0, (int)json_len, 0};
        const int formats[5] = {0, 0, 0, 1, 0};
        const mk_pg_fmt_t fmt = {.lengths = lengths, .formats = formats};
        char what[120];
        mk_repo_what_doc(what, sizeof what, i, d);
        int rc = mk_pg_exec_fmt(c, ST_DOC_PUT, 5, params, &fmt, NULL, what, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pg_put_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    mk_repo_batch_t b = {.docs = docs, .n = n};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, true, doc_put_op, &b, err);
}

static int doc_delete_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    mk_repo_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        const char *params[2] = {b->kind, b->ids[i]};
        int rc = mk_pg_exec(c, ST_DOC_DELETE, 2, params, NULL, "delete document", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pg_delete_docs(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                          mk_err_t *err)
{
    mk_repo_batch_t b = {.kind = kind, .ids = ids, .n = n};
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, true, doc_delete_op, &b, err);
}

/* Writes UTF-8 code point cp at out; returns the bytes written. */
static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The least string above every string that starts with prefix, in code point order (which is
 * UTF-8's byte order, the "C" collation): the prefix cut after its last code point below
 * U+10FFFF, that code point made one higher (past the surrogates). It is valid UTF-8, which a
 * prefix || 0xFF bound would not be. out holds strlen(prefix) + 5 bytes. false when there is
 * no such string (an empty prefix or only U+10FFFF); a prefix that is not UTF-8 gives a bound
 * the server refuses, as it refuses the prefix itself. */
static bool prefix_end(const char *prefix, char *out)
{
    size_t len = strlen(prefix);
    memcpy(out, prefix, len + 1);
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && ((unsigned char)out[start] & 0xC0) == 0x80)
            start--;
        const unsigned char *u = (const unsigned char *)out + start;
        size_t n = len - start;
        uint32_t cp = u[0];
        if (n > 1) {
            cp = u[0] & (0xFF >> (n + 1));
            for (size_t i = 1; i < n; i++)
                cp = (cp << 6) | (u[i] & 0x3F);
        }
        if (cp < 0x10FFFF) {
            cp = cp + 1 == 0xD800 ? 0xE000 : cp + 1;
            out[start + utf8_put(out + start, cp)] = '\0';
            return true;
        }
        len = start;
    }
    return false;
}

typedef struct doc_rows {
    const char *kind;
    const char *prefix;
    mk_repo_doc_cb cb;
    void *ud;
} doc_rows_t;

static int doc_row(void *ud, const PGresult *res)
{
    doc_rows_t *q = ud;
    mk_repo_doc_t doc = {
        .kind = PQgetvalue(res, 0, 0),
        .id = PQgetvalue(res, 0, 1),
        .namespace_ = PQgetvalue(res, 0, 2),
        .json = PQgetvalue(res, 0, 3),
        .updated_at = int_at(res, 0, 4),
    };
    return q->cb(q->ud, &doc);
}

static int doc_list_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    doc_rows_t *q = ud;
    char *end = malloc(strlen(q->prefix) + 5);
    if (end == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres list documents: out of memory");
    const char *params[3] = {q->kind, q->prefix, end};
    const mk_pg_fmt_t fmt = {.result_format = 1};
    bool bounded = prefix_end(q->prefix, end);
    int rc = mk_pg_query_rows_fmt(c, bounded ? ST_DOC_LIST_RANGE : ST_DOC_LIST_FROM,
                                  bounded ? 3 : 2, params, &fmt, doc_row, q, "list documents", err);
    free(end);
    return rc;
}

static int pg_list_docs(mk_repo_t *r, const char *kind, const char *id_prefix, mk_repo_doc_cb cb,
                        void *ud, mk_err_t *err)
{
    doc_rows_t q = {.kind = kind, .prefix = id_prefix != NULL ? id_prefix : "", .cb = cb, .ud = ud};
    return read_run((pg_repo_t *)r, doc_list_op, &q, err);
}

static int ping_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    (void)ud;
    return mk_pg_exec(c, ST_PING, 0, NULL, NULL, "ping", err);
}

static int pg_ping(mk_repo_t *r, mk_err_t *err)
{
    return mk_pg_pool_run(((pg_repo_t *)r)->pool, false, ping_op, NULL, err);
}

/* Every announced seq raises the floor replica reads must reach before the subscriber hears. */
static void on_notify(void *ud, int64_t seq, const char *id)
{
    pg_repo_t *p = ud;
    int64_t cur = atomic_load(&p->announced);
    while (seq > cur && !atomic_compare_exchange_weak(&p->announced, &cur, seq))
        ;
    p->sub_cb(p->sub_ud, seq, id);
}

static int pg_subscribe(mk_repo_t *r, mk_repo_change_cb cb, void *ud, mk_err_t *err)
{
    pg_repo_t *p = (pg_repo_t *)r;
    pthread_mutex_lock(&p->sub_mu);
    int rc = 0;
    if (p->listener != NULL) {
        rc = mk_err_set(err, MK_EINVAL,
                        "postgres subscribe: this repository already has a "
                        "subscription");
    } else {
        p->sub_cb = cb;
        p->sub_ud = ud;
        rc = mk_pg_listener_start(p->listen_dsn, p->timeout_ms, MK_PG_CHANNEL, on_notify, p,
                                  &p->listener, err);
    }
    pthread_mutex_unlock(&p->sub_mu);
    return rc;
}

static void pg_free(mk_repo_t *r)
{
    pg_repo_t *p = (pg_repo_t *)r;
    if (p == NULL)
        return;
    mk_pg_listener_stop(p->listener);
    mk_pg_pool_free(p->pool);
    for (int i = 0; i < p->nreplicas; i++) {
        mk_pg_pool_free(p->replicas[i].pool);
        free(p->replicas[i].dsn);
    }
    free(p->replicas);
    pthread_mutex_destroy(&p->sub_mu);
    free(p->dsn);
    free(p->listen_dsn);
    free(p);
}

static const mk_repo_ops_t pg_ops = {
    .name = "postgres",
    .put_mocks = pg_put_mocks,
    .delete_mocks = pg_delete_mocks,
    .load_mocks = pg_load_mocks,
    .update_usage = pg_update_usage,
    .put_namespace = pg_put_namespace,
    .list_namespaces = pg_list_namespaces,
    .ping = pg_ping,
    .get_mock = pg_get_mock,
    .put_docs = pg_put_docs,
    .delete_docs = pg_delete_docs,
    .list_docs = pg_list_docs,
    .subscribe = pg_subscribe,
    .free = pg_free,
};

/* Runs sql (with text params) on a bare connection; *res, when wanted, is the caller's. */
static int raw_exec(PGconn *pg, const char *sql, int nparams, const char *const *params,
                    PGresult **res, const char *what, mk_err_t *err)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc = mk_pg_check(pg, r, NULL, what, err);
    if (rc == 0 && res != NULL)
        *res = r;
    else
        PQclear(r);
    return rc;
}

static int read_schema_version(PGconn *pg, int64_t *version, mk_err_t *err)
{
    PGresult *res = NULL;
    *version = 0;
    int rc = raw_exec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &res,
                      "read schema version", err);
    if (rc != 0)
        return rc;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists)
        return 0;
    rc = raw_exec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res,
                  "read schema version", err);
    if (rc != 0)
        return rc;
    *version = int_at(res, 0, 0);
    PQclear(res);
    return 0;
}

/* One transaction: takes the migration lock, reads the version and, when behind, applies the
 * next migration and records it. *done when the schema is current afterwards. The lock is
 * transaction-scoped, so admins starting together migrate one at a time and the later ones find
 * nothing left to do, and no lock outlives its transaction on a pooler's server connection. */
static int migrate_step(PGconn *pg, bool *done, mk_err_t *err)
{
    int64_t version = 0;
    char what[64] = "migration";
    int rc = raw_exec(pg, "BEGIN", 0, NULL, NULL, "begin migration", err);
    if (rc == 0)
        rc = raw_exec(pg, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", 0, NULL, NULL,
                      "take the migration lock", err);
    if (rc == 0)
        rc = raw_exec(pg,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                      0, NULL, NULL, "create schema_migrations", err);
    if (rc == 0)
        rc = read_schema_version(pg, &version, err);
    if (rc == 0 && version > MIGRATION_COUNT)
        rc = mk_repo_newer_schema(err, "postgres", version, MIGRATION_COUNT);
    if (rc == 0 && version < MIGRATION_COUNT) {
        snprintf(what, sizeof what, "migration %lld", (long long)version + 1);
        PGresult *res = PQexec(pg, migrations[version]);
        rc = mk_pg_check(pg, res, NULL, what, err);
        PQclear(res);
        char v[24], at[24];
        snprintf(v, sizeof v, "%lld", (long long)version + 1);
        snprintf(at, sizeof at, "%" PRId64, mk_repo_now_ms());
        const char *params[2] = {v, at};
        if (rc == 0)
            rc = raw_exec(pg, "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)",
                          2, params, NULL, "record migration", err);
        version++;
    }
    if (rc == 0)
        rc = raw_exec(pg, "COMMIT", 0, NULL, NULL, what, err);
    if (rc != 0 && PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(PQexec(pg, "ROLLBACK"));
    *done = rc == 0 && version == MIGRATION_COUNT;
    return rc;
}

static int migrate(PGconn *pg, mk_err_t *err)
{
    bool done = false;
    int rc = 0;
    while (rc == 0 && !done)
        rc = migrate_step(pg, &done, err);
    return rc;
}

/* Resolvers never migrate: they wait (up to wait_ms) for the admin to bring the schema to the
 * version they know. */
static int wait_for_schema(PGconn *pg, int wait_ms, mk_err_t *err)
{
    int64_t deadline = mk_pg_now_ms() + wait_ms;
    for (;;) {
        int64_t version = 0;
        int rc = read_schema_version(pg, &version, err);
        if (rc != 0)
            return rc;
        if (version > MIGRATION_COUNT)
            return mk_repo_newer_schema(err, "postgres", version, MIGRATION_COUNT);
        if (version == MIGRATION_COUNT)
            return 0;
        if (mk_pg_now_ms() >= deadline)
            return mk_err_set(err, MK_EUNAVAIL,
                              "postgres: database schema is at version %lld, this binary needs "
                              "%d: the admin node (opened with migrate) creates and upgrades "
                              "it; waited %d ms",
                              (long long)version, MIGRATION_COUNT, wait_ms);
        struct timespec ts = {0, SCHEMA_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int check_dsn(const char *dsn, mk_err_t *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
    if (opts != NULL) {
        PQconninfoFree(opts);
        return 0;
    }
    char line[300] = "out of memory";
    if (msg != NULL) {
        snprintf(line, sizeof line, "%s", msg);
        line[strcspn(line, "\n")] = '\0';
        PQfreemem(msg);
    }
    return mk_err_set(err, MK_EINVAL, "postgres: invalid DSN: %s", line);
}

/* host:port/dbname of a DSN, for health and logs (never its password). */
static void dsn_name(const char *dsn, char *out, size_t size)
{
    const char *host = "", *port = "5432", *db = "";
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0 ||
            (host[0] == '\0' && strcmp(o->keyword, "hostaddr") == 0))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(out, size, "%s:%s/%s", host[0] ? host : "localhost", port, db);
    PQconninfoFree(opts);
}

/* Where the next DSN of a list starts after a comma: a URI scheme or a key=value pair. */
static bool starts_dsn(const char *s)
{
    while (*s == ' ')
        s++;
    if (strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0)
        return true;
    size_t key = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
    return key > 0 && s[key + strspn(s + key, " ")] == '=';
}

/* Splits list into the read replicas, each with a pool of pool_size lazily opened
 * connections. */
static int open_replicas(pg_repo_t *p, const char *list, const mk_pg_opts_t *o, mk_err_t *err)
{
    size_t len = strlen(list);
    p->replicas = calloc(len / 2 + 1, sizeof *p->replicas);
    if (p->replicas == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres open: out of memory");
    const char *start = list;
    for (const char *c = list;; c++) {
        if (*c != '\0' && !(*c == ',' && starts_dsn(c + 1)))
            continue;
        while (start < c && *start == ' ')
            start++;
        size_t n = (size_t)(c - start);
        while (n > 0 && start[n - 1] == ' ')
            n--;
        if (n > 0) {
            replica_t *r = &p->replicas[p->nreplicas];
            r->dsn = strndup(start, n);
            if (r->dsn == NULL)
                return mk_err_set(err, MK_ENOMEM, "postgres open: out of memory");
            p->nreplicas++;
            int rc = check_dsn(r->dsn, err);
            if (rc == 0)
                rc = mk_pg_pool_new(r->dsn, o->pool_size, o->connect_timeout_ms, stmt_sql, ST_COUNT,
                                    o->prepared, &r->pool, err);
            if (rc != 0) {
                mk_err_prefix(err, "DB_READ_DSN entry %d", p->nreplicas);
                return rc;
            }
            dsn_name(r->dsn, r->name, sizeof r->name);
        }
        if (*c == '\0')
            break;
        start = c + 1;
    }
    return 0;
}

typedef struct replica_probe {
    int64_t seq;
    double lag_ms;
} replica_probe_t;

static int probe_op(mk_pg_conn_t *c, void *ud, mk_err_t *err)
{
    replica_probe_t *q = ud;
    PGresult *res = NULL;
    int rc = mk_pg_exec(c, ST_REPLICA, 0, NULL, &res, "replica status", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        q->seq = int_at(res, 0, 0);
        q->lag_ms = strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    return 0;
}

int mk_pg_repo_replicas(mk_repo_t *r, mk_pg_replica_status_t *out, int max, int *n)
{
    *n = 0;
    if (r == NULL || r->ops != &pg_ops)
        return 0;
    pg_repo_t *p = (pg_repo_t *)r;
    if (p->nreplicas == 0)
        return 0;
    replica_probe_t primary = {0};
    mk_err_t err;
    int prc = mk_pg_pool_run(p->pool, false, probe_op, &primary, &err);
    for (int i = 0; i < p->nreplicas && *n < max; i++) {
        replica_t *rp = &p->replicas[i];
        mk_pg_replica_status_t *st = &out[(*n)++];
        memset(st, 0, sizeof *st);
        snprintf(st->name, sizeof st->name, "%s", rp->name);
        st->fallbacks = atomic_load(&p->fallbacks);
        replica_probe_t q = {0};
        if (mk_pg_pool_run(rp->pool, false, probe_op, &q, &err) != 0) {
            snprintf(st->error, sizeof st->error, "%.299s", err.msg);
            continue;
        }
        st->up = true;
        st->seq = q.seq;
        atomic_store(&rp->seq, q.seq);
        st->lag_seq = prc == 0 && primary.seq > q.seq ? primary.seq - q.seq : 0;
        st->lag_ms = st->lag_seq > 0 ? q.lag_ms : 0;
    }
    return 0;
}

int mk_pg_repo_open(const char *dsn, const mk_pg_opts_t *opts, mk_repo_t **out, mk_err_t *err)
{
    if (out == NULL)
        return mk_err_set(err, MK_EINVAL, "postgres open: out is NULL");
    *out = NULL;
    if (dsn == NULL)
        return mk_err_set(err, MK_EINVAL, "postgres open: no DSN");
    mk_pg_opts_t o = opts != NULL ? *opts : (mk_pg_opts_t){0};
    if (o.pool_size == 0)
        o.pool_size = DEFAULT_POOL_SIZE;
    if (o.connect_timeout_ms == 0)
        o.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT;
    if (o.pool_size < 1 || o.pool_size > MAX_POOL_SIZE || o.connect_timeout_ms < 0 ||
        o.schema_wait_ms < 0 || o.read_wait_ms < 0 || o.prepared < MK_PG_PREPARED_AUTO ||
        o.prepared > MK_PG_PREPARED_OFF)
        return mk_err_set(err, MK_EINVAL,
                          "postgres open: pool_size must be 1..%d, timeouts not negative and "
                          "prepared one of auto, on, off",
                          MAX_POOL_SIZE);
    int rc = check_dsn(dsn, err);
    if (rc == 0 && o.listen_dsn != NULL && o.listen_dsn[0] != '\0')
        rc = check_dsn(o.listen_dsn, err);
    if (rc != 0)
        return rc;

    pg_repo_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres open: out of memory");
    p->base.ops = &pg_ops;
    p->timeout_ms = o.connect_timeout_ms;
    pthread_mutex_init(&p->sub_mu, NULL);
    p->dsn = strdup(dsn);
    p->listen_dsn = strdup(o.listen_dsn != NULL && o.listen_dsn[0] != '\0' ? o.listen_dsn : dsn);
    if (p->dsn == NULL || p->listen_dsn == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "postgres open: out of memory");
        goto out;
    }
    rc = mk_pg_pool_new(dsn, o.pool_size, o.connect_timeout_ms, stmt_sql, ST_COUNT, o.prepared,
                        &p->pool, err);
    if (rc != 0)
        goto out;
    /* Replicas connect on first use: one that is down at start costs reads there, not the
     * start. */
    p->read_wait_ms = o.read_wait_ms > 0 ? o.read_wait_ms : 5000;
    if (o.read_dsn != NULL && o.read_dsn[0] != '\0') {
        rc = open_replicas(p, o.read_dsn, &o, err);
        if (rc != 0)
            goto out;
    }
    PGconn *pg = NULL;
    rc = mk_pg_connect(dsn, o.connect_timeout_ms, -1, &pg, err);
    if (rc != 0)
        goto out;
    rc = o.migrate ? migrate(pg, err) : wait_for_schema(pg, o.schema_wait_ms, err);
    PQfinish(pg);
    if (rc != 0)
        goto out;
    /* Connects the first pooled connection, preparing every statement against the schema. */
    rc = mk_pg_pool_run(p->pool, false, ping_op, NULL, err);
    if (rc != 0)
        goto out;
    *out = &p->base;
out:
    if (rc != 0)
        pg_free(&p->base);
    return rc;
}

int mk_pg_repo_schema_version(void)
{
    return MIGRATION_COUNT;
}
