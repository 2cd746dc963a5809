/* Tests of the SQLite backend through the repo.h interface; raw sqlite3 is used only to inspect
 * or tamper with a database file between opens. */
#include "repo/repo.h"
#include "sqlite/sqlite.h"
#include "testing/repo_docs.h"
#include "testing/repo_rows.h"
#include "testing/testing.h"

#include <sqlite3.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load(mk_repo_t *r, int64_t after, mk_testing_rows_t *c)
{
    mk_testing_rows_reset(c);
    mk_err_t err = {0};
    return mk_repo_load_mocks(r, after, mk_testing_rows_collect, c, &err);
}

static mk_repo_mock_t mock(const char *id, const char *ns, const char *json)
{
    return (mk_repo_mock_t){
        .id = id, .namespace_ = ns, .json = json, .created_at = 1000, .updated_at = 1000};
}

static mk_repo_t *open_memory(void)
{
    mk_repo_t *r = NULL;
    mk_err_t err = {0};
    int rc = mk_sqlite_repo_open(":memory:", &r, &err);
    MK_CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    return r;
}

/* A fresh temp dir per test that needs files; removed with its contents afterwards. */
typedef struct tmpdir {
    char dir[64];
    char db[128];
} tmpdir_t;

static int tmpdir_make(tmpdir_t *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/mk-sqlite-test-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(t->db, sizeof t->db, "%s/repo.db", t->dir);
    return 0;
}

