/* OpenSSL contexts for gRPC: TLS 1.2+, ALPN h2 only, optional client certificates (mTLS). */
#include "grpc/grpc_internal.h"

#include <openssl/err.h>
#include <string.h>

static const unsigned char alpn_h2[] = {2, 'h', '2'};

const char *mk_grpc_tls_error(void)
{
    static _Thread_local char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return "unknown TLS error";
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn_h2, sizeof alpn_h2, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC needs h2; refuse rather than fall back */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int load_pair(SSL_CTX *ctx, const mk_grpc_tls_opts_t *o, mk_err_t *err)
{
    if (o->cert_file == NULL && o->key_file == NULL)
        return 0;
    if (o->cert_file == NULL || o->key_file == NULL)
        return mk_err_set(err, MK_EINVAL, "TLS needs both a certificate and a key file");
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return mk_err_set(err, MK_EINVAL, "TLS certificate %s: %s", o->cert_file,
                          mk_grpc_tls_error());
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
        return mk_err_set(err, MK_EINVAL, "TLS key %s: %s", o->key_file, mk_grpc_tls_error());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return mk_err_set(err, MK_EINVAL, "TLS key %s does not match certificate %s", o->key_file,
                          o->cert_file);
    return 0;
}

static SSL_CTX *ctx_new(const SSL_METHOD *m, mk_err_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (ctx == NULL) {
        mk_err_set(err, MK_EINTERNAL, "SSL_CTX_new: %s", mk_grpc_tls_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

SSL_CTX *mk_grpc_tls_server_ctx(const mk_grpc_tls_opts_t *o, mk_err_t *err)
{
    if (o->cert_file == NULL) {
        mk_err_set(err, MK_EINVAL, "TLS server needs cert_file and key_file");
        return NULL;
    }
    SSL_CTX *ctx = ctx_new(TLS_server_method(), err);
    if (ctx == NULL)
        return NULL;
    if (load_pair(ctx, o, err) < 0)
        goto fail;
    if (o->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            mk_err_set(err, MK_EINVAL, "TLS client CA %s: %s", o->ca_file, mk_grpc_tls_error());
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *mk_grpc_tls_client_ctx(const mk_grpc_tls_opts_t *o, mk_err_t *err)
{
    SSL_CTX *ctx = ctx_new(TLS_client_method(), err);
    if (ctx == NULL)
        return NULL;
    if (load_pair(ctx, o, err) < 0)
        goto fail;
    if (o->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            mk_err_set(err, MK_EINVAL, "TLS CA %s: %s", o->ca_file ? o->ca_file : "(system)",
                       mk_grpc_tls_error());
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof alpn_h2) != 0) {
        mk_err_set(err, MK_EINTERNAL, "cannot set ALPN");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
