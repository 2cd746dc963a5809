/* Connections to PostgreSQL: connecting with a deadline, the pool (fail fast while the server is
 * down, reconnect later), transactions with retries, and errors carrying the SQLSTATE. */
#include "pg/conn.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECONNECT_INTERVAL_MS 200
#define SERIALIZATION_RETRIES 3

struct mk_pg_pool {
    char *dsn;
    int timeout_ms;
    const char *const *stmts;
    int nstmts;
    mk_pg_prepared_t prepared;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mk_pg_conn_t *conns;
    int size;
    mk_pg_conn_t **idle; /* a stack: the most recently used connection is reused first */
    int nidle;
    /* Guarded by mu: while the server is down, calls fail with `down` until retry_at. */
    int64_t retry_at;
    bool is_down;
    int connecting; /* connection attempts under way */
    mk_err_t down;
};

int64_t mk_pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq messages span lines ("...\n\tIs the server running..."); make them one line. */
static void one_line(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    bool space = false;
    for (const char *p = src; *p != '\0' && o + 1 < len; p++) {
        if (isspace((unsigned char)*p)) {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < len)
            dst[o++] = ' ';
        space = false;
        dst[o++] = *p;
    }
    dst[o] = '\0';
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bool state_is(const char *state, const char *prefix)
{
    return strncmp(state, prefix, strlen(prefix)) == 0;
}

static int map_sqlstate(const char *state)
{
    if (state_is(state, "22") || state_is(state, "23"))
        return MK_EINVAL; /* data exception, integrity constraint violation */
    if (state_is(state, "54"))
        return MK_ETOOBIG; /* program limit exceeded */
    /* connection, resources (53100 disk full), shutdown, system and I/O errors, a read-only
     * server (25006), retried-out conflicts: the database cannot take the write now */
    if (state_is(state, "08") || state_is(state, "53") || state_is(state, "57P") ||
        state_is(state, "58") || strcmp(state, "25006") == 0 || strcmp(state, "40001") == 0 ||
        strcmp(state, "40P01") == 0)
        return MK_EUNAVAIL;
    return MK_EINTERNAL;
}

/* Whether the session is gone: libpq says so, or the server told us it is shutting down. */
static bool conn_lost(const mk_pg_conn_t *c)
{
    return c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD || state_is(c->sqlstate, "08") ||
           state_is(c->sqlstate, "57P");
}

int mk_pg_check(PGconn *pg, const PGresult *res, char sqlstate[6], const char *what, mk_err_t *err)
{
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE)
        return 0;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    bool lost = pg == NULL || PQstatus(pg) == CONNECTION_BAD;
    if (state == NULL)
        state = lost ? "08006" : "";
    char msg[400];
    if (primary != NULL)
        one_line(msg, sizeof msg, primary);
    else if (pg != NULL && PQerrorMessage(pg)[0] != '\0')
        one_line(msg, sizeof msg, PQerrorMessage(pg));
    else
        snprintf(msg, sizeof msg, "unexpected result %s", PQresStatus(st));
    int code = lost ? MK_EUNAVAIL : map_sqlstate(state);
    /* A missing (26000) or duplicate (42P05) prepared statement means a transaction pooler
     * shuffles server connections under us: say what to change. */
    const char *hint = strcmp(state, "26000") == 0 || strcmp(state, "42P05") == 0
                           ? " (behind a transaction pooler such as PgBouncer? set "
                             "DB_PREPARED_STATEMENTS=off or auto)"
                           : "";
    mk_err_set(err, code, "postgres %s: %s%s", what, msg, hint);
    if (err != NULL)
        snprintf(err->cause, sizeof err->cause, "%s", state);
    if (sqlstate != NULL)
        snprintf(sqlstate, 6, "%s", state);
    return code;
}

