/* Proxy mocks on the hot path (serve_proxy.c): a matched mock with a `proxy` is answered from its
 * upstream through the worker loop's asynchronous client, with the mock's overrides, delay and
 * fault on top; an upstream failure answers 502 with the reason. A mock whose proxy records
 * (a recorder session's) hands each exchange to the recorder sink. */
#ifndef MK_SERVE_PROXY_H
#define MK_SERVE_PROXY_H

#include "serve/serve.h"

#include <jansson.h>

/* Receives one recorded exchange on a worker thread: session is the proxy's `record` id, entry a
 * JSON object (borrowed) {"id", "timestamp", "method", "path", "query", "requestHeaders",
 * "requestBody", "statusCode", "responseHeaders", "responseBody", "duration", "error"?}; headers
 * are {"Name": "value"} with repeated names joined by ", " (Set-Cookie kept as an array);
 * bodies are text (base64 with "...Base64": true when not UTF-8). */
typedef void (*mk_serve_record_cb)(void *ud, const char *session, json_t *entry);

/* What the proxy path needs of the server (a member of mk_serve_t). */
typedef struct mk_serve_proxy_ctx {
    mk_journal_t *journal;
    mk_serve_record_cb record;
    void *record_ud;
} mk_serve_proxy_ctx_t;

/* For serve_proxy.c: the server's proxy context (serve.c). */
mk_serve_proxy_ctx_t *mk_serve_proxy_ctx(mk_serve_t *s);

/* Sets where recorded exchanges go (the admin's recorder); ud is borrowed and must outlive the
 * server's mk_httpd_stop. Without one, recording mocks proxy without recording. */
void mk_serve_set_recorder(mk_serve_t *s, mk_serve_record_cb cb, void *ud);

/* Serves req with the proxy mock res->mock (its use already claimed): sends the request upstream
 * and answers when the upstream does. Everything needed later is copied now. Returns the status
 * to count now (the override's or 200; 502 when the request cannot even be sent). */
int mk_serve_proxy(mk_serve_proxy_ctx_t *ctx, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                   mk_str_t path, const mk_serve_result_t *res, mk_faker_rng_t *rng,
                   int64_t now_ms);

#endif
