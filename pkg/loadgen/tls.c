/* OpenSSL client sessions for the load generator. */
#include "loadgen/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lg_tls_ctx {
    SSL_CTX *ctx;
};

struct lg_tls {
    SSL *ssl;
};

int lg_tls_ctx_new(bool insecure, lg_tls_ctx_t **out, mk_err_t *err)
{
    *out = NULL;
    lg_tls_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) {
        free(c);
        return mk_err_set(err, MK_EINTERNAL, "TLS: cannot create a context");
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (insecure) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_default_verify_paths(c->ctx);
    }
    *out = c;
    return 0;
}

void lg_tls_ctx_free(lg_tls_ctx_t *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

lg_tls_t *lg_tls_new(lg_tls_ctx_t *c, int fd, const char *host, bool h2)
{
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    lg_tls_t *t = calloc(1, sizeof *t);
    if (!t || !(t->ssl = SSL_new(c->ctx))) {
        free(t);
        return NULL;
    }
    if (h2 && SSL_set_alpn_protos(t->ssl, alpn, sizeof alpn - 1) != 0) {
        lg_tls_free(t);
        return NULL;
    }
    SSL_set_fd(t->ssl, fd);
    SSL_set_connect_state(t->ssl);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    } else {
        SSL_set_tlsext_host_name(t->ssl, host);
        SSL_set1_host(t->ssl, host);
    }
    return t;
}

void lg_tls_free(lg_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

bool lg_tls_is_h2(const lg_tls_t *t)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

/* Maps an OpenSSL result to ours, with the reason in msg. */
static int outcome(lg_tls_t *t, int r, char *msg, size_t msglen)
{
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return LG_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return LG_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return LG_TLS_EOF;
    case SSL_ERROR_SYSCALL: {
        int en = errno;
        ERR_clear_error();
        if (en == 0)
            return LG_TLS_EOF; /* closed without close_notify */
        snprintf(msg, msglen, "%s", strerror(en));
        return LG_TLS_ERR;
    }
    default: {
        unsigned long code = ERR_get_error();
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK)
            snprintf(msg, msglen, "certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(msg, msglen, "%s",
                     code ? ERR_reason_error_string(code) ? ERR_reason_error_string(code)
                                                          : "TLS error"
                          : "TLS error");
        ERR_clear_error();
        return LG_TLS_ERR;
    }
    }
}

int lg_tls_handshake(lg_tls_t *t, char *msg, size_t msglen)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return LG_TLS_OK;
    int o = outcome(t, r, msg, msglen);
    if (o == LG_TLS_EOF) {
        snprintf(msg, msglen, "connection closed during the handshake");
        return LG_TLS_ERR;
    }
    return o;
}

int lg_tls_read(lg_tls_t *t, void *buf, size_t len, size_t *n, char *msg, size_t msglen)
{
    int r = SSL_read_ex(t->ssl, buf, len, n);
    return r == 1 ? LG_TLS_OK : outcome(t, 0, msg, msglen);
}

int lg_tls_write(lg_tls_t *t, const void *buf, size_t len, size_t *n, char *msg, size_t msglen)
{
    int r = SSL_write_ex(t->ssl, buf, len, n);
    return r == 1 ? LG_TLS_OK : outcome(t, 0, msg, msglen);
}
