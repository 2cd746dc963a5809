/* Tests of the PostgreSQL backend against a real server started here (testing/pg_server.h):
 * the repo.h semantics, checked to match the SQLite backend's step by step, concurrency, the
 * change feed across instances, outages and migrations. Raw libpq is used only to set up
 * databases, inspect them and provoke lock conflicts. */
#include "pg/pg.h"
#include "repo/repo.h"
#include "sqlite/sqlite.h"
#include "testing/pg_server.h"
#include "testing/repo_docs.h"
#include "testing/repo_rows.h"
#include "testing/testing.h"

#include <libpq-fe.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mk_testing_pg_t srv;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --- raw libpq helpers ------------------------------------------------------------------ */

static PGconn *raw_connect(const char *dsn)
{
    PGconn *pg = PQconnectdb(dsn);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "raw connect %s: %s", dsn, PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* 0 when sql ran; prints the error otherwise. */
static int raw_run(PGconn *pg, const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "raw %s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

static int raw_exec(const char *dsn, const char *sql)
{
    PGconn *pg = raw_connect(dsn);
    if (pg == NULL)
        return -1;
    int rc = raw_run(pg, sql);
    PQfinish(pg);
    return rc;
}

/* The first column of the first row as an integer; -1 on any failure. */
static int64_t raw_int(const char *dsn, const char *sql)
{
    PGconn *pg = raw_connect(dsn);
    if (pg == NULL)
        return -1;
    int64_t v = -1;
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        fprintf(stderr, "raw %s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
    return v;
}

/* A new, empty database on the shared server; its DSN goes to dsn. */
static void fresh_db(char *dsn, size_t len)
{
    static int counter;
    char name[32], sql[64];
    snprintf(name, sizeof name, "t%d", ++counter);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    MK_CHECK_INT(raw_exec(srv.dsn, sql), 0);
    mk_testing_pg_dsn(&srv, name, dsn, len);
}

/* MK_PG_TEST_PREPARED=off runs every scenario with unnamed statements, as through PgBouncer. */
static mk_pg_prepared_t test_prepared = MK_PG_PREPARED_ON;

static mk_repo_t *open_pg(const char *dsn, int pool_size)
{
    mk_pg_opts_t o = {.pool_size = pool_size, .migrate = true, .prepared = test_prepared};
    mk_repo_t *r = NULL;
    mk_err_t err = {0};
    int rc = mk_pg_repo_open(dsn, &o, &r, &err);
    MK_CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "open %s: %s\n", dsn, err.msg);
    return r;
}

/* --- rows (collected with testing/repo_rows.h) ---------------------------------------- */

static mk_repo_mock_t mock(const char *id, const char *ns, const char *json)
{
    return (mk_repo_mock_t){
        .id = id, .namespace_ = ns, .json = json, .created_at = 1000, .updated_at = 1000};
}

/* --- the shared semantics check --------------------------------------------------------- */

/* What a backend answered, step by step; two backends with the same semantics on empty
 * databases write the same trace. */
typedef struct trace {
    char buf[8192];
    size_t len;
} trace_t;

static void trace_add(trace_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace_add(trace_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof t->buf - t->len)
        t->len += (size_t)n;
}

static int trace_load(trace_t *t, mk_repo_t *r, int64_t after, mk_testing_rows_t *c)
{
    mk_testing_rows_reset(c);
    mk_err_t err = {0};
    int rc = mk_repo_load_mocks(r, after, mk_testing_rows_collect, c, &err);
    trace_add(t, "load(%lld)=%d:", (long long)after, rc);
    for (size_t i = 0; i < c->n; i++) {
        const mk_testing_row_t *w = &c->rows[i];
        trace_add(t, " %s/%lld/%s/%s/%lld/%lld", w->id, (long long)w->seq, w->json ? w->json : "~",
                  w->ns ? w->ns : "~", (long long)w->uses, (long long)w->closed_at);
    }
    trace_add(t, "\n");
    return rc;
}

/* The repo.h semantics every backend must show, on an empty database. */
static void check_semantics(mk_repo_t *r, trace_t *t)
{
    mk_err_t err = {0};
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    /* Multi-byte text, escapes and odd spacing must come back byte for byte. */
    const char *json_b =
        "{ \"id\":\"b\", \"text\":\"h\xc3\xa9llo \\u00e9 \\\"q\\\"\",  \"n\":1.50 }";
    mk_repo_mock_t rows[2] = {mock("a", "default", "{\"id\":\"a\"}"), mock("b", "team", json_b)};
    rows[1].chain_id = "chain-1";
    rows[1].uses = 3;
    rows[1].last_use = 77;
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 2, &err), 0);
    MK_CHECK(rows[0].seq > 0);
    MK_CHECK_INT(rows[1].seq, rows[0].seq + 1);
    trace_add(t, "put a,b seq %lld,%lld\n", (long long)rows[0].seq, (long long)rows[1].seq);
    MK_CHECK_INT(trace_load(t, r, 0, c), 0);
    MK_CHECK_INT(c->n, 2);
    if (c->n == 2) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK_INT(c->rows[0].seq, rows[0].seq);
        MK_CHECK(c->rows[0].chain == NULL);
        MK_CHECK_STR(c->rows[1].chain, "chain-1");
        MK_CHECK_STR(c->rows[1].ns, "team");
        MK_CHECK_STR(c->rows[1].json, json_b);
        MK_CHECK_INT(c->rows[1].uses, 3);
        MK_CHECK_INT(c->rows[1].last_use, 77);
        MK_CHECK_INT(c->rows[1].created_at, 1000);
        MK_CHECK_INT(c->rows[1].seq, rows[1].seq);
    }
    int64_t b_seq = rows[1].seq;

    /* Upsert: a moves after b. */
    mk_repo_mock_t a2 = mock("a", "other", "{\"id\":\"a\",\"v\":2}");
    a2.updated_at = 2000;
    MK_CHECK_INT(mk_repo_put_mocks(r, &a2, 1, &err), 0);
    MK_CHECK_INT(a2.seq, b_seq + 1);
    MK_CHECK_INT(trace_load(t, r, b_seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].ns, "other");
        MK_CHECK_INT(c->rows[0].updated_at, 2000);
    }

    /* A callback's non-zero return stops the load and comes back; the backend is fine after. */
    mk_testing_rows_reset(c);
    c->stop_after = 1;
    MK_CHECK_INT(mk_repo_load_mocks(r, 0, mk_testing_rows_collect, c, &err), 7);
    MK_CHECK_INT(c->n, 1);
    MK_CHECK_INT(mk_repo_ping(r, &err), 0);

    /* A failing batch leaves nothing behind: no rows, no seq consumed, nothing written back. */
    mk_repo_mock_t bad[3] = {mock("a", "default", "{\"v\":3}"), mock("new", "default", "{}"),
                             mock(NULL, "default", "{}")};
    bad[0].seq = -5;
    int rc = mk_repo_put_mocks(r, bad, 3, &err);
    MK_CHECK_INT(rc, MK_EINVAL);
    MK_CHECK(strstr(err.msg, "put mock 2") != NULL);
    MK_CHECK_INT(bad[0].seq, -5);
    mk_repo_mock_t empty_id = mock("", "default", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &empty_id, 1, &err), MK_EINVAL);
    mk_repo_mock_t no_json = mock("x", "default", NULL);
    MK_CHECK_INT(mk_repo_put_mocks(r, &no_json, 1, &err), MK_EINVAL);
    trace_add(t, "bad batches=%d\n", rc);
    MK_CHECK_INT(trace_load(t, r, 0, c), 0);
    MK_CHECK_INT(c->n, 2);
    const mk_testing_row_t *a = mk_testing_rows_find(c, "a");
    MK_CHECK(a != NULL && strcmp(a->json, "{\"id\":\"a\",\"v\":2}") == 0);

    /* Purge: a tombstone for a resync, none in a full load; a missing id costs no seq. */
    const char *del[] = {"a", "missing"};
    MK_CHECK_INT(mk_repo_delete_mocks(r, del, 2, &err), 0);
    MK_CHECK_INT(trace_load(t, r, 0, c), 0);
    MK_CHECK_INT(c->n, 1);
    MK_CHECK_INT(trace_load(t, r, a2.seq - 1, c), 0);
    MK_CHECK_INT(c->n, 1);
    int64_t tomb_seq = -1;
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].id, "a");
        MK_CHECK(c->rows[0].json == NULL);
        MK_CHECK(c->rows[0].ns == NULL);
        MK_CHECK_INT(c->rows[0].seq, a2.seq + 1);
        tomb_seq = c->rows[0].seq;
    }
    MK_CHECK_INT(trace_load(t, r, 1, c), 0); /* after seq 1: b's row, then the tombstone */
    MK_CHECK_INT(c->n, 2);
    if (c->n == 2) {
        MK_CHECK_STR(c->rows[0].id, "b");
        MK_CHECK(c->rows[1].json == NULL);
    }
    MK_CHECK_INT(mk_repo_delete_mocks(r, del, 1, &err), 0); /* again: nothing changes */
    MK_CHECK_INT(trace_load(t, r, tomb_seq, c), 0);
    MK_CHECK_INT(c->n, 0);
    const char *null_id[] = {"b", NULL};
    MK_CHECK_INT(mk_repo_delete_mocks(r, null_id, 2, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_delete_mocks(r, NULL, 0, &err), 0);

    /* get_mock: the live row, or not found for missing and purged ids. */
    mk_testing_rows_reset(c);
    MK_CHECK_INT(mk_repo_get_mock(r, "b", mk_testing_rows_collect, c, &err), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1) {
        MK_CHECK_STR(c->rows[0].json, json_b);
        MK_CHECK_INT(c->rows[0].seq, b_seq);
    }
    MK_CHECK_INT(mk_repo_get_mock(r, "a", mk_testing_rows_collect, c, &err), MK_ENOTFOUND);
    MK_CHECK(strstr(err.msg, "\"a\"") != NULL);
    MK_CHECK_INT(mk_repo_get_mock(r, "missing", mk_testing_rows_collect, c, &err), MK_ENOTFOUND);
    MK_CHECK_INT(c->n, 1);

    /* Re-created after the purge: live again, and the resync no longer shows a tombstone. */
    mk_repo_mock_t a3 = mock("a", "default", "{\"again\":true}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &a3, 1, &err), 0);
    MK_CHECK_INT(a3.seq, tomb_seq + 1);
    MK_CHECK_INT(trace_load(t, r, b_seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_STR(c->rows[0].json, "{\"again\":true}");
    mk_testing_rows_reset(c);
    MK_CHECK_INT(mk_repo_get_mock(r, "a", mk_testing_rows_collect, c, &err), 0);

    /* Usage: values set, unknown ids skipped, no seq. */
    mk_repo_usage_t usage[2] = {{.id = "b", .uses = 5, .last_use = 999},
                                {.id = "gone", .uses = 1, .last_use = 1}};
    MK_CHECK_INT(mk_repo_update_usage(r, usage, 2, &err), 0);
    MK_CHECK_INT(trace_load(t, r, a3.seq, c), 0);
    MK_CHECK_INT(c->n, 0);
    MK_CHECK_INT(trace_load(t, r, 0, c), 0);
    const mk_testing_row_t *b = mk_testing_rows_find(c, "b");
    MK_CHECK(b != NULL && b->uses == 5 && b->last_use == 999 && b->seq == b_seq);
    mk_repo_usage_t bad_usage = {.id = NULL, .uses = 1};
    MK_CHECK_INT(mk_repo_update_usage(r, &bad_usage, 1, &err), MK_EINVAL);

    /* Soft delete is an ordinary put with closed_at set: still loaded. */
    mk_repo_mock_t closed = mock("b", "team", json_b);
    closed.closed_at = 123456;
    MK_CHECK_INT(mk_repo_put_mocks(r, &closed, 1, &err), 0);
    MK_CHECK_INT(trace_load(t, r, a3.seq, c), 0);
    MK_CHECK_INT(c->n, 1);
    if (c->n == 1)
        MK_CHECK_INT(c->rows[0].closed_at, 123456);

    /* Namespaces. */
    MK_CHECK_INT(mk_repo_put_namespace(r, "zeta", 30, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "alpha", 10, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "alpha", 99, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(r, "", 1, &err), MK_EINVAL);
    mk_testing_names_t ns = {0};
    MK_CHECK_INT(mk_repo_list_namespaces(r, mk_testing_names_collect, &ns, &err), 0);
    MK_CHECK_INT(ns.n, 2);
    if (ns.n == 2) {
        MK_CHECK_STR(ns.name[0], "alpha");
        MK_CHECK_INT(ns.created[0], 10);
        MK_CHECK_STR(ns.name[1], "zeta");
    }
    for (int i = 0; i < ns.n; i++)
        trace_add(t, "ns %s %lld\n", ns.name[i], (long long)ns.created[i]);
    MK_CHECK_INT(mk_repo_put_mocks(r, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_ping(r, &err), 0);
    mk_testing_rows_reset(c);
    free(c);
}

static void test_same_semantics_as_sqlite(void)
{
    mk_repo_t *lite = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_sqlite_repo_open(":memory:", &lite, &err), 0);
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    /* One connection: every call reuses the one a stopped load left behind. */
    mk_repo_t *pg = open_pg(dsn, 1);
    if (lite == NULL || pg == NULL)
        goto out;
    MK_CHECK_STR(mk_repo_backend(pg), "postgres");
    trace_t *tl = calloc(1, sizeof *tl), *tp = calloc(1, sizeof *tp);
    check_semantics(lite, tl);
    check_semantics(pg, tp);
    MK_CHECK(tl->len > 500);
    bool same = strcmp(tp->buf, tl->buf) == 0;
    MK_CHECK(same);
    if (!same)
        fprintf(stderr, "--- sqlite:\n%s--- postgres:\n%s", tl->buf, tp->buf);
    /* And the PostgreSQL-specific error detail: SQLSTATE in cause. */
    mk_repo_mock_t bad = mock(NULL, "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(pg, &bad, 1, &err), MK_EINVAL);
    MK_CHECK_STR(err.cause, "23502"); /* not_null_violation */
    MK_CHECK(strstr(err.msg, "postgres put mock 0") != NULL);
    free(tl);
    free(tp);
out:
    mk_repo_free(lite);
    mk_repo_free(pg);
}

/* --- concurrency ------------------------------------------------------------------------ */

#define THREADS    4
#define PER_THREAD 60

typedef struct writer {
    mk_repo_t *r;
    int index;
    int failures;
    int64_t seqs[PER_THREAD + 2];
    int nseqs;
} writer_t;

static void *writer_run(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < PER_THREAD; i += 2) {
        char id1[32], id2[32];
        snprintf(id1, sizeof id1, "t%d-%d", w->index, i);
        snprintf(id2, sizeof id2, "t%d-%d", w->index, i + 1);
        mk_repo_mock_t m[2] = {mock(id1, "n", "{}"), mock(id2, "n", "{}")};
        mk_err_t err = {0};
        if (mk_repo_put_mocks(w->r, m, 2, &err) != 0) {
            fprintf(stderr, "writer %d: %s\n", w->index, err.msg);
            w->failures++;
            continue;
        }
        w->seqs[w->nseqs++] = m[0].seq;
        w->seqs[w->nseqs++] = m[1].seq;
        if (m[1].seq != m[0].seq + 1) /* a batch is one transaction: consecutive seqs */
            w->failures++;
    }
    return NULL;
}

typedef struct reader {
    mk_repo_t *r;
    atomic_bool stop;
    char *seen; /* seen[seq] */
    int64_t last;
    int loads;
    int failures;
} reader_t;

static int note_seen(void *ud, const mk_repo_mock_t *m)
{
    reader_t *rd = ud;
    if (m->seq <= rd->last || m->seq > THREADS * PER_THREAD)
        rd->failures++;
    else
        rd->seen[m->seq] = 1;
    rd->last = m->seq;
    return 0;
}

/* Follows the writers the way a resolver does: load everything after the last seq seen. With
 * seqs that were not in commit order it would step over a late-committing lower seq. */
static void *reader_run(void *arg)
{
    reader_t *rd = arg;
    for (;;) {
        bool last_round = atomic_load(&rd->stop);
        mk_err_t err = {0};
        if (mk_repo_load_mocks(rd->r, rd->last, note_seen, rd, &err) != 0)
            rd->failures++;
        rd->loads++;
        if (last_round)
            break;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_concurrent_writers(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *r = open_pg(dsn, 4);
    mk_repo_t *rr = open_pg(dsn, 1);
    if (r == NULL || rr == NULL)
        goto out;
    reader_t rd = {.r = rr, .seen = calloc(THREADS * PER_THREAD + 1, 1)};
    pthread_t rth;
    pthread_create(&rth, NULL, reader_run, &rd);
    pthread_t th[THREADS];
    writer_t *w = calloc(THREADS, sizeof *w);
    int64_t start = now_ms();
    for (int i = 0; i < THREADS; i++) {
        w[i].r = r;
        w[i].index = i;
        pthread_create(&th[i], NULL, writer_run, &w[i]);
    }
    int64_t all[THREADS * PER_THREAD];
    int n = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(w[i].failures, 0);
        for (int j = 0; j < w[i].nseqs; j++)
            all[n++] = w[i].seqs[j];
    }
    fprintf(stderr, "     %d rows by %d threads in %lld ms\n", n, THREADS,
            (long long)(now_ms() - start));
    atomic_store(&rd.stop, true);
    pthread_join(rth, NULL);
    /* Written-back seqs: exactly 1..N, no duplicate. */
    MK_CHECK_INT(n, THREADS * PER_THREAD);
    qsort(all, (size_t)n, sizeof all[0], cmp_i64);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += all[i] != i + 1;
    MK_CHECK_INT(bad, 0);
    /* The reader saw every seq although it only ever asked for what came after its last. */
    int missed = 0;
    for (int s = 1; s <= THREADS * PER_THREAD; s++)
        missed += rd.seen[s] == 0;
    MK_CHECK_INT(missed, 0);
    MK_CHECK_INT(rd.failures, 0);
    MK_CHECK(rd.loads > 2);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_load_mocks(r, 0, mk_testing_rows_collect, c, &err), 0);
    MK_CHECK_INT(c->n, THREADS * PER_THREAD);
    int ordered = 1;
    for (size_t i = 1; i < c->n; i++)
        ordered &= c->rows[i].seq > c->rows[i - 1].seq;
    MK_CHECK(ordered);
    mk_testing_rows_reset(c);
    free(c);
    free(w);
    free(rd.seen);
out:
    mk_repo_free(rr);
    mk_repo_free(r);
}

/* --- the change feed -------------------------------------------------------------------- */

#define MAX_EVENTS 64

typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t seq[MAX_EVENTS];
    char id[MAX_EVENTS][32];
    int n;        /* changes */
    int connects; /* (0, NULL) calls */
} events_t;

static void events_init(events_t *e)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
}

static void events_destroy(events_t *e)
{
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
}

static void on_change(void *ud, int64_t seq, const char *id)
{
    events_t *e = ud;
    pthread_mutex_lock(&e->mu);
    if (id == NULL && seq == 0) {
        e->connects++;
    } else if (e->n < MAX_EVENTS) {
        e->seq[e->n] = seq;
        snprintf(e->id[e->n], sizeof e->id[0], "%s", id != NULL ? id : "(null)");
        e->n++;
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* Waits until at least n changes and connects reconnections were seen; true if they were. */
static bool events_wait(events_t *e, int n, int connects, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    while (e->n < n || e->connects < connects) {
        if (pthread_cond_timedwait(&e->cv, &e->mu, &until) != 0)
            break;
    }
    bool ok = e->n >= n && e->connects >= connects;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

static void test_notifications_across_instances(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *writer = open_pg(dsn, 2);
    mk_repo_t *follower = open_pg(dsn, 1);
    events_t *e = calloc(1, sizeof *e);
    events_init(e);
    if (writer == NULL || follower == NULL)
        goto out;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_subscribe(follower, on_change, e, &err), 0);
    MK_CHECK_INT(mk_repo_subscribe(follower, on_change, e, &err), MK_EINVAL);
    MK_CHECK(events_wait(e, 0, 1, 5000));

    /* Subscribe returned while listening: writes right after it are heard. */
    mk_repo_mock_t rows[2] = {mock("x", "n", "{}"), mock("y z", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(writer, rows, 2, &err), 0);
    const char *del[] = {"x", "never-existed"};
    MK_CHECK_INT(mk_repo_delete_mocks(writer, del, 2, &err), 0);
    MK_CHECK(events_wait(e, 3, 1, 5000));
    /* Neither usage nor a rolled-back batch is a change. */
    mk_repo_usage_t u = {.id = "y z", .uses = 9, .last_use = 9};
    MK_CHECK_INT(mk_repo_update_usage(writer, &u, 1, &err), 0);
    mk_repo_mock_t bad[2] = {mock("w", "n", "{}"), mock(NULL, "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(writer, bad, 2, &err), MK_EINVAL);
    mk_repo_mock_t last = mock("last", "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(writer, &last, 1, &err), 0);
    MK_CHECK(events_wait(e, 4, 1, 5000));
    sleep_ms(100);

    pthread_mutex_lock(&e->mu);
    MK_CHECK_INT(e->n, 4);
    MK_CHECK_INT(e->connects, 1);
    if (e->n == 4) {
        MK_CHECK_STR(e->id[0], "x");
        MK_CHECK_INT(e->seq[0], rows[0].seq);
        MK_CHECK_STR(e->id[1], "y z");
        MK_CHECK_INT(e->seq[1], rows[1].seq);
        MK_CHECK_STR(e->id[2], "x"); /* the purge */
        MK_CHECK_INT(e->seq[2], rows[1].seq + 1);
        MK_CHECK_STR(e->id[3], "last");
        MK_CHECK_INT(e->seq[3], last.seq);
        MK_CHECK_INT(last.seq, rows[1].seq + 2);
    }
    pthread_mutex_unlock(&e->mu);
out:
    mk_repo_free(follower); /* joins the listener: no callback after this */
    mk_repo_free(writer);
    events_destroy(e);
    free(e);
}

/* The feed LISTENs on listen_dsn, not on the pool's dsn: pointed at a database that does not
 * exist it never connects while calls work; pointed at the real one it hears the writes. */
static void test_listen_dsn(void)
{
    char dsn[160], nowhere[160];
    fresh_db(dsn, sizeof dsn);
    mk_testing_pg_dsn(&srv, "nosuchdb", nowhere, sizeof nowhere);
    mk_repo_t *writer = open_pg(dsn, 1);
    events_t *e = calloc(1, sizeof *e);
    events_init(e);
    mk_err_t err = {0};
    for (int i = 0; i < 2 && writer != NULL; i++) {
        mk_pg_opts_t o = {
            .pool_size = 1, .prepared = test_prepared, .listen_dsn = i == 0 ? nowhere : dsn};
        mk_repo_t *follower = NULL;
        MK_CHECK_INT(mk_pg_repo_open(dsn, &o, &follower, &err), 0);
        if (follower == NULL)
            break;
        MK_CHECK_INT(mk_repo_subscribe(follower, on_change, e, &err), 0);
        mk_repo_mock_t m = mock(i == 0 ? "unheard" : "heard", "n", "{}");
        MK_CHECK_INT(mk_repo_put_mocks(writer, &m, 1, &err), 0);
        sleep_ms(300);
        pthread_mutex_lock(&e->mu);
        MK_CHECK_INT(e->connects, i);
        MK_CHECK_INT(e->n, i);
        if (i == 1 && e->n == 1)
            MK_CHECK_STR(e->id[0], "heard");
        pthread_mutex_unlock(&e->mu);
        /* Calls go through the pool whatever the feed does. */
        mk_testing_rows_t *c = calloc(1, sizeof *c);
        MK_CHECK_INT(mk_repo_get_mock(follower, "unheard", mk_testing_rows_collect, c, &err), 0);
        MK_CHECK_INT(c->n, 1);
        mk_testing_rows_reset(c);
        free(c);
        mk_repo_free(follower);
    }
    mk_repo_free(writer);
    events_destroy(e);
    free(e);
}

/* Read replicas: a list split into DSNs (a URI's host list stays whole), one that is down is
 * skipped and reported, reads work through the other, a malformed entry is refused by number. */
static void test_read_dsn(void)
{
    char dsn[160], nowhere[160], list[400];
    fresh_db(dsn, sizeof dsn);
    mk_testing_pg_dsn(&srv, "nosuchdb", nowhere, sizeof nowhere);
    mk_repo_t *writer = open_pg(dsn, 1);
    mk_err_t err = {0};
    mk_repo_mock_t m = mock("r1", "n", "{}");
    MK_CHECK(writer != NULL && mk_repo_put_mocks(writer, &m, 1, &err) == 0);
    snprintf(list, sizeof list, "%s, %s", nowhere, dsn);
    mk_pg_opts_t o = {.pool_size = 1, .prepared = test_prepared, .read_dsn = list};
    mk_repo_t *reader = NULL;
    MK_CHECK_INT(mk_pg_repo_open(dsn, &o, &reader, &err), 0);
    for (int i = 0; reader != NULL && i < 4; i++) {
        mk_testing_rows_t *c = calloc(1, sizeof *c);
        MK_CHECK_INT(mk_repo_get_mock(reader, "r1", mk_testing_rows_collect, c, &err), 0);
        MK_CHECK_INT(c->n, 1);
        mk_testing_rows_reset(c);
        free(c);
    }
    mk_pg_replica_status_t st[4];
    int n = 0;
    mk_pg_repo_replicas(reader, st, 4, &n);
    MK_CHECK_INT(n, 2);
    if (n == 2) {
        MK_CHECK(!st[0].up && strstr(st[0].error, "nosuchdb") != NULL);
        MK_CHECK(strstr(st[0].name, "/nosuchdb") != NULL);
        MK_CHECK(st[1].up && st[1].seq == m.seq && st[1].lag_seq == 0);
    }
    mk_repo_free(reader);

    reader = NULL;
    o.read_dsn = "postgresql://127.0.0.1:1,127.0.0.1:2/x?connect_timeout=1";
    MK_CHECK_INT(mk_pg_repo_open(dsn, &o, &reader, &err), 0);
    mk_pg_repo_replicas(reader, st, 4, &n);
    MK_CHECK_INT(n, 1);
    mk_repo_free(reader);

    reader = NULL;
    snprintf(list, sizeof list, "%s,dbname='open", dsn);
    o.read_dsn = list;
    MK_CHECK_INT(mk_pg_repo_open(dsn, &o, &reader, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "DB_READ_DSN entry 2") != NULL);
    mk_repo_free(writer);
}

/* --- outages ---------------------------------------------------------------------------- */

static bool contains_nocase(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

static void test_outage_and_recovery(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *r = open_pg(dsn, 2);
    events_t *e = calloc(1, sizeof *e);
    events_init(e);
    if (r == NULL)
        goto out;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_subscribe(r, on_change, e, &err), 0);
    MK_CHECK(events_wait(e, 0, 1, 5000));
    mk_repo_mock_t before = mock("before", "n", "{\"kept\":1}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &before, 1, &err), 0);
    /* Make both pooled connections live, so both go stale with the restart. */
    MK_CHECK_INT(mk_repo_ping(r, &err), 0);
    MK_CHECK(events_wait(e, 1, 1, 5000));

    MK_CHECK_INT(mk_testing_pg_stop(&srv), 0);
    int64_t worst = 0;
    for (int i = 0; i < 6; i++) {
        mk_err_clear(&err);
        int64_t t0 = now_ms();
        mk_repo_mock_t m = mock("during", "n", "{}");
        int rc = i % 2 == 0 ? mk_repo_put_mocks(r, &m, 1, &err) : mk_repo_ping(r, &err);
        int64_t took = now_ms() - t0;
        worst = took > worst ? took : worst;
        MK_CHECK_INT(rc, MK_EUNAVAIL);
        MK_CHECK(contains_nocase(err.msg, "connection refused"));
        MK_CHECK(strncmp(err.msg, "postgres", 8) == 0);
        sleep_ms(50);
    }
    MK_CHECK(worst < 1000);
    fprintf(stderr, "     slowest call while down: %lld ms\n", (long long)worst);

    MK_CHECK_INT(mk_testing_pg_restart(&srv), 0);
    /* Recovers without reopening; the first calls may still meet the 200 ms reconnect pause. */
    int64_t t0 = now_ms();
    int rc = -1;
    mk_repo_mock_t after = mock("after", "n", "{}");
    while (now_ms() - t0 < 5000) {
        rc = mk_repo_put_mocks(r, &after, 1, &err);
        if (rc == 0)
            break;
        sleep_ms(50);
    }
    MK_CHECK_INT(rc, 0);
    fprintf(stderr, "     writes back %lld ms after restart\n", (long long)(now_ms() - t0));
    for (int i = 0; i < 4; i++)
        MK_CHECK_INT(mk_repo_ping(r, &err), 0);
    mk_testing_rows_t *c = calloc(1, sizeof *c);
    MK_CHECK_INT(mk_repo_get_mock(r, "before", mk_testing_rows_collect, c, &err), 0);
    MK_CHECK(c->n == 1 && strcmp(c->rows[0].json, "{\"kept\":1}") == 0);
    mk_testing_rows_reset(c);
    free(c);

    /* The subscriber reconnected (backoff at most 2 s) and said so with (0, NULL). */
    MK_CHECK(events_wait(e, 1, 2, 8000));
    int seen = 0;
    pthread_mutex_lock(&e->mu);
    seen = e->n;
    pthread_mutex_unlock(&e->mu);
    mk_repo_mock_t later = mock("later", "n", "{}");
    MK_CHECK_INT(mk_repo_put_mocks(r, &later, 1, &err), 0);
    MK_CHECK(events_wait(e, seen + 1, 2, 5000));
    pthread_mutex_lock(&e->mu);
    if (e->n > seen) {
        MK_CHECK_STR(e->id[e->n - 1], "later");
        MK_CHECK_INT(e->seq[e->n - 1], later.seq);
    }
    pthread_mutex_unlock(&e->mu);
out:
    mk_repo_free(r);
    events_destroy(e);
    free(e);
}

static void test_open_errors(void)
{
    mk_repo_t *r = NULL;
    mk_err_t err = {0};
    mk_pg_opts_t o = {.migrate = true};
    MK_CHECK_INT(mk_pg_repo_open("this is = = not a dsn", &o, &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "invalid DSN") != NULL);
    MK_CHECK(r == NULL);
    MK_CHECK_INT(mk_pg_repo_open(srv.dsn, &o, NULL, &err), MK_EINVAL);
    mk_pg_opts_t neg = {.pool_size = -1};
    MK_CHECK_INT(mk_pg_repo_open(srv.dsn, &neg, &r, &err), MK_EINVAL);
    mk_pg_opts_t bad_mode = {.prepared = (mk_pg_prepared_t)3};
    MK_CHECK_INT(mk_pg_repo_open(srv.dsn, &bad_mode, &r, &err), MK_EINVAL);
    mk_pg_opts_t bad_listen = {.listen_dsn = "this is = = not a dsn"};
    MK_CHECK_INT(mk_pg_repo_open(srv.dsn, &bad_listen, &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "invalid DSN") != NULL);

    /* Nothing listens on port 1 of loopback: refused at once. */
    int64_t t0 = now_ms();
    mk_repo_t sentinel = {0};
    r = &sentinel;
    int rc = mk_pg_repo_open("host=127.0.0.1 port=1 user=postgres dbname=postgres", &o, &r, &err);
    MK_CHECK_INT(rc, MK_EUNAVAIL);
    MK_CHECK(r == NULL);
    MK_CHECK(contains_nocase(err.msg, "connection refused"));
    MK_CHECK(strstr(err.msg, "port 1") != NULL);
    MK_CHECK_STR(err.cause, "08001");
    MK_CHECK(now_ms() - t0 < 1000);

    /* A database that does not exist is reported by name. */
    char dsn[160];
    mk_testing_pg_dsn(&srv, "nosuchdb", dsn, sizeof dsn);
    rc = mk_pg_repo_open(dsn, &o, &r, &err);
    MK_CHECK_INT(rc, MK_EUNAVAIL);
    MK_CHECK(strstr(err.msg, "nosuchdb") != NULL);
}

/* --- migrations ------------------------------------------------------------------------- */

typedef struct opener {
    const char *dsn;
    mk_pg_opts_t opts;
    pthread_barrier_t *barrier;
    int rc;
    mk_err_t err;
    mk_repo_t *r;
    atomic_bool done;
} opener_t;

static void *opener_run(void *arg)
{
    opener_t *o = arg;
    if (o->barrier != NULL)
        pthread_barrier_wait(o->barrier);
    o->rc = mk_pg_repo_open(o->dsn, &o->opts, &o->r, &o->err);
    atomic_store(&o->done, true);
    return NULL;
}

static void test_concurrent_migration(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    opener_t o[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        o[i] = (opener_t){.dsn = dsn, .opts = {.migrate = true}, .barrier = &barrier};
        pthread_create(&th[i], NULL, opener_run, &o[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(o[i].rc, 0);
        if (o[i].rc != 0)
            fprintf(stderr, "opener %d: %s\n", i, o[i].err.msg);
    }
    pthread_barrier_destroy(&barrier);
    MK_CHECK_INT(raw_int(dsn, "SELECT count(*) FROM schema_migrations"),
                 mk_pg_repo_schema_version());
    MK_CHECK_INT(raw_int(dsn, "SELECT max(version) FROM schema_migrations"),
                 mk_pg_repo_schema_version());
    MK_CHECK_INT(raw_int(dsn, "SELECT value FROM change_seq"), 0);
    /* Both work on the one schema. */
    mk_err_t err = {0};
    mk_repo_mock_t m = mock("m", "n", "{}");
    if (o[0].r != NULL && o[1].r != NULL) {
        MK_CHECK_INT(mk_repo_put_mocks(o[0].r, &m, 1, &err), 0);
        mk_testing_rows_t *c = calloc(1, sizeof *c);
        MK_CHECK_INT(mk_repo_get_mock(o[1].r, "m", mk_testing_rows_collect, c, &err), 0);
        mk_testing_rows_reset(c);
        free(c);
    }
    mk_repo_free(o[0].r);
    mk_repo_free(o[1].r);

    /* The migration waits for the advisory lock: held elsewhere, open does not finish. */
    char dsn2[160];
    fresh_db(dsn2, sizeof dsn2);
    PGconn *holder = raw_connect(dsn2);
    MK_CHECK(holder != NULL);
    if (holder == NULL)
        return;
    MK_CHECK_INT(raw_run(holder, "SELECT pg_advisory_lock(7885630785396569209)"), 0);
    opener_t w = {.dsn = dsn2, .opts = {.migrate = true}};
    pthread_t wt;
    pthread_create(&wt, NULL, opener_run, &w);
    sleep_ms(400);
    MK_CHECK(!atomic_load(&w.done));
    MK_CHECK_INT(raw_int(dsn2, "SELECT count(*) FROM pg_tables WHERE tablename = 'mocks'"), 0);
    MK_CHECK_INT(raw_run(holder, "SELECT pg_advisory_unlock(7885630785396569209)"), 0);
    pthread_join(wt, NULL);
    MK_CHECK_INT(w.rc, 0);
    MK_CHECK_INT(raw_int(dsn2, "SELECT count(*) FROM pg_tables WHERE tablename = 'mocks'"), 1);
    mk_repo_free(w.r);
    PQfinish(holder);
}

static void test_resolver_needs_schema(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *r = NULL;
    mk_err_t err = {0};
    /* No waiting: a clear error at once. */
    mk_pg_opts_t resolver = {.migrate = false};
    int64_t t0 = now_ms();
    MK_CHECK_INT(mk_pg_repo_open(dsn, &resolver, &r, &err), MK_EUNAVAIL);
    MK_CHECK(now_ms() - t0 < 1000);
    MK_CHECK(r == NULL);
    MK_CHECK(strstr(err.msg, "schema is at version 0") != NULL);
    MK_CHECK(strstr(err.msg, "admin") != NULL);
    MK_CHECK_INT(raw_int(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 0);

    /* Waiting: the resolver opens once an admin has migrated. */
    opener_t o = {.dsn = dsn, .opts = {.migrate = false, .schema_wait_ms = 10000}};
    pthread_t th;
    pthread_create(&th, NULL, opener_run, &o);
    sleep_ms(300);
    MK_CHECK(!atomic_load(&o.done));
    mk_repo_t *admin = open_pg(dsn, 1);
    pthread_join(th, NULL);
    MK_CHECK_INT(o.rc, 0);
    mk_repo_free(o.r);
    mk_repo_free(admin);

    /* A schema newer than this binary is refused, by admins and resolvers alike. */
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 1)",
             mk_pg_repo_schema_version() + 1);
    MK_CHECK_INT(raw_exec(dsn, sql), 0);
    mk_pg_opts_t adm = {.migrate = true};
    MK_CHECK_INT(mk_pg_repo_open(dsn, &adm, &r, &err), MK_ECONFLICT);
    MK_CHECK(strstr(err.msg, "newer than this binary") != NULL);
    MK_CHECK_INT(mk_pg_repo_open(dsn, &resolver, &r, &err), MK_ECONFLICT);
    MK_CHECK(r == NULL);
}

/* --- deadlock retry --------------------------------------------------------------------- */

/* A write of rows "a" then "b" (mocks' usage, or documents), which conflicts with sessions
 * updating the same rows with lock_sql ("%s": the id). */
typedef struct write_call {
    mk_repo_t *r;
    bool docs;
    int rc;
    mk_err_t err;
} write_call_t;

static void *write_run(void *arg)
{
    write_call_t *u = arg;
    mk_repo_usage_t rows[2] = {{.id = "a", .uses = 1, .last_use = 11},
                               {.id = "b", .uses = 2, .last_use = 22}};
    mk_repo_doc_t docs[2] = {{.kind = "tag", .id = "a", .namespace_ = "", .json = "1"},
                             {.kind = "tag", .id = "b", .namespace_ = "", .json = "2"}};
    u->rc = u->docs ? mk_repo_put_docs(u->r, docs, 2, &u->err)
                    : mk_repo_update_usage(u->r, rows, 2, &u->err);
    return NULL;
}

/* The write locks a then waits for b, held by another session that then asks for a. The
 * repository's session (deadlock_timeout 1 s, the other's 10 s) is the one PostgreSQL aborts
 * with 40P01; the repository retries and succeeds once the other commits. */
static void check_deadlock_is_retried(bool docs)
{
    static const char *const mock_lock = "UPDATE mocks SET uses = 100 WHERE id = '%s'";
    static const char *const doc_lock =
        "UPDATE docs SET json = '100' WHERE kind = 'tag' AND id = '%s'";
    char dsn[160], sql[128];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *r = open_pg(dsn, 1);
    PGconn *other = raw_connect(dsn);
    if (r == NULL || other == NULL)
        goto out;
    mk_err_t err = {0};
    mk_repo_mock_t rows[2] = {mock("a", "n", "{}"), mock("b", "n", "{}")};
    MK_CHECK_INT(mk_repo_put_mocks(r, rows, 2, &err), 0);
    mk_repo_doc_t old[2] = {{.kind = "tag", .id = "a", .namespace_ = "", .json = "0"},
                            {.kind = "tag", .id = "b", .namespace_ = "", .json = "0"}};
    MK_CHECK_INT(mk_repo_put_docs(r, old, 2, &err), 0);
    MK_CHECK_INT(raw_run(other, "BEGIN"), 0);
    MK_CHECK_INT(raw_run(other, "SET LOCAL deadlock_timeout = '10s'"), 0);
    snprintf(sql, sizeof sql, docs ? doc_lock : mock_lock, "b");
    MK_CHECK_INT(raw_run(other, sql), 0);

    write_call_t u = {.r = r, .docs = docs};
    pthread_t th;
    pthread_create(&th, NULL, write_run, &u);
    int64_t waiting = 0;
    for (int i = 0; i < 100 && waiting < 1; i++) {
        sleep_ms(20);
        waiting = raw_int(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                               "'mockarty' AND wait_event_type = 'Lock'");
    }
    MK_CHECK_INT(waiting, 1);
    snprintf(sql, sizeof sql, docs ? doc_lock : mock_lock, "a");
    MK_CHECK(PQsendQuery(other, sql) == 1);
    PGresult *res;
    int other_ok = 1;
    while ((res = PQgetResult(other)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            other_ok = 0;
            fprintf(stderr, "other session: %s", PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    MK_CHECK(other_ok); /* the repository was the victim, not us */
    MK_CHECK_INT(raw_run(other, "COMMIT"), 0);
    pthread_join(th, NULL);
    MK_CHECK_INT(u.rc, 0);
    if (u.rc != 0)
        fprintf(stderr, "%s: %s (%s)\n", docs ? "put_docs" : "update_usage", u.err.msg,
                u.err.cause);
    /* The retry committed after the other session. */
    if (docs) {
        MK_CHECK_INT(
            raw_int(dsn, "SELECT convert_from(json, 'UTF8')::int FROM docs WHERE id = 'a'"), 1);
        MK_CHECK_INT(
            raw_int(dsn, "SELECT convert_from(json, 'UTF8')::int FROM docs WHERE id = 'b'"), 2);
    } else {
        MK_CHECK_INT(raw_int(dsn, "SELECT uses FROM mocks WHERE id = 'a'"), 1);
        MK_CHECK_INT(raw_int(dsn, "SELECT uses FROM mocks WHERE id = 'b'"), 2);
    }
out:
    PQfinish(other);
    mk_repo_free(r);
}

static void test_deadlock_is_retried(void)
{
    check_deadlock_is_retried(false);
}

static void test_docs_deadlock_is_retried(void)
{
    check_deadlock_is_retried(true);
}

/* The shared document checks, in a database whose default collation (ICU en-US) orders "a"
 * before "B": the backend must still order and match ids bytewise, as SQLite does. */
static void test_docs(void)
{
    static int counter;
    char name[32], sql[160], dsn[160];
    snprintf(name, sizeof name, "docs%d", ++counter);
    snprintf(sql, sizeof sql,
             "CREATE DATABASE %s TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'", name);
    if (raw_exec(srv.dsn, sql) == 0) {
        mk_testing_pg_dsn(&srv, name, dsn, sizeof dsn);
        MK_CHECK_INT(raw_int(dsn, "SELECT CASE WHEN 'a' < 'B' THEN 1 ELSE 0 END"), 1);
    } else {
        fprintf(stderr, "     no ICU collation: checking in a C-locale database\n");
        fresh_db(dsn, sizeof dsn);
    }
    mk_repo_t *r = open_pg(dsn, 2);
    if (r == NULL)
        return;
    mk_testing_repo_docs_check(r);
    /* json is BYTEA: the stored bytes are exactly the document's. */
    MK_CHECK_INT(raw_int(dsn, "SELECT length(json) FROM docs WHERE kind = 'big' AND id = 't/big'"),
                 1024 * 1024);

    /* A failure inside the database (an id PostgreSQL refuses: not UTF-8) rolls the whole batch
     * back, and err carries the SQLSTATE. */
    mk_err_t err = {0};
    mk_repo_doc_t docs[] = {
        {.kind = "tx", .id = "ok/1", .namespace_ = "", .json = "{}"},
        {.kind = "tx", .id = "ok/2", .namespace_ = "", .json = "{}"},
        {.kind = "tx", .id = "bad/\xff", .namespace_ = "", .json = "{}"},
    };
    MK_CHECK_INT(mk_repo_put_docs(r, docs, 3, &err), MK_EINVAL);
    MK_CHECK_STR(err.cause, "22021"); /* character_not_in_repertoire */
    MK_CHECK(strstr(err.msg, "put document 2") != NULL);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "tx", NULL), 0);
    MK_CHECK_INT(mk_repo_put_docs(r, docs, 2, &err), 0);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "tx", NULL), 2);
    mk_repo_free(r);
}

/* A database at schema 1 (before documents) gains the docs table when the admin opens it. */
static void test_docs_upgrade_from_v1(void)
{
    char dsn[160];
    fresh_db(dsn, sizeof dsn);
    mk_repo_t *r = open_pg(dsn, 1);
    mk_repo_free(r);
    MK_CHECK_INT(raw_exec(dsn, "DROP TABLE docs; DELETE FROM schema_migrations WHERE version >= 2"),
                 0);
    MK_CHECK_INT(raw_int(dsn, "SELECT max(version) FROM schema_migrations"), 1);
    r = open_pg(dsn, 1);
    if (r == NULL)
        return;
    MK_CHECK_INT(raw_int(dsn, "SELECT max(version) FROM schema_migrations"),
                 mk_pg_repo_schema_version());
    mk_err_t err = {0};
    mk_repo_doc_t d = {.kind = "tag", .id = "sandbox/t", .namespace_ = "sandbox", .json = "{}"};
    MK_CHECK_INT(mk_repo_put_docs(r, &d, 1, &err), 0);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "tag", "sandbox/"), 1);
    mk_repo_free(r);
}

int main(void)
{
    int64_t t0 = now_ms();
    const char *mode = getenv("MK_PG_TEST_PREPARED");
    if (mode != NULL && strcmp(mode, "off") == 0)
        test_prepared = MK_PG_PREPARED_OFF;
    else if (mode != NULL && strcmp(mode, "auto") == 0)
        test_prepared = MK_PG_PREPARED_AUTO;
    fprintf(stderr, "     prepared statements: %s\n", mode != NULL ? mode : "on");
    if (mk_testing_pg_start(&srv) != 0) {
        fprintf(stderr, "cannot start PostgreSQL\n");
        return 1;
    }
    fprintf(stderr, "     PostgreSQL up in %lld ms (%s)\n", (long long)(now_ms() - t0), srv.dsn);
    MK_RUN(test_same_semantics_as_sqlite);
    MK_RUN(test_concurrent_writers);
    MK_RUN(test_notifications_across_instances);
    MK_RUN(test_listen_dsn);
    MK_RUN(test_read_dsn);
    MK_RUN(test_open_errors);
    MK_RUN(test_concurrent_migration);
    MK_RUN(test_resolver_needs_schema);
    MK_RUN(test_deadlock_is_retried);
    MK_RUN(test_docs);
    MK_RUN(test_docs_upgrade_from_v1);
    MK_RUN(test_docs_deadlock_is_retried);
    MK_RUN(test_outage_and_recovery); /* last: it stops and restarts the server */
    mk_testing_pg_free(&srv);
    fprintf(stderr, "     pg_test took %lld ms\n", (long long)(now_ms() - t0));
    return mk_testing_done();
}