static int connect_failed(PGconn *pg, const char *why, mk_err_t *err)
{
    char msg[400];
    one_line(msg, sizeof msg, why != NULL ? why : PQerrorMessage(pg));
    mk_err_set(err, MK_EUNAVAIL, "postgres: cannot connect: %s", msg);
    if (err != NULL)
        snprintf(err->cause, sizeof err->cause, "08001");
    PQfinish(pg);
    return MK_EUNAVAIL;
}

int mk_pg_connect(const char *dsn, int timeout_ms, int stop_fd, PGconn **out, mk_err_t *err)
{
    *out = NULL;
    /* Entries before the expanded dsn are defaults the dsn may override. Keepalives let a
     * silently vanished server show up as an error instead of a connection waiting forever. */
    static const char *const keys[] = {"application_name", "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "dbname",          NULL};
    const char *values[] = {"mockarty", "30", "10", "3", dsn, NULL};
    PGconn *pg = PQconnectStartParams(keys, values, 1);
    if (pg == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres: out of memory connecting");
    if (PQstatus(pg) == CONNECTION_BAD)
        return connect_failed(pg, NULL, err);
    int64_t deadline = mk_pg_now_ms() + timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            return connect_failed(pg, NULL, err);
        int64_t left = deadline - mk_pg_now_ms();
        if (left <= 0) {
            char why[64];
            snprintf(why, sizeof why, "timed out after %d ms", timeout_ms);
            return connect_failed(pg, why, err);
        }
        /* The socket may change between polls (libpq tries each address in turn). */
        struct pollfd fds[2] = {
            {.fd = PQsocket(pg), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT},
            {.fd = stop_fd, .events = POLLIN},
        };
        int n = poll(fds, stop_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno != EINTR)
            return connect_failed(pg, strerror(errno), err);
        if (n > 0 && stop_fd >= 0 && (fds[1].revents & POLLIN))
            return connect_failed(pg, "stopped", err);
        if (n > 0)
            st = PQconnectPoll(pg);
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    *out = pg;
    return 0;
}

static void stmt_name(char *buf, size_t len, int stmt)
{
    snprintf(buf, len, "s%d", stmt);
}

int mk_pg_detect_pooler(PGconn *pg, bool *pooled, mk_err_t *err)
{
    PGresult *res = PQexecParams(pg, "SELECT pg_backend_pid()", 0, NULL, NULL, NULL, NULL, 0);
    int rc = mk_pg_check(pg, res, NULL, "detect a pooler", err);
    if (rc == 0)
        *pooled = strtol(PQgetvalue(res, 0, 0), NULL, 10) != (long)PQbackendPID(pg);
    PQclear(res);
    return rc;
}

/* Connects c and prepares the pool's statements on it, or (prepared statements off, or AUTO
 * behind a pooler) marks it to send them unnamed. */
static int connect_conn(mk_pg_pool_t *p, mk_pg_conn_t *c, mk_err_t *err)
{
    PGconn *pg = NULL;
    int rc = mk_pg_connect(p->dsn, p->timeout_ms, -1, &pg, err);
    if (rc != 0)
        return rc;
    bool unnamed = p->prepared == MK_PG_PREPARED_OFF;
    if (p->prepared == MK_PG_PREPARED_AUTO)
        rc = mk_pg_detect_pooler(pg, &unnamed, err);
    for (int i = 0; rc == 0 && !unnamed && i < p->nstmts; i++) {
        char name[16], what[48];
        stmt_name(name, sizeof name, i);
        snprintf(what, sizeof what, "prepare statement %d", i);
        PGresult *res = PQprepare(pg, name, p->stmts[i], 0, NULL);
        rc = mk_pg_check(pg, res, NULL, what, err);
        PQclear(res);
    }
    if (rc != 0) {
        PQfinish(pg);
        return rc;
    }
    c->pg = pg;
    c->unnamed = unnamed ? p->stmts : NULL;
    return 0;
}

int mk_pg_pool_new(const char *dsn, int size, int timeout_ms, const char *const *stmts, int nstmts,
                   mk_pg_prepared_t prepared, mk_pg_pool_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_pg_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres: out of memory creating the pool");
    p->dsn = strdup(dsn);
    p->conns = calloc((size_t)size, sizeof *p->conns);
    p->idle = calloc((size_t)size, sizeof *p->idle);
    if (p->dsn == NULL || p->conns == NULL || p->idle == NULL) {
        free(p->dsn);
        free(p->conns);
        free(p->idle);
        free(p);
        return mk_err_set(err, MK_ENOMEM, "postgres: out of memory creating the pool");
    }
    p->timeout_ms = timeout_ms;
    p->stmts = stmts;
    p->nstmts = nstmts;
    p->prepared = prepared;
    p->size = size;
    for (int i = 0; i < size; i++)
        p->idle[p->nidle++] = &p->conns[size - 1 - i];
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    *out = p;
    return 0;
}

void mk_pg_pool_free(mk_pg_pool_t *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->size; i++)
        PQfinish(p->conns[i].pg);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->conns);
    free(p->idle);
    free(p->dsn);
    free(p);
}

