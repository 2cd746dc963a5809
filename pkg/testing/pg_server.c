/* Starts and stops a real PostgreSQL server for tests (see pg_server.h). Only libc: initdb and
 * postgres are forked directly (no pg_ctl), so the postmaster is our child and stop can wait for
 * it. */
#include "testing/pg_server.h"
#include "testing/server_proc.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_BINDIR   "/usr/lib/postgresql/15/bin"
#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  30000

static const char *bindir(void)
{
    const char *d = getenv("MK_PG_BINDIR");
    return d != NULL && d[0] != '\0' ? d : DEFAULT_BINDIR;
}

/* The user the binaries run as: ourselves, or "nobody" when we are root (initdb refuses root). */
typedef struct run_as {
    int drop; /* 1: switch to uid/gid in the child */
    uid_t uid;
    gid_t gid;
} run_as_t;

static int find_run_as(run_as_t *ra)
{
    memset(ra, 0, sizeof *ra);
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL) {
        fprintf(stderr, "pg_server: running as root and there is no user \"nobody\" to run "
                        "PostgreSQL as\n");
        return -1;
    }
    ra->drop = 1;
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    return 0;
}

static void print_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    /* The last 4 KiB is where the reason is. */
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > 4096)
        fseek(f, -4096, SEEK_END);
    else
        rewind(f);
    char line[512];
    fprintf(stderr, "pg_server: tail of %s:\n", path);
    while (fgets(line, sizeof line, f) != NULL)
        fprintf(stderr, "  %s", line);
    fclose(f);
}

/* Forks argv[0] as the run-as user in dir with stdout and stderr appended to logpath. The child
 * gets SIGQUIT (PostgreSQL's immediate shutdown) if the forking thread dies. */
static pid_t spawn(const run_as_t *ra, const char *dir, const char *logpath,
                   const char *const *argv)
{
    mk_testing_spawn_opts_t o = {.uid = ra->drop ? (long)ra->uid : -1,
                                 .gid = ra->drop ? (long)ra->gid : -1,
                                 .dir = dir,
                                 .log_path = logpath,
                                 .death_signal = SIGQUIT};
    pid_t pid;
    return mk_testing_spawn("pg_server", argv, &o, &pid) == 0 ? pid : -1;
}

static int run_initdb(const mk_testing_pg_t *srv, const run_as_t *ra)
{
    char exe[256], data[128], logpath[128];
    snprintf(exe, sizeof exe, "%s/initdb", bindir());
    snprintf(data, sizeof data, "%s/data", srv->dir);
    snprintf(logpath, sizeof logpath, "%s/initdb.log", srv->dir);
    const char *argv[] = {exe,     "-D", data,   "-U",         "postgres",  "-A",
                          "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
                          NULL};
    pid_t pid = spawn(ra, srv->dir, logpath, argv);
    if (pid < 0)
        return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "pg_server: %s failed (status %d)\n", exe, status);
    print_log_tail(logpath);
    return -1;
}

/* Reads the status line (8th) of postmaster.pid: "ready" once connections are accepted. The first
 * line must be our child's pid so a stale file is not mistaken for the new server. */
static int postmaster_ready(void *arg)
{
    const mk_testing_pg_t *srv = arg;
    char path[128];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", srv->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[256];
    int ready = 0;
    for (int i = 1; fgets(line, sizeof line, f) != NULL; i++) {
        if (i == 1 && atol(line) != (long)srv->pid)
            break;
        if (i == 8) {
            ready = strncmp(line, "ready", 5) == 0;
            break;
        }
    }
    fclose(f);
    return ready;
}

