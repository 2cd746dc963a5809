/* Retries with exponential backoff on top of the asynchronous HTTP client: each failed attempt
 * is sent again with a delay, from the client's own callback. */
#include "webhook/webhook.h"

#include "httpclient/httpclient.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BACKOFF_MS 1000
#define MAX_BACKOFF_MS     (10LL * 60 * 1000)

struct mk_webhook_sender {
    mk_httpclient_t *client;
};

typedef struct delivery {
    mk_webhook_sender_t *sender;
    mk_httpclient_req_t req; /* strings owned below */
    char *url, *method, *body;
    char **headers;
    int attempt, retries;
    int64_t backoff_ms;
    mk_webhook_attempt_cb on_attempt;
    void *ud;
} delivery_t;

static void delivery_free(delivery_t *d)
{
    if (d == NULL)
        return;
    free(d->url);
    free(d->method);
    free(d->body);
    for (size_t i = 0; d->headers && d->headers[i]; i++)
        free(d->headers[i]);
    free(d->headers);
    free(d);
}

static int64_t backoff_for(const delivery_t *d)
{
    int64_t wait = d->backoff_ms;
    for (int i = 1; i < d->attempt && wait < MAX_BACKOFF_MS; i++)
        wait *= 2;
    return wait < MAX_BACKOFF_MS ? wait : MAX_BACKOFF_MS;
}

static void on_done(void *ud, const mk_httpclient_result_t *res)
{
    delivery_t *d = ud;
    mk_webhook_attempt_t a = {.attempt = d->attempt,
                              .ok = res->status >= 200 && res->status < 300,
                              .status = res->status,
                              .error = res->error,
                              .duration_ms = res->duration_ms};
    bool stopped = res->status == 0 && strcmp(res->error, "stopped") == 0;
    bool again = !a.ok && !stopped && d->attempt <= d->retries;
    if (again) {
        a.retry_in_ms = backoff_for(d);
        d->req.delay_ms = a.retry_in_ms;
        d->attempt++;
        /* Queued before the callback runs, so a failure to queue can still be the final word. */
        if (mk_httpclient_send(d->sender->client, &d->req, on_done, d, NULL) != 0) {
            d->attempt--;
            again = false;
            a.retry_in_ms = 0;
        }
    }
    a.final = !again;
    if (d->on_attempt)
        d->on_attempt(d->ud, &a);
    if (a.final)
        delivery_free(d);
}

int mk_webhook_sender_new(unsigned max_in_flight, mk_webhook_sender_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_webhook_sender_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_httpclient_config_t cfg = {.max_in_flight = max_in_flight};
    int rc = mk_httpclient_new(&cfg, &s->client, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mk_webhook_sender_free(mk_webhook_sender_t *s)
{
    if (s == NULL)
        return;
    mk_httpclient_free(s->client);
    free(s);
}

int mk_webhook_send(mk_webhook_sender_t *s, const mk_webhook_req_t *req, mk_err_t *err)
{
    delivery_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    size_t nh = 0;
    while (req->headers && req->headers[nh])
        nh++;
    d->sender = s;
    d->url = strdup(req->url ? req->url : "");
    d->method = strdup(req->method ? req->method : "POST");
    d->body = malloc(req->body_len + 1);
    d->headers = calloc(nh + 1, sizeof *d->headers);
    bool ok = d->url && d->method && d->body && d->headers;
    for (size_t i = 0; ok && i < nh; i++) {
        d->headers[i] = strdup(req->headers[i]);
        ok = d->headers[i] != NULL;
    }
    if (!ok) {
        delivery_free(d);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    memcpy(d->body, req->body ? req->body : "", req->body_len);
    d->attempt = 1;
    d->retries = req->retries > 0 ? req->retries : 0;
    d->backoff_ms = req->backoff_ms > 0 ? req->backoff_ms : DEFAULT_BACKOFF_MS;
    d->on_attempt = req->on_attempt;
    d->ud = req->ud;
    d->req = (mk_httpclient_req_t){.method = d->method,
                                   .url = d->url,
                                   .headers = (const char *const *)d->headers,
                                   .body = d->body,
                                   .body_len = req->body_len,
                                   .timeout_ms = req->timeout_ms,
                                   .delay_ms = req->delay_ms};
    int rc = mk_httpclient_send(s->client, &d->req, on_done, d, err);
    if (rc != 0)
        delivery_free(d);
    return rc;
}
