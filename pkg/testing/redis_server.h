/* Test support: a real redis-server (/usr/bin/redis-server) on a free loopback port, in its own
 * temporary directory, without persistence. Stop and restart on the same port let tests stage an
 * outage. Needs no Redis client library: readiness is a PING over a plain socket. */
#ifndef MK_TESTING_REDIS_SERVER_H
#define MK_TESTING_REDIS_SERVER_H

#include <sys/types.h>

typedef struct mk_testing_redis {
    int port;          /* chosen by start, kept by restart */
    pid_t pid;         /* 0 while stopped */
    char dir[64];      /* temporary directory holding the log; removed by free */
    char password[64]; /* "" = no requirepass */
} mk_testing_redis_t;

/* Picks a free port, creates the directory and starts the server, returning once it answers
 * PING. 0 on success, -1 with the reason printed to stderr. The server is killed if the thread
 * that started it dies (PR_SET_PDEATHSIG), so a crashed test leaves nothing behind. */
int mk_testing_redis_start(mk_testing_redis_t *srv);
/* The same with requirepass password (copied; at most 63 bytes). */
int mk_testing_redis_start_auth(mk_testing_redis_t *srv, const char *password);
/* SIGTERM and wait for the process to exit (SIGKILL after 5 s). Stopped already is fine. */
int mk_testing_redis_stop(mk_testing_redis_t *srv);
/* Starts the server again on the same port (and password), empty: nothing is persisted. */
int mk_testing_redis_restart(mk_testing_redis_t *srv);
/* Stops the server if running and removes its directory. */
void mk_testing_redis_free(mk_testing_redis_t *srv);

#endif
