/* Test support: a loopback TCP server that runs a handler on a thread of its own for each
 * connection it accepts, for tests of clients. Only libc and pthreads. */
#ifndef MK_TESTING_TCP_SERVER_H
#define MK_TESTING_TCP_SERVER_H

#include <stdatomic.h>

/* conn gets the accepted descriptor as (void *)(intptr_t)fd and closes it. */
typedef void *(*mk_testing_conn_fn)(void *fd);

typedef struct mk_testing_tcp_server {
    int fd, port;
    atomic_int accepted; /* connections accepted so far */
    mk_testing_conn_fn conn;
} mk_testing_tcp_server_t;

/* Listens on 127.0.0.1 (a port the kernel picks, in s->port) and accepts on a detached thread
 * until the process ends. 0, or -1 with the reason printed. */
int mk_testing_tcp_serve(mk_testing_tcp_server_t *s, mk_testing_conn_fn conn);

#endif