static void tmpdir_remove(tmpdir_t *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->db, suffixes[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

/* Runs one SQL query on a raw connection and returns the first column of the first row. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void test_put_load_and_upsert(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    MK_CHECK_STR(mk_repo_backend(r), "sqlite");
    mk_err_t err = {0};
    mk_repo_mock_t rows[2] = {mock("a", "default", "{\"id\":\"a\"}"),
                              mock("b", "team", "{\"id\":\"b\"}")};
    rows[1].chain_id = "chain-1";
    rows[1].uses = 3;
    rows[1].last_use = 77;
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 2, &err), 0);

    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 2);
    if (c->n == 2) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK_STR(c->rows[1].id, "b");
        MK_CHECK(c->rows[0].seq > 0);
        MK_CHECK(c->rows[1].seq > c->rows[0].seq);
        MK_CHECK(c->rows[0].chain == NULL);
        MK_CHECK_STR(c->rows[1].chain, "chain-1");
        MK_CHECK_STR(c->rows[1].ns, "team");
        MK_CHECK_STR(c->rows[1].json, "{\"id\":\"b\"}");
        MK_CHECK_INT(c->rows[1].uses, 3);
        MK_CHECK_INT(c->rows[1].last_use, 77);
        MK_CHECK_INT(c->rows[1].created_at, 1000);
    }
    int64_t b_seq = c->n == 2 ? c->rows[1].seq : 0;

    /* Upsert a: same id, new content; it moves after b in the change order. */
    mk_repo_mock_t a2 = mock("a", "other", "{\"id\":\"a\",\"v\":2}");
    a2.updated_at = 2000;
    MK_CHECK_INT(mk_repo_put_mocks(r, &a2, 1, &err), 0);
    MK_CHECK_INT(load(r, b_seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK_STR(c->rows[0].ns, "other");
        MK_CHECK_STR(c->rows[0].json, "{\"id\":\"a\",\"v\":2}");
        MK_CHECK_INT(c->rows[0].updated_at, 2000);
        MK_CHECK(c->rows[0].seq > b_seq);
    }
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 2);
    if (c->n == 2) {
        MK_CHECK_STR(c->rows[0].id, "b");
        MK_CHECK_STR(c->rows[1].id, "a");
    }

    /* The callback's non-zero return stops the iteration and comes back to the caller. */
    mk_testing_rows_reset(c);
    c->stop_after = 1;
    MK_CHECK_INT(mk_repo_load_mocks(r, 0, mk_testing_rows_collect, c, &err), 7);
    MK_CHECK_INT(c->n, 1);

    /* An empty batch is a no-op. */
    MK_CHECK_INT(mk_repo_put_mocks(r, NULL, 0, &err), 0);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_batch_atomicity(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t first = mock("keep", "default", "{\"v\":1}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &first, 1, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    int64_t seq_before = c->n == 1 ? c->rows[0].seq : -1;

    /* Row 0 updates an existing mock, row 1 is new, row 2 has a NULL id: nothing may stick. */
    mk_repo_mock_t batch[3] = {mock("keep", "default", "{\"v\":2}"), mock("new", "default", "{}"),
                               mock(NULL, "default", "{}")};
    int rc = mk_repo_put_mocks(r, batch, 3, &err);
    MK_CHECK_INT(rc, MK_EINVAL);
    MK_CHECK(strstr(err.msg, "NOT NULL") != NULL);
    MK_CHECK(strstr(err.msg, "put mock 2") != NULL);
    /* SQLITE_CONSTRAINT_NOTNULL is extended code 1299. */
    MK_CHECK(strstr(err.cause, "SQLITE_CONSTRAINT") != NULL);
    MK_CHECK(strstr(err.cause, "1299") != NULL);

    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].json, "{\"v\":1}");
        MK_CHECK_INT(c->rows[0].seq, seq_before);
    }

    /* A NULL json also violates a constraint; the change sequence rolled back with the batch. */
    mk_repo_mock_t bad_json = mock("x", "default", NULL);
    MK_CHECK_INT(mk_repo_put_mocks(r, &bad_json, 1, &err), MK_EINVAL);
    mk_repo_mock_t empty_id = mock("", "default", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &empty_id, 1, &err), MK_EINVAL);
    mk_repo_mock_t next = mock("next", "default", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &next, 1, &err), 0);
    MK_CHECK_INT(load(r, seq_before, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_INT(c->rows[0].seq, seq_before + 1);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_delete(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t rows[3] = {mock("a", "n", "{}"), mock("b", "n", "{}"), mock("c", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 3, &err), 0);
    const char *ids[] = {"a", "missing", "c"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, ids, 3, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_STR(c->rows[0].id, "b");

    const char *bad[] = {"b", NULL};
    MK_CHECK_INT(mk_repo_delete_mocks(r, bad, 2, &err), MK_EINVAL);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    MK_CHECK_INT(mk_repo_delete_mocks(r, NULL, 0, &err), 0);

    /* A purge must not let a later put reuse the deleted row's seq. */
    int64_t max_seq = c->n == 1 ? c->rows[0].seq : 0;
    const char *b[] = {"b"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, b, 1, &err), 0);
    mk_repo_mock_t d = mock("d", "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &d, 1, &err), 0);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK(c->rows[0].seq > max_seq + 1);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_soft_delete_roundtrip(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t m = mock("s", "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    m.closed_at = 123456;
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1); /* soft-deleted rows are still loaded */
    if (c->n == 1)
        MK_CHECK_INT(c->rows[0].closed_at, 123456);
    m.closed_at = 0;
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_INT(c->rows[0].closed_at, 0);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_usage(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t rows[2] = {mock("u1", "n", "{}"), mock("u2", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 2, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    int64_t max_seq = c->n == 2 ? c->rows[1].seq : -1;
    int64_t u1_seq = c->n == 2 ? c->rows[0].seq : -1;

    mk_repo_usage_t usage[2] = {{.id = "u1", .uses = 5, .last_use = 999},
                                {.id = "gone", .uses = 1, .last_use = 1}};
    MK_CHECK_INT(mk_repo_update_usage(r, usage, 2, &err), 0);
    /* Usage does not enter the change sequence. */
    MK_CHECK_INT(load(r, max_seq, c), 0);
    MK_CHECK_INT(c->n, 0);
    MK_CHECK_INT(load(r, 0, c), 0);
    const mk_testing_row_t *u1 = mk_testing_rows_find(c, "u1");
    const mk_testing_row_t *u2 = mk_testing_rows_find(c, "u2");
    MK_CHECK(u1 != NULL && u2 != NULL);
    if (u1 != NULL && u2 != NULL) {
        MK_CHECK_INT(u1->uses, 5);
        MK_CHECK_INT(u1->last_use, 999);
        MK_CHECK_INT(u1->seq, u1_seq);
        MK_CHECK_INT(u2->uses, 0);
        MK_CHECK_INT(u2->last_use, 0);
    }
    mk_repo_usage_t bad = {.id = NULL, .uses = 1};
    MK_CHECK_INT(mk_repo_update_usage(r, &bad, 1, &err), MK_EINVAL);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_namespaces(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_put_namespace(r, "zeta", 30, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "alpha", 10, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "mid", 20, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "alpha", 99, &err), 0); /* exists: not an error */
    MK_CHECK_INT(mk_repo_put_namespace(r, "", 1, &err), MK_EINVAL);
    mk_testing_names_t ns = {0};
    MK_CHECK_INT(mk_repo_list_namespaces(r, mk_testing_names_collect, &ns, &err), 0);
    MK_CHECK_INT(ns.n, 3);
    if (ns.n == 3) {
        MK_CHECK_STR(ns.name[0], "alpha");
        MK_CHECK_INT(ns.created[0], 10);
        MK_CHECK_STR(ns.name[1], "mid");
        MK_CHECK_STR(ns.name[2], "zeta");
        MK_CHECK_INT(ns.created[2], 30);
    }
    mk_repo_free(r);
}

static void test_persistence_across_reopen(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    if (r == NULL)
        goto out;
    mk_repo_mock_t m = mock("p", "ns", "{\"persist\":true}");
    m.chain_id = "ch";
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "ns", 5, &err), 0);
    mk_repo_free(r);
    MK_CHECK_INT(raw_int(t.db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);

    r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    if (r == NULL)
        goto out;
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    int64_t seq = -1;
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].id, "p");
        MK_CHECK_STR(c->rows[0].chain, "ch");
        MK_CHECK_STR(c->rows[0].json, "{\"persist\":true}");
        seq = c->rows[0].seq;
    }
    mk_testing_names_t ns = {0};
    MK_CHECK_INT(mk_repo_list_namespaces(r, mk_testing_names_collect, &ns, &err), 0);
    MK_CHECK_INT(ns.n, 1);
    /* The change sequence survives the reopen. */
    mk_repo_mock_t q = mock("q", "ns", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &q, 1, &err), 0);
    MK_CHECK_INT(load(r, seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_INT(c->rows[0].seq, seq + 1);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
out:
    tmpdir_remove(&t);
}

static void test_migrations_applied_once(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK(mk_sqlite_repo_schema_version() >= 1);
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    mk_repo_free(r);
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM schema_migrations"),
                 mk_sqlite_repo_schema_version());
    MK_CHECK_INT(raw_int(t.db, "SELECT max(version) FROM schema_migrations"),
                 mk_sqlite_repo_schema_version());
    /* Mark the recorded rows so a re-run (which would insert again or fail) is visible. */
    MK_CHECK_INT(raw_exec(t.db, "UPDATE schema_migrations SET applied_at = 42"), SQLITE_OK);
    r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    MK_CHECK(r != NULL);
    mk_repo_free(r);
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM schema_migrations"),
                 mk_sqlite_repo_schema_version());
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM schema_migrations WHERE applied_at <> 42"), 0);
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name IN ('mocks_namespace', 'mocks_chain_id', 'mocks_seq')"),
                 3);
    tmpdir_remove(&t);
}

