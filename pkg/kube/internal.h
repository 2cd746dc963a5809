/* Shared between the kube client's source files; not part of the public API. */
#ifndef MK_KUBE_INTERNAL_H
#define MK_KUBE_INTERNAL_H

#include "kube/kube.h"

#include <curl/curl.h>
#include <pthread.h>

#define MK_KUBE_MAX_BODY (64u << 20) /* a larger answer is refused, not buffered */
#define MK_KUBE_MAX_LINE (16u << 20) /* one watch event */

struct mk_kube {
    mk_kube_config_t cfg;
    char *auth_header;
    /* Idle easy handles: reusing them keeps their connections alive between calls. */
    pthread_mutex_t mu;
    CURL **idle;
    size_t n_idle, cap_idle;
};

/* A growable byte buffer with a hard limit. */
typedef struct kube_buf {
    char *data;
    size_t len, cap, max;
    bool overflow;
} kube_buf_t;

int kube_buf_append(kube_buf_t *b, const char *p, size_t n);
void kube_buf_free(kube_buf_t *b);

/* Takes an idle handle (or a new one) configured for url with TLS and auth; headers gets the
 * common ones appended. Returns NULL on allocation failure. */
CURL *kube_handle_get(mk_kube_t *k, const char *url, struct curl_slist **headers);
void kube_handle_put(mk_kube_t *k, CURL *h);

/* The URL of res in ns (and name, subresource: each may be NULL), with query (may be NULL,
 * already escaped). Caller frees. */
char *kube_url(const mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
               const char *sub, const char *query);

/* Fills err from an HTTP status and an answer body (a Status object, usually). Returns the code. */
int kube_error_from_status(mk_err_t *err, long http, const char *body, size_t len,
                           const char *what);
int kube_error_from_curl(mk_err_t *err, CURLcode rc, const char *what);

/* Decodes standard base64 (whitespace ignored) into a new NUL-terminated buffer. */
int kube_base64_decode(const char *in, size_t len, char **out, size_t *out_len);

char *kube_strdup(const char *s);

#endif
