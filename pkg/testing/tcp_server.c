/* See tcp_server.h. */
#include "testing/tcp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static void *accept_main(void *arg)
{
    mk_testing_tcp_server_t *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        atomic_fetch_add(&s->accepted, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, s->conn, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

int mk_testing_tcp_serve(mk_testing_tcp_server_t *s, mk_testing_conn_fn conn)
{
    s->conn = conn;
    atomic_init(&s->accepted, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0 || listen(s->fd, 64) != 0) {
        perror("test server");
        return -1;
    }
    s->port = ntohs(a.sin_port);
    pthread_t t;
    if (pthread_create(&t, NULL, accept_main, s) != 0) {
        perror("test server thread");
        return -1;
    }
    pthread_detach(t);
    return 0;
}