static void test_newer_schema_refused(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    mk_repo_free(r);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 1)",
             mk_sqlite_repo_schema_version() + 1);
    MK_CHECK_INT(raw_exec(t.db, sql), SQLITE_OK);
    mk_repo_t sentinel = {0};
    r = &sentinel; /* open must reset *out to NULL on failure */
    int rc = mk_sqlite_repo_open(t.db, &r, &err);
    MK_CHECK_INT(rc, MK_ECONFLICT);
    MK_CHECK(r == NULL);
    MK_CHECK(strstr(err.msg, "newer than this binary") != NULL);
    MK_CHECK(strstr(err.msg, t.db) != NULL);
    tmpdir_remove(&t);
}

static void test_open_errors(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;

    FILE *f = fopen(t.db, "w");
    MK_CHECK(f != NULL);
    if (f != NULL) {
        for (int i = 0; i < 64; i++)
            fputs("this is certainly not an sqlite database file. ", f);
        fclose(f);
    }
    int rc = mk_sqlite_repo_open(t.db, &r, &err);
    MK_CHECK_INT(rc, MK_EIO);
    MK_CHECK(r == NULL);
    MK_CHECK(strstr(err.msg, "not a database") != NULL);
    MK_CHECK(strstr(err.msg, t.db) != NULL);
    MK_CHECK(strstr(err.cause, "SQLITE_NOTADB") != NULL);

    char missing[192];
    snprintf(missing, sizeof missing, "%s/no/such/dir/repo.db", t.dir);
    mk_err_clear(&err);
    rc = mk_sqlite_repo_open(missing, &r, &err);
    MK_CHECK(rc < 0);
    MK_CHECK(r == NULL);
    MK_CHECK(strstr(err.msg, "does not exist") != NULL);
    MK_CHECK(strstr(err.cause, "SQLITE_CANTOPEN") != NULL);

    MK_CHECK_INT(mk_sqlite_repo_open(NULL, &r, &err), MK_EINVAL);
    MK_CHECK_INT(mk_sqlite_repo_open(":memory:", NULL, &err), MK_EINVAL);
    tmpdir_remove(&t);
}

