/* The change-feed follower: LISTEN on a dedicated connection, poll() on its socket and a stop
 * pipe, one callback per notification, and a (0, NULL) callback after every (re)connection so
 * the subscriber resyncs what it may have missed while disconnected. */
#include "pg/listen.h"

#include "pg/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct mk_pg_listener {
    char *dsn;
    char *channel;
    int timeout_ms;
    mk_repo_change_cb cb;
    void *ud;
    int stop_pipe[2]; /* a byte in it asks the thread to stop; never drained */
    pthread_t thread;
    PGconn *pg; /* owned by the thread once it runs */
};

/* Waits up to ms for a stop request; true when one came. */
static bool wait_stop(mk_pg_listener_t *l, int ms)
{
    struct pollfd pfd = {.fd = l->stop_pipe[0], .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0;
    }
}

static int connect_listen(mk_pg_listener_t *l, PGconn **out, mk_err_t *err)
{
    PGconn *pg = NULL;
    int rc = mk_pg_connect(l->dsn, l->timeout_ms, l->stop_pipe[0], &pg, err);
    if (rc != 0)
        return rc;
    char *ident = PQescapeIdentifier(pg, l->channel, strlen(l->channel));
    if (ident == NULL) {
        rc = mk_pg_check(pg, NULL, NULL, "quote channel name", err);
        PQfinish(pg);
        return rc;
    }
    size_t len = strlen(ident) + sizeof "LISTEN ";
    char *sql = malloc(len);
    if (sql == NULL) {
        PQfreemem(ident);
        PQfinish(pg);
        return mk_err_set(err, MK_ENOMEM, "postgres listen: out of memory");
    }
    strcpy(sql, "LISTEN ");
    strcat(sql, ident);
    PQfreemem(ident);
    PGresult *res = PQexec(pg, sql);
    free(sql);
    rc = mk_pg_check(pg, res, NULL, "listen", err);
    PQclear(res);
    if (rc != 0) {
        PQfinish(pg);
        return rc;
    }
    *out = pg;
    return 0;
}

/* Payload "<seq> <id>"; anything else on the channel is not ours and is ignored. */
static void deliver(mk_pg_listener_t *l, const PGnotify *nt)
{
    if (strcmp(nt->relname, l->channel) != 0 || nt->extra == NULL)
        return;
    char *end = NULL;
    long long seq = strtoll(nt->extra, &end, 10);
    if (end == nt->extra || *end != ' ' || seq <= 0 || end[1] == '\0')
        return;
    l->cb(l->ud, (int64_t)seq, end + 1);
}

/* Delivers notifications until the connection fails (returns false) or a stop is requested
 * (returns true). */
static bool follow(mk_pg_listener_t *l)
{
    for (;;) {
        struct pollfd fds[2] = {
            {.fd = PQsocket(l->pg), .events = POLLIN},
            {.fd = l->stop_pipe[0], .events = POLLIN},
        };
        int n = poll(fds, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (fds[1].revents & POLLIN)
            return true;
        if (!PQconsumeInput(l->pg))
            return false;
        PGnotify *nt;
        while ((nt = PQnotifies(l->pg)) != NULL) {
            deliver(l, nt);
            PQfreemem(nt);
        }
        if (PQstatus(l->pg) == CONNECTION_BAD)
            return false;
    }
}

static void *run(void *arg)
{
    mk_pg_listener_t *l = arg;
    int backoff = BACKOFF_MIN_MS;
    for (;;) {
        if (l->pg == NULL) {
            mk_err_t err = {0};
            if (connect_listen(l, &l->pg, &err) != 0) {
                if (wait_stop(l, backoff))
                    break;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
        }
        backoff = BACKOFF_MIN_MS;
        l->cb(l->ud, 0, NULL);
        bool stop = follow(l);
        PQfinish(l->pg);
        l->pg = NULL;
        if (stop)
            break;
    }
    return NULL;
}

static void listener_free(mk_pg_listener_t *l)
{
    PQfinish(l->pg);
    if (l->stop_pipe[0] >= 0)
        close(l->stop_pipe[0]);
    if (l->stop_pipe[1] >= 0)
        close(l->stop_pipe[1]);
    free(l->dsn);
    free(l->channel);
    free(l);
}

int mk_pg_listener_start(const char *dsn, int timeout_ms, const char *channel, mk_repo_change_cb cb,
                         void *ud, mk_pg_listener_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_pg_listener_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return mk_err_set(err, MK_ENOMEM, "postgres subscribe: out of memory");
    l->stop_pipe[0] = l->stop_pipe[1] = -1;
    l->dsn = strdup(dsn);
    l->channel = strdup(channel);
    l->timeout_ms = timeout_ms;
    l->cb = cb;
    l->ud = ud;
    int rc = 0;
    if (l->dsn == NULL || l->channel == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "postgres subscribe: out of memory");
        goto out;
    }
    if (pipe2(l->stop_pipe, O_CLOEXEC) != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "postgres subscribe: pipe: %s", strerror(errno));
        goto out;
    }
    /* Listening before returning lets the caller load after subscribe without a gap; when the
     * server is down the thread keeps trying and its (0, NULL) says when to resync. */
    mk_err_t ignored = {0};
    connect_listen(l, &l->pg, &ignored);
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "postgres subscribe: cannot start the thread");
        goto out;
    }
    *out = l;
out:
    if (rc != 0)
        listener_free(l);
    return rc;
}

void mk_pg_listener_stop(mk_pg_listener_t *l)
{
    if (l == NULL)
        return;
    char b = 1;
    while (write(l->stop_pipe[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(l->thread, NULL);
    listener_free(l);
}
