/* Blocking HTTP requests over libcurl's easy interface: one request struct in, one response struct
 * out, on the caller's thread (API test runs; webhooks use the asynchronous client in
 * httpclient.h). */
#ifndef MK_HTTPCLIENT_FETCH_H
#define MK_HTTPCLIENT_FETCH_H

#include <stddef.h>

#include "err/err.h"

/* A header as a name/value pair. */
typedef struct mk_httpclient_fetch_header {
    char *name;
    char *value;
} mk_httpclient_fetch_header_t;

/* What to send. Every pointer is borrowed for the duration of mk_httpclient_fetch only. */
typedef struct mk_httpclient_fetch_req {
    const char *method; /* "GET" when NULL */
    const char *url;
    const mk_httpclient_fetch_header_t *headers; /* sent as given; an empty value sends "Name:" */
    size_t n_headers;
    const char *body; /* NULL: no body */
    size_t body_len;
    long timeout_ms;         /* whole transfer; 0: no limit */
    long connect_timeout_ms; /* 0: curl's default (300 s) */
    int follow_redirects;    /* nonzero: follow 3xx Location */
    long max_redirects;      /* with follow_redirects; 0: 10 */
    int insecure;            /* nonzero: do not verify the peer's TLS certificate or host name */
    const char *ca_file;     /* PEM bundle to verify with; NULL: the system's */
    size_t max_body;         /* response bodies longer than this fail; 0: 64 MiB */
    const char *user_agent;  /* NULL: "mockarty-httpclient" (a "User-Agent" header overrides) */
} mk_httpclient_fetch_req_t;

/* What came back: the final response after redirects. Free with mk_httpclient_fetch_resp_free. */
typedef struct mk_httpclient_fetch_resp {
    long status;                           /* 200, 404, ... */
    char *reason;                          /* the status line's reason phrase ("" for HTTP/2) */
    char *http_version;                    /* "HTTP/1.1", "HTTP/2" */
    mk_httpclient_fetch_header_t *headers; /* in the order received, of the final response */
    size_t n_headers;
    char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    double total_ms;     /* from start to the last byte */
    char *effective_url; /* where the final response came from */
    long redirects;      /* how many were followed */
} mk_httpclient_fetch_resp_t;

/* Sends req and waits for the answer. 0 with *resp filled (any HTTP status is success), or
 * MK_EUNAVAIL (connect/DNS/TLS failure, timeout), MK_ETOOBIG (body over max_body) or MK_EINVAL
 * with err naming curl's reason. On failure *resp holds nothing that needs freeing, but
 * mk_httpclient_fetch_resp_free on it is harmless. Thread-safe: each call uses its own handle. */
int mk_httpclient_fetch(const mk_httpclient_fetch_req_t *req, mk_httpclient_fetch_resp_t *resp,
                        mk_err_t *err);

/* Frees what a response holds (not resp itself) and zeroes it. NULL is fine. */
void mk_httpclient_fetch_resp_free(mk_httpclient_fetch_resp_t *resp);

/* The first value of header name (case-insensitive) in resp, or NULL. Borrowed from resp. */
const char *mk_httpclient_fetch_resp_header(const mk_httpclient_fetch_resp_t *resp,
                                            const char *name);

#endif