typedef struct observed {
    char ops[16][32];
    double seconds[16];
    int n;
} observed_t;

static void observe(void *ud, const char *operation, double seconds)
{
    observed_t *o = ud;
    if (o->n >= 16)
        return;
    snprintf(o->ops[o->n], sizeof o->ops[0], "%s", operation);
    o->seconds[o->n++] = seconds;
}

static void test_observer_and_ping(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    observed_t o = {0};
    mk_repo_set_observer(r, observe, &o);
    mk_err_t err = {0};
    mk_repo_mock_t m = mock("o", "n", "{}");
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    mk_testing_names_t ns = {0};
    mk_repo_usage_t u = {.id = "o", .uses = 1, .last_use = 1};
    const char *ids[] = {"o"};
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    MK_CHECK_INT(mk_repo_load_mocks(r, 0, mk_testing_rows_collect, c, &err), 0);
    MK_CHECK_INT(mk_repo_update_usage(r, &u, 1, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "n", 1, &err), 0);
    MK_CHECK_INT(mk_repo_list_namespaces(r, mk_testing_names_collect, &ns, &err), 0);
    MK_CHECK_INT(mk_repo_delete_mocks(r, ids, 1, &err), 0);
    MK_CHECK_INT(mk_repo_ping(r, &err), 0);
    /* A failing call is observed too. */
    mk_repo_mock_t bad = mock(NULL, "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &bad, 1, &err), MK_EINVAL);

    static const char *const want[] = {"put_mocks",     "load_mocks",      "update_usage",
                                       "put_namespace", "list_namespaces", "delete_mocks",
                                       "ping",          "put_mocks"};
    MK_CHECK_INT(o.n, 8);
    for (int i = 0; i < o.n && i < 8; i++) {
        MK_CHECK_STR(o.ops[i], want[i]);
        MK_CHECK(o.seconds[i] >= 0 && o.seconds[i] < 10);
    }

    mk_repo_set_observer(r, NULL, NULL);
    MK_CHECK_INT(mk_repo_ping(r, &err), 0);
    MK_CHECK_INT(o.n, 8);

    /* Dispatch rejects missing arguments before reaching the backend. */
    MK_CHECK_INT(mk_repo_ping(NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_load_mocks(r, 0, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_put_mocks(r, NULL, 1, &err), MK_EINVAL);
    MK_CHECK_STR(mk_repo_backend(NULL), "none");
    mk_repo_free(NULL);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

#define THREADS    4
#define PER_THREAD 50

typedef struct worker {
    mk_repo_t *r;
    int index;
    int failures;
} worker_t;

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d-%d", w->index, i);
        mk_repo_mock_t m = mock(id, "n", "{}");
        mk_err_t err = {0};
        if (mk_repo_put_mocks(w->r, &m, 1, &err) != 0)
            w->failures++;
        if (i % 10 == 0 && mk_repo_ping(w->r, &err) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_writers(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    if (r == NULL)
        goto out;
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.r = r, .index = i};
        pthread_create(&th[i], NULL, worker_run, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(w[i].failures, 0);
    }
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, THREADS * PER_THREAD);
    int ordered = 1;
    for (size_t i = 1; i < c->n; i++) {
        if (c->rows[i].seq <= c->rows[i - 1].seq)
            ordered = 0;
    }
    MK_CHECK(ordered);
    if (c->n > 0)
        MK_CHECK_INT(c->rows[c->n - 1].seq, THREADS * PER_THREAD);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
out:
    tmpdir_remove(&t);
}

static void test_seq_write_back(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t rows[3] = {mock("w1", "n", "{}"), mock("w2", "n", "{}"), mock("w3", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 3, &err), 0);
    MK_CHECK(rows[0].seq > 0);
    MK_CHECK_INT(rows[1].seq, rows[0].seq + 1);
    MK_CHECK_INT(rows[2].seq, rows[1].seq + 1);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 3);
    for (size_t i = 0; i < c->n && i < 3; i++)
        MK_CHECK_INT(c->rows[i].seq, rows[i].seq);

    /* A failed batch writes nothing back. */
    mk_repo_mock_t bad[2] = {mock("w4", "n", "{}"), mock(NULL, "n", "{}")};
    bad[0].seq = -5;
    bad[1].seq = -6;
    MK_CHECK_INT(mk_repo_put_mocks(r, bad, 2, &err), MK_EINVAL);
    MK_CHECK_INT(bad[0].seq, -5);
    MK_CHECK_INT(bad[1].seq, -6);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void test_tombstones(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    if (r == NULL)
        goto out;
    mk_repo_mock_t rows[3] = {mock("a", "n", "{\"a\":1}"), mock("b", "n", "{}"),
                              mock("c", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 3, &err), 0);
    int64_t c_seq = rows[2].seq;
    const char *ids[] = {"a", "missing"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, ids, 2, &err), 0);

    mk_testing_rows_t *c = calloc(1, sizeof *c);
    /* A full load has no tombstones. */
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 2);
    MK_CHECK(mk_testing_rows_find(c, "a") == NULL);
    /* A resync sees the purge as id + seq, json NULL; the missing id consumed no seq. */
    MK_CHECK_INT(load(r, c_seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    int64_t tomb_seq = -1;
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK(c->rows[0].json == NULL);
        MK_CHECK(c->rows[0].ns == NULL);
        MK_CHECK_INT(c->rows[0].seq, c_seq + 1);
        tomb_seq = c->rows[0].seq;
    }
    /* Tombstones come in seq order among live rows. */
    MK_CHECK_INT(load(r, rows[0].seq, c), 0);
    MK_CHECK_INT(c->n, 3);
    if (c->n == 3) {
        MK_CHECK_STR(c->rows[0].id, "b");
        MK_CHECK_STR(c->rows[1].id, "c");
        MK_CHECK_STR(c->rows[2].id, "a");
        MK_CHECK(c->rows[2].json == NULL);
    }
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM mock_tombstones"), 1);
    /* Deleting it again changes nothing. */
    const char *a[] = {"a"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, a, 1, &err), 0);
    MK_CHECK_INT(load(r, tomb_seq, c), 0);
    MK_CHECK_INT(c->n, 0);

    /* Re-created after the purge: live again, tombstone gone. */
    mk_repo_mock_t again = mock("a", "n", "{\"a\":2}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &again, 1, &err), 0);
    MK_CHECK_INT(again.seq, tomb_seq + 1);
    MK_CHECK_INT(load(r, c_seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK_STR(c->rows[0].json, "{\"a\":2}");
    }
    MK_CHECK_INT(raw_int(t.db, "SELECT count(*) FROM mock_tombstones"), 0);
    MK_CHECK_INT(load(r, 0, c), 0);
    MK_CHECK_INT(c->n, 3);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
out:
    tmpdir_remove(&t);
}

static void test_get_mock(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    mk_repo_mock_t m = mock("g", "team", "{\"g\":true}");
    m.chain_id = "ch";
    m.closed_at = 5;
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(mk_repo_get_mock(r, "g", mk_testing_rows_collect, c, &err), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].ns, "team");
        MK_CHECK_STR(c->rows[0].chain, "ch");
        MK_CHECK_STR(c->rows[0].json, "{\"g\":true}");
        MK_CHECK_INT(c->rows[0].closed_at, 5);
        MK_CHECK_INT(c->rows[0].seq, m.seq);
    }
    mk_testing_rows_reset(c);
    mk_err_clear(&err);
    MK_CHECK_INT(mk_repo_get_mock(r, "nope", mk_testing_rows_collect, c, &err), MK_ENOTFOUND);
    MK_CHECK(strstr(err.msg, "nope") != NULL);
    MK_CHECK_INT(c->n, 0);
    const char *ids[] = {"g"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, ids, 1, &err), 0);
    MK_CHECK_INT(mk_repo_get_mock(r, "g", mk_testing_rows_collect, c, &err), MK_ENOTFOUND);
    MK_CHECK_INT(c->n, 0);
    /* The callback's return comes back. */
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    c->stop_after = 1;
    MK_CHECK_INT(mk_repo_get_mock(r, "g", mk_testing_rows_collect, c, &err), 7);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
}

