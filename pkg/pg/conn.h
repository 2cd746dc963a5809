/* Internal to pkg/pg: connecting with a deadline, the connection pool that runs an operation with
 * transactions and retries, statement helpers and SQLSTATE-to-error mapping. */
#ifndef MK_PG_CONN_H
#define MK_PG_CONN_H

#include "err/err.h"
#include "pg/pg.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stdint.h>

/* A pooled connection as an operation sees it. */
typedef struct mk_pg_conn {
    PGconn *pg;                 /* NULL while disconnected */
    bool reused;                /* was connected before the current call took it */
    int progress;               /* results received in the current attempt */
    char sqlstate[6];           /* of the last failure in the current attempt; "" when none */
    const char *const *unnamed; /* while connected: the pool's statements when they are sent
                                 * unnamed (prepared statements off), else NULL */
} mk_pg_conn_t;

typedef struct mk_pg_pool mk_pg_pool_t;

int64_t mk_pg_now_ms(void); /* monotonic */

/* Connects to dsn within timeout_ms; the attempt is abandoned when stop_fd (-1: none) becomes
 * readable. Notices are silenced (library code never prints). MK_EUNAVAIL on failure. */
int mk_pg_connect(const char *dsn, int timeout_ms, int stop_fd, PGconn **out, mk_err_t *err);

/* Checks res (which may be NULL) from a call on pg: 0 when it is COMMAND_OK or TUPLES_OK, else
 * fills err with "postgres <what>: <message>" and the SQLSTATE (also copied to sqlstate when not
 * NULL) and returns the MK_E code. Does not free res. */
int mk_pg_check(PGconn *pg, const PGresult *res, char sqlstate[6], const char *what, mk_err_t *err);

/* Creates a pool of size lazily opened connections to dsn (copied); stmts (borrowed, static) are
 * prepared on each connection as "s0", "s1", ... or, as prepared says, sent unnamed each time. */
int mk_pg_pool_new(const char *dsn, int size, int timeout_ms, const char *const *stmts, int nstmts,
                   mk_pg_prepared_t prepared, mk_pg_pool_t **out, mk_err_t *err);

/* Whether the connection is reached through a pooler: the server process id differs from the one
 * given at startup (PgBouncer makes up its own). *pooled is set on success. */
int mk_pg_detect_pooler(PGconn *pg, bool *pooled, mk_err_t *err);
void mk_pg_pool_free(mk_pg_pool_t *p);

typedef int (*mk_pg_op_fn)(mk_pg_conn_t *c, void *ud, mk_err_t *err);

/* Runs fn on a pooled connection, between BEGIN and COMMIT when tx. Retries the whole attempt on
 * SQLSTATE 40001 / 40P01 (3 times) and when a pooled connection turns out dead before anything
 * reached the server (the server restarted while it was idle); fn must therefore keep its
 * effects in ud resettable at its start. A non-zero return of fn that is not a database failure
 * (a caller's callback stopping) is returned as is. */
int mk_pg_pool_run(mk_pg_pool_t *p, bool tx, mk_pg_op_fn fn, void *ud, mk_err_t *err);

/* Runs statement stmt (prepared, or unnamed when prepared statements are off) with text params
 * (NULL: SQL NULL). On success *res, when res is not NULL, is the result, which the caller
 * PQclear()s. */
int mk_pg_exec(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params, PGresult **res,
               const char *what, mk_err_t *err);
/* Runs prepared statement stmt in single-row mode, calling row(ud, res) with a one-row result per
 * row; a non-zero return stops the calls (the rest is drained) and is returned. */
int mk_pg_query_rows(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                     int (*row)(void *ud, const PGresult *res), void *ud, const char *what,
                     mk_err_t *err);

/* Binary transfer for the _fmt variants below, as PQexecPrepared takes it: formats[i] 1 sends
 * param i as lengths[i] raw bytes (a bytea's contents), 0 as text (formats NULL: all text);
 * result_format 1 returns every column as raw bytes, so select non-text columns cast to text.
 * libpq NUL-terminates every value either way. */
typedef struct mk_pg_fmt {
    const int *lengths;
    const int *formats;
    int result_format;
} mk_pg_fmt_t;

/* mk_pg_exec and mk_pg_query_rows with binary params or results (fmt NULL: all text). */
int mk_pg_exec_fmt(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                   const mk_pg_fmt_t *fmt, PGresult **res, const char *what, mk_err_t *err);
int mk_pg_query_rows_fmt(mk_pg_conn_t *c, int stmt, int nparams, const char *const *params,
                         const mk_pg_fmt_t *fmt, int (*row)(void *ud, const PGresult *res),
                         void *ud, const char *what, mk_err_t *err);

#endif
