/* An asynchronous HTTP client for calls the server makes on its own (webhooks): one thread runs
 * libcurl's multi interface, so many slow or hanging targets cost no request thread anything.
 * Requests are copied, may start after a delay, and end in exactly one callback. The only module
 * besides pkg/kube that includes curl.h. */
#ifndef MK_HTTPCLIENT_H
#define MK_HTTPCLIENT_H

#include "err/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mk_httpclient mk_httpclient_t;

typedef struct mk_httpclient_config {
    unsigned max_in_flight; /* transfers at once; 0: 32 */
    size_t max_queued;      /* requests waiting (delayed or over max_in_flight); 0: 10000 */
} mk_httpclient_config_t;

/* Everything is copied by mk_httpclient_send. */
typedef struct mk_httpclient_req {
    const char *method;         /* NULL: "POST" */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const void *body;
    size_t body_len;
    int64_t timeout_ms; /* the whole attempt; 0: 10 s */
    int64_t delay_ms;   /* start no earlier than this from now */
} mk_httpclient_req_t;

#define MK_HTTPCLIENT_BODY_KEPT 4096

typedef struct mk_httpclient_result {
    int status;         /* the HTTP status; 0 when there was no answer */
    const char *error;  /* "" on an answer, else why not (timeout, refused, stopped) */
    double duration_ms; /* of the transfer, without the delay */
    const char *body;   /* the answer's first MK_HTTPCLIENT_BODY_KEPT bytes (borrowed) */
    size_t body_len;
} mk_httpclient_result_t;

/* Runs on the client's thread (or in mk_httpclient_free, with error "stopped"); may call
 * mk_httpclient_send again (a retry). res is valid during the call only. */
typedef void (*mk_httpclient_cb)(void *ud, const mk_httpclient_result_t *res);

int mk_httpclient_new(const mk_httpclient_config_t *cfg, mk_httpclient_t **out, mk_err_t *err);
/* Stops the thread; requests still queued or in flight end with error "stopped". */
void mk_httpclient_free(mk_httpclient_t *c);

/* Queues req. On success cb will run exactly once; on failure (bad URL scheme MK_EINVAL, queue
 * full MK_EUNAVAIL, stopping) it never runs. */
int mk_httpclient_send(mk_httpclient_t *c, const mk_httpclient_req_t *req, mk_httpclient_cb cb,
                       void *ud, mk_err_t *err);

#endif