static void noop_change(void *ud, int64_t seq, const char *id)
{
    (void)ud;
    (void)seq;
    (void)id;
}

static void test_subscribe_unsupported(void)
{
    mk_repo_t *r = open_memory();
    if (r == NULL)
        return;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_subscribe(r, noop_change, NULL, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "sqlite") != NULL);
    mk_repo_free(r);
}

/* A database made by a binary that knew only migration 1 gains the tombstone table on open. */
static void test_upgrade_from_v1(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    mk_repo_mock_t m = mock("old", "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &m, 1, &err), 0);
    mk_repo_free(r);
    MK_CHECK_INT(raw_exec(t.db, "DROP TABLE mock_tombstones; DROP TABLE docs;"
                                "DELETE FROM schema_migrations WHERE version >= 2"),
                 SQLITE_OK);
    r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    if (r == NULL)
        goto out;
    MK_CHECK_INT(raw_int(t.db, "SELECT max(version) FROM schema_migrations"),
                 mk_sqlite_repo_schema_version());
    const char *ids[] = {"old"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, ids, 1, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(load(r, m.seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK(c->rows[0].json == NULL);
    mk_testing_rows_reset(c);
    free(c);
    mk_repo_free(r);
out:
    tmpdir_remove(&t);
}

static void test_docs(void)
{
    mk_repo_t *r = open_memory();
    if (r != NULL)
        mk_testing_repo_docs_check(r);
    mk_repo_free(r);
}

/* A database of schema 2 (before documents) gains the docs table on open, and documents persist
 * across a reopen. */
static void test_docs_upgrade_and_persistence(void)
{
    tmpdir_t t;
    MK_CHECK_INT(tmpdir_make(&t), 0);
    mk_err_t err = {0};
    mk_repo_t *r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    mk_repo_free(r);
    MK_CHECK_INT(
        raw_exec(t.db, "DROP TABLE docs; DELETE FROM schema_migrations WHERE version >= 3"),
        SQLITE_OK);
    MK_CHECK_INT(raw_int(t.db, "SELECT max(version) FROM schema_migrations"), 2);
    r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    MK_CHECK_INT(mk_sqlite_repo_schema_version(), 3);
    MK_CHECK_INT(raw_int(t.db, "SELECT max(version) FROM schema_migrations"), 3);
    mk_repo_doc_t d = {
        .kind = "mock_version", .id = "m1/0000000001", .namespace_ = "sandbox", .json = "{}"};
    MK_CHECK_INT(mk_repo_put_docs(r, &d, 1, &err), 0);
    mk_repo_free(r);
    r = NULL;
    MK_CHECK_INT(mk_sqlite_repo_open(t.db, &r, &err), 0);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "mock_version", "m1/"), 1);
    mk_repo_free(r);
    tmpdir_remove(&t);
}

int main(void)
{
    MK_RUN(test_put_load_and_upsert);
    MK_RUN(test_batch_atomicity);
    MK_RUN(test_delete);
    MK_RUN(test_soft_delete_roundtrip);
    MK_RUN(test_usage);
    MK_RUN(test_namespaces);
    MK_RUN(test_persistence_across_reopen);
    MK_RUN(test_migrations_applied_once);
    MK_RUN(test_newer_schema_refused);
    MK_RUN(test_open_errors);
    MK_RUN(test_observer_and_ping);
    MK_RUN(test_concurrent_writers);
    MK_RUN(test_seq_write_back);
    MK_RUN(test_tombstones);
    MK_RUN(test_get_mock);
    MK_RUN(test_subscribe_unsupported);
    MK_RUN(test_upgrade_from_v1);
    MK_RUN(test_docs);
    MK_RUN(test_docs_upgrade_and_persistence);
    return mk_testing_done();
}