static int start_postmaster(mk_testing_pg_t *srv)
{
    run_as_t ra;
    if (find_run_as(&ra) != 0)
        return -1;
    char exe[256], data[128], logpath[128], port[16];
    snprintf(exe, sizeof exe, "%s/postgres", bindir());
    snprintf(data, sizeof data, "%s/data", srv->dir);
    snprintf(logpath, sizeof logpath, "%s/postgres.log", srv->dir);
    snprintf(port, sizeof port, "%d", srv->port);
    /* Durability is worthless for a throwaway server; skipping it makes writes and shutdown
     * fast. */
    const char *argv[] = {exe,
                          "-D",
                          data,
                          "-p",
                          port,
                          "-h",
                          "127.0.0.1",
                          "-k",
                          srv->dir,
                          "-c",
                          "fsync=off",
                          "-c",
                          "synchronous_commit=off",
                          "-c",
                          "full_page_writes=off",
                          "-c",
                          "shared_buffers=32MB",
                          "-c",
                          "max_connections=64",
                          NULL};
    pid_t pid = spawn(&ra, srv->dir, logpath, argv);
    if (pid < 0)
        return -1;
    srv->pid = pid;
    int status = 0;
    int rc = mk_testing_wait_ready(pid, READY_TIMEOUT_MS, postmaster_ready, srv, &status);
    if (rc == 0)
        return 0;
    if (rc == -1) {
        srv->pid = 0;
        fprintf(stderr, "pg_server: postgres on port %d exited (status %d)\n", srv->port, status);
        print_log_tail(logpath);
        return -1;
    }
    fprintf(stderr, "pg_server: postgres on port %d not ready after %d ms\n", srv->port,
            READY_TIMEOUT_MS);
    print_log_tail(logpath);
    mk_testing_pg_stop(srv);
    return -1;
}

void mk_testing_pg_dsn(const mk_testing_pg_t *srv, const char *dbname, char *buf, size_t len)
{
    snprintf(buf, len, "host=127.0.0.1 port=%d user=postgres dbname=%s", srv->port, dbname);
}

int mk_testing_pg_start(mk_testing_pg_t *srv)
{
    memset(srv, 0, sizeof *srv);
    run_as_t ra;
    if (find_run_as(&ra) != 0)
        return -1;
    strcpy(srv->dir, "/tmp/mk-pg-XXXXXX");
    if (mkdtemp(srv->dir) == NULL) {
        fprintf(stderr, "pg_server: mkdtemp: %s\n", strerror(errno));
        srv->dir[0] = '\0';
        return -1;
    }
    if (ra.drop && chown(srv->dir, ra.uid, ra.gid) != 0) {
        fprintf(stderr, "pg_server: chown %s: %s\n", srv->dir, strerror(errno));
        return -1;
    }
    if (run_initdb(srv, &ra) != 0)
        return -1;
    /* Another process may take the port between our probe and the server's bind: try again. */
    for (int attempt = 0; attempt < 5; attempt++) {
        srv->port = mk_testing_free_port();
        if (srv->port <= 0) {
            fprintf(stderr, "pg_server: no free port: %s\n", strerror(errno));
            return -1;
        }
        if (start_postmaster(srv) == 0) {
            mk_testing_pg_dsn(srv, "postgres", srv->dsn, sizeof srv->dsn);
            return 0;
        }
    }
    return -1;
}

int mk_testing_pg_stop(mk_testing_pg_t *srv)
{
    if (srv == NULL || srv->pid <= 0)
        return 0;
    if (mk_testing_stop_pid(srv->pid, SIGINT, STOP_TIMEOUT_MS) != 0)
        fprintf(stderr, "pg_server: postgres on port %d ignored fast shutdown; killed it\n",
                srv->port);
    srv->pid = 0;
    return 0;
}

int mk_testing_pg_restart(mk_testing_pg_t *srv)
{
    mk_testing_pg_stop(srv);
    /* postgres sets SO_REUSEADDR, but give a lingering socket a few chances. */
    for (int attempt = 0; attempt < 20; attempt++) {
        if (start_postmaster(srv) == 0)
            return 0;
        mk_testing_sleep_ms(100);
    }
    return -1;
}

void mk_testing_pg_free(mk_testing_pg_t *srv)
{
    if (srv == NULL)
        return;
    mk_testing_pg_stop(srv);
    if (srv->dir[0] == '\0')
        return;
    mk_testing_rmtree(srv->dir);
    srv->dir[0] = '\0';
}
