/* Starts and stops a real redis-server for tests (see redis_server.h). Only libc: the readiness
 * check speaks just enough RESP to send PING. */
#include "testing/redis_server.h"
#include "testing/server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define REDIS_SERVER_BIN "/usr/bin/redis-server"

/* 1 when the server answers PING (+PONG, or -NOAUTH when a password is set), else 0. */
static int answers_ping(void *arg)
{
    int port = *(const int *)arg;
    int ok = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    static const char ping[] = "PING\r\n";
    if (send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof ping - 1))
        goto out;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        goto out;
    buf[n] = '\0';
    ok = strncmp(buf, "+PONG", 5) == 0 || strncmp(buf, "-NOAUTH", 7) == 0;
out:
    close(fd);
    return ok;
}

static void print_log_tail(const mk_testing_redis_t *srv)
{
    char path[128];
    snprintf(path, sizeof path, "%s/redis.log", srv->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[512];
    fprintf(stderr, "redis_server: log of port %d:\n", srv->port);
    while (fgets(line, sizeof line, f) != NULL)
        fprintf(stderr, "  %s", line);
    fclose(f);
}

/* Forks redis-server on srv->port and waits until it answers; -1 if it exits or stays silent. */
static int spawn(mk_testing_redis_t *srv)
{
    char port[16], logfile[128];
    snprintf(port, sizeof port, "%d", srv->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", srv->dir);
    const char *argv[32];
    int n = 0;
    argv[n++] = REDIS_SERVER_BIN;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = srv->dir;
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--protected-mode";
    argv[n++] = "no";
    if (srv->password[0] != '\0') {
        argv[n++] = "--requirepass";
        argv[n++] = srv->password;
    }
    argv[n] = NULL;

    mk_testing_spawn_opts_t o = {.uid = -1, .gid = -1, .death_signal = SIGTERM};
    pid_t pid;
    if (mk_testing_spawn("redis_server", argv, &o, &pid) != 0)
        return -1;
    srv->pid = pid;

    int status = 0;
    int rc = mk_testing_wait_ready(pid, 10000, answers_ping, &srv->port, &status);
    if (rc == 0)
        return 0;
    if (rc == -1) {
        srv->pid = 0;
        fprintf(stderr, "redis_server: redis-server on port %d exited (status %d)\n", srv->port,
                status);
        print_log_tail(srv);
        return -1;
    }
    fprintf(stderr, "redis_server: redis-server on port %d did not answer PING in 10 s\n",
            srv->port);
    print_log_tail(srv);
    mk_testing_redis_stop(srv);
    return -1;
}

int mk_testing_redis_start_auth(mk_testing_redis_t *srv, const char *password)
{
    memset(srv, 0, sizeof *srv);
    if (password != NULL) {
        if (strlen(password) >= sizeof srv->password) {
            fprintf(stderr, "redis_server: password longer than %zu bytes\n",
                    sizeof srv->password - 1);
            return -1;
        }
        strcpy(srv->password, password);
    }
    strcpy(srv->dir, "/tmp/mk-redis-XXXXXX");
    if (mkdtemp(srv->dir) == NULL) {
        fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
        srv->dir[0] = '\0';
        return -1;
    }
    /* Another process may take the port between our probe and the server's bind: try again. */
    for (int attempt = 0; attempt < 5; attempt++) {
        srv->port = mk_testing_free_port();
        if (srv->port <= 0) {
            fprintf(stderr, "redis_server: no free port: %s\n", strerror(errno));
            return -1;
        }
        if (spawn(srv) == 0)
            return 0;
    }
    return -1;
}

int mk_testing_redis_start(mk_testing_redis_t *srv)
{
    return mk_testing_redis_start_auth(srv, NULL);
}

int mk_testing_redis_stop(mk_testing_redis_t *srv)
{
    if (srv->pid <= 0)
        return 0;
    mk_testing_stop_pid(srv->pid, SIGTERM, 5000);
    srv->pid = 0;
    return 0;
}

int mk_testing_redis_restart(mk_testing_redis_t *srv)
{
    mk_testing_redis_stop(srv);
    /* The old socket may linger briefly; redis-server sets SO_REUSEADDR, so a few tries do. */
    for (int attempt = 0; attempt < 20; attempt++) {
        if (spawn(srv) == 0)
            return 0;
        mk_testing_sleep_ms(100);
    }
    return -1;
}

void mk_testing_redis_free(mk_testing_redis_t *srv)
{
    if (srv == NULL)
        return;
    mk_testing_redis_stop(srv);
    if (srv->dir[0] == '\0')
        return;
    mk_testing_rmtree(srv->dir);
    srv->dir[0] = '\0';
}
