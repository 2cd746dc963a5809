/* A self-signed certificate for the coordinator when TLS is on without files: made once in a
 * directory and reused on every later start, so runners can pin it. */
#include "coordinator/coordinator.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* mkdir -p with mode 0700 (the key lives there). */
static int make_dirs(const char *dir, mk_err_t *err)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return mk_err_set(err, MK_EINVAL, "RUNNER_GRPC_TLS_DIR: path too long");
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return mk_err_set(err, MK_EIO, "RUNNER_GRPC_TLS_DIR: mkdir %s: %s", buf,
                                  strerror(errno));
            *p = c;
        }
        if (c == '\0')
            break;
    }
    return 0;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, mk_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, key ? 0600 : 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return mk_err_set(err, MK_EIO, "%s: %s", path, strerror(errno));
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : mk_err_set(err, MK_EIO, "%s: cannot write", path);
}

int mk_coord_selfsigned(const char *dir, const char *hostname, char *cert_path, char *key_path,
                        size_t size, mk_err_t *err)
{
    if ((size_t)snprintf(cert_path, size, "%s/coordinator.crt", dir) >= size ||
        (size_t)snprintf(key_path, size, "%s/coordinator.key", dir) >= size)
        return mk_err_set(err, MK_EINVAL, "RUNNER_GRPC_TLS_DIR: path too long");
    if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
        return 0; /* made on an earlier start: reused */
    int rc = make_dirs(dir, err);
    if (rc != 0)
        return rc;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    char san[512];
    snprintf(san, sizeof san, "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
             hostname && hostname[0] ? ",DNS:" : "", hostname && hostname[0] ? hostname : "");
    X509V3_CTX v3;
    X509_EXTENSION *ext = NULL;
    bool ok =
        key && x && name && X509_set_version(x, 2) &&
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) &&
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
        X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"mockarty-coordinator", -1, -1, 0) &&
        X509_set_issuer_name(x, name) && X509_set_pubkey(x, key);
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        ok = ext && X509_add_ext(x, ext, -1) && X509_sign(x, key, EVP_sha256()) > 0;
    }
    if (!ok)
        rc = mk_err_set(err, MK_EINTERNAL, "RUNNER_GRPC_TLS_DIR: cannot make a certificate");
    if (rc == 0)
        rc = write_pem(key_path, key, NULL, err);
    if (rc == 0)
        rc = write_pem(cert_path, NULL, x, err);
    X509_EXTENSION_free(ext);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
