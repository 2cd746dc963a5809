/* Error codes and the error object every fallible function may fill. Codes map one-to-one onto
 * the REST API's "code" strings so a handler can answer without translating. */
#ifndef MK_ERR_H
#define MK_ERR_H

enum {
    MK_OK = 0,
    MK_EINVAL = -1,     /* bad input: "validation", HTTP 400 */
    MK_EUNAUTH = -2,    /* "unauthorized", 401 */
    MK_EFORBIDDEN = -3, /* "forbidden", 403 */
    MK_ENOTFOUND = -4,  /* "not_found", 404 */
    MK_ECONFLICT = -5,  /* "conflict", 409 */
    MK_ETOOBIG = -6,    /* "validation", 413 */
    MK_ERATE = -7,      /* "rate_limit", 429 */
    MK_EUNAVAIL = -8,   /* a dependency is down: "unavailable", 503 */
    MK_EINTERNAL = -9,  /* "internal", 500 */
    MK_ENOMEM = -10,    /* "internal", 500 */
    MK_EIO = -11,       /* "internal", 500 */
    MK_EMETHOD = -12,   /* "method_not_allowed", 405 */
};

typedef struct mk_err {
    int code;
    char msg[512];
    /* The upstream cause when there is one: SQLSTATE, Redis reply, Kubernetes Status reason. */
    char cause[128];
} mk_err_t;

/* Fills err (which may be NULL) with code and a printf-style message; returns code, so callers can
 * write `return mk_err_set(err, MK_EINVAL, "...")`. */
int mk_err_set(mk_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with "prefix: " (used to add a field path on the way up). */
void mk_err_prefix(mk_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mk_err_clear(mk_err_t *err);

/* The API code string for code ("validation", "not_found", ...). */
const char *mk_err_code_name(int code);
/* The HTTP status an API answers with for code. */
int mk_err_http_status(int code);

#endif
