/* TLS for load generator connections: the only file of the module that includes OpenSSL. A
 * context is shared by a run's threads; one session per connection, non-blocking. */
#ifndef MK_LOADGEN_TLS_H
#define MK_LOADGEN_TLS_H

#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct lg_tls_ctx lg_tls_ctx_t;
typedef struct lg_tls lg_tls_t;

enum {
    LG_TLS_OK = 0,
    LG_TLS_WANT_READ = 1,
    LG_TLS_WANT_WRITE = 2,
    LG_TLS_EOF = 3,
    LG_TLS_ERR = -1
};

/* System CAs (SSL_CERT_FILE / SSL_CERT_DIR honoured) unless insecure. */
int lg_tls_ctx_new(bool insecure, lg_tls_ctx_t **out, mk_err_t *err);
void lg_tls_ctx_free(lg_tls_ctx_t *ctx);
/* A client session on a connected socket, checking the certificate against host (a name or an IP
 * address) and sending it as SNI when it is a name. With h2 the handshake offers ALPN
 * "h2, http/1.1" (otherwise no ALPN: HTTP/1.1). NULL when out of memory. */
lg_tls_t *lg_tls_new(lg_tls_ctx_t *ctx, int fd, const char *host, bool h2);
void lg_tls_free(lg_tls_t *t);
/* After the handshake: the server picked "h2" by ALPN. */
bool lg_tls_is_h2(const lg_tls_t *t);
/* Each returns LG_TLS_OK (with *n bytes moved for read/write), LG_TLS_WANT_READ/WRITE,
 * LG_TLS_EOF (read: the peer closed), or LG_TLS_ERR with a short message in msg. */
int lg_tls_handshake(lg_tls_t *t, char *msg, size_t msglen);
int lg_tls_read(lg_tls_t *t, void *buf, size_t len, size_t *n, char *msg, size_t msglen);
int lg_tls_write(lg_tls_t *t, const void *buf, size_t len, size_t *n, char *msg, size_t msglen);

#endif