static void give_back(mk_pg_pool_t *p, mk_pg_conn_t *c)
{
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Takes an idle connection, connecting it if needed. While the server is known to be down, a
 * caller fails at once with the last connection error instead of waiting on a connect: only one
 * attempt every RECONNECT_INTERVAL_MS, and none while another is under way. */
static int acquire(mk_pg_pool_t *p, mk_pg_conn_t **out, mk_err_t *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    mk_pg_conn_t *c = p->idle[--p->nidle];
    if (c->pg != NULL) {
        pthread_mutex_unlock(&p->mu);
        c->reused = true;
        *out = c;
        return 0;
    }
    if (p->is_down && (mk_pg_now_ms() < p->retry_at || p->connecting > 0)) {
        mk_err_t down = p->down;
        p->idle[p->nidle++] = c;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (err != NULL)
            *err = down;
        return down.code;
    }
    p->connecting++;
    pthread_mutex_unlock(&p->mu);

    mk_err_t local = {0};
    int rc = connect_conn(p, c, &local);
    pthread_mutex_lock(&p->mu);
    p->connecting--;
    p->is_down = rc != 0;
    if (rc != 0) {
        p->retry_at = mk_pg_now_ms() + RECONNECT_INTERVAL_MS;
        p->down = local;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != 0) {
        if (err != NULL)
            *err = local;
        give_back(p, c);
        return rc;
    }
    c->reused = false;
    *out = c;
    return 0;
}

/* Returns c to the pool in a clean state: rolled back, or dropped when it is unusable. */
static void release(mk_pg_pool_t *p, mk_pg_conn_t *c)
{
    if (c->pg != NULL && !conn_lost(c)) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            PGresult *res = PQexec(c->pg, "ROLLBACK");
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                ts = PQTRANS_UNKNOWN;
            else
                ts = PQTRANS_IDLE;
            PQclear(res);
        }
        if (ts != PQTRANS_IDLE) {
            PQfinish(c->pg);
            c->pg = NULL;
        }
    } else if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    give_back(p, c);
}

static int exec_sql(mk_pg_conn_t *c, const char *sql, const char *what, mk_err_t *err)
{
    PGresult *res = PQexec(c->pg, sql);
    int rc = mk_pg_check(c->pg, res, c->sqlstate, what, err);
    PQclear(res);
    if (rc == 0)
        c->progress++;
    return rc;
}

