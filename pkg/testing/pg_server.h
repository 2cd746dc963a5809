/* Test support: a real PostgreSQL 15 server in its own temporary directory on a free loopback
 * port, trust authentication, fsync off. initdb refuses to run as root, so under root both initdb
 * and postgres run as the unprivileged user "nobody". Needs no client library: readiness is read
 * from postmaster.pid, the way pg_ctl does it. */
#ifndef MK_TESTING_PG_SERVER_H
#define MK_TESTING_PG_SERVER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct mk_testing_pg {
    int port;      /* chosen by start, kept by restart */
    pid_t pid;     /* the postmaster; 0 while stopped */
    char dir[64];  /* temporary directory: data/, the unix socket and logs; removed by free */
    char dsn[128]; /* "host=127.0.0.1 port=N user=postgres dbname=postgres" */
} mk_testing_pg_t;

/* Runs initdb (superuser "postgres") in a fresh directory, picks a free port and starts the
 * server, returning once it accepts connections. 0 on success, -1 with the reason (and the log's
 * tail) printed to stderr. The server is killed if the thread that started it dies
 * (PR_SET_PDEATHSIG): start it from the main thread. The binaries come from
 * /usr/lib/postgresql/15/bin unless MK_PG_BINDIR names another directory. */
int mk_testing_pg_start(mk_testing_pg_t *srv);
/* Fast shutdown (SIGINT: sessions are terminated, data is kept) and wait for the exit (SIGKILL
 * after 30 s). Stopped already is fine. */
int mk_testing_pg_stop(mk_testing_pg_t *srv);
/* Starts the server again on the same port with the same data. */
int mk_testing_pg_restart(mk_testing_pg_t *srv);
/* Stops the server if running and removes its directory. NULL or never started is fine. */
void mk_testing_pg_free(mk_testing_pg_t *srv);
/* Writes the DSN of database dbname on this server into buf. */
void mk_testing_pg_dsn(const mk_testing_pg_t *srv, const char *dbname, char *buf, size_t len);

#endif