int mk_pg_pool_run(mk_pg_pool_t *p, bool tx, mk_pg_op_fn fn, void *ud, mk_err_t *err)
{
    int conflicts = 0;
    int stale = 0;
    for (;;) {
        mk_pg_conn_t *c = NULL;
        int rc = acquire(p, &c, err);
        if (rc != 0)
            return rc;
        c->progress = 0;
        c->sqlstate[0] = '\0';
        if (tx)
            rc = exec_sql(c, "BEGIN", "begin transaction", err);
        if (rc == 0)
            rc = fn(c, ud, err);
        if (rc == 0 && tx)
            rc = exec_sql(c, "COMMIT", "commit", err);
        bool conflict =
            rc < 0 && (strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0);
        /* Nothing reached a live server: safe to run again on a fresh connection. */
        bool dead_on_arrival = rc < 0 && conn_lost(c) && c->reused && c->progress == 0;
        release(p, c);
        if (rc == 0)
            return 0;
        if (conflict && conflicts < SERIALIZATION_RETRIES) {
            conflicts++;
            continue;
        }
        /* Each stale connection is dropped as it fails, so this ends after at most size. */
        if (dead_on_arrival && stale < p->size) {
            stale++;
            continue;
        }
        if (conflict && err != NULL)
            mk_err_prefix(err, "gave up after %d retries", SERIALIZATION_RETRIES);
        return rc;
    }
}

static const mk_pg_fmt_t text_fmt = {NULL, NULL, 0};

int mk_pg_exec(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params, PGresult **res,
               const char *what, mk_err_t *err)
{
    return mk_pg_exec_fmt(c, stmt, nparams, params, NULL, res, what, err);
}

int mk_pg_exec_fmt(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                   const mk_pg_fmt_t *fmt, PGresult **res, const char *what, mk_err_t *err)
{
    char name[16];
    stmt_name(name, sizeof name, stmt);
    if (fmt == NULL)
        fmt = &text_fmt;
    PGresult *r = c->unnamed != NULL ? PQexecParams(c->pg, c->unnamed[stmt], nparams, NULL, params,
                                                    fmt->lengths, fmt->formats, fmt->result_format)
                                     : PQexecPrepared(c->pg, name, nparams, params, fmt->lengths,
                                                      fmt->formats, fmt->result_format);
    int rc = mk_pg_check(c->pg, r, c->sqlstate, what, err);
    if (rc != 0 || res == NULL) {
        PQclear(r);
    } else {
        *res = r;
    }
    if (rc == 0)
        c->progress++;
    return rc;
}

int mk_pg_query_rows(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                     int (*row)(void *ud, const PGresult *res), void *ud, const char *what,
                     mk_err_t *err)
{
    return mk_pg_query_rows_fmt(c, stmt, nparams, params, NULL, row, ud, what, err);
}

int mk_pg_query_rows_fmt(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                         const mk_pg_fmt_t *fmt, int (*row)(void *ud, const PGresult *res),
                         void *ud, const char *what, mk_err_t *err)
{
    char name[16];
    stmt_name(name, sizeof name, stmt);
    if (fmt == NULL)
        fmt = &text_fmt;
    int sent = c->unnamed != NULL
                   ? PQsendQueryParams(c->pg, c->unnamed[stmt], nparams, NULL, params, fmt->lengths,
                                       fmt->formats, fmt->result_format)
                   : PQsendQueryPrepared(c->pg, name, nparams, params, fmt->lengths, fmt->formats,
                                         fmt->result_format);
    if (!sent)
        return mk_pg_check(c->pg, NULL, c->sqlstate, what, err);
    /* Single-row mode keeps a full load from holding every row in memory at once. */
    PQsetSingleRowMode(c->pg);
    int rc = 0;
    PGresult *res;
    /* Every result is read, even after a stop, so the connection is idle again afterwards. */
    while ((res = PQgetResult(c->pg)) != NULL) {
        if (rc == 0) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_SINGLE_TUPLE) {
                c->progress++;
                rc = row(ud, res);
            } else if (st == PGRES_TUPLES_OK) {
                c->progress++;
            } else {
                rc = mk_pg_check(c->pg, res, c->sqlstate, what, err);
            }
        }
        PQclear(res);
    }
    if (rc == 0 && PQstatus(c->pg) == CONNECTION_BAD)
        rc = mk_pg_check(c->pg, NULL, c->sqlstate, what, err);
    return rc;
}
